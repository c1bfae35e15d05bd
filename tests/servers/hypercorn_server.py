"""Hypercorn on Trio in a background thread, shared by a whole pytest session.

Theory of operation: the server gets its own thread and its own ``trio.run``, so it outlives
every test, never shares a run (or a socket factory) with a test, and its sockets are invisible
to the per-test leak checker. One :func:`hypercorn.trio.serve` call serves both listeners:
with a certificate configured, ``config.bind`` holds the TLS sockets and
``config.insecure_bind`` the plain ones, and ``serve`` reports both URLs through
``task_status``. The plain listener speaks HTTP/1.1 and h2c (both the ``Upgrade: h2c`` dance
and prior knowledge); the TLS listener offers ALPN ``h2`` and ``http/1.1``.

Shutdown: :meth:`HypercornServer.stop` sets a ``trio.Event`` that is hypercorn's
``shutdown_trigger``. Hypercorn then stops accepting, closes idle keep-alive connections at
once, and gives in-flight requests ``graceful_timeout`` seconds before cancelling them. The one
thing that can still hang is a response write blocked on a client that keeps its socket open
but never reads: hypercorn shields ``send_all``. ``stop()`` therefore joins with a timeout and
raises if the thread is still alive (it is a daemon thread, so the process can still exit).

Rejected alternative: two ``serve()`` calls in one run. That works too, but one call with
``bind`` + ``insecure_bind`` is what hypercorn's own CLI does and needs one shutdown path.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Any

import trio
import trustme
from hypercorn.config import Config
from hypercorn.middleware import TrioWSGIMiddleware
from hypercorn.trio import serve

from .asgi_app import answer_lifespan
from .asgi_app import app as default_app

__all__ = ["SERVER_HOSTNAMES", "HypercornServer", "wsgi_as_asgi"]

SERVER_HOSTNAMES = ("127.0.0.1", "localhost", "testserver.local")

_log = logging.getLogger("tests.servers.hypercorn")
_log.setLevel(logging.WARNING)


def wsgi_as_asgi(wsgi_app: Any, max_body_size: int = 64 * 2**20) -> Any:
    """An ASGI app running `wsgi_app` (httpbin's Flask app) in worker threads.

    hypercorn's own ``mode="wsgi"`` fails to start on Trio (0.18: the WSGI wrapper returns
    from the lifespan scope at once and hypercorn then sends ``lifespan.startup`` into a
    closed channel), so the lifespan is answered here and HTTP goes to hypercorn's
    ``TrioWSGIMiddleware``. It buffers each request body, up to `max_body_size`.

    Two fixes for the middleware (0.18): it sends the response head with the first body
    chunk, so a response with an empty body iterable (httpbin's ``/status/503``) never got a
    head and came out as a 500: the app's body is given one empty chunk when it has none.
    And httpbin refuses a chunked request body (501) unless the server is gunicorn, which
    terminates the input; the middleware has buffered the body whole, so the app is shown
    it as what it now is, a body of known length.
    """

    def fixed(environ: Any, start_response: Any) -> Any:
        if environ.pop("HTTP_TRANSFER_ENCODING", "").lower() == "chunked":
            environ["CONTENT_LENGTH"] = str(environ["wsgi.input"].getbuffer().nbytes)
        body = wsgi_app(environ, start_response)
        try:
            sent = False
            for chunk in body:
                sent = True
                yield chunk
            if not sent:
                yield b""
        finally:
            if hasattr(body, "close"):
                body.close()

    middleware = TrioWSGIMiddleware(fixed, max_body_size=max_body_size)

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await answer_lifespan(receive, send)
            return
        await middleware(scope, receive, send)

    return app


class HypercornServer:
    """The test ASGI app served by hypercorn on 127.0.0.1, plain and TLS, on ephemeral ports.

    Args:
        app: the ASGI application (defaults to :func:`servers.asgi_app.app`).
        ca: the certificate authority that signs the server certificate; a fresh one if omitted.
        keep_alive_timeout: seconds an idle keep-alive connection stays open.
        graceful_timeout: seconds in-flight requests get after :meth:`stop`.
    """

    def __init__(
        self,
        app: Any = default_app,
        *,
        ca: trustme.CA | None = None,
        keep_alive_timeout: float = 60.0,
        graceful_timeout: float = 1.0,
    ) -> None:
        self.app = app
        self.ca = ca if ca is not None else trustme.CA()
        self.keep_alive_timeout = keep_alive_timeout
        self.graceful_timeout = graceful_timeout
        self._tmpdir: Path | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._shutdown: trio.Event | None = None
        self._binds: list[str] = []

    # --- addresses -----------------------------------------------------------------------

    def _bind(self, scheme: str) -> str:
        for bind in self._binds:
            if bind.startswith(f"{scheme}://"):
                return bind
        raise RuntimeError(f"no {scheme} listener; is the server started? binds={self._binds}")

    @property
    def http_url(self) -> str:
        """``http://127.0.0.1:PORT`` (HTTP/1.1 and h2c)."""
        return self._bind("http")

    @property
    def https_url(self) -> str:
        """``https://127.0.0.1:PORT`` (ALPN h2 and http/1.1)."""
        return self._bind("https")

    @property
    def ca_pem_path(self) -> str:
        """Path of a PEM file holding the CA certificate that signed the server certificate."""
        if self._tmpdir is None:
            raise RuntimeError("server not started")
        return str(self._tmpdir / "ca.pem")

    # --- lifecycle -----------------------------------------------------------------------

    def _write_certificates(self, tmpdir: Path) -> Config:
        cert = self.ca.issue_cert(*SERVER_HOSTNAMES)
        certfile = tmpdir / "server-chain.pem"
        keyfile = tmpdir / "server-key.pem"
        certfile.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
        cert.private_key_pem.write_to_path(str(keyfile))
        self.ca.cert_pem.write_to_path(str(tmpdir / "ca.pem"))

        config = Config()
        config.bind = ["127.0.0.1:0"]  # TLS, because certfile/keyfile are set
        config.insecure_bind = ["127.0.0.1:0"]
        config.certfile = str(certfile)
        config.keyfile = str(keyfile)
        config.alpn_protocols = ["h2", "http/1.1"]
        config.keep_alive_timeout = self.keep_alive_timeout
        config.graceful_timeout = self.graceful_timeout
        config.ssl_handshake_timeout = 10.0
        config.accesslog = None
        config.errorlog = _log
        config.include_server_header = True
        return config

    def start(self, timeout: float = 10.0) -> None:
        """Start the server thread and wait until both listeners are bound."""
        if self._thread is not None:
            raise RuntimeError("server already started")
        self._tmpdir = Path(tempfile.mkdtemp(prefix="trioclient-hypercorn-"))
        config = self._write_certificates(self._tmpdir)
        self._thread = threading.Thread(
            target=self._thread_main, args=(config,), name="hypercorn-test-server", daemon=True
        )
        self._thread.start()
        if not self._started.wait(timeout):
            raise RuntimeError(f"hypercorn did not start within {timeout} s")
        if self._error is not None:
            raise RuntimeError("hypercorn failed to start") from self._error

    def stop(self, timeout: float = 10.0) -> None:
        """Trigger a graceful shutdown and join the thread; safe to call twice."""
        thread = self._thread
        if thread is None:
            return
        if self._token is not None and self._shutdown is not None:
            try:
                trio.from_thread.run_sync(self._shutdown.set, trio_token=self._token)
            except trio.RunFinishedError:
                pass
        thread.join(timeout)
        self._thread = None
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None
        if thread.is_alive():
            raise RuntimeError(
                f"hypercorn did not stop within {timeout} s; a client probably left a "
                "connection open with an unread response (hypercorn shields send_all)"
            )
        if self._error is not None:
            raise RuntimeError("hypercorn crashed") from self._error

    def __enter__(self) -> HypercornServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- the server thread ---------------------------------------------------------------

    def _thread_main(self, config: Config) -> None:
        try:
            trio.run(self._serve, config)
        except BaseException as exc:
            self._error = exc
        finally:
            self._started.set()  # unblocks start() if serve() failed before binding

    async def _serve(self, config: Config) -> None:
        self._token = trio.lowlevel.current_trio_token()
        shutdown = self._shutdown = trio.Event()
        async with trio.open_nursery() as nursery:
            self._binds = await nursery.start(
                partial(serve, self.app, config, shutdown_trigger=shutdown.wait, mode="asgi")
            )
            self._started.set()
