"""The workloads (W1-W7), the files they fetch, and the clients that run them.

Every workload is one of two shapes, which every client script implements:

- ``requests``: ``concurrency`` tasks share a counter of ``n`` GETs; each task takes the next
  request until none is left, reads the whole body and checks its length. ``concurrency=1``
  is a sequential loop on one keep-alive connection; ``concurrency == n`` is a queue of ``n``
  requests all started at once (W6).
- ``stream``: ``n`` sequential streamed downloads; each body is read chunk by chunk and thrown
  away, so the client never holds the whole body.

``connections`` is the pool limit the client is given (``max_connections`` and, so idle
connections are not closed and reopened, ``max_keepalive_connections``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

KIB = 1024
MIB = 1024 * 1024

#: Files served, by name: size in bytes. They are generated into benchmarks/data/ on demand.
FILES: dict[str, int] = {
    "1k.bin": KIB,
    "100k.bin": 100 * KIB,
    "1m.bin": MIB,  # W3 in --quick mode
    "100m.bin": 100 * MIB,
}


@dataclass(frozen=True)
class Workload:
    """One workload: what to fetch, how often, how concurrently, over what."""

    name: str
    title: str
    shape: str  # "requests" or "stream"
    file: str
    n: int
    concurrency: int = 1
    connections: int = 1
    tls: bool = False
    http2: bool = False

    @property
    def size(self) -> int:
        """Size in bytes of one response body."""
        return FILES[self.file]

    @property
    def unit(self) -> str:
        """What the headline number counts: requests/s, or MB/s for downloads."""
        return "MB/s" if self.shape == "stream" else "req/s"

    def as_dict(self) -> dict[str, Any]:
        """The workload as plain JSON data (for the results file)."""
        return {**asdict(self), "size": self.size}


#: The issue's workloads at full size. W2-10 is W2 through a pool of 10 connections: the
#: reference W6 is judged against (16,000 / W2-10 throughput).
FULL: dict[str, Workload] = {
    w.name: w
    for w in (
        Workload(
            "W1", "sequential keep-alive GET 1 KiB, one connection", "requests", "1k.bin", n=5_000
        ),
        Workload(
            "W2",
            "10,000 GETs of 1 KiB from 100 tasks, pool of 100",
            "requests",
            "1k.bin",
            n=10_000,
            concurrency=100,
            connections=100,
        ),
        Workload(
            "W2-10",
            "W2 through a pool of 10 connections (reference for W6)",
            "requests",
            "1k.bin",
            n=10_000,
            concurrency=100,
            connections=10,
        ),
        Workload("W3", "streamed 100 MiB download (10 in a row)", "stream", "100m.bin", n=10),
        Workload(
            "W3-h2",
            "streamed 100 MiB download over HTTP/2 + TLS (3 in a row): memory stays bounded",
            "stream",
            "100m.bin",
            n=3,
            tls=True,
            http2=True,
        ),
        Workload(
            "W4",
            "5,000 GETs of 1 KiB from 100 tasks over ONE HTTP/2 TLS connection",
            "requests",
            "1k.bin",
            n=5_000,
            concurrency=100,
            connections=1,
            tls=True,
            http2=True,
        ),
        Workload(
            "W5",
            "sequential HTTPS HTTP/1.1 GET 1 KiB, one connection",
            "requests",
            "1k.bin",
            n=5_000,
            tls=True,
        ),
        Workload(
            "W6",
            "16,000 concurrent GETs of 1 KiB queued on a pool of 10",
            "requests",
            "1k.bin",
            n=16_000,
            concurrency=16_000,
            connections=10,
        ),
        Workload(
            "W7",
            "2,000 GETs of 100 KiB at 64 concurrency, pool of 64",
            "requests",
            "100k.bin",
            n=2_000,
            concurrency=64,
            connections=64,
        ),
    )
}

#: --quick: every workload at a tiny size, so the smoke test exercises every code path.
QUICK: dict[str, Workload] = {
    "W1": replace(FULL["W1"], n=20),
    "W2": replace(FULL["W2"], n=100, concurrency=10, connections=10),
    "W2-10": replace(FULL["W2-10"], n=100, concurrency=10, connections=2),
    "W3": replace(FULL["W3"], file="1m.bin", n=1),
    "W3-h2": replace(FULL["W3-h2"], file="1m.bin", n=1),
    "W4": replace(FULL["W4"], n=50, concurrency=10),
    "W5": replace(FULL["W5"], n=20),
    "W6": replace(FULL["W6"], n=200, concurrency=200, connections=2),
    "W7": replace(FULL["W7"], n=40, concurrency=8, connections=8),
}


@dataclass(frozen=True)
class ClientInfo:
    """A client script: its module under benchmarks.clients and what it needs to import."""

    name: str
    module: str
    requires: tuple[str, ...]
    floor: bool = False
    env: tuple[tuple[str, str], ...] = ()  # set in the client's process


#: trioclient's pure path: h11 reads responses even where `[speedups]` (httptools) is in.
PURE = (("TRIOCLIENT_NO_SPEEDUPS", "1"),)


CLIENTS: dict[str, ClientInfo] = {
    c.name: c
    for c in (
        ClientInfo("trioclient", "trioclient_client", ("trio", "trioclient")),
        ClientInfo("trioclient-pure", "trioclient_client", ("trio", "trioclient"), env=PURE),
        ClientInfo("httpx-trio", "httpx_trio", ("trio", "httpx", "h2")),
        ClientInfo("httpx-asyncio", "httpx_asyncio", ("httpx", "h2")),
        ClientInfo("aiohttp", "aiohttp_client", ("aiohttp",)),
        ClientInfo("floor-h11", "floor_h11", ("trio", "h11"), floor=True),
        ClientInfo("floor-h2", "floor_h2", ("trio", "h2"), floor=True),
    )
}

#: The baseline every client is compared with, besides its floor.
BASELINE = "httpx-trio"


def floor_for(workload: Workload) -> str:
    """The bare floor that a workload is compared with: h2 for HTTP/2, h11 otherwise."""
    return "floor-h2" if workload.http2 else "floor-h11"
