"""Shared fixtures: the hypercorn test server, TLS material, a clean environment, and a
socket-leak checker that fails any Trio test whose sockets outlive it.

Socket-leak checker, theory of operation
----------------------------------------
For every Trio test, :class:`SocketLeakChecker` is installed with
``trio.socket.set_custom_socket_factory`` as the first thing inside the test's ``trio.run``,
before pytest-trio starts any async fixture. It creates every socket the run asks
``trio.socket.socket()`` for (``open_tcp_stream``, ``open_tcp_listeners``, ...) and keeps a
strong reference to each. After the run has finished (the test *and* all its fixtures' setup
and teardown), any recorded socket whose ``fileno() != -1`` fails the test with a list of
them; they are then closed, so they cannot raise ResourceWarning in some later test. If the
test failed anyway, leaks are closed silently and the original failure is reported.

The factory is installed by prepending ``pytest.mark.trio(run=...)`` to the item: pytest-trio
calls the ``run`` of the closest ``trio`` marker with the whole fixture-and-test coroutine.
Hypothesis tests ignore that ``run`` (pytest-trio calls ``trio.run`` itself for each
example), so for them the factory is installed at the start of the test body instead; sockets
opened by their async fixtures are not tracked there.

Rejected alternative: an autouse *async* fixture. pytest-trio only runs the async fixtures it
finds in the test function's arguments, so an autouse async fixture is silently never run for
async tests (python-trio/pytest-trio#123, also #124 for ``usefixtures``), and it errors for
sync tests ("Trio fixtures can only be used by Trio tests"). Even when requested by name, its
teardown would only be ordered after the fixtures that depend on it, not after all of them.

Limits: only sockets created through ``trio.socket.socket()`` in the test's own run are seen.
Sockets from ``accept()`` (the server side of raw servers), ``socketpair()``,
``from_stdlib_socket()``, stdlib sockets used in threads, and the hypercorn thread's sockets
are not tracked. Sync tests are not checked.
"""

from __future__ import annotations

import os
import socket
import ssl
import sys
from collections.abc import Callable, Generator, Iterator
from functools import partial, wraps
from pathlib import Path
from typing import Any

import pytest
import trio
import trustme
from hypothesis import HealthCheck, settings
from servers.hypercorn_server import HypercornServer, wsgi_as_asgi
from servers.peers import NghttpdServer, NginxServer, unavailable
from servers.redis_peer import REDIS_APT_PACKAGES, RedisServer

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup

pytest_plugins = ["pytester", "trioclient._pytest_plugin"]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--harness-summary",
        action="store_true",
        help="list every cancellation-harness sweep (scenario, fault, runs, outcomes) at the "
        "end instead of one line counting them",
    )


# --- Hypothesis profiles -----------------------------------------------------------------------

_PROFILE_COMMON: dict[str, Any] = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow],
}
settings.register_profile("default", max_examples=100, **_PROFILE_COMMON)
settings.register_profile("ci", max_examples=100, **_PROFILE_COMMON)
settings.register_profile("long", max_examples=2000, **_PROFILE_COMMON)
# .ci/run's runs on the other Python versions look for incompatibilities, not rare inputs.
settings.register_profile("quick", max_examples=10, **_PROFILE_COMMON)
settings.load_profile(os.environ.get("TRIOCLIENT_HYPOTHESIS_PROFILE", "default"))


# --- socket-leak checker -----------------------------------------------------------------------


def _describe(sock: trio.socket.SocketType) -> str:
    def address(getter: Callable[[], Any]) -> str:
        try:
            return repr(getter())
        except OSError:
            return "-"

    try:
        family = socket.AddressFamily(sock.family).name
        kind = socket.SocketKind(sock.type).name
    except ValueError:
        family, kind = str(sock.family), str(sock.type)
    return (
        f"{family}/{kind} fd={sock.fileno()} "
        f"local={address(sock.getsockname)} peer={address(sock.getpeername)}"
    )


class SocketLeakChecker(trio.abc.SocketFactory):
    """A Trio socket factory that remembers every socket it creates during one test."""

    def __init__(self) -> None:
        self.sockets: list[trio.socket.SocketType] = []

    def socket(
        self,
        family: socket.AddressFamily | int = socket.AF_INET,
        type: socket.SocketKind | int = socket.SOCK_STREAM,
        proto: int = 0,
    ) -> trio.socket.SocketType:
        sock = trio.socket.from_stdlib_socket(socket.socket(family, type, proto))
        self.sockets.append(sock)
        return sock

    @property
    def created(self) -> int:
        """How many sockets this test created so far (e.g. to count new connections)."""
        return len(self.sockets)

    def open_sockets(self) -> list[trio.socket.SocketType]:
        return [sock for sock in self.sockets if sock.fileno() != -1]

    def close_leaked(self) -> list[str]:
        """Close every still-open socket; return their descriptions.

        Called after the Trio run ended, where ``trio_socket.close()`` would fail (it must
        notify the run's waiters), so the file descriptor is detached and closed directly.
        """
        leaked = []
        for sock in self.open_sockets():
            leaked.append(_describe(sock))
            os.close(sock.detach())
        return leaked


_CHECKER = pytest.StashKey[SocketLeakChecker]()
_MARKED = pytest.StashKey[bool]()


def _run_with_checker(
    item: pytest.Item, run: Callable[..., Any], afn: Callable[..., Any], *args: Any, **kw: Any
) -> Any:
    """A ``run`` for pytest-trio's marker: install the item's checker, then run everything."""
    checker = item.stash[_CHECKER]

    async def main() -> Any:
        trio.socket.set_custom_socket_factory(checker)
        return await afn(*args)

    try:
        return run(main, **kw)
    except BaseExceptionGroup as group:
        # pytest.skip() or pytest.xfail() inside a nursery (a fixture's, say) arrives in a
        # group, and pytest-trio re-raises a lone one as a bare pytest.skip() or xfail(),
        # dropping its reason; raising the leaf ourselves keeps it for -ra's summary.
        leaf = _single_leaf(group)
        if isinstance(leaf, (pytest.skip.Exception, pytest.xfail.Exception)):
            raise leaf from None
        raise


def _single_leaf(group: BaseExceptionGroup[BaseException]) -> BaseException | None:
    while len(group.exceptions) == 1:
        inner = group.exceptions[0]
        if not isinstance(inner, BaseExceptionGroup):
            return inner
        group = inner
    return None


def _install_in_hypothesis_body(item: pytest.Item) -> Callable[[], None]:
    hypothesis_handle = item.obj.hypothesis  # type: ignore[attr-defined]
    inner = hypothesis_handle.inner_test

    @wraps(inner)
    async def body(*args: Any, **kwargs: Any) -> Any:
        trio.socket.set_custom_socket_factory(item.stash[_CHECKER])
        return await inner(*args, **kwargs)

    hypothesis_handle.inner_test = body

    def restore() -> None:
        hypothesis_handle.inner_test = inner

    return restore


def _install(item: pytest.Item) -> Callable[[], None]:
    if hasattr(item.obj, "hypothesis"):  # type: ignore[attr-defined]
        return _install_in_hypothesis_body(item)
    if not item.stash.get(_MARKED, False):
        run = trio.run
        for marker in item.iter_markers("trio"):
            if marker.kwargs.get("run") is not None:
                run = marker.kwargs["run"]
                break
        item.add_marker(pytest.mark.trio(run=partial(_run_with_checker, item, run)), append=False)
        item.stash[_MARKED] = True
    return lambda: None


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("trio") is not None:
        item.stash[_CHECKER] = SocketLeakChecker()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    # tryfirst makes this the outermost wrapper, so it runs before pytest-trio's wrapper reads
    # the trio marker (or wraps the Hypothesis inner test).
    checker = item.stash.get(_CHECKER, None)
    if checker is None:  # not a Trio test
        return (yield)
    restore = _install(item)
    try:
        result = yield
    except BaseException:
        checker.close_leaked()  # the test failed anyway: report that, not the leak
        raise
    finally:
        restore()
    leaked = checker.close_leaked()
    if leaked:
        pytest.fail(
            f"{len(leaked)} socket(s) created by this test were still open after the test "
            "and its fixtures finished:\n  " + "\n  ".join(leaked),
            pytrace=False,
        )
    return result


@pytest.fixture
def socket_leak_checker(request: pytest.FixtureRequest) -> SocketLeakChecker:
    """The current Trio test's :class:`SocketLeakChecker` (``.created``, ``.open_sockets()``)."""
    checker: SocketLeakChecker | None = request.node.stash.get(_CHECKER, None)
    if checker is None:
        raise RuntimeError("socket_leak_checker only exists for Trio (async) tests")
    return checker


# --- environment -------------------------------------------------------------------------------

_AMBIENT_EXACT = {"SSLKEYLOGFILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"}


def _is_ambient(name: str) -> bool:
    upper = name.upper()
    return upper.endswith("_PROXY") or upper.startswith("SSL_CERT_") or upper in _AMBIENT_EXACT


@pytest.fixture(autouse=True)
def _clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """Drop proxy and CA/SSL variables so the developer's environment cannot leak in."""
    for name in list(os.environ):
        if _is_ambient(name):
            monkeypatch.delenv(name)


# --- TLS material ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def tls_ca() -> trustme.CA:
    """The session's throwaway CA; it signs the hypercorn, raw-server and client certificates."""
    return trustme.CA()


@pytest.fixture(scope="session")
def _tls_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tls")


@pytest.fixture(scope="session")
def _ca_pem_file(tls_ca: trustme.CA, _tls_dir: Path) -> str:
    path = _tls_dir / "ca.pem"
    tls_ca.cert_pem.write_to_path(str(path))
    return str(path)


@pytest.fixture
def ca_pem_path(_ca_pem_file: str) -> str:
    """Path of a PEM file with the test CA certificate (for ``verify="path"`` style APIs)."""
    return _ca_pem_file


@pytest.fixture
def ssl_context(tls_ca: trustme.CA) -> ssl.SSLContext:
    """A fresh client context that trusts only the test CA (hostname checks on)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    tls_ca.configure_trust(context)
    return context


@pytest.fixture(scope="session")
def _raw_server_cert(tls_ca: trustme.CA) -> trustme.LeafCert:
    return tls_ca.issue_cert("127.0.0.1", "localhost")


@pytest.fixture
def server_ssl_context(_raw_server_cert: trustme.LeafCert) -> ssl.SSLContext:
    """A fresh server context for raw TLS servers (certificate for 127.0.0.1 and localhost)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    _raw_server_cert.configure_cert(context)
    return context


@pytest.fixture(scope="session")
def client_cert(tls_ca: trustme.CA, _tls_dir: Path) -> tuple[str, str]:
    """A client certificate from the test CA, as ``(cert_path, key_path)`` PEM files."""
    cert = tls_ca.issue_cert("client.trioclient.test", common_name="trioclient test client")
    cert_path = _tls_dir / "client-cert.pem"
    key_path = _tls_dir / "client-key.pem"
    cert_path.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    cert.private_key_pem.write_to_path(str(key_path))
    return str(cert_path), str(key_path)


# --- the hypercorn server ----------------------------------------------------------------------


@pytest.fixture(scope="session")
def hypercorn_server(tls_ca: trustme.CA) -> Iterator[HypercornServer]:
    """Hypercorn (Trio, background thread) serving ``servers.asgi_app`` for the session."""
    server = HypercornServer(ca=tls_ca)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def http_url(hypercorn_server: HypercornServer) -> str:
    """``http://127.0.0.1:PORT``: HTTP/1.1, h2c upgrade and h2 prior knowledge."""
    return hypercorn_server.http_url


@pytest.fixture
def https_url(hypercorn_server: HypercornServer) -> str:
    """``https://127.0.0.1:PORT``: ALPN h2 and http/1.1, certificate from ``tls_ca``."""
    return hypercorn_server.https_url


@pytest.fixture(scope="session")
def upload_server(tls_ca: trustme.CA) -> Iterator[HypercornServer]:
    """Hypercorn serving ``servers.upload_app`` (streaming multipart parser) for the session."""
    from servers.upload_app import app as upload_app

    with HypercornServer(app=upload_app, ca=tls_ca) as server:
        yield server


@pytest.fixture(scope="session")
def httpbin_server(tls_ca: trustme.CA) -> Iterator[HypercornServer]:
    """httpbin (the ``httpbin`` package's Flask app) under hypercorn, in worker threads, for
    the session: the reference server for multipart parsing and digest auth."""
    import httpbin

    with HypercornServer(app=wsgi_as_asgi(httpbin.app), ca=tls_ca) as server:
        yield server


@pytest.fixture
def httpbin_url(httpbin_server: HypercornServer) -> str:
    """``http://127.0.0.1:PORT`` of httpbin."""
    return httpbin_server.http_url


# --- real third-party peers (nginx, nghttpd) and a client TLS context for HTTP/2 ---------------
# Session-scoped child processes, started the first time a test asks; a missing binary skips
# locally and fails in CI (servers.peers.unavailable).


@pytest.fixture
def h2_ssl_context(tls_ca: trustme.CA) -> ssl.SSLContext:
    """A fresh client context trusting only the test CA, offering ALPN h2 and http/1.1."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    tls_ca.configure_trust(context)
    context.set_alpn_protocols(["h2", "http/1.1"])
    return context


@pytest.fixture(scope="session")
def nginx_server(tls_ca: trustme.CA) -> Iterator[NginxServer]:
    """nginx for the session: ``https_url`` (h2 + http/1.1), ``http_url`` (HTTP/1.1) and
    ``h2c_url`` (h2 prior knowledge); see :class:`servers.peers.NginxServer` for content."""
    if not NginxServer.available():
        unavailable("nginx is not installed")
    with NginxServer(tls_ca) as server:
        yield server


@pytest.fixture(scope="session")
def nghttpd_server(tls_ca: trustme.CA) -> Iterator[NghttpdServer]:
    """nghttpd over TLS (ALPN h2) for the session; ``url`` is https."""
    if not NghttpdServer.available():
        unavailable("nghttpd is not installed")
    with NghttpdServer(tls_ca, tls=True) as server:
        yield server


@pytest.fixture(scope="session")
def nghttpd_h2c_server(tls_ca: trustme.CA) -> Iterator[NghttpdServer]:
    """nghttpd speaking h2c with prior knowledge for the session; ``url`` is http."""
    if not NghttpdServer.available():
        unavailable("nghttpd is not installed")
    with NghttpdServer(tls_ca, tls=False) as server:
        yield server


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """redis-server for the session (no persistence); ``url`` is ``redis://127.0.0.1:PORT/0``.
    Tests share it: each uses its own crawl name (key prefix)."""
    if not RedisServer.available():
        unavailable("redis-server is not installed", REDIS_APT_PACKAGES)
    with RedisServer() as server:
        yield server
