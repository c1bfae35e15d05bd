"""The runner of the injection sweep: servers, one injected run, and the invariants after it.

Theory of operation
-------------------
:func:`run_scenario` runs one scenario against the in-run raw servers of :class:`Servers`
with a fresh client and a fresh :class:`~faults.FaultInjector` (``plan=None`` for the
counting run). The scenario runs inside a cancel scope standing for "the caller"; whatever
escapes it is judged against the kind of fault injected (:func:`judge`). Then, still inside
``async with Client()``, with the injector disarmed:

* the books are quiet: nothing in use, connecting, waiting or active; every connection idle;
* the client's nursery holds only its housekeeping task;
* every socket the run opened is closed, unless it is idle in the pool and was not faulted;
* every idle connection is healthy: as many concurrent requests as there are idle
  connections reuse them all without opening a socket, and one more request succeeds;
* the scenario's async generators (request bodies) are not left suspended (S13).

Finally the escaped exception is re-raised inside the client block (or, for a cancellation,
an outer scope is cancelled) and must leave ``async with Client()`` as the very same object,
never wrapped; afterwards every socket of the run is closed.

Timing: the tests run on a ``MockClock`` that never moves by itself, so nothing here waits
for real time: an injected timeout jumps the clock straight to trioclient's deadline. The
servers never sleep; the chunked download is lock-stepped with ``wait_all_tasks_blocked`` so
that each chunk arrives in its own ``recv`` and operation counts are reproducible. Trio's
scheduler shuffles each batch of runnable tasks at random; :func:`run_scenario` seeds that
random generator (a private attribute, guarded) so that a failing position can be replayed.
"""

from __future__ import annotations

import os
import ssl
import sys
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field

import trio
import trio.testing
from faults import (
    CANCEL_KINDS,
    KI_KINDS,
    PEER_KINDS,
    FaultInjector,
    Injection,
    Kind,
    Op,
    StepCanceller,
    only_cancelled,
)
from servers.raw import BufferedStream, read_request, response_bytes, response_head

import trioclient
from trioclient._transport._connect import socket_of

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup

__all__ = [
    "FULL",
    "HARNESS_TIMEOUT",
    "SUMMARY",
    "Env",
    "HarnessFailure",
    "Outcome",
    "Scenario",
    "Servers",
    "TrackedBody",
    "assert_only_housekeeping",
    "assert_quiet",
    "harness_handler",
    "judge",
    "run_scenario",
]

# One line per sweep (scenario / kind: runs, phases, outcomes), for the terminal summary.
SUMMARY: list[str] = []

# TRIOCLIENT_HARNESS_FULL=1: the denser sweeps (more scheduler seeds, any first fault).
FULL = os.environ.get("TRIOCLIENT_HARNESS_FULL", "") not in ("", "0")

# Distinct values, so that jumping the clock to one deadline fires that one alone.
HARNESS_TIMEOUT = trioclient.Timeout(connect=2.0, read=3.0, write=4.0, pool=10.0)
CHUNK = 1000

_EXPECTED_TIMEOUT: dict[str, type[trioclient.TimeoutException]] = {
    "tcp-connect": trioclient.ConnectTimeout,
    "tls-handshake": trioclient.ConnectTimeout,
    "write": trioclient.WriteTimeout,
    "read-head": trioclient.ReadTimeout,
    "read-body": trioclient.ReadTimeout,
}


class HarnessFailure(AssertionError):
    """An invariant or an expectation of the harness failed."""


# --- servers -----------------------------------------------------------------------------


async def harness_handler(stream: BufferedStream) -> None:
    """A keep-alive server that never sleeps.

    HEAD: the head of ``/ok``. ``/ok``: ``ok``. ``/len``: the length of the request body.
    ``/chunks/N``: N chunks of ``CHUNK`` bytes, each sent once every other task is blocked
    (the client has read the previous one). ``/hold``: never answers. Anything else: 404.
    """
    while True:
        try:
            head, body = await read_request(stream)
        except trio.BrokenResourceError:
            return
        method, target = head.split(b" ", 2)[:2]
        path = target.decode("ascii")
        if method == b"HEAD":
            await stream.send_all(response_head(200, [("Content-Length", "2")]))
        elif path == "/ok":
            await stream.send_all(response_bytes(200, [], b"ok"))
        elif path == "/len":
            await stream.send_all(response_bytes(200, [], str(len(body)).encode()))
        elif path.startswith("/chunks/"):
            count = int(path.rsplit("/", 1)[1])
            length = str(count * CHUNK)
            await stream.send_all(response_head(200, [("Content-Length", length)]) + b"a" * CHUNK)
            for index in range(1, count):
                await trio.testing.wait_all_tasks_blocked()
                await stream.send_all(bytes([97 + index % 26]) * CHUNK)
        elif path == "/hold":
            while await stream.receive_some():
                pass
            return
        else:
            await stream.send_all(response_bytes(404, [], b""))


@dataclass
class Servers:
    """The raw servers of one test: plain and TLS, same handler; a client context for TLS."""

    url: str
    tls_url: str
    client_ssl: ssl.SSLContext


# --- scenarios ----------------------------------------------------------------------------


class TrackedBody:
    """A request body made by an async generator that records whether it was finalized."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks
        self.started = False
        self.finished = False  # its `finally` ran: exhausted, or closed by aclose()

    async def generate(self) -> AsyncGenerator[bytes, None]:
        self.started = True
        try:
            for chunk in self.chunks:
                yield chunk
        finally:
            self.finished = True


@dataclass
class Env:
    """What a scenario body gets besides the client."""

    url: str
    injector: FaultInjector
    bodies: list[TrackedBody] = field(default_factory=list)

    def body(self, chunks: list[bytes]) -> AsyncGenerator[bytes, None]:
        """A tracked async-generator request body (S13: it must never be left suspended)."""
        tracked = TrackedBody(chunks)
        self.bodies.append(tracked)
        return tracked.generate()


@dataclass(frozen=True)
class Scenario:
    """A named piece of client code to interrupt at each of its socket operations."""

    name: str
    body: Callable[[trioclient.Client, Env], Awaitable[None]]
    tls: bool = False
    max_connections: int = 10
    concurrent: bool = False  # the body runs requests in its own nursery

    def __str__(self) -> str:
        return self.name


@dataclass
class Outcome:
    """What one run did: the operations, the sockets, and how the injection was judged."""

    plan: Injection | None  # the last injection that fired
    fired: Op | None
    result: str
    ops: list[Op]  # the scenario's own operations (not the checks' afterwards)
    sockets: int  # sockets the scenario opened
    steps: int  # steps (up to a checkpoint) of the scenario's tasks


# --- invariants ---------------------------------------------------------------------------


def assert_quiet(client: trioclient.Client, where: str = "") -> None:
    """Nothing in flight: every connection the books count is idle."""
    stats = client.pool_statistics()
    if not (
        stats.in_use == stats.waiting == stats.connecting == stats.requests_active == 0
        and stats.connections == stats.idle
        and stats.in_use + stats.idle + stats.connecting == stats.connections
    ):
        raise HarnessFailure(f"{where}: the books do not balance: {stats}")


def assert_only_housekeeping(client: trioclient.Client, where: str = "") -> None:
    """The client's nursery runs its housekeeping task and nothing else."""
    nursery = client._nursery
    if nursery is None:
        raise HarnessFailure(f"{where}: the client has no nursery")
    names = [task.name for task in nursery.child_tasks]
    if len(names) != 1 or not names[0].endswith("_run_housekeeping"):
        raise HarnessFailure(f"{where}: tasks left in the client's nursery: {names}")


def _idle_sockets(client: trioclient.Client) -> list[object]:
    sockets = []
    for conn in client._transport._pool._books._idle:
        assert conn.http is not None
        sockets.append(socket_of(conn.http._stream))
    return sockets


async def check_recovered(
    client: trioclient.Client, injector: FaultInjector, url: str, where: str
) -> None:
    """After an interruption: books, nursery, sockets; then every idle connection works."""
    assert_quiet(client, where)
    assert_only_housekeeping(client, where)
    idle = _idle_sockets(client)
    for sock in injector.sockets:
        if sock.is_closed:
            continue
        if sock not in idle:
            raise HarnessFailure(f"{where}: {sock!r} is open but not idle in the pool")
        if sock.dead is not None:
            raise HarnessFailure(f"{where}: faulted {sock!r} went back to the pool")
    created = len(injector.sockets)
    async with AsyncExitStack() as stack:
        responses = []
        for _ in idle:
            stream = client.stream("GET", f"{url}/ok")
            responses.append(await stack.enter_async_context(stream))
        if len(injector.sockets) != created:
            raise HarnessFailure(f"{where}: an idle connection could not be reused")
        for response in responses:
            if await response.aread() != b"ok":
                raise HarnessFailure(f"{where}: a reused connection answered wrongly")
    response = await client.get(f"{url}/ok")
    if response.text != "ok":
        raise HarnessFailure(f"{where}: the next request failed: {response!r}")
    assert_quiet(client, where)
    assert_only_housekeeping(client, where)


def _check_generators(env: Env, where: str) -> None:
    for body in env.bodies:
        if body.started and not body.finished:
            raise HarnessFailure(f"{where}: a request body generator was left suspended")


def judge(
    scenario: Scenario,
    planned: bool,
    injector: FaultInjector,
    error: BaseException | None,
    where: str,
) -> str:
    """Check what escaped the scenario against the (last) fault fired; return a label."""
    fired, plan = injector.fired, injector.fired_plan
    if plan is None or fired is None:
        if error is not None:
            raise HarnessFailure(f"{where}: failed without any fault: {error!r}") from error
        return "not reached" if planned else "clean"
    kind = plan.kind
    at = f"{where}, fired at {fired}"
    if kind in CANCEL_KINDS:
        if error is not None:
            raise HarnessFailure(f"{at}: cancellation came out as {error!r}") from error
        scope = injector.cancelled_scope
        assert scope is not None
        return "Cancelled" if scope.cancelled_caught else "completed"
    if kind in KI_KINDS:
        if scenario.concurrent:
            # The scenario's own nursery wraps it once; nothing else may.
            ok = isinstance(error, BaseExceptionGroup) and [
                e for e in error.exceptions if not only_cancelled(e)
            ] == [injector.interrupt]
        else:
            ok = error is injector.interrupt
        if not ok:
            raise HarnessFailure(
                f"{at}: KeyboardInterrupt came out as {error!r}, not unchanged"
            ) from error
        return "KeyboardInterrupt"
    if kind is Kind.TIMEOUT:
        expected = _EXPECTED_TIMEOUT.get(fired.phase)
        if expected is None or type(error) is not expected:
            raise HarnessFailure(f"{at}: expected {expected}, got {error!r}") from error
        return expected.__name__
    assert kind in PEER_KINDS
    if fired.retryable:
        if error is not None:
            raise HarnessFailure(f"{at}: a retryable failure was not retried: {error!r}")
        return "retried"
    if not isinstance(error, trioclient.TransportError) or isinstance(
        error, trioclient.TimeoutException
    ):
        raise HarnessFailure(f"{at}: expected a TransportError, got {error!r}") from error
    # With EOF the peer closes but our writes still "succeed": after a TCP connect, or after
    # the TLS 1.3 client's last handshake message, the connect completes and the error
    # belongs to the first write or read. A reset or broken pipe while connecting is a
    # ConnectError.
    connecting = fired.phase in ("tcp-connect", "tls-handshake") and kind is not Kind.EOF
    if connecting and not isinstance(error, trioclient.ConnectError):
        raise HarnessFailure(f"{at}: expected a ConnectError, got {error!r}") from error
    return type(error).__name__


# --- one run ------------------------------------------------------------------------------


def _seed_scheduler(seed: int) -> None:
    import trio._core._run as run_module

    generator = getattr(run_module, "_r", None)
    if generator is not None:
        generator.seed(seed)


async def run_scenario(
    scenario: Scenario, servers: Servers, *plans: Injection, seed: int = 0, direct: bool = False
) -> Outcome:
    """Run `scenario` once with `plans`; raise HarnessFailure if any invariant fails.

    `direct`: real sockets instead of fault sockets, so that plain HTTP/1.1 takes
    trioclient's direct-syscall path (step injections only).
    """
    _seed_scheduler(seed)
    injector = FaultInjector(*plans, direct=direct)
    url = servers.tls_url if scenario.tls else servers.url
    env = Env(url=url, injector=injector)
    where = f"{scenario.name}: " + " then ".join(f"{p.kind.value} @{p.index}" for p in plans)
    limits = trioclient.Limits(
        max_connections=scenario.max_connections,
        max_keepalive_connections=scenario.max_connections,
        keepalive_expiry=1000.0,
    )
    client = trioclient.Client(timeout=HARNESS_TIMEOUT, limits=limits, verify=servers.client_ssl)
    steps = StepCanceller(injector, trio.lowlevel.current_task())
    trio.lowlevel.add_instrument(steps)
    try:
        return await _run(scenario, client, injector, steps, env, where, bool(plans))
    finally:
        trio.lowlevel.remove_instrument(steps)


async def _run(
    scenario: Scenario,
    client: trioclient.Client,
    injector: FaultInjector,
    steps: StepCanceller,
    env: Env,
    where: str,
    planned: bool,
) -> Outcome:
    url = env.url
    error: BaseException | None = None
    result = ""
    scenario_ops: list[Op] = []
    scenario_sockets = 0
    with injector.installed(), trio.CancelScope() as outer:
        try:
            async with client:
                assert client._nursery is not None
                steps.excluded.add(client._nursery)
                with trio.CancelScope() as caller:
                    injector.caller = caller
                    steps.active = True
                    try:
                        await scenario.body(client, env)
                    except BaseException as exc:
                        if only_cancelled(exc):
                            raise
                        error = exc
                    finally:
                        steps.active = False
                injector.disarm()  # the checks below need a healthy network
                scenario_ops = list(injector.ops)
                scenario_sockets = len(injector.sockets)
                result = judge(scenario, planned, injector, error, where)
                _check_generators(env, where)
                await check_recovered(client, injector, url, where)
                if error is not None:
                    raise error  # must leave `async with Client()` unchanged
                if caller.cancelled_caught:
                    outer.cancel()  # and so must a Cancelled
                    await trio.lowlevel.checkpoint()
        except HarnessFailure:
            raise
        except BaseException as exc:
            if outer.cancel_called and only_cancelled(exc):
                raise
            if exc is not error:
                raise HarnessFailure(
                    f"{where}: leaving the client raised {exc!r} instead of {error!r}"
                ) from exc
    if caller.cancelled_caught and not outer.cancelled_caught:
        raise HarnessFailure(f"{where}: a Cancelled did not get out of the client")
    still_open = [sock for sock in injector.sockets if not sock.is_closed]
    if still_open:
        raise HarnessFailure(f"{where}: sockets open after the client closed: {still_open}")
    stats = client.pool_statistics()
    if stats.connections or stats.waiting or stats.requests_active:
        raise HarnessFailure(f"{where}: books not empty after the client closed: {stats}")
    return Outcome(
        injector.fired_plan, injector.fired, result, scenario_ops, scenario_sockets, steps.steps
    )
