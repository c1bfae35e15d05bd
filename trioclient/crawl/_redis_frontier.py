"""A `Frontier` in Redis, so several crawler processes (on one machine or many) share a crawl.

Theory of operation
-------------------
Redis is the engine: every frontier operation is one Lua script, and Redis runs a script
atomically (no other command runs in between), so two processes taking at the same moment
can never lease the same URL, and a `done` can never race the `take` that hands the same
URL to another worker after its lease ran out. The client is `coredis`, which runs on Trio
through anyio.

One crawl is six keys, all named ``<prefix>{<crawl>}:<role>``:

* ``seen``: a set of every URL ever added (the de-duplication; ``add`` is SADD, then RPUSH
  of the item only when SADD says it is new);
* ``queue``: a list of queued items, oldest at the head (``take`` pops from the head; a
  released or expired item goes back at the head, so it is retried soon);
* ``held``: a hash, lease token -> item, of the items leased right now;
* ``expiry``: a sorted set, lease token -> expiry time in microseconds;
* ``done``: a counter of items fetched; ``tokens``: the counter lease tokens come from.

Items are stored as JSON ``[url, depth, referrer]``. A lease is valid while its token is in
``held`` with an item of that URL and its expiry is in the future.

Time comes from Redis's own clock (``TIME``, read inside each script), never from the
client, so processes on machines whose clocks disagree still agree on when a lease ran out.
Every `take` (and `counts`, and a `renew` or `done` that finds its lease expired) first puts
every expired lease's item back at the head of the queue, oldest expiry first.

Redis Cluster is the path past one Redis. The braces in the key names are a hash tag: Redis
Cluster hashes only the part inside them, the crawl name, so all of a crawl's keys live in
one slot, and a script may touch all of them. Different crawls spread over the cluster's
nodes; one crawl lives on one node (and its replicas).

Bounds and lifetime: ``seen`` grows with the crawl (one entry per distinct URL, as in
`MemoryFrontier`), in Redis's memory rather than the crawler's; ``queue`` and ``held`` hold
at most that many. The keys outlive the processes on purpose: a crawl whose every worker
died resumes where it was (the dead workers' leases expire and are requeued) when workers
start again with the same crawl name. `clear` deletes them.

If a call is cancelled while its script is in flight, the script may still run; a `take`
whose reply was lost leaves leases nobody holds, and they expire and are requeued like a
dead worker's. coredis retries a command once or twice after a dropped connection, so a
`done` whose first reply was lost can come back False (its retry finds the lease gone).

Rejected alternatives: a home-made lock plus plain commands (several round trips, and
every crash between them leaves a state to repair); a Redis stream with consumer groups
(its pending-entry list gives leases, but not de-duplication, and reclaiming is per
message); keyspace expiry of per-lease keys (expiry events are not delivered reliably, and
a lease must be requeued, not just forgotten).
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Sequence
from contextlib import AsyncExitStack
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import trio

from ._frontier import CrawlItem, FrontierCounts, Lease, check_lease_seconds, check_take_arguments

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup

if TYPE_CHECKING:
    import coredis
    from coredis.commands.script import Script

    _Client = coredis.Redis[bytes] | coredis.RedisCluster[bytes]

__all__ = ["RedisFrontier", "RedisFrontierError"]

DEFAULT_PREFIX = "trioclient:crawl:"
_ADD_BATCH = 500  # items per add script: one script blocks Redis while it runs
_ROLES = ("queue", "held", "expiry", "seen", "done", "tokens")

# Shared by every script: the keys, Redis's clock in microseconds, and the requeue of
# expired leases. Numbers given to redis.call are formatted with %.0f: Lua 5.1 turns a
# number into a string with 14 significant digits, fewer than a time in microseconds has.
_PRELUDE = """
local queue, held, expiry, seen, done, tokens = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local function now_us()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local function requeue_expired(now)
  local expired = redis.call('ZRANGEBYSCORE', expiry, '-inf', string.format('%.0f', now))
  -- Pushed newest-expiry first, so the oldest ends at the very head.
  for i = #expired, 1, -1 do
    local item = redis.call('HGET', held, expired[i])
    if item then
      redis.call('LPUSH', queue, item)
      redis.call('HDEL', held, expired[i])
    end
    redis.call('ZREM', expiry, expired[i])
  end
end
-- Is token a lease of url? 1: valid; 0: unknown or stale token (or another URL's);
-- -1: expired (and now requeued).
local function holds(token, url)
  local item = redis.call('HGET', held, token)
  return item and cjson.decode(item)[1] == url and item
end
local function check(token, url, now)
  if not holds(token, url) then return 0 end
  if tonumber(redis.call('ZSCORE', expiry, token)) <= now then
    requeue_expired(now)
    return -1
  end
  return 1
end
"""

# ARGV: url1, item1, url2, item2, ...
_ADD = """
local new = 0
for i = 1, #ARGV, 2 do
  if redis.call('SADD', seen, ARGV[i]) == 1 then
    redis.call('RPUSH', queue, ARGV[i + 1])
    new = new + 1
  end
end
return new
"""

# ARGV: n, lease_us. Returns token1, item1, token2, item2, ...
_TAKE = """
local now = now_us()
requeue_expired(now)
local n = tonumber(ARGV[1])
if n == 0 then return {} end
local items = redis.call('LPOP', queue, n)
if not items then return {} end
local expires = string.format('%.0f', now + tonumber(ARGV[2]))
local out = {}
for _, item in ipairs(items) do
  local token = 'r' .. string.format('%.0f', redis.call('INCR', tokens))
  redis.call('HSET', held, token, item)
  redis.call('ZADD', expiry, expires, token)
  out[#out + 1] = token
  out[#out + 1] = item
end
return out
"""

# ARGV: token, url, lease_us
_RENEW = """
local now = now_us()
if check(ARGV[1], ARGV[2], now) ~= 1 then return 0 end
redis.call('ZADD', expiry, string.format('%.0f', now + tonumber(ARGV[3])), ARGV[1])
return 1
"""

# ARGV: token, url
_DONE = """
if check(ARGV[1], ARGV[2], now_us()) ~= 1 then return 0 end
redis.call('HDEL', held, ARGV[1])
redis.call('ZREM', expiry, ARGV[1])
redis.call('INCR', done)
return 1
"""

# ARGV: token, url. An expired lease not yet requeued is still this worker's to give back.
_RELEASE = """
local item = holds(ARGV[1], ARGV[2])
if not item then return 0 end
redis.call('HDEL', held, ARGV[1])
redis.call('ZREM', expiry, ARGV[1])
redis.call('LPUSH', queue, item)
return 1
"""

_COUNTS = """
requeue_expired(now_us())
return {redis.call('LLEN', queue), redis.call('HLEN', held),
        tonumber(redis.call('GET', done) or '0'), redis.call('SCARD', seen)}
"""


class RedisFrontierError(Exception):
    """Redis could not be reached, refused an operation, or holds data this frontier cannot
    read. The message names the server (never its password) and the operation; the
    coredis exception is the ``__cause__``."""


def _encode(item: CrawlItem) -> str:
    return json.dumps([item.url, item.depth, item.referrer], separators=(",", ":"))


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _where(url: str) -> str:
    """``redis://host:port/db`` without user name and password, for messages."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port is not None else ""
    except ValueError:
        return "redis (unparseable URL)"
    return f"{parts.scheme}://{host}{port}{parts.path}"


class RedisFrontier:
    """A `Frontier` kept in Redis and shared by every process that opens the same ``crawl``
    on the same server (needs ``pip install trioclient[redis]``)::

        async with RedisFrontier("redis://127.0.0.1:6379/0", crawl="docs-site") as frontier:
            await Crawler(client, seeds, frontier=frontier).run()

    ``crawl`` names the crawl (its keys are ``<key_prefix>{<crawl>}:...``). ``url`` is a
    coredis URL (``redis://``, ``rediss://`` for TLS, ``unix://``); with ``cluster=True``
    it names any node of a Redis Cluster. Or pass ``client=``, a coredis client you
    created and entered yourself (for options the URL cannot carry); the frontier then
    never enters or closes it. ``timeout`` bounds connecting and each command (seconds,
    None for no bound). Leases are timed on Redis's clock (see the module docstring).

    Use it as an async context manager: coredis keeps its connections in a task group that
    lives as long as the ``async with`` block. `aclose` (also what the block's end calls)
    stops further use and drops the connections.
    """

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        crawl: str,
        key_prefix: str = DEFAULT_PREFIX,
        cluster: bool = False,
        client: _Client | None = None,
        timeout: float | None = 30.0,
    ) -> None:
        try:
            import coredis
        except ImportError as exc:  # pragma: no cover - the test extra installs coredis
            raise ImportError("RedisFrontier needs `pip install trioclient[redis]`") from exc
        if not isinstance(crawl, str) or not crawl:
            # An empty hash tag ("{}") would let Redis Cluster hash each key on its own.
            raise ValueError(f"crawl must be a non-empty str, not {crawl!r}")
        if "{" in key_prefix or "}" in key_prefix:
            raise ValueError(f"key_prefix must not contain braces (a hash tag): {key_prefix!r}")
        if timeout is not None and not timeout > 0:
            raise ValueError(f"timeout must be > 0 or None, not {timeout!r}")
        self.crawl = crawl
        self.keys: tuple[str, ...] = tuple(f"{key_prefix}{{{crawl}}}:{role}" for role in _ROLES)
        self._owned = client is None
        if client is None:
            options: dict[str, Any] = {"connect_timeout": timeout, "stream_timeout": timeout}
            if cluster:
                # The node named by the URL, given as coredis wants it (its from_url would
                # pass a deprecated form and warn).
                parts = urlsplit(url)
                node = coredis.connection.TCPLocation(parts.hostname or "", parts.port or 6379)
                client = coredis.RedisCluster.from_url(url, startup_nodes=[node], **options)
            else:
                client = coredis.Redis.from_url(url, **options)
            self._where = _where(url)
        else:
            self._where = "redis (the given client)"
        self._client: _Client = client
        self._redis_error: type[Exception] = coredis.exceptions.RedisError
        self._scripts: dict[str, Script[bytes]] = {
            name: client.register_script(_PRELUDE + body)
            for name, body in (
                ("add", _ADD),
                ("take", _TAKE),
                ("renew", _RENEW),
                ("done", _DONE),
                ("release", _RELEASE),
                ("counts", _COUNTS),
            )
        }
        self._stack: AsyncExitStack | None = None
        self._entered = False
        self._closed = False

    @property
    def closed(self) -> bool:
        """True after `aclose` (or the end of the ``async with`` block)."""
        return self._closed

    def __repr__(self) -> str:
        return f"<RedisFrontier crawl={self.crawl!r} on {self._where}>"

    # --- lifecycle ------------------------------------------------------------------------

    async def __aenter__(self) -> RedisFrontier:
        if self._entered:
            raise RuntimeError("a RedisFrontier can be entered only once")
        self._entered = True
        stack = AsyncExitStack()
        if self._owned:
            await stack.enter_async_context(self._client)
        self._stack = stack
        try:
            await self._call("connect", self._client.ping())
        except BaseException as exc:
            await self.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        self._close_now()  # no checkpoint: this cleanup must run under cancellation too
        stack, self._stack = self._stack, None
        if stack is None:
            return False
        try:
            return bool(await stack.__aexit__(exc_type, exc, tb))
        except BaseExceptionGroup as group:
            # coredis's task group wraps whatever left the block; give back the block's own
            # exception as it was, not inside a group of one.
            if exc is None or group.exceptions != (exc,):
                raise
        raise exc  # outside the except clause, so the group is not its __context__

    async def aclose(self) -> None:
        """Stop further use (RuntimeError) and drop the connections; idempotent, and done
        even when cancelled. The keys stay in Redis (see `clear`)."""
        self._close_now()
        await trio.lowlevel.checkpoint()

    def _close_now(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._owned and self._entered:
            self._client.connection_pool.disconnect()

    # --- the Frontier operations ----------------------------------------------------------

    async def add(self, items: Sequence[CrawlItem]) -> int:
        """Queue the never-seen items; return how many were new. Each item's de-duplication
        is atomic; a long list goes in batches of 500."""
        await trio.lowlevel.checkpoint()
        self._check_open()
        args: list[str] = []
        for item in items:
            if not isinstance(item, CrawlItem):
                raise TypeError(f"Frontier.add takes CrawlItems, not {type(item).__name__}")
            args += (item.url, _encode(item))
        new = 0
        for start in range(0, len(args), 2 * _ADD_BATCH):
            new += int(await self._run("add", args[start : start + 2 * _ADD_BATCH]))
        return new

    async def take(self, n: int, *, lease_seconds: float) -> list[Lease]:
        """Lease up to ``n`` queued items, oldest first, after requeueing expired leases;
        ``[]`` if none is queued now."""
        await trio.lowlevel.checkpoint()
        check_take_arguments(n, lease_seconds)
        self._check_open()
        reply = await self._run("take", [str(n), str(_micros(lease_seconds))])
        return [Lease(self._decode(reply[i + 1]), _text(reply[i])) for i in range(0, len(reply), 2)]

    async def renew(self, lease: Lease, *, lease_seconds: float) -> bool:
        """Extend a valid lease to ``lease_seconds`` from now (Redis's clock); False if it
        was lost (an expired one is requeued)."""
        await trio.lowlevel.checkpoint()
        check_lease_seconds(lease_seconds)
        self._check_open()
        args = [lease.token, lease.item.url, str(_micros(lease_seconds))]
        return bool(await self._run("renew", args))

    async def done(self, lease: Lease) -> bool:
        """Mark the item fetched; False (and nothing changes) if the lease was not valid."""
        await trio.lowlevel.checkpoint()
        self._check_open()
        return bool(await self._run("done", [lease.token, lease.item.url]))

    async def release(self, lease: Lease) -> None:
        """Put a leased item back at the head of the queue; a stale lease does nothing."""
        await trio.lowlevel.checkpoint()
        self._check_open()
        await self._run("release", [lease.token, lease.item.url])

    async def counts(self) -> FrontierCounts:
        """Current sizes, after requeueing expired leases (so they count as queued)."""
        await trio.lowlevel.checkpoint()
        self._check_open()
        queued, leased, done, seen = (int(x) for x in await self._run("counts", []))
        return FrontierCounts(queued=queued, leased=leased, done=done, seen=seen)

    async def clear(self) -> None:
        """Delete every key of this crawl: a new crawl under the same name starts empty.
        Workers still running on it would see an empty frontier (their leases are gone)."""
        await trio.lowlevel.checkpoint()
        self._check_open()
        await self._call("clear", self._client.delete(list(self.keys)))

    # --- helpers --------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("this RedisFrontier was closed (aclose)")
        if not self._entered:
            raise RuntimeError("use a RedisFrontier inside `async with RedisFrontier(...)`")

    async def _run(self, name: str, args: list[str]) -> Any:
        return await self._call(name, self._scripts[name](keys=list(self.keys), args=args))

    async def _call(self, what: str, request: Any) -> Any:
        try:
            return await request
        except self._redis_error as exc:
            raise RedisFrontierError(
                f"{what} on {self._where} (crawl {self.crawl!r}) failed: "
                f"{type(exc).__name__}: {exc}"
            ) from exc

    def _decode(self, raw: object) -> CrawlItem:
        try:
            url, depth, referrer = json.loads(_text(raw))
            return CrawlItem(url, depth, referrer)
        except (ValueError, TypeError) as exc:
            raise RedisFrontierError(
                f"crawl {self.crawl!r} on {self._where} holds an item this frontier cannot "
                f"read ({exc}): {_text(raw)[:200]!r}"
            ) from exc


def _micros(seconds: float) -> int:
    """A lease length in whole microseconds, at least one."""
    return max(1, math.ceil(seconds * 1_000_000))
