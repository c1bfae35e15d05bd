"""The pool with real sockets under random interleavings: a hypothesis RuleBasedStateMachine.

Rules start requests (a short body, a body of several reads, or one the server never
answers), read a chunk of an open response, close a response, cancel a request in whatever
phase it is (queued, connecting, waiting for the head, streaming), make the server close one
of its connections, and advance a ``MockClock`` (so that read and pool timeouts fire and idle
connections expire). After every step, once every task is blocked, the invariants are checked:
the books balance and respect the limits; nobody waits while a connection is idle or a slot
is free; every request is counted once (active or waiting) exactly while it holds or awaits a
connection; every client socket still open belongs to a connection the books count; the
client's nursery holds only its housekeeping task; every finished request ended in an allowed
way (a cancellation only when cancelled, otherwise success or a trioclient error).

How hypothesis and Trio meet
----------------------------
A RuleBasedStateMachine calls its rules as plain synchronous methods, one example after the
other, while the sockets, tasks and clock of one example must live in one Trio run across all
its steps. So each example runs ``trio.run`` in a worker thread for its whole life
(:class:`TrioThread`), and each rule hands a coroutine to that run and blocks until it has
finished and every task is blocked again (``wait_all_tasks_blocked``), with a real-time limit
so that a deadlock fails the example instead of hanging the suite. The machine itself stays
on the test thread, so hypothesis's own machinery (shrinking, ``note``, the database) is used
unchanged.

Rejected alternatives: a schedule of steps drawn with ``@given`` and interpreted inside one
``trio.run`` would work but loses the stateful API (rule preconditions, bundles, step-wise
shrinking and reporting); ``trio.lowlevel.start_guest_run`` driven by hand from the rules
would keep everything on one thread but needs a hand-written host loop pumping Trio's
callbacks plus its I/O thread, more machinery than ``TrioThread`` for no gain here.
``trio.from_thread.run`` has no timeout, hence the small portal below.

The servers are raw, in the same run, and never sleep: they answer at once (``/ok``), send a
100 kB body in one go (``/big``: several client reads), or never answer (``/hold``).
"""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import trio
import trio.testing
from faults import FaultInjector
from hypothesis import note, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from servers.raw import BufferedStream, read_request, response_bytes, serve_raw

import trioclient
from trioclient._transport._connect import socket_of

T = TypeVar("T")

MAX_CONNECTIONS = 2
MAX_KEEPALIVE = 2
TIMEOUT = trioclient.Timeout(connect=2.0, read=3.0, write=4.0, pool=7.0)
KEEPALIVE_EXPIRY = 5.0
BIG = 100_000
STEP_LIMIT = 10.0  # real seconds a step may take before it is declared a deadlock


class TrioThread:
    """A Trio run (with a MockClock) in a worker thread; `call` runs coroutines in it."""

    def __init__(self) -> None:
        self.clock = trio.testing.MockClock()
        self._started = threading.Event()
        self._token: trio.lowlevel.TrioToken | None = None
        self._nursery: trio.Nursery | None = None
        self._stop: trio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="trio-pool-machine", daemon=True)
        self._thread.start()
        if not self._started.wait(STEP_LIMIT):
            raise RuntimeError("the Trio thread did not start")

    def _run(self) -> None:
        try:
            trio.run(self._main, clock=self.clock)
        except BaseException as exc:  # reported by stop()
            self._error = exc
            self._started.set()

    async def _main(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        self._stop = trio.Event()
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            self._started.set()
            await self._stop.wait()
            nursery.cancel_scope.cancel()

    def call(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Run `fn(*args)` in the Trio thread, then wait until every task is blocked."""
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        async def run() -> None:
            try:
                result = await fn(*args)
                await trio.testing.wait_all_tasks_blocked()
            except BaseException as exc:
                future.set_exception(exc)
                if not isinstance(exc, Exception):
                    raise
            else:
                future.set_result(result)

        assert self._token is not None
        assert self._nursery is not None
        self._token.run_sync_soon(self._nursery.start_soon, run)
        return future.result(timeout=STEP_LIMIT)

    def stop(self) -> None:
        if self._token is not None and self._stop is not None and self._thread.is_alive():
            stop = self._stop
            self._token.run_sync_soon(stop.set)
        self._thread.join(STEP_LIMIT)
        if self._thread.is_alive():
            raise RuntimeError("the Trio thread did not stop")
        if self._error is not None:
            raise self._error


@dataclass(eq=False)
class Req:
    """One request task, as the model sees it."""

    number: int
    path: str
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    state: str = "pending"  # pending -> open -> done; or pending -> done
    response: trioclient.Response | None = None
    outcome: str = ""
    cancelled_by_us: bool = False
    send: trio.MemorySendChannel[str] | None = None
    receive: trio.MemoryReceiveChannel[str] | None = None

    def holds_or_awaits_a_connection(self) -> bool:
        if self.state == "pending":
            return True
        return self.state == "open" and self.response is not None and not self.response.is_closed


class World:
    """Everything living in the Trio thread: server, client, injector, request tasks."""

    def __init__(self) -> None:
        self.injector = FaultInjector()
        self.server_streams: list[BufferedStream] = []
        self.requests: list[Req] = []
        self.client: trioclient.Client | None = None
        self.url = ""
        self.nursery: trio.Nursery | None = None
        self._done = trio.Event()
        self._closed = trio.Event()
        self.exit_error: BaseException | None = None

    async def _handler(self, stream: BufferedStream) -> None:
        self.server_streams.append(stream)
        try:
            while True:
                try:
                    head, _ = await read_request(stream)
                except trio.BrokenResourceError:
                    return
                path = head.split(b" ", 2)[1]
                if path == b"/ok":
                    await stream.send_all(response_bytes(200, [], b"ok"))
                elif path == b"/big":
                    await stream.send_all(response_bytes(200, [], b"x" * BIG))
                else:  # /hold
                    while await stream.receive_some():
                        pass
                    return
        finally:
            self.server_streams.remove(stream)

    async def start(self, parent: trio.Nursery) -> None:
        parent.start_soon(self._main)
        await trio.testing.wait_all_tasks_blocked()
        assert self.client is not None

    async def _main(self) -> None:
        try:
            async with trio.open_nursery() as servers:
                self.url = await serve_raw(servers, self._handler)
                with self.injector.installed():
                    client = trioclient.Client(
                        timeout=TIMEOUT,
                        limits=trioclient.Limits(
                            max_connections=MAX_CONNECTIONS,
                            max_keepalive_connections=MAX_KEEPALIVE,
                            keepalive_expiry=KEEPALIVE_EXPIRY,
                        ),
                    )
                    try:
                        async with client, trio.open_nursery() as nursery:
                            self.client, self.nursery = client, nursery
                            await self._done.wait()
                            nursery.cancel_scope.cancel()
                    except BaseException as exc:
                        self.exit_error = exc
                servers.cancel_scope.cancel()
        finally:
            self._closed.set()

    async def finish(self) -> None:
        self._done.set()
        await self._closed.wait()

    # -- requests ---------------------------------------------------------------------------

    async def start_request(self, path: str) -> Req:
        send, receive = trio.open_memory_channel[str](1)
        req = Req(len(self.requests), path, send=send, receive=receive)
        self.requests.append(req)
        assert self.nursery is not None
        self.nursery.start_soon(self._run_request, req)
        return req

    async def _run_request(self, req: Req) -> None:
        client = self.client
        assert client is not None
        assert req.receive is not None
        with req.scope:
            try:
                async with client.stream("GET", f"{self.url}{req.path}") as response:
                    req.response = response
                    req.state = "open"
                    chunks = response.aiter_raw()
                    async for command in req.receive:
                        if command == "close":
                            break
                        try:
                            await chunks.__anext__()
                        except StopAsyncIteration:
                            pass
                req.outcome = "ok"
            except trioclient.TransportError as exc:
                req.outcome = type(exc).__name__
            except trioclient.StreamError as exc:  # StreamConsumed after the end: our reads
                req.outcome = type(exc).__name__
            except Exception as exc:  # judged by the invariant
                req.outcome = f"unexpected {exc!r}"
        if req.scope.cancelled_caught:
            req.outcome = "Cancelled"
        req.state = "done"

    async def command(self, req: Req, command: str) -> None:
        assert req.send is not None
        try:
            req.send.send_nowait(command)
        except trio.WouldBlock:
            pass  # the previous command is still being carried out

    async def cancel(self, req: Req) -> None:
        req.cancelled_by_us = True
        req.scope.cancel()

    async def server_close(self, index: int) -> None:
        if self.server_streams:
            stream = self.server_streams[index % len(self.server_streams)]
            await stream.aclose()

    async def jump(self, seconds: float) -> None:
        trio.lowlevel.current_clock().jump(seconds)  # type: ignore[attr-defined]

    # -- invariants (synchronous; called through the thread as a coroutine) -----------------

    async def check(self) -> list[str]:
        problems: list[str] = []
        client = self.client
        assert client is not None
        stats = client.pool_statistics()
        if stats.in_use + stats.idle + stats.connecting != stats.connections:
            problems.append(f"counts do not balance: {stats}")
        if stats.connections > MAX_CONNECTIONS or stats.idle > MAX_KEEPALIVE:
            problems.append(f"limits exceeded: {stats}")
        if stats.waiting and (stats.idle or stats.connections < MAX_CONNECTIONS):
            problems.append(f"a request waits beside an idle connection or a free slot: {stats}")
        holding = sum(req.holds_or_awaits_a_connection() for req in self.requests)
        if stats.requests_active + stats.waiting != holding:
            problems.append(f"{holding} requests hold or await a connection, books: {stats}")
        entries = client._transport._pool._books.entries()
        entry_sockets = {
            socket_of(entry.http._stream)  # type: ignore[union-attr]
            for entry in entries
            if entry.http is not None
        }
        open_sockets = {sock for sock in self.injector.sockets if not sock.is_closed}
        if not entry_sockets <= open_sockets:
            problems.append("a connection the books count has a closed socket")
        if len(open_sockets - entry_sockets) > stats.connecting:
            problems.append(f"open sockets the books do not count: {open_sockets - entry_sockets}")
        nursery = client._nursery
        if nursery is None or len(nursery.child_tasks) != 1:
            problems.append("tasks other than housekeeping in the client's nursery")
        for req in self.requests:
            if req.state != "done":
                continue
            if req.outcome.startswith("unexpected"):
                problems.append(f"request {req.number} ended with {req.outcome}")
            if req.outcome == "Cancelled" and not req.cancelled_by_us:
                problems.append(f"request {req.number} was cancelled by someone else")
        return problems


class PoolMachine(RuleBasedStateMachine):
    """See the module docstring."""

    def __init__(self) -> None:
        super().__init__()
        self.thread = TrioThread()
        self.world = World()
        self.thread.call(self._start)

    async def _start(self) -> None:
        assert self.thread._nursery is not None
        await self.world.start(self.thread._nursery)

    def _live(self, states: tuple[str, ...]) -> list[Req]:
        return [req for req in self.world.requests if req.state in states]

    @precondition(lambda self: len(self._live(("pending", "open"))) < 6)
    @rule(path=st.sampled_from(["/ok", "/big", "/hold"]))
    def start_request(self, path: str) -> None:
        req = self.thread.call(self.world.start_request, path)
        note(f"request {req.number}: GET {path}")

    @precondition(lambda self: bool(self._live(("open",))))
    @rule(data=st.data())
    def read_chunk(self, data: st.DataObject) -> None:
        req = data.draw(st.sampled_from(self._live(("open",))))
        self.thread.call(self.world.command, req, "read")

    @precondition(lambda self: bool(self._live(("open",))))
    @rule(data=st.data())
    def close_response(self, data: st.DataObject) -> None:
        req = data.draw(st.sampled_from(self._live(("open",))))
        self.thread.call(self.world.command, req, "close")

    @precondition(lambda self: bool(self._live(("pending", "open"))))
    @rule(data=st.data())
    def cancel_request(self, data: st.DataObject) -> None:
        req = data.draw(st.sampled_from(self._live(("pending", "open"))))
        self.thread.call(self.world.cancel, req)

    @rule(index=st.integers(0, 3))
    def server_closes_a_connection(self, index: int) -> None:
        self.thread.call(self.world.server_close, index)

    @rule(seconds=st.sampled_from([0.5, 2.5, 3.5, 6.0]))
    def advance_clock(self, seconds: float) -> None:
        self.thread.call(self.world.jump, seconds)

    @invariant()
    def books_and_sockets(self) -> None:
        problems = self.thread.call(self.world.check)
        assert not problems, "\n".join(problems)

    def teardown(self) -> None:
        try:
            self.thread.call(self.world.finish)
            open_sockets = [s for s in self.world.injector.sockets if not s.is_closed]
            assert not open_sockets, f"sockets open after the client closed: {open_sockets}"
            assert self.world.exit_error is None, (
                f"leaving the client raised {self.world.exit_error!r}"
            )
        finally:
            self.thread.stop()


PoolMachine.TestCase.settings = settings(stateful_step_count=40)
test_pool_machine = PoolMachine.TestCase
