"""The pool's books: a pure, synchronous planner. No I/O, no Trio.

Theory of operation
-------------------
Every connection the pool knows is a `PoolEntry`: created (and counted against the limits)
*before* it connects, so a slot is reserved the moment a request is granted one. A request
asks `checkout(origin)` and gets an entry at once, or `None` and then queues a `Waiter`.
Whenever something frees capacity (`checkin`, `discard`, `expire`, a waiter giving up) the
books hand it to waiters and return a `Plan`: which waiters got which entry, and which
entries the I/O layer must now close. The I/O layer (`_pool.py`) does the waking and the
closing; keeping the decisions here makes them testable without sockets or a clock.

Fairness is first-come first-served across the whole pool: an idle connection for origin A
goes to the oldest waiter *for A* unless an older waiter for another origin could use the
slot instead (then the idle connection is closed to make room). Waiters queue per origin
(a FIFO; a waiter that leaves is only marked, and dead ones are dropped when they reach the
head). For the global slots, a heap orders the origins by the age of their oldest waiter;
an origin at `max_connections_per_host` cannot use a global slot and leaves the heap until
one of its own connections closes. Entries in the heap are checked when they reach the top
and dropped if stale, so every operation is O(log origins) at worst and O(1) for the
common single-origin queue.

Rejected alternatives: re-planning every queued request on each change (httpcore's
`_assign_requests_to_connections`) is O(queue) per event, so O(n^2) for a deep queue; one
lock or semaphore per origin cannot express the global limit and eviction of idle
connections of other origins.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from .._origin import Origin

__all__ = ["Plan", "PoolEntry", "PoolState", "PoolStatistics", "Waiter"]


class PoolEntry:
    """What the books know of one connection (open, or still connecting)."""

    __slots__ = (
        "capacity",
        "connecting",
        "idle_since",
        "in_use",
        "is_closed",
        "may_multiplex",
        "origin",
    )

    def __init__(self, origin: Origin) -> None:
        self.origin = origin
        self.in_use = 0  # requests currently holding this connection (HTTP/2: streams)
        self.capacity = 1  # concurrent requests it can carry (HTTP/2 raises this)
        self.idle_since = 0.0
        self.is_closed = False
        self.connecting = False
        self.may_multiplex = False  # connecting, and ALPN might yet pick HTTP/2


E = TypeVar("E", bound=PoolEntry)


class Waiter(Generic[E]):
    """A request queued for a connection. `entry` is set when it is granted one.

    The I/O layer may use a subclass (`PoolState`'s `waiter_type`) that adds its own
    behaviour; `books` is the `PoolState` that queued it, for that subclass to call back.
    """

    __slots__ = ("books", "entry", "may_multiplex", "origin", "seq", "state", "token")

    WAITING, GRANTED, GONE = 0, 1, 2

    def __init__(self, books: PoolState[E], origin: Origin, seq: int, may_multiplex: bool) -> None:
        self.books = books
        self.origin = origin
        self.seq = seq
        self.may_multiplex = may_multiplex
        self.state = Waiter.WAITING
        self.entry: E | None = None
        self.token: object = None  # for the I/O layer: the task to wake


@dataclass
class Plan(Generic[E]):
    """What the I/O layer must do after a change: wake these waiters, close these entries."""

    granted: list[Waiter[E]] = field(default_factory=list)
    to_close: list[E] = field(default_factory=list)


@dataclass(frozen=True)
class PoolStatistics:
    """A snapshot of the books; `in_use + idle + connecting` always equals `connections`."""

    connections: int
    in_use: int
    idle: int
    connecting: int
    waiting: int
    requests_active: int


class _OriginBooks(Generic[E]):
    __slots__ = (
        "announced",
        "entries",
        "h1_only",
        "idle",
        "pending_multiplex",
        "shared",
        "waiters",
    )

    def __init__(self) -> None:
        self.announced = 0  # seq of this origin's entry in the heap (0: none)
        self.h1_only = False  # a connection here chose HTTP/1.1: don't wait for multiplexing
        self.entries: set[E] = set()
        self.idle: list[E] = []  # a stack: the warmest connection is reused first
        self.shared: dict[E, None] = {}  # multiplexed, busy, with room for more streams
        self.pending_multiplex = 0  # connecting entries that may turn out multiplexed
        self.waiters: deque[Waiter[E]] = deque()


class PoolState(Generic[E]):
    """The books of one connection pool; see the module docstring."""

    def __init__(
        self,
        new_entry: Callable[[Origin], E],
        *,
        max_connections: int | None,
        max_keepalive: int | None,
        max_per_host: int | None,
        keepalive_expiry: float | None,
        waiter_type: type[Waiter[E]] = Waiter,
    ) -> None:
        self._new_entry = new_entry
        self._waiter_type = waiter_type
        self._max = max_connections
        self._max_keepalive = max_keepalive
        self._max_per_host = max_per_host
        self._expiry = keepalive_expiry
        self._origins: dict[Origin, _OriginBooks[E]] = {}
        self._idle: dict[E, None] = {}  # every idle entry, oldest first
        # (seq of an origin's oldest waiter, origin): who gets the next free global slot.
        self._ready: list[tuple[int, Origin]] = []
        self._total = 0
        self._connecting = 0
        self._waiting = 0
        self._active = 0  # requests holding an entry
        self._seq = 0

    # -- requests ------------------------------------------------------------------------

    def checkout(
        self, origin: Origin, now: float, *, may_multiplex: bool = False
    ) -> tuple[E | None, list[E]]:
        """Grant an entry at once if possible. Returns (entry or None, entries to close).

        `may_multiplex`: a new connection to this origin could turn out to be HTTP/2. While
        such a connection is still connecting, further requests wait for it instead of
        opening connections they will probably not need.
        """
        to_close: list[E] = []
        books = self._origins.get(origin)
        if books is not None:
            if books.shared:
                entry = next(iter(books.shared))
                self._take(entry, books)
                return entry, to_close
            while books.idle:
                entry = books.idle.pop()
                del self._idle[entry]
                if self._is_expired(entry, now):
                    self._forget(entry, books)
                    to_close.append(entry)
                    continue
                self._take(entry, books)
                return entry, to_close
            if books.pending_multiplex or self._live_head(books.waiters) is not None:
                return None, to_close  # wait for the new connection, or behind the others
        if not self._per_host_ok(origin):
            return None, to_close
        if not self._global_ok():
            if not self._idle:
                return None, to_close
            to_close.append(self._evict_oldest_idle())
        entry = self._open(origin, may_multiplex)
        entry.in_use = 1
        self._active += 1
        return entry, to_close

    def enqueue(self, origin: Origin, *, may_multiplex: bool = False) -> Waiter[E]:
        """Queue a request that `checkout` could not serve."""
        self._seq += 1
        waiter = self._waiter_type(self, origin, self._seq, may_multiplex)
        books = self._books(origin)
        books.waiters.append(waiter)
        self._waiting += 1
        self._announce(origin, books)
        return waiter

    def withdraw(self, waiter: Waiter[E]) -> None:
        """A waiting request gave up (cancelled or timed out) before it was granted."""
        if waiter.state == Waiter.WAITING:
            waiter.state = Waiter.GONE
            self._waiting -= 1
            books = self._origins.get(waiter.origin)
            if books is not None:
                self._announce(waiter.origin, books)
                self._drop_if_empty(waiter.origin, books)

    def connected(self, entry: E, capacity: int = 1, *, multiplexed: bool = False) -> Plan[E]:
        """A new connection finished connecting; extra capacity goes to waiters.

        `multiplexed`: it is HTTP/2 and its real capacity comes with the server's first
        SETTINGS (`set_capacity`); until then other requests keep waiting for it.
        """
        books = self._origins[entry.origin]
        if entry.may_multiplex and not multiplexed:
            books.h1_only = True
        entry.connecting = False
        self._connecting -= 1
        if multiplexed and entry.may_multiplex:
            entry.capacity = capacity
            return Plan()
        return self.set_capacity(entry, capacity)

    def set_capacity(self, entry: E, capacity: int) -> Plan[E]:
        """How many requests `entry` can carry changed (HTTP/2 SETTINGS); hand out room."""
        plan: Plan[E] = Plan()
        entry.capacity = capacity
        books = self._origins.get(entry.origin)
        if books is None or entry.is_closed or entry not in books.entries:
            return plan
        self._end_pending(entry, books)
        while entry.in_use < entry.capacity:
            waiter = self._live_head(books.waiters)
            if waiter is None:
                break
            self._grant(waiter, entry, plan)
        self._place_shared(entry, books)
        # Waiters left over (an HTTP/1.1 connection, or a full HTTP/2 one) may open more.
        self._announce(entry.origin, books)
        self._refill(plan)
        return plan

    def checkin(self, entry: E, *, reusable: bool, now: float) -> Plan[E]:
        """A request is done with `entry`. Unless reusable, the entry is closed."""
        entry.in_use -= 1
        self._active -= 1
        if not reusable or entry.is_closed:
            return self.discard(entry)
        plan: Plan[E] = Plan()
        books = self._origins[entry.origin]
        mate = self._live_head(books.waiters)
        head = self._oldest_ready()
        if entry.in_use == 0 and head is not None and (mate is None or head.seq < mate.seq):
            # An older request for another origin waits for a global slot: make room.
            self._forget(entry, books)
            plan.to_close.append(entry)
            self._refill(plan)
            return plan
        if mate is not None:
            self._grant(mate, entry, plan)
            self._place_shared(entry, books)
            return plan
        if entry.in_use == 0:
            books.shared.pop(entry, None)
            entry.idle_since = now
            books.idle.append(entry)
            self._idle[entry] = None
            if self._max_keepalive is not None and len(self._idle) > self._max_keepalive:
                sub = self.discard(next(iter(self._idle)))
                plan.to_close += sub.to_close
                plan.granted += sub.granted
        else:
            self._place_shared(entry, books)
        return plan

    def discard(self, entry: E) -> Plan[E]:
        """`entry` is closed or failed (or never connected); free its slot for waiters."""
        plan: Plan[E] = Plan()
        books = self._origins.get(entry.origin)
        if books is None or entry not in books.entries:
            return plan  # already forgotten
        if entry.in_use > 0:
            # Still held by requests (HTTP/2 streams, a GOAWAY): they check in later.
            entry.is_closed = True
            books.shared.pop(entry, None)
            return plan
        if entry in self._idle:
            del self._idle[entry]
            books.idle.remove(entry)
        self._forget(entry, books)
        plan.to_close.append(entry)
        self._refill(plan)
        return plan

    def abandon_connect(self, entry: E) -> Plan[E]:
        """A granted new entry never finished connecting (failure or cancellation)."""
        books = self._origins.get(entry.origin)
        if books is not None and entry.connecting:
            self._end_connecting(entry, books)
        entry.in_use -= 1
        self._active -= 1
        return self.discard(entry)

    # -- housekeeping ---------------------------------------------------------------------

    def next_expiry(self) -> float | None:
        """When the oldest idle connection expires, or None if nothing can expire."""
        if self._expiry is None or not self._idle:
            return None
        oldest = next(iter(self._idle))
        return oldest.idle_since + self._expiry

    def expire(self, now: float) -> Plan[E]:
        """Close every idle connection whose keep-alive expiry has passed."""
        plan: Plan[E] = Plan()
        while self._idle:
            oldest = next(iter(self._idle))
            if not self._is_expired(oldest, now):
                break
            sub = self.discard(oldest)
            plan.granted += sub.granted
            plan.to_close += sub.to_close
        return plan

    def close_all(self) -> tuple[list[E], list[Waiter[E]]]:
        """Forget everything: returns all entries and all live waiters (pool is closing)."""
        entries = [e for books in self._origins.values() for e in books.entries]
        waiters = [
            w for books in self._origins.values() for w in books.waiters if w.state == w.WAITING
        ]
        for waiter in waiters:
            waiter.state = Waiter.GONE
        for entry in entries:
            entry.is_closed = True
        self._origins.clear()
        self._idle.clear()
        self._ready.clear()
        self._total = self._connecting = self._waiting = self._active = 0
        return entries, waiters

    def statistics(self) -> PoolStatistics:
        """A frozen snapshot of the counts; cheap enough to call after every test step."""
        idle = len(self._idle)
        return PoolStatistics(
            connections=self._total,
            in_use=self._total - idle - self._connecting,
            idle=idle,
            connecting=self._connecting,
            waiting=self._waiting,
            requests_active=self._active,
        )

    def entries(self) -> list[E]:
        """Every entry the books count, for introspection and tests."""
        return [e for books in self._origins.values() for e in books.entries]

    # -- internals ------------------------------------------------------------------------

    def _books(self, origin: Origin) -> _OriginBooks[E]:
        books = self._origins.get(origin)
        if books is None:
            books = self._origins[origin] = _OriginBooks()
        return books

    def _global_ok(self) -> bool:
        return self._max is None or self._total < self._max

    def _per_host_ok(self, origin: Origin) -> bool:
        if self._max_per_host is None:
            return True
        books = self._origins.get(origin)
        return books is None or len(books.entries) < self._max_per_host

    def _is_expired(self, entry: E, now: float) -> bool:
        return self._expiry is not None and now - entry.idle_since >= self._expiry

    def _open(self, origin: Origin, may_multiplex: bool) -> E:
        """Count a new, not yet connected entry against the limits (in_use is the caller's)."""
        entry = self._new_entry(origin)
        books = self._books(origin)
        books.entries.add(entry)
        entry.connecting = True
        entry.may_multiplex = may_multiplex = may_multiplex and not books.h1_only
        if may_multiplex:
            books.pending_multiplex += 1
        self._total += 1
        self._connecting += 1
        return entry

    def _end_connecting(self, entry: E, books: _OriginBooks[E]) -> None:
        entry.connecting = False
        self._connecting -= 1
        self._end_pending(entry, books)

    def _end_pending(self, entry: E, books: _OriginBooks[E]) -> None:
        """We now know whether `entry` multiplexes: stop holding its origin's waiters."""
        if entry.may_multiplex:
            entry.may_multiplex = False
            books.pending_multiplex -= 1

    def _take(self, entry: E, books: _OriginBooks[E]) -> None:
        """A new request takes one more place on an existing entry."""
        entry.in_use += 1
        self._active += 1
        self._place_shared(entry, books)

    def _place_shared(self, entry: E, books: _OriginBooks[E]) -> None:
        """Keep `shared` exact: multiplexed entries that are busy but have room."""
        if entry.capacity > 1 and 0 < entry.in_use < entry.capacity and not entry.is_closed:
            books.shared[entry] = None
        else:
            books.shared.pop(entry, None)

    def _forget(self, entry: E, books: _OriginBooks[E]) -> None:
        entry.is_closed = True
        if entry.connecting:
            self._end_connecting(entry, books)
        self._end_pending(entry, books)
        books.shared.pop(entry, None)
        books.entries.discard(entry)
        self._total -= 1
        self._drop_if_empty(entry.origin, books)

        self._announce(entry.origin, books)

    def _drop_if_empty(self, origin: Origin, books: _OriginBooks[E]) -> None:
        if not books.entries and self._live_head(books.waiters) is None:
            del self._origins[origin]

    def _evict_oldest_idle(self) -> E:
        oldest = next(iter(self._idle))
        del self._idle[oldest]
        books = self._origins[oldest.origin]
        books.idle.remove(oldest)
        self._forget(oldest, books)
        return oldest

    def _grant(self, waiter: Waiter[E], entry: E, plan: Plan[E]) -> None:
        """Give `entry` to `waiter`, which must be the live head of its origin's queue."""
        books = self._origins[waiter.origin]
        assert books.waiters[0] is waiter
        books.waiters.popleft()
        waiter.state = Waiter.GRANTED
        waiter.entry = entry
        entry.in_use += 1
        self._waiting -= 1
        self._active += 1
        plan.granted.append(waiter)
        self._announce(waiter.origin, books)

    def _refill(self, plan: Plan[E]) -> None:
        """Slots may be free: open new connections for the oldest waiters that can use one."""
        while self._global_ok():
            waiter = self._oldest_ready()
            if waiter is None:
                return
            self._grant(waiter, self._open(waiter.origin, waiter.may_multiplex), plan)

    def _announce(self, origin: Origin, books: _OriginBooks[E]) -> None:
        """The origin's oldest waiter may compete for a global slot: enter it in the heap."""
        head = self._live_head(books.waiters)
        if (
            head is not None
            and head.seq != books.announced  # already in the heap: keep it small
            and self._per_host_ok(origin)
            and not books.pending_multiplex
        ):
            heapq.heappush(self._ready, (head.seq, origin))
            books.announced = head.seq

    def _oldest_ready(self) -> Waiter[E] | None:
        """The oldest waiter that a free global slot could serve, dropping stale heap items."""
        ready = self._ready
        while ready:
            seq, origin = ready[0]
            books = self._origins.get(origin)
            head = None if books is None else self._live_head(books.waiters)
            if (
                head is not None
                and head.seq == seq
                and self._per_host_ok(origin)
                and not books.pending_multiplex  # type: ignore[union-attr]
            ):
                return head
            heapq.heappop(ready)
            if books is not None and books.announced == seq:
                books.announced = 0  # announce again once eligible
        return None

    def _live_head(self, queue: deque[Waiter[E]]) -> Waiter[E] | None:
        while queue and queue[0].state != Waiter.WAITING:
            queue.popleft()
        return queue[0] if queue else None
