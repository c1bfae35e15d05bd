"""The crawl frontier: the URLs still to fetch, handed out to workers as leases.

Theory of operation
-------------------
A crawl's workers share one `Frontier`. A worker `take`s a few `Lease`s, fetches each URL,
then marks it `done`, or `release`s it (puts it back) when its fetch was cancelled. Every
URL a frontier was ever given is remembered (the *seen* set), so `add` queues a URL only
once per crawl: that set is the de-duplication, and its keys are normalised URLs
(`_urlnorm.py`), so two spellings of one page are one key.

A lease lasts `lease_seconds`; a worker `renew`s it while its fetch runs. A lease nobody
renewed in time has *expired*: its item is queued again (at the front, so it is retried
soon) and the old lease's token is stale, so a late `done`, `renew` or `release` with it
does nothing and says so. That is what makes a shared frontier safe against a worker that
died mid-fetch (`_redis_frontier.py`, several processes): its URLs are handed to another
worker after the lease runs out, and nothing is lost. A live worker renews, so it never
loses a URL to another worker and nothing is fetched twice by live workers.

The crawl is finished when nothing is queued and nothing is leased.

Rules every implementation follows (tests/crawl/frontier_contract.py checks them):

* `add` returns how many items were new; a URL seen before (queued, leased or done) is
  ignored, as is a repeat within one call (the first one wins).
* `take(n)` returns at most `n` leases, oldest queued first, after requeueing expired
  leases; `[]` when nothing is queued right now (the caller decides whether to wait).
* A lease is *valid* while its token is the item's current one and it has not expired.
  `renew` and `done` of an invalid lease return False and change nothing (an expired but
  not yet requeued lease is requeued); `release` of a stale lease does nothing.
* Time: MemoryFrontier uses Trio's clock (so MockClock tests work); the Redis frontier uses
  wall-clock time, shared across processes.

Bounds: the seen set grows with the crawl, by design: forgetting a URL would let it be
fetched again. Its size is the number of distinct URLs discovered, which the crawler's
`max_pages`, `max_depth` and domain filters bound; a crawl too large for one process's
memory is what the Redis frontier is for.

Rejected alternative: a frontier that is a `trio` memory channel. A channel cannot tell a
finished crawl (queue empty, nothing in flight) from a momentarily empty one, cannot take
an item back from a cancelled worker, and cannot be shared between processes.
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import trio

__all__ = ["CrawlItem", "Frontier", "FrontierCounts", "Lease", "MemoryFrontier"]


@dataclass(frozen=True, slots=True)
class CrawlItem:
    """One URL to crawl: ``url`` (normalised, absolute: the de-duplication key), its link
    ``depth`` from the seeds (0 for a seed) and the page that linked to it."""

    url: str
    depth: int = 0
    referrer: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.url, str) or not self.url:
            raise ValueError(f"CrawlItem.url must be a non-empty str, not {self.url!r}")
        if not isinstance(self.depth, int) or isinstance(self.depth, bool) or self.depth < 0:
            raise ValueError(f"CrawlItem.depth must be an int >= 0, not {self.depth!r}")


@dataclass(frozen=True, slots=True)
class Lease:
    """An item handed to one worker until the lease expires; ``token`` is unique per
    hand-out, so a stale lease (expired and handed out again) cannot touch the new one."""

    item: CrawlItem
    token: str


@dataclass(frozen=True, slots=True)
class FrontierCounts:
    """A frontier's sizes: ``queued`` (waiting), ``leased`` (being fetched), ``done``, and
    ``seen`` (every URL ever added: queued + leased + done)."""

    queued: int
    leased: int
    done: int
    seen: int

    @property
    def finished(self) -> bool:
        """True when nothing is queued and nothing is leased: the crawl is over."""
        return self.queued == 0 and self.leased == 0


@runtime_checkable
class Frontier(Protocol):
    """What a crawler needs from its queue of URLs (see the module docstring for the rules)."""

    async def add(self, items: Sequence[CrawlItem]) -> int:
        """Queue the never-seen items; return how many were new."""
        ...

    async def take(self, n: int, *, lease_seconds: float) -> list[Lease]:
        """Lease up to ``n`` queued items (requeueing expired leases first); ``[]`` if none."""
        ...

    async def renew(self, lease: Lease, *, lease_seconds: float) -> bool:
        """Extend a valid lease to ``lease_seconds`` from now; False if it was lost."""
        ...

    async def done(self, lease: Lease) -> bool:
        """Mark the item fetched; False (and nothing changes) if the lease was not valid."""
        ...

    async def release(self, lease: Lease) -> None:
        """Put a leased item back, unfetched (its fetch was cancelled)."""
        ...

    async def counts(self) -> FrontierCounts:
        """Current sizes; ``finished`` when nothing is queued or leased."""
        ...

    async def aclose(self) -> None:
        """Release the frontier's resources (connections); idempotent."""
        ...


def check_take_arguments(n: int, lease_seconds: float) -> None:
    """Shared argument checks for `take` and `renew` (also used by the Redis frontier)."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise ValueError(f"take(n) needs an int >= 0, not {n!r}")
    check_lease_seconds(lease_seconds)


def check_lease_seconds(lease_seconds: float) -> None:
    """A lease must last a positive, finite number of seconds."""
    if not (0 < lease_seconds < float("inf")):
        raise ValueError(f"lease_seconds must be > 0 and finite, not {lease_seconds!r}")


@dataclass(slots=True)
class _Held:
    lease: Lease
    expires: float


class MemoryFrontier:
    """The in-memory `Frontier` of one process (the default): FIFO order (breadth first),
    leases timed on Trio's clock.

    ``clock`` returns the current time in seconds (default `trio.current_time`, so a test on
    `trio.testing.MockClock` moves it); tests may pass their own. The seen set is unbounded
    by design (see the module docstring).
    """

    def __init__(self, *, clock: Callable[[], float] = trio.current_time) -> None:
        self._clock = clock
        self._queue: deque[CrawlItem] = deque()
        self._seen: set[str] = set()
        # url -> the current lease of that URL; a lease is valid iff its token matches here.
        self._held: dict[str, _Held] = {}
        # (expires, token, url) for every lease hand-out and renewal; entries whose lease is
        # gone or was renewed are skipped when popped. Bounded: at most one live entry per
        # renewal, and _compact() drops the dead ones when they outnumber the live ones.
        self._expiries: list[tuple[float, str, str]] = []
        self._done = 0
        self._tokens = itertools.count(1)
        self._closed = False

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("this MemoryFrontier was closed (aclose)")

    def _expire(self) -> None:
        """Requeue (at the front) every lease whose time ran out."""
        now = self._clock()
        reclaimed: list[CrawlItem] = []
        while self._expiries and self._expiries[0][0] <= now:
            expires, token, url = heapq.heappop(self._expiries)
            held = self._held.get(url)
            if held is not None and held.lease.token == token and held.expires == expires:
                del self._held[url]
                reclaimed.append(held.lease.item)
        # Oldest expiry first at the very front.
        self._queue.extendleft(reversed(reclaimed))

    def _compact(self) -> None:
        if len(self._expiries) > 2 * len(self._held) + 64:
            self._expiries = [
                (held.expires, held.lease.token, url) for url, held in self._held.items()
            ]
            heapq.heapify(self._expiries)

    def _valid(self, lease: Lease) -> _Held | None:
        held = self._held.get(lease.item.url)
        if held is None or held.lease.token != lease.token:
            return None
        if held.expires <= self._clock():
            self._expire()
            return None
        return held

    async def add(self, items: Sequence[CrawlItem]) -> int:
        """Queue the never-seen items; return how many were new."""
        await trio.lowlevel.checkpoint()
        self._check_open()
        new = 0
        for item in items:
            if not isinstance(item, CrawlItem):
                raise TypeError(f"Frontier.add takes CrawlItems, not {type(item).__name__}")
            if item.url in self._seen:
                continue
            self._seen.add(item.url)
            self._queue.append(item)
            new += 1
        return new

    async def take(self, n: int, *, lease_seconds: float) -> list[Lease]:
        """Lease up to ``n`` queued items, oldest first; ``[]`` if none is queued now."""
        await trio.lowlevel.checkpoint()
        check_take_arguments(n, lease_seconds)
        self._check_open()
        self._expire()
        expires = self._clock() + lease_seconds
        leases: list[Lease] = []
        while self._queue and len(leases) < n:
            item = self._queue.popleft()
            lease = Lease(item, f"m{next(self._tokens)}")
            self._held[item.url] = _Held(lease, expires)
            heapq.heappush(self._expiries, (expires, lease.token, item.url))
            leases.append(lease)
        return leases

    async def renew(self, lease: Lease, *, lease_seconds: float) -> bool:
        """Extend a valid lease to ``lease_seconds`` from now; False if it was lost."""
        await trio.lowlevel.checkpoint()
        check_lease_seconds(lease_seconds)
        self._check_open()
        held = self._valid(lease)
        if held is None:
            return False
        held.expires = self._clock() + lease_seconds
        heapq.heappush(self._expiries, (held.expires, lease.token, lease.item.url))
        self._compact()
        return True

    async def done(self, lease: Lease) -> bool:
        """Mark the item fetched; False (and nothing changes) if the lease was not valid."""
        await trio.lowlevel.checkpoint()
        self._check_open()
        if self._valid(lease) is None:
            return False
        del self._held[lease.item.url]
        self._done += 1
        self._compact()
        return True

    async def release(self, lease: Lease) -> None:
        """Put a leased item back at the front of the queue; a stale lease does nothing."""
        await trio.lowlevel.checkpoint()
        self._check_open()
        held = self._held.get(lease.item.url)
        if held is None or held.lease.token != lease.token:
            return
        del self._held[lease.item.url]
        self._queue.appendleft(lease.item)
        self._compact()

    async def counts(self) -> FrontierCounts:
        """Current sizes (expired leases count as queued)."""
        await trio.lowlevel.checkpoint()
        self._check_open()
        self._expire()
        return FrontierCounts(
            queued=len(self._queue), leased=len(self._held), done=self._done, seen=len(self._seen)
        )

    async def aclose(self) -> None:
        """Forget everything; further use raises RuntimeError. Idempotent."""
        await trio.lowlevel.checkpoint()
        self._closed = True
        self._queue.clear()
        self._held.clear()
        self._expiries.clear()
