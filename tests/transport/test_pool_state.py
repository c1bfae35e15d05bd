"""The pool's books, without I/O: random operation sequences keep every invariant."""

from __future__ import annotations

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from trioclient._transport._pool_state import Plan, PoolEntry, PoolState, Waiter

ORIGINS = [("http", b"a", 80), ("http", b"b", 80), ("https", b"c", 443)]


def make_state(**limits: object) -> PoolState[PoolEntry]:
    options = {
        "max_connections": 2,
        "max_keepalive": 2,
        "max_per_host": None,
        "keepalive_expiry": 5.0,
    }
    options.update(limits)
    return PoolState(PoolEntry, **options)  # type: ignore[arg-type]


def test_reuse_idle_connection() -> None:
    books = make_state()
    entry, closed = books.checkout(ORIGINS[0], now=0.0)
    assert entry is not None
    assert not closed
    books.connected(entry)
    books.checkin(entry, reusable=True, now=1.0)
    again, _ = books.checkout(ORIGINS[0], now=2.0)
    assert again is entry
    assert books.statistics().connections == 1


def test_expired_idle_connection_is_closed_not_reused() -> None:
    books = make_state()
    entry, _ = books.checkout(ORIGINS[0], now=0.0)
    assert entry is not None
    books.connected(entry)
    books.checkin(entry, reusable=True, now=0.0)
    fresh, closed = books.checkout(ORIGINS[0], now=10.0)
    assert closed == [entry]
    assert fresh is not None
    assert fresh is not entry


def test_waiters_are_served_first_come_first_served() -> None:
    books = make_state(max_connections=1)
    entry, _ = books.checkout(ORIGINS[0], now=0.0)
    assert entry is not None
    books.connected(entry)
    assert books.checkout(ORIGINS[0], now=0.0) == (None, [])
    first = books.enqueue(ORIGINS[0])
    second = books.enqueue(ORIGINS[0])
    plan = books.checkin(entry, reusable=True, now=1.0)
    assert plan.granted == [first]
    assert first.entry is entry
    plan = books.checkin(entry, reusable=True, now=2.0)
    assert plan.granted == [second]


def test_older_waiter_for_other_origin_gets_the_slot() -> None:
    books = make_state(max_connections=1)
    entry, _ = books.checkout(ORIGINS[0], now=0.0)
    assert entry is not None
    books.connected(entry)
    other = books.enqueue(ORIGINS[1])
    mate = books.enqueue(ORIGINS[0])
    plan = books.checkin(entry, reusable=True, now=1.0)
    assert plan.to_close == [entry]
    assert plan.granted == [other]
    assert other.entry is not None
    assert other.entry.origin == ORIGINS[1]
    assert mate.state == Waiter.WAITING


def test_withdrawn_waiter_is_skipped() -> None:
    books = make_state(max_connections=1)
    entry, _ = books.checkout(ORIGINS[0], now=0.0)
    assert entry is not None
    books.connected(entry)
    gone = books.enqueue(ORIGINS[0])
    kept = books.enqueue(ORIGINS[0])
    books.withdraw(gone)
    plan = books.checkin(entry, reusable=False, now=1.0)
    assert plan.granted == [kept]
    assert books.statistics().waiting == 0


def test_per_host_limit_parks_waiters_but_not_others() -> None:
    books = make_state(max_connections=3, max_per_host=1)
    a, _ = books.checkout(ORIGINS[0], now=0.0)
    assert a is not None
    books.connected(a)
    assert books.checkout(ORIGINS[0], now=0.0)[0] is None
    parked = books.enqueue(ORIGINS[0])
    b, _ = books.checkout(ORIGINS[1], now=0.0)
    assert b is not None  # another host is not blocked by the parked waiter
    plan = books.checkin(a, reusable=False, now=0.0)
    assert plan.granted == [parked]


class PoolMachine(RuleBasedStateMachine):
    """Drives the books like the I/O layer would, with random outcomes and timing.

    Checked after every step: the counts balance, the limits hold, nobody waits while a
    connection they could use is idle or a slot they could open is free, and each origin's
    waiters are served in arrival order.
    """

    def __init__(self) -> None:
        super().__init__()
        self.max = 3
        self.per_host = 2
        self.books = make_state(
            max_connections=self.max, max_keepalive=2, max_per_host=self.per_host
        )
        self.now = 0.0
        self.leases: list[PoolEntry] = []  # one per request holding an entry
        self.unconnected: list[PoolEntry] = []  # lists, not sets: hypothesis needs order
        self.connected: list[PoolEntry] = []
        self.awaiting_settings: list[PoolEntry] = []
        self.waiters: list[Waiter[PoolEntry]] = []
        self.last_seq: dict[tuple[str, bytes, int], int] = {}

    def _take(self, entry: PoolEntry) -> None:
        self.leases.append(entry)
        if entry not in self.books.entries() or entry.is_closed:
            raise AssertionError("granted an entry the books do not hold")

    def _apply(self, plan: Plan[PoolEntry]) -> None:
        for waiter in plan.granted:
            assert waiter in self.waiters
            assert waiter.seq > self.last_seq.get(waiter.origin, 0), "FIFO broken"
            self.last_seq[waiter.origin] = waiter.seq
            self.waiters.remove(waiter)
            assert waiter.entry is not None
            if waiter.entry not in self.connected:
                self.unconnected.append(waiter.entry)  # a fresh entry: it must connect
            self._take(waiter.entry)
        for entry in plan.to_close:
            assert entry.in_use == 0
            assert entry not in self.unconnected

    @rule(origin=st.sampled_from(ORIGINS))
    def request(self, origin: tuple[str, bytes, int]) -> None:
        # The https origin may speak HTTP/2: its new connections may multiplex.
        may_multiplex = origin[0] == "https"
        entry, to_close = self.books.checkout(origin, self.now, may_multiplex=may_multiplex)
        for closed in to_close:
            assert closed.in_use == 0
        if entry is None:
            waiter = self.books.enqueue(origin, may_multiplex=may_multiplex)
            self.waiters.append(waiter)
            return
        if entry not in self.connected:
            self.unconnected.append(entry)
        self._take(entry)

    @rule(data=st.data(), ok=st.booleans(), h2=st.booleans())
    def finish_connecting(self, data: st.DataObject, ok: bool, h2: bool) -> None:
        if not self.unconnected:
            return
        entry = data.draw(st.sampled_from(self.unconnected))
        self.unconnected.remove(entry)
        if ok:
            self.connected.append(entry)
            if h2 and entry.may_multiplex:
                # HTTP/2: the capacity is known only when the server's SETTINGS arrive.
                self._apply(self.books.connected(entry, 1, multiplexed=True))
                self.awaiting_settings.append(entry)
            else:
                self._apply(self.books.connected(entry))
        else:
            self.leases.remove(entry)
            self._apply(self.books.abandon_connect(entry))

    @rule(data=st.data(), reusable=st.booleans())
    def finish_request(self, data: st.DataObject, reusable: bool) -> None:
        done = [e for e in self.leases if e not in self.unconnected]
        if not done:
            return
        entry = data.draw(st.sampled_from(done))
        self.leases.remove(entry)
        self._apply(self.books.checkin(entry, reusable=reusable, now=self.now))

    @rule(data=st.data(), capacity=st.integers(1, 4))
    def settings_arrive(self, data: st.DataObject, capacity: int) -> None:
        if not self.awaiting_settings:
            return
        entry = data.draw(st.sampled_from(self.awaiting_settings))
        self.awaiting_settings.remove(entry)
        self._apply(self.books.set_capacity(entry, capacity))

    @rule(data=st.data(), capacity=st.integers(1, 4))
    def peer_changes_max_streams(self, data: st.DataObject, capacity: int) -> None:
        multiplexed = [
            e
            for e in self.connected
            if e.capacity > 1 and not e.is_closed and e not in self.awaiting_settings
        ]
        if not multiplexed:
            return
        entry = data.draw(st.sampled_from(multiplexed))
        self._apply(self.books.set_capacity(entry, max(capacity, 2)))

    @rule(data=st.data())
    def peer_sends_goaway(self, data: st.DataObject) -> None:
        busy = [e for e in self.connected if e.in_use and not e.is_closed]
        if not busy:
            return
        entry = data.draw(st.sampled_from(busy))
        self._apply(self.books.discard(entry))  # drains: holders check in later

    @rule(data=st.data())
    def give_up_waiting(self, data: st.DataObject) -> None:
        if not self.waiters:
            return
        waiter = data.draw(st.sampled_from(self.waiters))
        self.waiters.remove(waiter)
        self.books.withdraw(waiter)

    @rule(seconds=st.sampled_from([0.5, 2.0, 6.0]))
    def advance(self, seconds: float) -> None:
        self.now += seconds
        self._apply(self.books.expire(self.now))

    @invariant()
    def books_balance(self) -> None:
        stats = self.books.statistics()
        entries = self.books.entries()
        assert stats.connections == len(entries) <= self.max
        assert stats.in_use + stats.idle + stats.connecting == stats.connections
        assert stats.connecting == len(self.unconnected)
        assert stats.requests_active == len(self.leases)
        assert stats.waiting == len(self.waiters)
        per_origin: dict[tuple[str, bytes, int], int] = {}
        for entry in entries:
            per_origin[entry.origin] = per_origin.get(entry.origin, 0) + 1
            assert entry.in_use == self.leases.count(entry)
            if not entry.is_closed:
                # Over capacity only after the peer lowered it (S8): never by a grant.
                assert entry.in_use <= max(entry.capacity, self.leases.count(entry))
        assert all(n <= self.per_host for n in per_origin.values())

    @invariant()
    def nobody_waits_needlessly(self) -> None:
        entries = self.books.entries()
        usable = {
            e.origin
            for e in entries
            if not e.is_closed and e not in self.unconnected and e.in_use < e.capacity
        }
        pending = {e.origin for e in entries if e.may_multiplex}  # connecting, or no SETTINGS yet
        per_origin: dict[tuple[str, bytes, int], int] = {}
        for entry in entries:
            per_origin[entry.origin] = per_origin.get(entry.origin, 0) + 1
        for waiter in self.waiters:
            assert waiter.origin not in usable, "waits while its origin has room"
            if waiter.origin in pending:
                continue  # waiting to see whether the new connection multiplexes
            can_open_here = per_origin.get(waiter.origin, 0) < self.per_host
            assert not (len(entries) < self.max and can_open_here), "waits beside a free slot"


test_pool_machine = PoolMachine.TestCase
