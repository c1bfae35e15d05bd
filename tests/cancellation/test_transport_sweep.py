"""The in-process transports, interrupted at every step: MockTransport and ASGITransport.

Theory of operation
-------------------
No sockets here, so the socket-level injector of ``faults.py`` has nothing to count. Instead
:class:`Interrupter`, a Trio instrument, counts the *steps* of the scenario's tasks (the test
task, and the ASGI app tasks the request starts in the client's nursery). A counting run
finds a scenario's N steps; then the scenario is re-run once per position k < N and kind:

* ``cancel``: right after step k the caller's cancel scope is cancelled (as ``StepCanceller``
  does): the test task gets ``Cancelled`` at the checkpoint it is blocked at, or its next one;
* ``ki``: right after step k Trio's own pending-``KeyboardInterrupt`` machinery is armed for
  the test task (it stands in as the run's main task while the scenario runs): Trio raises
  the KI at the task's next cancel point, shielded or not, as it does for a Ctrl-C that hit
  KI-protected code. App tasks never get it (Trio sends KI to the main task only).

After each run, inside ``async with Client()``: what escaped is either nothing or exactly the
injected exception (a ``Cancelled`` caught by the caller's scope; a bare ``KeyboardInterrupt``,
never wrapped); the clock is advanced past ``disconnect_grace`` (``MockClock`` autojump); the
client's nursery holds no task beyond those it held before the request; the transport holds
nothing (ASGI: no exchange; Mock: no open response); every app, handler and body generator
that started has run its ``finally`` (abandoned body generators are closed at once); one
more request on the same client succeeds; and the exception then leaves ``async with
Client()`` as the same object. Scheduling is seeded per run (as ``h1_driver.run_scenario``
does) so a failing position replays.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
import trio
import trio.lowlevel
import trio.testing
from harness import SUMMARY as HARNESS_SUMMARY
from harness import _seed_scheduler

import trioclient
from trioclient import ASGITransport, MockTransport, Response

GRACE = 0.25
KINDS = ("cancel", "ki")
# Per scenario: (injected runs, failures, outcomes) -- also in the "cancellation harness"
# section of the terminal summary.
SUMMARY: dict[str, tuple[int, int, dict[str, int]]] = {}


class SweepFailure(AssertionError):
    """An invariant failed after an injected run."""


# --- what the scenario's own code did ------------------------------------------------------


class Tracker:
    """Records which pieces of the scenario's code (apps, handlers, generators) are still
    inside their ``try`` (started, ``finally`` not yet run)."""

    def __init__(self) -> None:
        self.alive: Counter[str] = Counter()
        self.generators: list[AsyncGenerator[bytes, None]] = []

    @contextmanager
    def life(self, name: str) -> Iterator[None]:
        self.alive[name] += 1
        try:
            yield
        finally:
            self.alive[name] -= 1

    def chunks(self, name: str, parts: list[bytes]) -> AsyncGenerator[bytes, None]:
        async def generate() -> AsyncGenerator[bytes, None]:
            with self.life(name):
                for part in parts:
                    await trio.lowlevel.checkpoint()
                    yield part

        generator = generate()
        self.generators.append(generator)
        return generator

    def still_alive(self) -> list[str]:
        return sorted(name for name, count in self.alive.items() if count)

    async def cleanup(self) -> None:
        """Finalize generators left suspended, so that no GC-time warning hits a later test."""
        with trio.CancelScope(shield=True):
            for generator in self.generators:
                await generator.aclose()


# --- the interrupter -----------------------------------------------------------------------


class Interrupter(trio.abc.Instrument):
    """Counts the steps of the test task and of new tasks of the client's nursery; after
    step ``at`` cancels the caller's scope (``cancel``) or interrupts the test task (``ki``).

    ``ki`` uses Trio's own delivery of a KeyboardInterrupt that arrived in protected code:
    while the scenario runs, the test task stands in as the run's main task, and
    ``ki_pending`` is set; Trio raises it at the task's next cancel point (``checkpoint()``,
    ``checkpoint_if_cancelled()``, any blocking wait, shielded or not), or at once if it is
    blocked now.
    """

    def __init__(self, kind: str | None, at: int) -> None:
        self.kind, self.at = kind, at
        self.root: trio.lowlevel.Task = trio.lowlevel.current_task()
        self.runner: Any = trio._core._run.GLOBAL_RUN_CONTEXT.runner
        self.main_task: trio.lowlevel.Task | None = None
        self.nursery: trio.Nursery | None = None
        self.baseline: set[trio.lowlevel.Task] = set()
        self.caller: trio.CancelScope | None = None
        self.active = False
        self.steps = 0
        self.fired = False
        self.ki_delivered = False

    def arm(self, caller: trio.CancelScope) -> None:
        self.caller, self.active = caller, True
        assert not self.runner.ki_pending
        self.main_task, self.runner.main_task = self.runner.main_task, self.root

    def disarm(self) -> None:
        if self.active:
            self.active = False
            if self.kind == "ki" and self.fired:
                self.ki_delivered = not self.runner.ki_pending
            self.runner.ki_pending = False
            self.runner.main_task = self.main_task

    def _watched(self, task: trio.lowlevel.Task) -> bool:
        if task is self.root:
            return True
        return task.parent_nursery is self.nursery and task not in self.baseline

    def after_task_step(self, task: trio.lowlevel.Task) -> None:
        if not self.active or not self._watched(task):
            return
        step, self.steps = self.steps, self.steps + 1
        if step != self.at:
            return
        self.fired = True
        if self.kind == "cancel":
            assert self.caller is not None
            self.caller.cancel()
        else:
            self.runner.ki_pending = True
            if self.root._abort_func is not None:  # blocked at a cancel point now
                self.root._attempt_delivery_of_pending_ki()


# --- the scenarios -------------------------------------------------------------------------

URL = "http://test"


@dataclass(frozen=True)
class Scenario:
    name: str
    transport: Callable[[Tracker], trioclient.Transport]
    body: Callable[[trioclient.Client, Tracker], Awaitable[None]]

    def __str__(self) -> str:
        return self.name


def ok_or(request: trioclient.Request, response: Response) -> Response:
    return Response(200, content=b"ok") if request.url.path == "/ok" else response


def mock_sync(tracker: Tracker) -> trioclient.Transport:
    return MockTransport(lambda request: ok_or(request, Response(200, content=b"sync")))


def mock_async(tracker: Tracker) -> trioclient.Transport:
    async def handler(request: trioclient.Request) -> Response:
        with tracker.life("async handler"):
            for _ in range(3):
                await trio.lowlevel.checkpoint()
            return ok_or(request, Response(200, content=b"async"))

    return MockTransport(handler)


def mock_stream_response(tracker: Tracker) -> trioclient.Transport:
    async def handler(request: trioclient.Request) -> Response:
        await trio.lowlevel.checkpoint()
        if request.url.path == "/ok":
            return Response(200, content=b"ok")
        return Response(200, stream=tracker.chunks("response body generator", [b"a", b"b", b"c"]))

    return MockTransport(handler)


def mock_stream_request(tracker: Tracker) -> trioclient.Transport:
    async def handler(request: trioclient.Request) -> Response:
        with tracker.life("async handler"):
            body = await request.aread()
            return ok_or(request, Response(200, content=str(len(body)).encode()))

    return MockTransport(handler)


def mock_stream_request_sync(tracker: Tracker) -> trioclient.Transport:
    return MockTransport(lambda request: ok_or(request, Response(200, content=request.content)))


async def get_text(client: trioclient.Client, tracker: Tracker, path: str, text: str) -> None:
    response = await client.get(f"{URL}{path}")
    assert response.text == text, response.text


async def post_streamed(client: trioclient.Client, tracker: Tracker, expected: str) -> None:
    body = tracker.chunks("request body generator", [b"xx", b"yy", b"zz"])
    response = await client.post(f"{URL}/echo", content=body)
    assert response.text == expected, response.text


async def read_stream(client: trioclient.Client, tracker: Tracker, path: str, text: str) -> None:
    async with client.stream("GET", f"{URL}{path}") as response:
        data = b"".join([chunk async for chunk in response.aiter_bytes()])
    assert data == text.encode(), data


async def close_early(client: trioclient.Client, tracker: Tracker) -> None:
    async with client.stream("GET", f"{URL}/feed") as response:
        seen = 0
        async for _ in response.aiter_bytes():
            seen += 1
            if seen == 2:
                break
    assert seen == 2


START = {"type": "http.response.start", "status": 200, "headers": []}


def chunk(body: bytes, more: bool = False) -> dict[str, Any]:
    return {"type": "http.response.body", "body": body, "more_body": more}


def asgi(tracker: Tracker) -> trioclient.Transport:
    async def app(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        path = scope["path"]
        with tracker.life(f"app {path}"):
            if path == "/echo":  # consumes the request body first
                total, more = 0, True
                while more:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return
                    total += len(message.get("body", b""))
                    more = message.get("more_body", False)
                await send(START)
                await send(chunk(str(total).encode()))
            elif path == "/chunks":
                await send(START)
                for part in (b"a", b"b", b"c", b"d"):
                    await send(chunk(part, more=True))
                await send(chunk(b""))
            elif path == "/feed":  # endless, ignores disconnect: ended by the grace
                await send(START)
                while True:
                    await send(chunk(b"x", more=True))
                    await trio.sleep(0.01)
            else:
                await send(START)
                await send(chunk(b"ok"))

    return ASGITransport(app, disconnect_grace=GRACE)


SCENARIOS = [
    Scenario("mock-sync-handler", mock_sync, lambda c, t: get_text(c, t, "/", "sync")),
    Scenario("mock-async-handler", mock_async, lambda c, t: get_text(c, t, "/", "async")),
    Scenario(
        "mock-stream-response", mock_stream_response, lambda c, t: read_stream(c, t, "/", "abc")
    ),
    Scenario("mock-stream-request", mock_stream_request, lambda c, t: post_streamed(c, t, "6")),
    Scenario(
        "mock-stream-request-sync",
        mock_stream_request_sync,
        lambda c, t: post_streamed(c, t, "xxyyzz"),
    ),
    Scenario("asgi-get", asgi, lambda c, t: get_text(c, t, "/ok", "ok")),
    Scenario("asgi-post-streamed-body", asgi, lambda c, t: post_streamed(c, t, "6")),
    Scenario("asgi-streaming-response", asgi, lambda c, t: read_stream(c, t, "/chunks", "abcd")),
    Scenario("asgi-early-close", asgi, close_early),
]


# --- one run ----------------------------------------------------------------------------------


def _transport_holds(transport: trioclient.Transport) -> list[object]:
    if isinstance(transport, ASGITransport):
        return list(transport._exchanges)
    if isinstance(transport, MockTransport):
        return [r for r in transport._open_responses if not r.is_closed]
    return []


def _check_after(client: trioclient.Client, before: set[trio.lowlevel.Task], where: str) -> None:
    assert client._nursery is not None
    extra = [task.name for task in client._nursery.child_tasks if task not in before]
    if extra:
        raise SweepFailure(f"{where}: tasks left in the client's nursery: {extra}")
    held = _transport_holds(client._transport)
    if held:
        raise SweepFailure(f"{where}: the transport still holds {held}")


async def run_once(scenario: Scenario, kind: str | None, at: int) -> tuple[str, int, list[str]]:
    """Run `scenario`, interrupted after step `at`: (outcome, steps counted, names of the
    scenario's code whose `finally` had not run once the grace was over)."""
    _seed_scheduler(0)
    where = f"{scenario.name} {kind} @{at}"
    tracker = Tracker()
    client = trioclient.Client(transport=scenario.transport(tracker))
    steps = Interrupter(kind, at)
    error: BaseException | None = None
    outcome = "completed"
    leaked: list[str] = []
    try:
        with trio.CancelScope() as outer:
            try:
                async with client:
                    assert client._nursery is not None
                    before = set(client._nursery.child_tasks)
                    steps.nursery, steps.baseline = client._nursery, before
                    trio.lowlevel.add_instrument(steps)
                    try:
                        with trio.CancelScope() as caller:
                            steps.arm(caller)
                            try:
                                await scenario.body(client, tracker)
                            except trio.Cancelled:
                                raise
                            except BaseException as exc:
                                error = exc
                            finally:
                                steps.disarm()
                    finally:
                        trio.lowlevel.remove_instrument(steps)
                    interrupted = steps.ki_delivered
                    if error is not None and not (interrupted and type(error) is KeyboardInterrupt):
                        raise SweepFailure(f"{where}: raised {error!r}") from error
                    if interrupted and error is None:
                        raise SweepFailure(f"{where}: the KeyboardInterrupt was swallowed")
                    if caller.cancelled_caught:
                        outcome = "Cancelled"
                    elif error is not None:
                        outcome = "KeyboardInterrupt"
                    await trio.sleep(4 * GRACE)  # MockClock autojump: past the disconnect grace
                    _check_after(client, before, f"{where} (after the interruption)")
                    leaked = tracker.still_alive()  # judged by the caller (known bugs)
                    try:
                        response = await client.get(f"{URL}/ok")
                    except Exception as exc:
                        raise SweepFailure(f"{where}: the next request failed: {exc!r}") from exc
                    if response.text != "ok":
                        raise SweepFailure(f"{where}: the next request got {response.text!r}")
                    await trio.sleep(4 * GRACE)
                    _check_after(client, before, f"{where} (after the next request)")
                    if error is not None:
                        raise error  # must leave `async with Client()` unchanged
                    if caller.cancelled_caught:
                        outer.cancel()  # and so must a Cancelled
                        await trio.lowlevel.checkpoint()
            except SweepFailure:
                raise
            except trio.Cancelled:
                if not outer.cancel_called:
                    raise SweepFailure(f"{where}: a stray Cancelled left the client") from None
                raise  # for `outer` to catch
            except BaseException as exc:
                if exc is not error:
                    raise SweepFailure(f"{where}: leaving the client raised {exc!r}") from exc
        if outcome == "Cancelled" and not outer.cancelled_caught:
            raise SweepFailure(f"{where}: the Cancelled did not leave the client")
    finally:
        await tracker.cleanup()
    return outcome, steps.steps, leaked


# --- the sweep --------------------------------------------------------------------------------


@dataclass
class Result:
    steps: int
    failures: list[str]  # broken invariants
    leaks: list[str]  # runs after which some `finally` had not run
    outcomes: Counter[str]


RESULTS: dict[str, Result] = {}


async def sweep(scenario: Scenario) -> Result:
    if scenario.name in RESULTS:
        return RESULTS[scenario.name]
    outcome, count, leaked = await run_once(scenario, None, -1)
    assert outcome == "completed", outcome
    assert count > 0
    assert not leaked, leaked
    result = Result(count, [], [], Counter())
    for kind in KINDS:
        for at in range(count):
            try:
                outcome, _, leaked = await run_once(scenario, kind, at)
            except SweepFailure as failure:
                result.failures.append(str(failure))
                outcome = "FAILED"
            else:
                if leaked:
                    result.leaks.append(f"{kind} @{at}: finally not run: {leaked}")
            result.outcomes[f"{kind}:{outcome}"] += 1
    RESULTS[scenario.name] = result
    runs = len(KINDS) * count
    SUMMARY[scenario.name] = (runs, len(result.failures) + len(result.leaks), dict(result.outcomes))
    line = (
        f"transport sweep {scenario.name}: {count} steps, {runs} runs,"
        f" {len(result.failures)} failures, {len(result.leaks)} runs leaving a finally unrun"
    )
    HARNESS_SUMMARY.append(f"{line}; {dict(sorted(result.outcomes.items()))}")
    print(line)
    return result


@pytest.mark.parametrize("scenario", SCENARIOS, ids=str)
async def test_interrupted_at_every_step(
    scenario: Scenario, autojump_clock: trio.testing.MockClock
) -> None:
    result = await sweep(scenario)
    runs = len(KINDS) * result.steps
    assert not result.failures, f"{len(result.failures)} of {runs} runs failed:\n" + "\n".join(
        result.failures
    )
    assert not result.leaks, "\n".join(result.leaks)
    # Both kinds really interrupted something (the sweep is not vacuous).
    assert result.outcomes["cancel:Cancelled"], result.outcomes
    assert result.outcomes["ki:KeyboardInterrupt"], result.outcomes
