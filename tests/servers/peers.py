"""Real third-party HTTP/2 peers (nginx, nghttpd) run as child processes for tests.

Theory of operation: each server gets a private temporary directory holding its
configuration, a trustme certificate (signed by the CA passed in, normally the session's
``tls_ca``), a small document tree and its logs. Ports come from :func:`free_port` (bind
127.0.0.1:0, read the port, close); the tiny race with another process grabbing the port in
between is handled by retrying with new ports when the server exits during start-up. Start-up
waits until every port accepts a TCP connection (the server never sees anything but a
connect-then-close). Processes run in their own session (process group), so stopping can fall
back to SIGKILL of the whole group without orphaning nginx's worker.

Availability: if a binary is missing, :func:`unavailable` skips the test locally but fails it
when ``CI`` or ``TRIOCLIENT_REQUIRE_PEERS`` is set to a true value, so CI cannot silently
skip the interop tests. Debian packages: ``nginx-light`` (nginx with http_v2 and ssl) and
``nghttp2-server`` (nghttpd).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import NoReturn, TypeVar

import pytest
import trustme

from .asgi_app import pattern_bytes

__all__ = [
    "APT_PACKAGES",
    "BIG_FILE_SIZE",
    "INDEX_TEXT",
    "NghttpdServer",
    "NginxServer",
    "PeerServer",
    "free_port",
    "peers_required",
    "unavailable",
]

APT_PACKAGES = "nginx-light nghttp2-server"
INDEX_TEXT = b"hello from nginx\n"
BIG_FILE_SIZE = 1024 * 1024  # big.bin holds pattern_bytes(BIG_FILE_SIZE)
_SEARCH_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
_FALSE = {"", "0", "false", "no", "off"}
_Server = TypeVar("_Server", bound="PeerServer")


def peers_required() -> bool:
    """True when CI or TRIOCLIENT_REQUIRE_PEERS is set to a true value."""
    return any(
        os.environ.get(name, "").strip().lower() not in _FALSE
        for name in ("CI", "TRIOCLIENT_REQUIRE_PEERS")
    )


def unavailable(reason: str, packages: str = APT_PACKAGES) -> NoReturn:
    """Skip the current test, or fail it when peers are required (see :func:`peers_required`).

    Also for the other tools CI installs (valgrind, openssl): name them in `packages`.
    """
    message = f"{reason} (Debian: apt-get install {packages})"
    if peers_required():
        pytest.fail(
            f"{message}; required because CI/TRIOCLIENT_REQUIRE_PEERS is set", pytrace=False
        )
    pytest.skip(message)


def free_port() -> int:
    """A port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


class PeerServer:
    """Common lifecycle: temp dir, certificate, start with port retries, stop, context manager.

    Subclasses set ``binary`` and ``stop_signal`` and implement :meth:`_launch`.
    """

    binary = ""
    stop_signal = signal.SIGTERM
    attempts = 5

    def __init__(self, ca: trustme.CA | None = None) -> None:
        self.ca = ca if ca is not None else trustme.CA()
        self.dir: Path | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self.ports: list[int] = []

    @classmethod
    def executable(cls) -> str | None:
        """Full path of the binary, or None if it is not installed."""
        return shutil.which(cls.binary, path=_SEARCH_PATH)

    @classmethod
    def available(cls) -> bool:
        return cls.executable() is not None

    @property
    def log_path(self) -> Path:
        assert self.dir is not None
        return self.dir / "server.log"

    def log(self) -> str:
        """Everything the server wrote to stdout/stderr (and, for nginx, its error log)."""
        if self.dir is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")

    def _prepare(self, directory: Path) -> None:
        """Write certificates and content into ``directory``."""
        cert = self.ca.issue_cert("127.0.0.1", "localhost")
        (directory / "cert.pem").write_bytes(b"".join(b.bytes() for b in cert.cert_chain_pems))
        cert.private_key_pem.write_to_path(str(directory / "key.pem"))
        self.ca.cert_pem.write_to_path(str(directory / "ca.pem"))

    def _launch(self, executable: str, directory: Path, ports: list[int]) -> list[str]:
        raise NotImplementedError

    def _port_count(self) -> int:
        raise NotImplementedError

    def start(self, timeout: float = 10.0) -> None:
        """Start the server and wait until all its ports accept connections."""
        if self.process is not None:
            raise RuntimeError("server already started")
        executable = self.executable()
        if executable is None:
            raise RuntimeError(f"{self.binary} is not installed")
        self.dir = Path(tempfile.mkdtemp(prefix=f"trioclient-{self.binary}-"))
        self.dir.chmod(0o755)  # nginx's worker may run as another user
        self._prepare(self.dir)
        for _attempt in range(self.attempts):
            ports = [free_port() for _ in range(self._port_count())]
            argv = self._launch(executable, self.dir, ports)
            with open(self.log_path, "ab") as log:
                self.process = subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=self.dir,
                    start_new_session=True,
                )
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    break  # most likely a port was taken in the meantime: retry
                if all(_accepts(port) for port in ports):
                    self.ports = ports
                    return
                time.sleep(0.02)
            else:
                self.stop()
                raise RuntimeError(f"{self.binary} did not start within {timeout} s:\n{self.log()}")
            self.process.wait()
            self.process = None
        output = self.log()
        self.stop()
        raise RuntimeError(f"{self.binary} failed to start {self.attempts} times:\n{output}")

    def stop(self, timeout: float = 5.0) -> None:
        """Stop gracefully (``stop_signal``), then SIGKILL the process group; safe twice."""
        process, self.process = self.process, None
        if process is not None:
            if process.poll() is None:
                process.send_signal(self.stop_signal)
                try:
                    process.wait(timeout)
                except subprocess.TimeoutExpired:
                    pass
            try:
                os.killpg(process.pid, signal.SIGKILL)  # leftovers, e.g. nginx's worker
            except ProcessLookupError:
                pass
            process.wait()
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def __enter__(self: _Server) -> _Server:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


_NGINX_CONF = """\
{user}
daemon off;
master_process on;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/server.log {log_level};
events {{ worker_connections 128; }}
http {{
    access_log off;
    client_body_temp_path {dir}/tmp/body;
    proxy_temp_path {dir}/tmp/proxy;
    fastcgi_temp_path {dir}/tmp/fastcgi;
    uwsgi_temp_path {dir}/tmp/uwsgi;
    scgi_temp_path {dir}/tmp/scgi;
    types {{ text/plain txt; application/octet-stream bin; application/json json; }}
    default_type application/octet-stream;
    server_tokens off;
    keepalive_timeout {keepalive_timeout};
    keepalive_requests {keepalive_requests};
    http2_max_concurrent_streams {max_concurrent_streams};
    client_max_body_size 16m;
    client_body_buffer_size 16m;
    server {{
        listen 127.0.0.1:{https_port} ssl http2;
        listen 127.0.0.1:{http_port};
        listen 127.0.0.1:{h2c_port} http2;
        server_name localhost 127.0.0.1;
        ssl_certificate {dir}/cert.pem;
        ssl_certificate_key {dir}/key.pem;
        root {dir}/htdocs;
        location = /fixed {{ default_type text/plain; return 200 "fixed response\\n"; }}
        location = /json {{ default_type application/json; return 200 '{{"hello": "nginx"}}'; }}
        location = /status/204 {{ return 204; }}
        location = /status/404 {{ return 404; }}
        location = /status/500 {{ return 500; }}
        location = /redirect {{ return 302 /index.txt; }}
        {echo}
        {extra}
    }}
}}
"""
_ECHO_MODULE = Path("/usr/lib/nginx/modules/ngx_http_echo_module.so")
_ECHO_LOCATION = (
    "location = /echo { default_type application/octet-stream; "
    "echo_read_request_body; echo_request_body; }"
)


class NginxServer(PeerServer):
    """nginx on 127.0.0.1: ``https_url`` (TLS, ALPN h2 + http/1.1), ``http_url`` (plain
    HTTP/1.1 only) and ``h2c_url`` (plain, HTTP/2 prior knowledge only).

    Content: ``/index.txt`` (:data:`INDEX_TEXT`), ``/big.bin`` (``pattern_bytes(1 MiB)``),
    ``/fixed`` (``fixed response\\n``), ``/json``, ``/status/{204,404,500}``, ``/redirect``
    (302 to /index.txt), and ``/echo`` (the request body back) when the echo module of
    ``nginx-light`` is installed (``has_echo``). ``None`` keeps nginx's defaults: keepalive
    timeout 75 s, 1000 requests per connection, 128 concurrent streams.
    """

    binary = "nginx"
    stop_signal = signal.SIGQUIT

    def __init__(
        self,
        ca: trustme.CA | None = None,
        *,
        keepalive_timeout: str | None = None,
        keepalive_requests: int | None = None,
        max_concurrent_streams: int | None = None,
        extra_config: str = "",
        log_level: str = "warn",
    ) -> None:
        super().__init__(ca)
        self.keepalive_timeout = keepalive_timeout or "75s"
        self.keepalive_requests = keepalive_requests or 1000
        self.max_concurrent_streams = max_concurrent_streams or 128
        self.extra_config = extra_config
        self.log_level = log_level
        self.has_echo = _ECHO_MODULE.exists()

    def _port_count(self) -> int:
        return 3

    @property
    def https_url(self) -> str:
        return f"https://127.0.0.1:{self.ports[0]}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.ports[1]}"

    @property
    def h2c_url(self) -> str:
        return f"http://127.0.0.1:{self.ports[2]}"

    def _prepare(self, directory: Path) -> None:
        super()._prepare(directory)
        htdocs = directory / "htdocs"
        htdocs.mkdir()
        (htdocs / "index.txt").write_bytes(INDEX_TEXT)
        (htdocs / "big.bin").write_bytes(pattern_bytes(BIG_FILE_SIZE))
        (directory / "tmp").mkdir()

    def _launch(self, executable: str, directory: Path, ports: list[int]) -> list[str]:
        # As root, nginx's worker would run as "nobody"; keep it as the current user.
        user = "user root root;" if os.geteuid() == 0 else ""
        config = _NGINX_CONF.format(
            user=(f"load_module {_ECHO_MODULE};\n" if self.has_echo else "") + user,
            dir=directory,
            log_level=self.log_level,
            https_port=ports[0],
            http_port=ports[1],
            h2c_port=ports[2],
            keepalive_timeout=self.keepalive_timeout,
            keepalive_requests=self.keepalive_requests,
            max_concurrent_streams=self.max_concurrent_streams,
            echo=_ECHO_LOCATION if self.has_echo else "",
            extra=self.extra_config,
        )
        (directory / "nginx.conf").write_text(config)
        conf = str(directory / "nginx.conf")
        return [executable, "-p", str(directory), "-c", conf, "-e", str(self.log_path)]


class NghttpdServer(PeerServer):
    """nghttpd (nghttp2's test server) on 127.0.0.1, TLS (ALPN h2 only) or h2c prior knowledge.

    Serves ``htdocs``: ``/index.txt`` (``hello from nghttpd\\n``) and ``/big.bin``
    (``pattern_bytes(1 MiB)``); with ``echo_upload`` a POST/PUT gets its body back. ``url`` is
    https or http accordingly.
    """

    binary = "nghttpd"
    stop_signal = signal.SIGTERM
    INDEX_TEXT = b"hello from nghttpd\n"

    def __init__(
        self,
        ca: trustme.CA | None = None,
        *,
        tls: bool = True,
        echo_upload: bool = True,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        super().__init__(ca)
        self.tls = tls
        self.echo_upload = echo_upload
        self.extra_args = extra_args

    def _port_count(self) -> int:
        return 1

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.ports[0]}"

    def _prepare(self, directory: Path) -> None:
        super()._prepare(directory)
        htdocs = directory / "htdocs"
        htdocs.mkdir()
        (htdocs / "index.txt").write_bytes(self.INDEX_TEXT)
        (htdocs / "big.bin").write_bytes(pattern_bytes(BIG_FILE_SIZE))

    def _launch(self, executable: str, directory: Path, ports: list[int]) -> list[str]:
        argv = [executable, "--address=127.0.0.1", f"--htdocs={directory / 'htdocs'}"]
        if self.echo_upload:
            argv.append("--echo-upload")
        argv.extend(self.extra_args)
        if self.tls:
            return [*argv, str(ports[0]), str(directory / "key.pem"), str(directory / "cert.pem")]
        return [*argv, "--no-tls", str(ports[0])]
