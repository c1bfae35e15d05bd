"""The four clients under test, each used the way its documentation shows.

Every adaptor makes its client with ``async with`` (``trioclient.Client``,
``httpx.AsyncClient``, ``aiohttp.ClientSession``), a verifying TLS context that trusts the
scenario's CA, a pool of ``pool`` connections (1 unless a scenario needs more in flight: a
slot the pool lost then shows as a next request that cannot start), and no timeouts unless
the scenario is about one (so that a request that is never woken shows as a hang, not as a
default timeout firing much later).

Each adaptor also says which exceptions are its own (``owns``), which are its read timeout
and its network errors, and reads its pool's statistics where the library has them.
"""

from __future__ import annotations

import io
import ssl
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from .runtimes import AsyncioRuntime, Runtime, TrioRuntime

# What a scenario asks of an adaptor; `client` is whatever the library's client object is.
OnChunk = Callable[[bytes], None]


class Adaptor:
    """One client library on one event loop."""

    name: str
    library: str  # the distribution whose version the report shows
    packages: tuple[str, ...]  # module prefixes of the library's own exceptions
    runtime: Runtime

    def client(
        self, ctx: ssl.SSLContext, *, pool: int, read_timeout: float | None
    ) -> AbstractAsyncContextManager[Any]:
        raise NotImplementedError

    async def get(self, client: Any, url: str) -> int:
        """GET, whole body read; the status."""
        raise NotImplementedError

    async def post(self, client: Any, url: str, body: bytes) -> int:
        """POST a bytes body, whole response read; the status."""
        raise NotImplementedError

    async def stream(self, client: Any, url: str, on_chunk: OnChunk) -> int:
        """A streamed GET, each chunk handed to `on_chunk`; the byte count."""
        raise NotImplementedError

    async def open_stream(self, client: Any, url: str) -> Any:
        """A streamed response, head read, body untouched, *not* closed: the caller drops it."""
        raise NotImplementedError

    async def close(self, client: Any) -> None:
        """The documented way to close the client explicitly."""
        raise NotImplementedError

    def pool(self, client: Any) -> dict[str, Any] | None:
        """The pool's own statistics, or None when the library has none."""
        return None

    def classify(self, exc: BaseException) -> dict[str, bool]:
        """Which of the library's exception families `exc` belongs to."""
        return {
            "own": type(exc).__module__.split(".")[0] in self.packages,
            "read_timeout": self._is_read_timeout(exc),
            "network": self._is_network_error(exc),
        }

    def _is_read_timeout(self, exc: BaseException) -> bool:
        raise NotImplementedError

    def _is_network_error(self, exc: BaseException) -> bool:
        raise NotImplementedError


class TrioclientAdaptor(Adaptor):
    """``trioclient.Client`` on Trio."""

    name = "trioclient"
    library = "trioclient"
    packages = ("trioclient",)
    runtime = TrioRuntime()

    def client(
        self, ctx: ssl.SSLContext, *, pool: int, read_timeout: float | None
    ) -> AbstractAsyncContextManager[Any]:
        import trioclient

        return trioclient.Client(
            verify=ctx,
            timeout=trioclient.Timeout(None, read=read_timeout),
            limits=trioclient.Limits(max_connections=pool, max_keepalive_connections=pool),
        )

    async def get(self, client: Any, url: str) -> int:
        return int((await client.get(url)).status_code)

    async def post(self, client: Any, url: str, body: bytes) -> int:
        return int((await client.post(url, content=body)).status_code)

    async def stream(self, client: Any, url: str, on_chunk: OnChunk) -> int:
        total = 0
        async with client.stream("GET", url) as response:
            async for chunk in response.aiter_bytes():
                total += len(chunk)
                on_chunk(chunk)
        return total

    async def open_stream(self, client: Any, url: str) -> Any:
        return await client.send(client.build_request("GET", url), stream=True)

    async def close(self, client: Any) -> None:
        await client.aclose()

    def pool(self, client: Any) -> dict[str, Any] | None:
        # Public: Client.pool_statistics().
        s = client.pool_statistics()
        stats = {
            "connections": s.connections,
            "in_use": s.in_use,
            "idle": s.idle,
            "connecting": s.connecting,
            "waiting": s.waiting,
            "requests_active": s.requests_active,
        }
        busy = s.in_use or s.connecting or s.waiting or s.requests_active
        return {
            "source": "Client.pool_statistics() (public)",
            "stats": stats,
            "in_flight": busy,
            "live_connections": s.connections,
            "books_add_up": s.in_use + s.idle + s.connecting == s.connections,
        }

    def _is_read_timeout(self, exc: BaseException) -> bool:
        import trioclient

        return isinstance(exc, trioclient.ReadTimeout)

    def _is_network_error(self, exc: BaseException) -> bool:
        import trioclient

        return isinstance(exc, trioclient.TransportError)


class HttpxAdaptor(Adaptor):
    """``httpx.AsyncClient``, on Trio (through anyio) or on asyncio."""

    library = "httpx"
    packages = ("httpx", "httpcore")

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.name = f"httpx-{runtime.name}"

    def client(
        self, ctx: ssl.SSLContext, *, pool: int, read_timeout: float | None
    ) -> AbstractAsyncContextManager[Any]:
        import httpx

        return httpx.AsyncClient(
            verify=ctx,
            timeout=httpx.Timeout(None, read=read_timeout),
            limits=httpx.Limits(max_connections=pool, max_keepalive_connections=pool),
        )

    async def get(self, client: Any, url: str) -> int:
        return int((await client.get(url)).status_code)

    async def post(self, client: Any, url: str, body: bytes) -> int:
        return int((await client.post(url, content=body)).status_code)

    async def stream(self, client: Any, url: str, on_chunk: OnChunk) -> int:
        total = 0
        async with client.stream("GET", url) as response:
            async for chunk in response.aiter_bytes():
                total += len(chunk)
                on_chunk(chunk)
        return total

    async def open_stream(self, client: Any, url: str) -> Any:
        return await client.send(client.build_request("GET", url), stream=True)

    async def close(self, client: Any) -> None:
        await client.aclose()

    def pool(self, client: Any) -> dict[str, Any] | None:
        # httpx has no pool statistics of its own. httpcore's pool has a public
        # `connections` list (each with is_idle()/is_closed()/info()); the pool is reached
        # through httpx's private `_transport._pool`, and the requests it counts as in
        # flight only through its private `_requests` (what its repr prints).
        pool = client._transport._pool
        connections = list(pool.connections)
        live = [c for c in connections if not c.is_closed()]
        busy = [c for c in live if not c.is_idle()]
        requests = len(pool._requests)
        return {
            "source": "httpcore AsyncConnectionPool.connections (public) and ._requests "
            "(private), via httpx's private _transport._pool",
            "stats": {
                "connections": [c.info() for c in connections],
                "requests": requests,
            },
            "in_flight": len(busy) + requests,
            "live_connections": len(live),
            "books_add_up": True,  # httpcore keeps no separate counts to disagree
        }

    def _is_read_timeout(self, exc: BaseException) -> bool:
        import httpx

        return isinstance(exc, httpx.ReadTimeout)

    def _is_network_error(self, exc: BaseException) -> bool:
        import httpx

        return isinstance(exc, httpx.TransportError)


class AiohttpAdaptor(Adaptor):
    """``aiohttp.ClientSession`` over a ``TCPConnector``, on asyncio."""

    name = "aiohttp"
    library = "aiohttp"
    packages = ("aiohttp",)
    runtime = AsyncioRuntime()

    def client(
        self, ctx: ssl.SSLContext, *, pool: int, read_timeout: float | None
    ) -> AbstractAsyncContextManager[Any]:
        import aiohttp

        return aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=pool, ssl=ctx),
            timeout=aiohttp.ClientTimeout(total=None, sock_read=read_timeout),
        )

    async def get(self, client: Any, url: str) -> int:
        async with client.get(url) as response:
            await response.read()
            return int(response.status)

    async def post(self, client: Any, url: str, body: bytes) -> int:
        # A file object, not bytes: aiohttp warns that a large bytes body "might lock the
        # event loop" and advises io.BytesIO, which it then sends in chunks.
        async with client.post(url, data=io.BytesIO(body)) as response:
            await response.read()
            return int(response.status)

    async def stream(self, client: Any, url: str, on_chunk: OnChunk) -> int:
        total = 0
        async with client.get(url) as response:
            async for chunk in response.content.iter_any():
                total += len(chunk)
                on_chunk(chunk)
        return total

    async def open_stream(self, client: Any, url: str) -> Any:
        return await client.get(url)  # not entered: the documented way to hold a response

    async def close(self, client: Any) -> None:
        await client.close()

    def pool(self, client: Any) -> dict[str, Any] | None:
        # aiohttp publishes no pool statistics. For the reader only (the verdict says n/a):
        # the connector's private `_acquired` (connections handed out) and `_conns` (idle).
        connector = client.connector
        private: dict[str, int | None]
        if connector is None:
            private = {"connector": None}
        else:
            idle = sum(len(v) for v in getattr(connector, "_conns", {}).values())
            private = {"acquired": len(getattr(connector, "_acquired", ())), "idle": idle}
        return {"source": None, "private": private}

    def _is_read_timeout(self, exc: BaseException) -> bool:
        import aiohttp

        # ClientTimeout(sock_read=...) raises SocketTimeoutError (a ServerTimeoutError).
        return isinstance(exc, aiohttp.ServerTimeoutError)

    def _is_network_error(self, exc: BaseException) -> bool:
        import aiohttp

        return isinstance(exc, aiohttp.ClientError)


def adaptors() -> dict[str, Callable[[], Adaptor]]:
    """Every client under test, by its name in the report (made lazily: imports happen in
    the scenario's process only)."""
    return {
        "trioclient": TrioclientAdaptor,
        "httpx-trio": lambda: HttpxAdaptor(TrioRuntime()),
        "httpx-asyncio": lambda: HttpxAdaptor(AsyncioRuntime()),
        "aiohttp": AiohttpAdaptor,
    }
