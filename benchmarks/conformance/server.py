"""The servers one scenario runs against, and the socket count that judges the client.

Plain threads and blocking sockets on 127.0.0.1, so that one server works for every client
whatever its event loop. They run in the scenario's own process (``child.py``) so that the
server can tell the client the moment something happened (a ``threading.Event`` per flag);
the leak count only counts the *client's* ends of connections to these servers (see
:func:`client_sockets`), so the server's own sockets never blur it.

Listeners:

* ``plain``: HTTP/1.1; the path picks the behaviour (``/ok``, ``/stall-head``, ``/drip``,
  ``/reset``, ``/upload``), ``?flag=NAME`` names the event it sets at its point of interest;
* ``tls``: the same behind TLS (a trustme certificate for 127.0.0.1);
* ``tls_stall``: accepts, reads the ClientHello, never answers;
* ``blackhole``: a listener whose accept queue is full and never accepted, so a new
  connection stays in SYN_SENT (Linux drops the SYN): connect hangs until cancelled.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import ssl
import struct
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import trustme

DRIP_LENGTH = 1024 * 1024  # the Content-Length /drip and /reset announce
DRIP_SENT = 16 * 1024  # what they send of it before stalling (or resetting)
UPLOAD_SEEN = 64 * 1024  # /upload sets its flag after this much body, then stops reading
POLL = 0.05  # how often a stalled handler looks at the shutdown flag


class Flags:
    """Named one-shot events shared by the server threads and the scenario."""

    def __init__(self) -> None:
        self._events: defaultdict[str, threading.Event] = defaultdict(threading.Event)
        self._lock = threading.Lock()

    def __getitem__(self, name: str) -> threading.Event:
        with self._lock:
            return self._events[name]


@dataclass
class Servers:
    """The running listeners of one scenario (see the module docstring)."""

    ca: trustme.CA
    flags: Flags = field(default_factory=Flags)
    shutdown: threading.Event = field(default_factory=threading.Event)
    ports: dict[str, int] = field(default_factory=dict)
    own_inodes: set[str] = field(default_factory=set)  # the blackhole's filler sockets
    _sockets: list[socket.socket] = field(default_factory=list)

    def url(self, listener: str, path: str = "/ok") -> str:
        scheme = "https" if listener in ("tls", "tls_stall") else "http"
        return f"{scheme}://127.0.0.1:{self.ports[listener]}{path}"

    def client_context(self) -> ssl.SSLContext:
        """A verifying client context that trusts the scenario's CA (HTTP/1.1 only)."""
        ctx = ssl.create_default_context()
        self.ca.configure_trust(ctx)
        ctx.set_alpn_protocols(["http/1.1"])
        return ctx

    def close(self) -> None:
        self.shutdown.set()
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.close()


@contextlib.contextmanager
def running_servers() -> Iterator[Servers]:
    """Start every listener; stop them (and their handler threads' sockets) on exit."""
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    server_ctx.set_alpn_protocols(["http/1.1"])
    servers = Servers(ca)
    try:
        servers.ports["plain"] = _listen(servers, lambda conn: _serve_http(servers, conn))
        servers.ports["tls"] = _listen(
            servers, lambda conn: _serve_http(servers, conn, tls=server_ctx)
        )
        servers.ports["tls_stall"] = _listen(servers, lambda conn: _stall_tls(servers, conn))
        servers.ports["blackhole"] = _blackhole(servers)
        yield servers
    finally:
        servers.close()


def _listen(servers: Servers, handler: Callable[[socket.socket], None]) -> int:
    listener = socket.create_server(("127.0.0.1", 0))
    servers._sockets.append(listener)

    def accept_loop() -> None:
        while not servers.shutdown.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            servers._sockets.append(conn)
            threading.Thread(target=handler, args=(conn,), daemon=True).start()

    threading.Thread(target=accept_loop, daemon=True).start()
    return int(listener.getsockname()[1])


def _blackhole(servers: Servers) -> int:
    """A listener with backlog 0, filled until a connect no longer completes."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    servers._sockets.append(listener)
    port = int(listener.getsockname()[1])
    for _ in range(16):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
        servers._sockets.append(filler)
        servers.own_inodes.add(str(os.fstat(filler.fileno()).st_ino))
        _, writable, _ = select.select([], [filler], [], 0.2)
        if not writable:
            return port  # the queue is full: this one is stuck in SYN_SENT, and so is the next
    raise RuntimeError("could not fill the blackhole listener's accept queue")


# --- the HTTP handlers ---------------------------------------------------------------------


def _read_head(conn: socket.socket, buffer: bytearray) -> bytes | None:
    """The next request head (up to and without the blank line), or None at EOF."""
    while b"\r\n\r\n" not in buffer:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        buffer += chunk
    head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
    buffer[:] = rest
    return head


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


def _wait_for_eof(servers: Servers, conn: socket.socket) -> None:
    """Hold the connection, reading nothing but the client's close (or the shutdown)."""
    conn.settimeout(POLL)
    while not servers.shutdown.is_set():
        try:
            if not conn.recv(65536):
                return
        except TimeoutError:
            continue
        except OSError:
            return


def _serve_http(servers: Servers, conn: socket.socket, tls: ssl.SSLContext | None = None) -> None:
    try:
        if tls is not None:
            conn.settimeout(10)
            conn = tls.wrap_socket(conn, server_side=True)
            servers._sockets.append(conn)
            conn.settimeout(None)
        buffer = bytearray()
        while not servers.shutdown.is_set():
            head = _read_head(conn, buffer)
            if head is None:
                return
            target = head.split(b" ", 2)[1].decode("ascii")
            path, _, query = target.partition("?")
            flag = servers.flags[query.removeprefix("flag=")] if query else threading.Event()
            if not _respond(servers, conn, path, head, buffer, flag):
                return
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            conn.close()


def _respond(
    servers: Servers,
    conn: socket.socket,
    path: str,
    head: bytes,
    buffer: bytearray,
    flag: threading.Event,
) -> bool:
    """Answer one request; False when the connection is done with."""
    if path == "/ok":
        length = _content_length(head)
        while len(buffer) < length:
            chunk = conn.recv(65536)
            if not chunk:
                return False
            buffer += chunk
        del buffer[:length]
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok")
        return True
    if path == "/stall-head":  # the head was read: never answer
        flag.set()
        _wait_for_eof(servers, conn)
        return False
    if path in ("/drip", "/reset"):
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
            b"Content-Length: %d\r\n\r\n" % DRIP_LENGTH + bytes(DRIP_SENT)
        )
        if path == "/drip":
            flag.set()
            _wait_for_eof(servers, conn)
            return False
        # /reset: once the client says it has a chunk (the flag is set by the scenario), an
        # RST: SO_LINGER with a zero timeout makes close() abort the connection.
        while not flag.wait(POLL):
            if servers.shutdown.is_set():
                return False
        time.sleep(0.05)  # let the client go back to waiting for the next chunk
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        return False
    if path == "/upload":  # read some of the body, then stop reading until released
        seen = len(buffer)
        while seen < UPLOAD_SEEN:
            chunk = conn.recv(65536)
            if not chunk:
                return False
            seen += len(chunk)
        flag.set()
        release = servers.flags["release"]
        while not release.wait(POLL):
            if servers.shutdown.is_set():
                return False
        return False
    conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
    return True


def _stall_tls(servers: Servers, conn: socket.socket) -> None:
    """Read the ClientHello, set the ``tls`` flag, and never answer it."""
    try:
        conn.settimeout(10)
        if conn.recv(65536):
            servers.flags["tls"].set()
        _wait_for_eof(servers, conn)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            conn.close()


# --- counting the client's sockets ---------------------------------------------------------


def _tcp_table() -> dict[str, tuple[int, int, str]]:
    """inode -> (local port, remote port, state) of every IPv4 and IPv6 TCP socket."""
    table: dict[str, tuple[int, int, str]] = {}
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name, encoding="ascii") as f:
                next(f)
                for line in f:
                    fields = line.split()
                    local, remote, state, inode = fields[1], fields[2], fields[3], fields[9]
                    table[inode] = (int(local[-4:], 16), int(remote[-4:], 16), _STATES[state])
        except OSError:
            continue
    return table


_STATES = {
    "01": "ESTABLISHED",
    "02": "SYN_SENT",
    "03": "SYN_RECV",
    "04": "FIN_WAIT1",
    "05": "FIN_WAIT2",
    "06": "TIME_WAIT",
    "07": "CLOSE",
    "08": "CLOSE_WAIT",
    "09": "LAST_ACK",
    "0A": "LISTEN",
    "0B": "CLOSING",
}


def _socket_inodes() -> dict[str, int]:
    """inode -> fd of every socket this process holds open."""
    inodes: dict[str, int] = {}
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue  # closed between listdir and readlink
        if target.startswith("socket:["):
            inodes[target[8:-1]] = int(fd)
    return inodes


def client_sockets(servers: Servers) -> list[dict[str, object]]:
    """The client's ends of connections to the servers: open fds of this process whose
    remote port is one of the servers' ports (the blackhole's fillers excepted)."""
    ports = set(servers.ports.values())
    table = _tcp_table()
    found = []
    for inode, fd in sorted(_socket_inodes().items(), key=lambda item: item[1]):
        if inode in servers.own_inodes or inode not in table:
            continue
        local, remote, state = table[inode]
        if remote in ports:
            listener = next(name for name, port in servers.ports.items() if port == remote)
            found.append({"fd": fd, "to": listener, "local_port": local, "state": state})
    return found


def fd_count() -> int:
    """How many file descriptors this process holds (informational)."""
    return len(os.listdir("/proc/self/fd"))


def connecting_to(servers: Servers, listener: str) -> bool:
    """True once a client socket of this process is in SYN_SENT towards `listener`."""
    return any(s["state"] == "SYN_SENT" and s["to"] == listener for s in client_sockets(servers))
