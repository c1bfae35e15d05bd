"""The HTTP/3 harness: scenarios over QUIC, interrupted at every step and every datagram.

Theory of operation
-------------------
A scenario (one GET, a streamed upload, a response stopped early, three concurrent GETs) runs
through ``Client(http3=True, http1=False, http2=False)`` against a raw QUIC peer
(servers.quic_raw) in the test's own Trio run. A counting run finds how many task steps the
scenario takes and which datagram operations its UDP sockets perform; then the scenario is
re-run with one interruption at a sampled position (harness.sample):

* ``cancel`` / ``ki``: after task step k of the scenario's tasks (not the server's, not the
  client's nursery) the caller's scope is cancelled, or a KeyboardInterrupt is delivered to
  the test task through Trio's own pending-KI machinery (as test_transport_sweep does);
* datagram faults, injected around ``open_udp``'s socket (``trioclient._transport._http3``
  calls it; :class:`UdpFaults` wraps what it returns): ``drop`` (operation k's datagram is
  lost, sent or received), ``eagain`` (send k fails with EAGAIN: the kernel dropped it),
  ``refused`` (from operation k on the socket reports ECONNREFUSED, as after an ICMP port
  unreachable).

What each run must show, with the faults disarmed (harness.run_in_client runs the scenario
inside ``async with Client()`` and the checks after it):

* what escaped is exactly the interruption (a Cancelled caught by the caller's scope, a
  KeyboardInterrupt, maybe in a group of nothing else) or nothing; a lost datagram is
  recovered by QUIC (nothing escapes); ECONNREFUSED is a trioclient TransportError, never an
  OSError;
* the books are quiet; the client's nursery runs its housekeeping task plus one QUIC task
  (``QuicDriver.run``) per pooled connection, and nothing else; a pooled connection is
  usable, holds no stream, no flow-control callback and no parked request or upload; every
  UDP socket the run opened is closed unless it belongs to a pooled connection, and no
  faulted one is pooled; every request-body generator that started was finalized;
* the next request on the same client works (over HTTP/3), and the books are quiet again;
* the interruption leaves ``async with Client()`` as the same object, and afterwards every
  UDP socket is closed and the books are empty (harness.check_closed).

The clock is real: QUIC's loss recovery and the server's timers need time to pass, which a
MockClock's autojump would turn into instant idle timeouts. Timeouts are generous (nothing
here may time out), each run has an outer bound, and positions are sampled, so a position
may land on another step in another run: every position lands somewhere, and the
invariants hold wherever.
"""

from __future__ import annotations

import errno
import sys
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import trio
import trio.testing
import trustme
from faults import flatten, only_cancelled
from harness import (
    FULL,
    SUMMARY,
    HarnessFailure,
    Protocol,
    TrackedBody,
    _seed_scheduler,
    assert_quiet,
    assert_tasks,
    check_closed,
    check_generators,
    internal,
    run_in_client,
    sample,
)
from servers.asgi_app import pattern_bytes
from servers.quic_raw import H3Request, QuicFactory, QuicHandler, serve_quic

import trioclient
from trioclient._transport import _http3

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup

__all__ = ["DATAGRAM_KINDS", "KINDS", "SCENARIOS", "STEP_KINDS", "H3Scenario", "sweep"]

STEP_KINDS = ("cancel", "ki")
DATAGRAM_KINDS = ("drop", "eagain", "refused")
KINDS = (*STEP_KINDS, *DATAGRAM_KINDS)
TIMEOUT = trioclient.Timeout(10.0)  # nothing may time out: QUIC recovers lost datagrams
RUN_BOUND = 60.0  # seconds one run may take before it fails instead of hanging the suite
STEP_POSITIONS = 200 if FULL else 40
DATAGRAM_POSITIONS = 80 if FULL else 16


# --- the protocol, as the shared checks see it ---------------------------------------------


def _h3_private_checks(http: Any, where: str) -> None:
    """A pooled HTTP/3 connection: usable, no stream left in its table or in the QUIC
    layer's flow-control callbacks, nobody parked for a stream slot or upload room. No
    statistic tells these, so they read trioclient's HTTP3Connection."""
    if http.error is not None or not http.is_usable:
        raise HarnessFailure(f"{where}: a failed or draining HTTP/3 connection is pooled")
    streams = internal(http, "_streams", "HTTP3Connection's stream table")
    if streams:
        raise HarnessFailure(f"{where}: an idle HTTP/3 connection holds streams {list(streams)}")
    quic = internal(http, "_quic", "HTTP3Connection's QuicConnection")
    credit = internal(quic, "stream_credit", "trioclient's per-stream credit callbacks")
    if credit:
        raise HarnessFailure(f"{where}: credit callbacks left for streams {list(credit)}")
    for name in ("_slots", "_window"):
        lot = internal(http, name, "HTTP3Connection's parking lots")
        if len(lot):
            raise HarnessFailure(f"{where}: {len(lot)} task(s) still parked in {name}")


HTTP3 = Protocol(
    "http3",
    "HTTP/3",
    connection_tasks=("run",),  # QuicDriver.run: datagrams and timers
    phases=frozenset(),  # faults.py's TCP phases do not apply: datagram ops are counted here
    check_pooled=_h3_private_checks,
)


# --- datagram faults around open_udp -------------------------------------------------------


class FaultUdp:
    """A UDP socket from ``open_udp``, with every datagram operation numbered by
    :class:`UdpFaults` (a receive counts only when it returned a datagram)."""

    def __init__(self, inner: Any, faults: UdpFaults) -> None:
        self._inner = inner
        self._faults = faults
        self.dead: str | None = None  # "refused": every later operation fails

    @property
    def is_closed(self) -> bool:
        return bool(self._inner.fileno() == -1)

    def fileno(self) -> int:
        return int(self._inner.fileno())

    def getpeername(self) -> Any:
        return self._inner.getpeername()

    def close(self) -> None:
        self._inner.close()

    def _refused(self) -> OSError:
        return ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused (injected)")

    def send(self, data: bytes) -> int:
        if self.dead is not None:
            raise self._refused()
        fault = self._faults.operation("send")
        if fault == "refused":
            self.dead = fault
            raise self._refused()
        if fault == "drop":
            return len(data)  # sent, as far as the caller can tell
        if fault == "eagain":
            raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable (injected)")
        return int(self._inner.send(data))

    def recv(self, size: int) -> bytes:
        if self.dead is not None:
            raise self._refused()
        data = bytes(self._inner.recv(size))  # BlockingIOError: nothing to count
        fault = self._faults.operation("recv")
        if fault == "refused":
            self.dead = fault
            raise self._refused()
        if fault == "drop":
            raise BlockingIOError(errno.EAGAIN, "the datagram was lost (injected)")
        return data

    def __repr__(self) -> str:
        state = "closed" if self.is_closed else "open"
        return f"<FaultUdp {state}{' ' + self.dead if self.dead else ''}>"


class UdpFaults:
    """Wraps ``open_udp`` (as ``trioclient._transport._http3`` calls it) while installed:
    numbers every datagram operation and fires `kind` at operation `at`. The injector
    interface harness.run_in_client and check_closed use: ``installed``, ``disarm``,
    ``sockets``."""

    def __init__(self, kind: str | None = None, at: int = -1) -> None:
        self.kind, self.at = kind, at
        self.sockets: list[FaultUdp] = []
        self.ops: list[str] = []
        self.armed = True
        self.fired = False

    def operation(self, name: str) -> str | None:
        index = len(self.ops)
        self.ops.append(name)
        if not self.armed or index != self.at or self.kind is None:
            return None
        if self.kind == "eagain" and name != "send":
            return None  # only a send can be refused by a full buffer
        self.fired = True
        return self.kind

    def disarm(self) -> None:
        self.armed = False

    @contextmanager
    def installed(self) -> Iterator[None]:
        original = internal(_http3, "open_udp", "the seam that opens a QUIC connection's socket")

        async def open_udp(host: str, port: int, local_address: str | None) -> Any:
            sock = FaultUdp(await original(host, port, local_address), self)
            self.sockets.append(sock)
            return sock

        _http3.open_udp = open_udp  # type: ignore[assignment]
        try:
            yield
        finally:
            _http3.open_udp = original


# --- task steps ----------------------------------------------------------------------------


class Steps(trio.abc.Instrument):
    """Counts the steps of the scenario's tasks (the test task and what it starts, minus the
    ``excluded`` nurseries: the server's, the client's); after step ``at`` cancels the
    caller's scope (``cancel``) or makes Trio deliver a KeyboardInterrupt to the test task
    (``ki``; it stands in as the run's main task while armed, as in test_transport_sweep)."""

    def __init__(self, kind: str | None, at: int) -> None:
        self.kind, self.at = kind, at
        self.root = trio.lowlevel.current_task()
        self.runner: Any = internal(
            trio._core._run.GLOBAL_RUN_CONTEXT, "runner", "Trio's runner (pending KI)"
        )
        self.excluded: set[trio.Nursery] = set()
        self.caller: trio.CancelScope | None = None
        self.main_task: trio.lowlevel.Task | None = None
        self.active = False
        self.steps = 0
        self.fired = False
        self.ki_delivered = False

    def arm(self, caller: trio.CancelScope) -> None:
        self.caller, self.active = caller, True
        self.main_task, self.runner.main_task = self.runner.main_task, self.root

    def disarm(self) -> None:
        if self.active:
            self.active = False
            if self.kind == "ki" and self.fired:
                self.ki_delivered = not self.runner.ki_pending
            self.runner.ki_pending = False
            self.runner.main_task = self.main_task

    def _in_scenario(self, task: trio.lowlevel.Task) -> bool:
        current: trio.lowlevel.Task | None = task
        while current is not None:
            if current is self.root:
                return True
            nursery = current.parent_nursery
            if nursery is None or nursery in self.excluded:
                return False
            current = nursery.parent_task
        return False

    def after_task_step(self, task: trio.lowlevel.Task) -> None:
        if not self.active or not self._in_scenario(task):
            return
        step, self.steps = self.steps, self.steps + 1
        if step != self.at or self.kind is None:
            return
        self.fired = True
        if self.kind == "cancel":
            assert self.caller is not None
            self.caller.cancel()
        else:
            self.runner.ki_pending = True
            if self.root._abort_func is not None:  # blocked at a cancel point now
                self.root._attempt_delivery_of_pending_ki()


# --- the server and the scenarios ----------------------------------------------------------


class Serve(QuicHandler):
    """``GET /bytes/N``: pattern_bytes(N); ``POST /echo``: the body back; ``/ok``: ok."""

    async def on_request(self, request: H3Request) -> None:
        parts = request.path.strip("/").split("/")
        if parts[0] == "bytes":
            body = pattern_bytes(int(parts[1]))
        elif parts[0] == "echo":
            body = bytes(request.body)
        else:
            body = b"ok"
        headers = [("content-length", str(len(body)))]
        self.conn.send_response(request.stream_id, 200, headers, body)


Body = Callable[[trioclient.Client, str, list[TrackedBody]], Awaitable[None]]


@dataclass(frozen=True)
class H3Scenario:
    name: str
    body: Body

    def __str__(self) -> str:
        return self.name


async def _get(client: trioclient.Client, url: str, size: int) -> None:
    response = await client.get(f"{url}/bytes/{size}")
    assert response.http_version == "HTTP/3", response.http_version
    assert response.content == pattern_bytes(size), len(response.content)


async def get_one(client: trioclient.Client, url: str, bodies: list[TrackedBody]) -> None:
    await _get(client, url, 3000)


async def post_streamed(client: trioclient.Client, url: str, bodies: list[TrackedBody]) -> None:
    body = TrackedBody([b"a" * 20_000, b"b" * 20_000, b"c" * 20_000])
    bodies.append(body)
    response = await client.post(f"{url}/echo", content=body.generate())
    assert response.content == b"".join(body.chunks), len(response.content)


async def stop_early(client: trioclient.Client, url: str, bodies: list[TrackedBody]) -> None:
    async with client.stream("GET", f"{url}/bytes/300000") as response:
        async for chunk in response.aiter_bytes():
            assert chunk
            break


async def concurrent(client: trioclient.Client, url: str, bodies: list[TrackedBody]) -> None:
    async with trio.open_nursery() as nursery:
        for size in (1000, 2000, 3000):
            nursery.start_soon(_get, client, url, size)


SCENARIOS = [
    H3Scenario("get", get_one),
    H3Scenario("post-streamed-body", post_streamed),
    H3Scenario("stop-reading-early", stop_early),
    H3Scenario("three-concurrent-gets", concurrent),
]


# --- one run ---------------------------------------------------------------------------------


def _judge(kind: str | None, error: BaseException | None, steps: Steps, where: str) -> str:
    """What escaped the scenario must be what the fault allows; returns the outcome's name."""
    leaves = flatten(error)
    if kind == "ki" and steps.ki_delivered:
        if not leaves or not all(type(leaf) is KeyboardInterrupt for leaf in leaves):
            raise HarnessFailure(f"{where}: the KeyboardInterrupt became {error!r}") from error
        return "KeyboardInterrupt"
    refused = kind == "refused" and leaves
    if refused and all(isinstance(leaf, trioclient.TransportError) for leaf in leaves):
        return type(leaves[0]).__name__
    if error is not None:
        raise HarnessFailure(f"{where}: raised {error!r}") from error
    return "completed"


def _check_h3_connections(client: trioclient.Client, faults: UdpFaults, where: str) -> None:
    """harness.check_connections for HTTP/3: the books, the tasks, the pooled connections'
    private state, and which UDP sockets are still open."""
    assert_quiet(client, where)
    transport = client._transport
    assert isinstance(transport, trioclient.HTTPTransport)
    live = [stats for stats in transport.connection_statistics() if not stats.is_closed]
    for stats in live:
        if stats.http_version != "HTTP/3" or stats.in_use:
            raise HarnessFailure(f"{where}: expected an idle HTTP/3 connection: {stats}")
    assert_tasks(client, HTTP3, len(live), where)
    # Private: each pooled connection's HTTP3Connection (no statistic names its socket).
    pool = internal(transport, "_pool", "HTTPTransport's ConnectionPool")
    books = internal(pool, "_books", "the pool's books")
    drivers = [c.http for c in books.entries() if not c.is_closed and c.http is not None]
    if len(drivers) != len(live):
        raise HarnessFailure(f"{where}: {len(drivers)} drivers for {len(live)} connections")
    pooled = []
    for http in drivers:
        _h3_private_checks(http, where)
        pooled.append(internal(internal(http, "_driver", "the QUIC driver"), "sock", "its socket"))
    for sock in faults.sockets:
        if sock.is_closed:
            continue
        if sock not in pooled:
            raise HarnessFailure(f"{where}: {sock!r} is open but belongs to no pooled connection")
        if sock.dead is not None:
            raise HarnessFailure(f"{where}: faulted {sock!r} is still pooled")


@dataclass
class RunResult:
    outcome: str
    steps: int
    ops: list[str]


async def run_once(
    scenario: H3Scenario, kind: str | None, at: int, certificate: trustme.LeafCert, ca: str
) -> RunResult:
    """Run `scenario` once with `kind` at position `at` (None: a counting run)."""
    try:
        return await _run_once(scenario, kind, at, certificate, ca)
    except BaseExceptionGroup as group:  # the server's nursery wraps a failed check
        failures = [leaf for leaf in flatten(group) if isinstance(leaf, HarnessFailure)]
        if failures:
            raise failures[0] from group
        raise


async def _run_once(
    scenario: H3Scenario, kind: str | None, at: int, certificate: trustme.LeafCert, ca: str
) -> RunResult:
    _seed_scheduler(0)
    where = f"{scenario.name} {kind} @{at}"
    faults = UdpFaults(kind if kind in DATAGRAM_KINDS else None, at)
    steps = Steps(kind if kind in STEP_KINDS else None, at)
    bodies: list[TrackedBody] = []
    escaped: BaseException | None = None
    caller = trio.CancelScope()
    outcome = "completed"
    with trio.fail_after(RUN_BOUND):
        async with trio.open_nursery() as server_nursery:
            steps.excluded.add(server_nursery)  # the server's tasks are not the scenario's
            server = await serve_quic(server_nursery, QuicFactory(Serve), certificate=certificate)
            client = trioclient.Client(
                http3=True,
                http1=False,
                http2=False,
                verify=ca,
                timeout=TIMEOUT,
            )

            async def run_scenario() -> None:
                nonlocal escaped
                trio.lowlevel.add_instrument(steps)
                try:
                    with caller:
                        steps.arm(caller)
                        try:
                            await scenario.body(client, server.url, bodies)
                        except BaseException as exc:
                            if only_cancelled(exc):
                                raise  # for the caller's scope (a group, from a nursery)
                            escaped = exc
                        finally:
                            steps.disarm()
                finally:
                    trio.lowlevel.remove_instrument(steps)

            async def check() -> tuple[BaseException | None, bool]:
                nonlocal outcome
                outcome = _judge(kind, escaped, steps, where)
                if caller.cancelled_caught:
                    outcome = "Cancelled"
                # A connection that failed closed its socket, which wakes its task to end:
                # let every task run until it blocks before the tasks are counted.
                await trio.testing.wait_all_tasks_blocked()
                _check_h3_connections(client, faults, f"{where} (after the interruption)")
                check_generators(bodies, where)
                try:
                    response = await client.get(f"{server.url}/ok")
                except Exception as exc:
                    raise HarnessFailure(f"{where}: the next request failed: {exc!r}") from exc
                if response.content != b"ok" or response.http_version != "HTTP/3":
                    raise HarnessFailure(f"{where}: the next request got {response!r}")
                await trio.testing.wait_all_tasks_blocked()
                _check_h3_connections(client, faults, f"{where} (after the next request)")
                reraise = escaped if outcome == "KeyboardInterrupt" else None
                return reraise, caller.cancelled_caught

            await run_in_client(
                client,
                faults,  # type: ignore[arg-type]
                where,
                excluded=steps.excluded,
                scenario=run_scenario,
                check=check,
            )
            check_closed(client, faults, where)  # type: ignore[arg-type]
            server_nursery.cancel_scope.cancel()
    return RunResult(outcome, steps.steps, faults.ops)


@dataclass
class SweepResult:
    steps: int
    ops: int
    runs: int = 0
    failures: list[str] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)


async def sweep(
    scenario: H3Scenario, kinds: tuple[str, ...], certificate: trustme.LeafCert, ca: str
) -> SweepResult:
    """A counting run, then one run per sampled position of each kind."""
    counted = await run_once(scenario, None, -1, certificate, ca)
    if counted.outcome != "completed" or counted.steps == 0 or not counted.ops:
        raise HarnessFailure(f"{scenario.name}: the counting run: {counted}")
    result = SweepResult(counted.steps, len(counted.ops))
    for kind in kinds:
        if kind in STEP_KINDS:
            positions = sample(["step"] * counted.steps, STEP_POSITIONS)
        else:
            positions = sample(counted.ops, DATAGRAM_POSITIONS)
        for at in positions:
            result.runs += 1
            try:
                run = await run_once(scenario, kind, at, certificate, ca)
            except HarnessFailure as failure:
                result.failures.append(str(failure))
                result.outcomes[f"{kind}:FAILED"] += 1
            else:
                result.outcomes[f"{kind}:{run.outcome}"] += 1
    SUMMARY.append(
        f"http3 sweep {scenario.name} ({'/'.join(kinds)}): {counted.steps} steps, "
        f"{len(counted.ops)} datagram ops, {result.runs} runs, {len(result.failures)} failures;"
        f" {dict(sorted(result.outcomes.items()))}"
    )
    return result
