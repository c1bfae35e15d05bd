"""A real Redis for tests: Debian's `redis-server` on an ephemeral loopback port.

Started through `PeerServer` (see `peers.py`), so a missing binary skips locally and fails
in CI. Nothing touches the disk beyond the server's private temporary directory: no RDB
snapshots (``save ""``), no append-only file, and the log goes to the peer's log file. With
``cluster=True`` the server runs in cluster mode and, once started, takes every one of the
16,384 hash slots itself: a one-node Redis Cluster, enough to run the frontier's scripts
through `coredis.RedisCluster` and its slot routing.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

from .peers import PeerServer

__all__ = ["REDIS_APT_PACKAGES", "RedisServer"]

REDIS_APT_PACKAGES = "redis-server"


class RedisServer(PeerServer):
    """redis-server on 127.0.0.1: `url` (``redis://127.0.0.1:PORT/0``), `port`."""

    binary = "redis-server"

    def __init__(self, *, cluster: bool = False) -> None:
        super().__init__()
        self.cluster = cluster

    def _port_count(self) -> int:
        return 1

    def _prepare(self, directory: Path) -> None:
        pass  # no certificate: the tests talk plain RESP on loopback

    @property
    def port(self) -> int:
        return self.ports[0]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _launch(self, executable: str, directory: Path, ports: list[int]) -> list[str]:
        argv = [
            executable,
            "--port", str(ports[0]),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(directory),
            "--logfile", "",
            "--databases", "1",
        ]  # fmt: skip
        if self.cluster:
            argv += ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"]
        return argv

    def start(self, timeout: float = 10.0) -> None:
        """Start the server; in cluster mode also assign it every slot and wait until the
        cluster says it is ok."""
        super().start(timeout)
        if not self.cluster:
            return
        assert self.command("CLUSTER", "ADDSLOTSRANGE", "0", "16383") == b"+OK"
        deadline = time.monotonic() + timeout
        while b"cluster_state:ok" not in self.command("CLUSTER", "INFO"):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the one-node cluster did not become ready:\n{self.log()}")
            time.sleep(0.02)

    def command(self, *words: str) -> bytes:
        """Send one command and return its reply: a status or error line (``+OK``), an
        integer (``:1``) or a bulk string's bytes. For set-up and for tests that look at the
        server directly; not a Redis client (no arrays)."""
        request = b"*%d\r\n" % len(words)
        for word in words:
            data = word.encode()
            request += b"$%d\r\n%s\r\n" % (len(data), data)
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as sock:
            sock.sendall(request)
            with sock.makefile("rb") as reader:
                line = reader.readline().rstrip(b"\r\n")
                if not line.startswith(b"$") or line == b"$-1":
                    return line
                return reader.read(int(line[1:]))
