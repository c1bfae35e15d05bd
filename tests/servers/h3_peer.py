"""A real HTTP/3 server for the tests: hypercorn with QUIC, in a child process.

Theory of operation: hypercorn serves HTTP/3 (through aioquic) only on its asyncio worker, and
the suite's own hypercorn runs on Trio in a thread, so this one gets a child process of its
own (``python h3_peer.py ...``, the ``__main__`` block below). The app is
:mod:`servers.h3_app`.

One port number for TCP and UDP: the parent binds a TCP socket on 127.0.0.1 port 0, then a
UDP socket on 127.0.0.1 with the same port number (retrying with a new port when that is
taken), and hands both descriptors to the child (hypercorn's ``fd://`` binds). So there is no
window in which another process could take either port, and hypercorn's automatic
``alt-svc: h3=":PORT"; ma=3600`` (it adds one for its QUIC socket to every response) points
at itself. The TCP listener speaks TLS with ALPN ``h2`` and ``http/1.1``; the UDP socket QUIC
with ALPN ``h3``. The certificate is signed by the caller's trustme CA.

Start-up: the TCP socket is bound but not listening until hypercorn calls ``listen()``, so
:meth:`H3Peer.start` polls until a TCP connect succeeds; hypercorn opens its QUIC endpoint in
the same start-up step, and datagrams sent before that wait in the (already bound) UDP
socket's buffer. Stopping: SIGTERM (a graceful shutdown of ``graceful_timeout`` seconds),
then SIGKILL of the child's process group; the parent's copies of the sockets are closed as
soon as the child has them.

``quic=False`` serves TCP only; ``alt_svc`` replaces the automatic header (e.g. to advertise
a UDP port where nothing answers, for fallback tests); ``hostnames`` are the certificate's
names (another name makes a wrong-host peer).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

import trustme

__all__ = ["H3Peer"]


def _bind_pair() -> tuple[socket.socket, socket.socket]:
    """A TCP and a UDP socket bound on 127.0.0.1 with the same port number."""
    for _attempt in range(50):
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            tcp.bind(("127.0.0.1", 0))
            port = tcp.getsockname()[1]
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                udp.bind(("127.0.0.1", port))
            except OSError:
                udp.close()
                raise
        except OSError:
            tcp.close()
            continue
        return tcp, udp
    raise RuntimeError("found no port number free for both TCP and UDP on 127.0.0.1")


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


class H3Peer:
    """hypercorn serving :mod:`servers.h3_app` over TLS (h2, http/1.1) and QUIC (h3) on one port.

    Attributes (once started): ``port``, ``url`` (``https://127.0.0.1:PORT``), ``ca``,
    ``ca_path`` (a PEM file of the CA) and ``verify`` (``ca_path``, usable as ``verify=``).
    """

    def __init__(
        self,
        ca: trustme.CA,
        *,
        hostnames: Sequence[str] = ("127.0.0.1", "localhost"),
        quic: bool = True,
        alt_svc: Sequence[str] | None = None,
        graceful_timeout: float = 1.0,
    ) -> None:
        self.ca = ca
        self.hostnames = tuple(hostnames)
        self.quic = quic
        self.alt_svc = list(alt_svc) if alt_svc is not None else None
        self.graceful_timeout = graceful_timeout
        self.dir: Path | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0

    @property
    def url(self) -> str:
        """``https://127.0.0.1:PORT`` (the same port over TCP and UDP)."""
        if not self.port:
            raise RuntimeError("the HTTP/3 peer is not started")
        return f"https://127.0.0.1:{self.port}"

    @property
    def ca_path(self) -> str:
        """A PEM file holding the CA certificate that signed the server certificate."""
        if self.dir is None:
            raise RuntimeError("the HTTP/3 peer is not started")
        return str(self.dir / "ca.pem")

    @property
    def verify(self) -> str:
        """What to pass as ``verify=`` to trust this server (the CA's PEM file)."""
        return self.ca_path

    def log(self) -> str:
        """Everything the child wrote (hypercorn's error log and tracebacks)."""
        if self.dir is None or not (self.dir / "server.log").exists():
            return ""
        return (self.dir / "server.log").read_text(errors="replace")

    def start(self, timeout: float = 30.0) -> None:
        """Start the child and wait until it accepts TCP connections."""
        if self.process is not None:
            raise RuntimeError("the HTTP/3 peer is already started")
        self.dir = directory = Path(tempfile.mkdtemp(prefix="trioclient-h3peer-"))
        cert = self.ca.issue_cert(*self.hostnames)
        (directory / "cert.pem").write_bytes(b"".join(b.bytes() for b in cert.cert_chain_pems))
        cert.private_key_pem.write_to_path(str(directory / "key.pem"))
        self.ca.cert_pem.write_to_path(str(directory / "ca.pem"))

        tcp, udp = _bind_pair()
        with tcp, udp:
            argv = [
                sys.executable,
                str(Path(__file__).resolve()),
                f"--tcp-fd={tcp.fileno()}",
                f"--certfile={directory / 'cert.pem'}",
                f"--keyfile={directory / 'key.pem'}",
                f"--graceful-timeout={self.graceful_timeout}",
            ]
            if self.quic:
                argv.append(f"--udp-fd={udp.fileno()}")
            for value in self.alt_svc or []:
                argv.append(f"--alt-svc={value}")
            port = tcp.getsockname()[1]
            with open(directory / "server.log", "ab") as log:
                self.process = subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    pass_fds=(tcp.fileno(), udp.fileno()) if self.quic else (tcp.fileno(),),
                    start_new_session=True,
                )
        # The child holds its own copies of both sockets now; ours are closed.
        deadline = time.monotonic() + timeout
        while not _accepts(port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                output = self.log()
                self.stop()
                raise RuntimeError(f"the HTTP/3 peer did not start within {timeout} s:\n{output}")
            time.sleep(0.02)
        self.port = port

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (graceful), then SIGKILL the child's process group; safe to call twice."""
        process, self.process = self.process, None
        if process is not None:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout)
                except subprocess.TimeoutExpired:
                    pass
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None
        self.port = 0

    def __enter__(self) -> H3Peer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


# --- the child process -------------------------------------------------------------------------


def _main(argv: Sequence[str] | None = None) -> None:
    import asyncio
    import logging

    # Run as a script: this file's directory (tests/servers) is sys.path[0].
    from h3_app import app  # type: ignore[import-not-found]
    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    parser = argparse.ArgumentParser(description="hypercorn with HTTP/3 for trioclient's tests")
    parser.add_argument("--tcp-fd", type=int, required=True)
    parser.add_argument("--udp-fd", type=int)
    parser.add_argument("--certfile", required=True)
    parser.add_argument("--keyfile", required=True)
    parser.add_argument("--alt-svc", action="append", default=[])
    parser.add_argument("--graceful-timeout", type=float, default=1.0)
    args = parser.parse_args(argv)

    config = Config()
    config.bind = [f"fd://{args.tcp_fd}"]  # TLS, because certfile/keyfile are set
    config.quic_bind = [f"fd://{args.udp_fd}"] if args.udp_fd is not None else []
    config.certfile = args.certfile
    config.keyfile = args.keyfile
    config.alpn_protocols = ["h2", "http/1.1"]
    config.alt_svc_headers = args.alt_svc
    config.graceful_timeout = args.graceful_timeout
    config.ssl_handshake_timeout = 10.0
    config.accesslog = None
    logging.basicConfig(level=logging.WARNING)
    config.errorlog = logging.getLogger("h3_peer")
    config.include_server_header = True

    async def run() -> None:
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await serve(app, config, shutdown_trigger=stop.wait, mode="asgi")

    asyncio.run(run())


if __name__ == "__main__":
    _main()
