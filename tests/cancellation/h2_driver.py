"""The HTTP/2 driver of the cancellation harness: a multiplexed scenario, one fault, checks.

Theory of operation
-------------------
On an HTTP/2 connection the socket is read and written by the connection's reader and
writer tasks (in the client's nursery), never by the request tasks. So the two families of
faults are injected in different places:

* peer faults (``reset`` / ``eof`` / ``broken``) at socket operation k of the run, through
  :class:`faults.FaultInjector` as for HTTP/1.1; whichever task does operation k (a request
  connecting, the reader, the writer), every later operation on that socket fails, and an
  operation blocked on it is woken and fails too. Every request must then either return its
  correct body or raise a trioclient ``TransportError`` (never a raw error, never a hang: a
  hang would end in a timeout, which is reported as a failure), and the faulted connection
  must be gone from the pool;
* caller-side interruptions of ONE request, the *victim*, while its siblings share the
  connection: :class:`VictimSteps` counts steps while the victim's request runs and, after
  step k, cancels the victim's own cancel scope (``cancel-*``) or makes a KeyboardInterrupt
  pending for it (``ki-*``), delivered exactly as Trio delivers a pending KeyboardInterrupt
  to the main task: through the task's abort function at its current or next cancel point,
  shielded or not. ``*-at-step`` counts the victim's own steps (and those of the Happy
  Eyeballs tasks it starts): every checkpoint of its request. ``*-at-any-step`` counts the
  steps of every task of the run (siblings, the connection's reader and writer, the server),
  so the fault reaches the victim at every moment of the multiplexed exchange, e.g. woken
  with data buffered but not yet read. In these sweeps every response drips in 4 pieces 0.1 s
  apart, so the victim's stream is still open on the server when it is interrupted. Or
  (``timeout``) the server stalls only the victim's stream (no head / half a body / no
  flow-control credit for its upload) and the victim has a small per-request read/write
  timeout; the siblings' responses drip, so the timeout lands at a chosen point of their
  progress.

Every run uses a ``MockClock`` that jumps whenever every task is blocked (pytest-trio's
``autojump_clock``): the drips and the timeouts cost no real time, and a hang ends in a
trioclient timeout, reported as a failure, instead of blocking the suite.

The victim runs in the task that opened the siblings' nursery and catches what its request
raises: that task stands for a program's main task (where Trio delivers KeyboardInterrupt)
catching Ctrl-C around one download while background downloads go on. ``victim_first``
starts it before the siblings get to run (it opens the connection and the siblings wait for
it); otherwise it starts one schedule point later and waits for the connection a sibling
opens. In the upload scenario the victim's body comes from an async generator.

Each run goes through :func:`harness.run_in_client` with :data:`harness.HTTP2`. After the
scenario, still inside ``async with Client()``, once every task is blocked, besides the
shared invariants of :func:`harness.check_connections` (which, for HTTP/2, include: on
every pooled connection h2 counts no open stream (httpcore #1022), every received byte was
acknowledged to h2, no error is set, and the nursery runs a reader and a writer per live
connection):

* the victim raised exactly what was injected (a Cancelled caught by its own scope, the very
  KeyboardInterrupt instance, the right TimeoutException subclass), or completed with its
  correct body if the fault came after its last checkpoint; every sibling got its correct
  body (caller-side faults); an async-generator request body is not left suspended;
* the server recorded RST_STREAM(CANCEL) for the victim's stream if the stream was open on the
  wire when the victim gave up (the server had its HEADERS, had not yet sent the end of its
  response, and the connection is still open), none if the victim read its response to the
  end, and never one for a sibling;
* every ``HTTP2Connection`` of the run has an empty stream table;
* caller-side faults: all the siblings were served on one connection, which is still pooled;
  a follow-up request reuses it (no new socket, no new server connection). Peer faults and
  GOAWAY scenarios: a follow-up request succeeds, reusing an idle connection if there is
  one, else on exactly one new connection; then the same checks again.

Private state read here (no statistic answers it; each read goes through
:func:`harness.internal`, which fails loudly when it is gone): every ``HTTP2Connection``
started during the run (``HTTP2Connection.start`` is wrapped) and its stream table
``_streams``. The KeyboardInterrupt delivery (``h2_interrupts.py``) uses Trio's private
``Task._abort_func`` / ``Task._attempt_abort`` (the very calls Trio makes for a pending
KeyboardInterrupt).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import trio
import trio.testing
from faults import PEER_KINDS, FaultInjector, Injection, Kind
from h2.errors import ErrorCodes
from h2_interrupts import VictimSteps
from h2_scenario import (
    _TIMEOUT_CLASS,
    CALLER_KINDS,
    H2_TIMEOUT,
    SEQUENCE,
    STEP_KINDS,
    H2Outcome,
    H2Plan,
    H2Scenario,
    Mux,
    Req,
    ServerRecord,
    Tls,
    _describe,
)
from harness import (
    HTTP2,
    HarnessFailure,
    TrackedBody,
    _seed_scheduler,
    check_connections,
    check_generators,
    internal,
    require_phases,
    run_in_client,
    sample,
)
from servers.h2_raw import H2ServerConnection, HandlerFactory, serve_h2

import trioclient
from trioclient._transport._http2 import HTTP2Connection

__all__ = [
    "CALLER_KINDS",
    "STEP_KINDS",
    "H2Outcome",
    "H2Plan",
    "H2Scenario",
    "Req",
    "Tls",
    "VictimSteps",
    "run_h2",
    "sample",
]

# --- one run ------------------------------------------------------------------------------


@contextmanager
def recording_h2_connections() -> Iterator[list[HTTP2Connection]]:
    """Every HTTP2Connection started while the block runs."""
    made: list[HTTP2Connection] = []
    # Private: no statistic lists the connections that were started and are gone since;
    # their stream tables must be empty too.
    original = internal(HTTP2Connection, "start", "trioclient's HTTP/2 driver start-up")

    def start(self: HTTP2Connection, nursery: trio.Nursery) -> None:
        made.append(self)
        original(self, nursery)

    HTTP2Connection.start = start  # type: ignore[method-assign]
    try:
        yield made
    finally:
        HTTP2Connection.start = original  # type: ignore[method-assign]


@dataclass
class _Run:
    """The state of one run."""

    scenario: H2Scenario
    plan: H2Plan
    url: str
    injector: FaultInjector
    steps: VictimSteps
    factory: HandlerFactory
    made: list[HTTP2Connection]
    where: str
    victim: Req = field(init=False)
    results: dict[int, bytes | BaseException] = field(default_factory=dict)  # -1: the victim
    scope: trio.CancelScope | None = None  # the victim's
    victim_done: int = -1  # when (SEQUENCE) the victim's request ended
    bodies: list[TrackedBody] = field(default_factory=list)  # streamed uploads

    def __post_init__(self) -> None:
        plan, victim = self.plan, self.scenario.victim
        if plan.kind == "timeout":
            self.victim = victim.but(stall=plan.stall)
        elif plan.kind in STEP_KINDS:
            self.victim = victim.but(drip=True)  # its stream is open most of the time
        else:
            self.victim = victim

    def siblings(self) -> tuple[Req, ...]:
        if self.plan.kind in CALLER_KINDS:
            return tuple(req.but(drip=True) for req in self.scenario.siblings)
        return self.scenario.siblings


async def run_h2(
    scenario: H2Scenario, plan: H2Plan, tls: Tls | None, *, seed: int = 0
) -> H2Outcome:
    """Run `scenario` once with `plan` against a fresh raw h2 server; check the invariants."""
    _seed_scheduler(seed)
    where = f"{scenario.name}: {plan} (seed {seed})"
    peer = plan.kind in {kind.value for kind in PEER_KINDS}
    plans = (Injection(Kind(plan.kind), plan.index),) if peer else ()
    injector = FaultInjector(*plans)
    steps = VictimSteps(plan.kind, plan.index)
    record = ServerRecord(goaway_after=scenario.goaway_after)
    factory = HandlerFactory(partial(Mux, record, scenario.window))
    async with trio.open_nursery() as server_nursery:
        steps.excluded.add(server_nursery)  # the server's tasks are not the victim's steps
        url = await serve_h2(
            server_nursery, factory, tls=tls.server if scenario.tls and tls else None
        )
        options: dict[str, Any] = {
            "timeout": H2_TIMEOUT,
            "limits": trioclient.Limits(
                max_connections=10, max_keepalive_connections=10, keepalive_expiry=None
            ),
            **HTTP2.client_options(scenario.tls),
        }
        if scenario.tls:
            assert tls is not None
            options["verify"] = tls.client
        client = trioclient.Client(**options)
        trio.lowlevel.add_instrument(steps)
        failure: HarnessFailure | None = None
        try:
            with recording_h2_connections() as made:
                run = _Run(scenario, plan, url, injector, steps, factory, made, where)
                outcome = await _run_client(run, client)
        except HarnessFailure as exc:
            failure = exc  # raised below, outside the server's nursery (no ExceptionGroup)
        finally:
            trio.lowlevel.remove_instrument(steps)
            server_nursery.cancel_scope.cancel()
    if failure is not None:
        raise failure
    return outcome


async def _fetch(
    client: trioclient.Client,
    url: str,
    req: Req,
    timeout: trioclient.Timeout | None = None,
    bodies: list[TrackedBody] | None = None,
) -> bytes:
    """The victim's request: the response body is streamed chunk by chunk, as a downloading
    program would (the siblings use ``client.request``, which reads it all)."""
    content: Any = req.content
    if req.streamed and content is not None:
        tracked = TrackedBody([content[i : i + 10_000] for i in range(0, len(content), 10_000)])
        assert bodies is not None
        bodies.append(tracked)
        content = tracked.generate()
    options: dict[str, Any] = {"content": content}
    if timeout is not None:
        options["timeout"] = timeout
    async with client.stream(req.method, url + req.path, **options) as response:
        chunks = [chunk async for chunk in response.aiter_bytes()]
    if response.status_code != 200 or response.http_version != "HTTP/2":
        raise HarnessFailure(f"{req.path}: {response.status_code} {response.http_version}")
    return b"".join(chunks)


async def _exchange(run: _Run, client: trioclient.Client) -> None:
    plan = run.plan

    async def sibling(index: int, req: Req) -> None:
        try:
            response = await client.request(req.method, run.url + req.path, content=req.content)
        except trioclient.HTTPError as exc:
            run.results[index] = exc
            return
        if response.status_code != 200 or response.http_version != "HTTP/2":
            raise HarnessFailure(f"{req.path}: {response.status_code} {response.http_version}")
        run.results[index] = response.content

    timeout = None
    if plan.kind == "timeout":
        timeout = trioclient.Timeout(H2_TIMEOUT, read=plan.after, write=plan.after)
    async with trio.open_nursery() as nursery:
        run.steps.excluded.add(nursery)
        for index, req in enumerate(run.siblings()):
            nursery.start_soon(sibling, index, req)
        if not plan.victim_first:
            await trio.lowlevel.checkpoint()  # a sibling starts the connection
        with trio.CancelScope() as run.scope:
            run.steps.start(run.scope)
            try:
                run.results[-1] = await _fetch(client, run.url, run.victim, timeout, run.bodies)
            except (KeyboardInterrupt, trioclient.HTTPError) as exc:
                run.results[-1] = exc
            finally:
                run.victim_done = next(SEQUENCE)  # (its stream was given up just before)
                run.steps.active = False


async def _run_client(run: _Run, client: trioclient.Client) -> H2Outcome:
    injector, where = run.injector, run.where
    result = ""
    ops: list[str] = []
    sockets = 0

    async def scenario() -> None:
        try:
            await _exchange(run, client)
        except BaseException as exc:
            raise HarnessFailure(f"{where}: the scenario raised {exc!r}") from exc

    async def check() -> tuple[BaseException | None, bool]:
        nonlocal result, ops, sockets
        if run.plan.kind is None:  # a clean counting run: each phase classified
            require_phases(injector.ops, HTTP2.expected_phases(run.scenario.tls), where)
        ops = [f"{op.phase} #{op.socket}" for op in injector.ops]
        sockets = len(injector.sockets)
        await trio.testing.wait_all_tasks_blocked()
        result, escaped = _judge(run)
        wire = await _check_state(run, client)
        if wire:
            result = f"{result} [{wire}]"
        await _follow_up(run, client)
        assert run.scope is not None
        return escaped, run.scope.cancelled_caught

    await run_in_client(
        client, injector, where, excluded=run.steps.excluded, scenario=scenario, check=check
    )
    fired: str | None = None
    if run.plan.kind == "timeout":
        fired = f"{run.plan.stall} stalled"
    else:
        fired = injector.fired.phase if injector.fired is not None else run.steps.fired
    return H2Outcome(fired, result, ops, run.steps.labels, run.steps.all_steps, sockets)


# --- the invariants -----------------------------------------------------------------------


def _judge(run: _Run) -> tuple[str, BaseException | None]:
    """Check every request's result against the fault; return a label and what to re-raise."""
    plan, where = run.plan, run.where
    kind = plan.kind
    requests = {-1: run.victim, **dict(enumerate(run.siblings()))}
    missing = [index for index in requests if index not in run.results]
    assert run.scope is not None
    if missing and not (missing == [-1] and run.scope.cancelled_caught):
        raise HarnessFailure(f"{where}: requests {missing} neither returned nor raised")
    if kind is None or kind in {k.value for k in PEER_KINDS}:
        fired = run.injector.fired
        at = f"{where}, fired at {fired}" if fired is not None else where
        labels: Counter[str] = Counter()
        first_error: BaseException | None = None
        for index, req in requests.items():
            result = run.results[index]
            if isinstance(result, bytes) and result == req.expected:
                labels["ok"] += 1
                continue
            if (
                fired is None
                or not isinstance(result, trioclient.TransportError)
                or isinstance(result, trioclient.TimeoutException)
            ):
                raise HarnessFailure(
                    f"{at}: {req.path} gave {_describe(result, req.expected)}, expected its body"
                    + ("" if fired is None else " or a TransportError")
                )
            labels[type(result).__name__] += 1
            first_error = first_error or result
        if kind is None:
            return "clean", None
        if fired is None:
            return "not reached", None
        return " ".join(f"{n} {label}" for label, n in sorted(labels.items())), first_error
    # Caller-side faults: the siblings are untouchable.
    for index, req in enumerate(run.siblings()):
        sibling = run.results[index]
        if not (isinstance(sibling, bytes) and sibling == req.expected):
            raise HarnessFailure(
                f"{where}: sibling {req.path} gave {_describe(sibling, req.expected)}"
            )
    got = run.results.get(-1)
    steps = run.steps
    if isinstance(got, bytes):
        if got != run.victim.expected:
            raise HarnessFailure(
                f"{where}: the victim completed with {_describe(got, run.victim.expected)}"
            )
        if kind == "timeout":
            raise HarnessFailure(f"{where}: the stalled victim completed")
        if steps.interrupt is not None:
            raise HarnessFailure(f"{where}: the KeyboardInterrupt delivered was swallowed")
        if run.scope.cancelled_caught:
            raise HarnessFailure(f"{where}: the victim completed and was also cancelled")
        return "completed", None
    if kind in ("cancel-at-step", "cancel-at-any-step"):
        if got is not None or not run.scope.cancelled_caught:
            raise HarnessFailure(f"{where}, {steps.fired}: cancellation came out as {got!r}")
        return "Cancelled", None
    if kind in ("ki-at-step", "ki-at-any-step"):
        if got is None or got is not steps.interrupt:
            raise HarnessFailure(
                f"{where}, {steps.fired}: KeyboardInterrupt came out as {got!r}, not unchanged"
            )
        return "KeyboardInterrupt", got
    assert kind == "timeout"
    assert plan.stall is not None
    expected = _TIMEOUT_CLASS[plan.stall]
    if type(got) is not expected:
        raise HarnessFailure(f"{where}: expected {expected.__name__}, got {got!r}")
    assert got is not None
    return expected.__name__, got


def _check_books_and_tasks(run: _Run, client: trioclient.Client, when: str) -> None:
    where = f"{run.where} ({when})"
    check_connections(client, HTTP2, run.injector, where)
    for http in run.made:
        # Private: ConnectionStatistics counts the pool's streams, not the driver's table.
        streams = internal(http, "_streams", "HTTP2Connection's stream table")
        if streams:
            raise HarnessFailure(
                f"{where}: streams left in the table of {http.where}: {sorted(streams)}"
            )


def _check_resets(run: _Run) -> str:
    """RST_STREAM(CANCEL) for the victim's stream if it was open on the wire; no other.

    Returns what became of the victim's (last) stream on the wire: "RST" (reset),
    "unsent" (the server never saw it), "answered" (the server had finished its response
    before the victim gave up),
    "unprocessed" (above a GOAWAY), "closed" (its connection closed, e.g. after GOAWAY).
    """
    victim_path = run.victim.path
    wire = "unsent"
    completed = isinstance(run.results.get(-1), bytes)
    for conn in run.factory.connections:
        goaway = conn.goaway_sent
        handler = conn.handler
        assert isinstance(handler, Mux)
        resets: dict[int, list[int]] = {}
        for stream_id, code in conn.resets:
            resets.setdefault(stream_id, []).append(code)
        for stream_id, codes in resets.items():
            request = conn.requests.get(stream_id)
            if request is None or request.path != victim_path:
                path = None if request is None else request.path
                raise HarnessFailure(
                    f"{run.where}: RST_STREAM{codes} on stream {stream_id} ({path}), "
                    "not the victim's"
                )
            if set(codes) - {ErrorCodes.CANCEL, ErrorCodes.STREAM_CLOSED}:
                raise HarnessFailure(f"{run.where}: the victim's stream reset with {codes}")
        for stream_id, request in conn.requests.items():
            if request.path != victim_path:
                continue
            codes = resets.get(stream_id, [])
            if completed and codes:
                raise HarnessFailure(
                    f"{run.where}: the victim completed, yet its stream {stream_id} was "
                    f"reset {codes}"
                )
            unprocessed = request.ignored or (goaway is not None and stream_id > goaway[0])
            answered = handler.finished.get(stream_id, run.victim_done) < run.victim_done
            if ErrorCodes.CANCEL in codes:
                wire = "RST"
            elif answered or completed:
                wire = "answered"
            elif unprocessed:
                wire = "unprocessed"
            elif conn.peer_closed:
                wire = "closed"
            else:
                raise HarnessFailure(
                    f"{run.where}, {run.steps.fired}: the victim's stream {stream_id} was left "
                    f"open on the wire: no RST_STREAM(CANCEL) (resets seen: {conn.resets})"
                )
    return wire


async def _check_state(run: _Run, client: trioclient.Client) -> str:
    """The invariants after the scenario; returns what became of the victim's stream."""
    check_generators(run.bodies, run.where)
    _check_books_and_tasks(run, client, "after the scenario")
    if run.plan.kind in CALLER_KINDS:
        return _check_resets(run)
    return ""


async def _follow_up(run: _Run, client: trioclient.Client) -> None:
    """One more request: reuses the (only) idle connection, or opens exactly one."""
    where = f"{run.where} (follow-up)"
    caller_side = run.plan.kind in CALLER_KINDS and run.scenario.goaway_after is None
    idle = client.pool_statistics().idle
    serving: list[H2ServerConnection] = []
    if caller_side:
        paths = {req.path for req in run.siblings()}
        serving = [
            conn
            for conn in run.factory.connections
            if paths & {req.path for req in conn.requests.values()}
        ]
        if len(serving) != 1 or idle != 1:
            raise HarnessFailure(
                f"{where}: the siblings used {len(serving)} connections; {idle} idle in the pool"
            )
    sockets = len(run.injector.sockets)
    server_connections = len(run.factory.connections)
    req = Req("GET", 1000, 99)
    try:
        got = await _fetch(client, run.url, req)
    except trioclient.HTTPError as exc:
        raise HarnessFailure(f"{where}: failed: {exc!r}") from exc
    if got != req.expected:
        raise HarnessFailure(f"{where}: {_describe(got, req.expected)}")
    new = len(run.injector.sockets) - sockets
    if new != (0 if idle else 1):
        raise HarnessFailure(f"{where}: {new} new sockets with {idle} idle connections pooled")
    if idle and len(run.factory.connections) != server_connections:
        raise HarnessFailure(f"{where}: the server saw a new connection")
    if caller_side and req.path not in {r.path for r in serving[0].requests.values()}:
        raise HarnessFailure(f"{where}: not served on the siblings' connection")
    await trio.testing.wait_all_tasks_blocked()
    _check_books_and_tasks(run, client, "after the follow-up")
