"""The HTTP/1.1 driver of the cancellation harness: servers, scenarios, one injected run.

Theory of operation
-------------------
:func:`run_scenario` runs one scenario against the in-run raw servers of :class:`Servers`
with a fresh client and a fresh :class:`~faults.FaultInjector` (``plan=None`` for the
counting run), through :func:`harness.run_in_client` with :data:`harness.HTTP11`. The
scenario runs inside a cancel scope standing for "the caller"; whatever escapes it is judged
against the kind of fault injected (:func:`judge`). Then, still inside ``async with
Client()``, with the injector disarmed, besides the shared invariants of
:func:`harness.check_connections`:

* every idle connection is healthy: as many concurrent requests as there are idle
  connections reuse them all without opening a socket, and one more request succeeds;
* the scenario's async generators (request bodies) are not left suspended (S13).

Timing: the tests run on a ``MockClock`` that never moves by itself, so nothing here waits
for real time: an injected timeout jumps the clock straight to trioclient's deadline. The
servers never sleep; the chunked download is lock-stepped with ``wait_all_tasks_blocked`` so
that each chunk arrives in its own ``recv`` and operation counts are reproducible. Trio's
scheduler shuffles each batch of runnable tasks at random; :func:`run_scenario` seeds that
random generator (``harness._seed_scheduler``) so that a failing position can be replayed.
"""

from __future__ import annotations

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
from harness import (
    HARNESS_TIMEOUT,
    HTTP11,
    HarnessFailure,
    TrackedBody,
    _seed_scheduler,
    check_connections,
    check_generators,
    run_in_client,
)
from servers.raw import BufferedStream, read_request, response_bytes, response_head

import trioclient

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup

__all__ = [
    "CHUNK",
    "Env",
    "Outcome",
    "Scenario",
    "Servers",
    "harness_handler",
    "judge",
    "run_scenario",
]

CHUNK = 1000

_EXPECTED_TIMEOUT: dict[str, type[trioclient.TimeoutException]] = {
    "tcp-connect": trioclient.ConnectTimeout,
    "tls-handshake": trioclient.ConnectTimeout,
    "write": trioclient.WriteTimeout,
    "read-head": trioclient.ReadTimeout,
    "read-body": trioclient.ReadTimeout,
}


# --- servers -----------------------------------------------------------------------------


async def harness_handler(stream: BufferedStream) -> None:
    """A keep-alive server that never sleeps.

    HEAD: the head of ``/ok``. ``/ok``: ``ok``. ``/len``: the length of the request body.
    ``/digest``: 401 with a Digest challenge, or ``ok`` to any Digest credentials (the
    harness checks the rounds, not the arithmetic: tests/client/test_auth_schemes.py does).
    ``/login``: ``ok`` with ``Set-Cookie: session=s1``. ``/cookie``: the Cookie header sent.
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
        elif path == "/login":
            cookie = [("Set-Cookie", "session=s1; Path=/")]
            await stream.send_all(response_bytes(200, cookie, b"ok"))
        elif path == "/cookie":
            lines = head.split(b"\r\n")[1:]
            sent = b"; ".join(x[7:].strip() for x in lines if x.lower().startswith(b"cookie:"))
            await stream.send_all(response_bytes(200, [], sent))
        elif path == "/len":
            await stream.send_all(response_bytes(200, [], str(len(body)).encode()))
        elif path == "/digest":
            if b"\r\nauthorization: digest " in head.lower():
                await stream.send_all(response_bytes(200, [], b"ok"))
            else:
                challenge = 'Digest realm="harness", nonce="n0nce", qop="auth", algorithm=MD5'
                await stream.send_all(response_bytes(401, [("WWW-Authenticate", challenge)], b""))
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
        return tracked.generate()  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Scenario:
    """A named piece of client code to interrupt at each of its socket operations."""

    name: str
    body: Callable[[trioclient.Client, Env], Awaitable[None]]
    tls: bool = False
    max_connections: int = 10
    concurrent: bool = False  # the body runs requests in its own nursery
    phases: frozenset[str] = frozenset()  # besides the protocol's (see harness.require_phases)

    def __str__(self) -> str:
        return self.name

    @property
    def expected_phases(self) -> frozenset[str]:
        return HTTP11.expected_phases(self.tls) | self.phases


@dataclass
class Outcome:
    """What one run did: the operations, the sockets, and how the injection was judged."""

    plan: Injection | None  # the last injection that fired
    fired: Op | None
    result: str
    ops: list[Op]  # the scenario's own operations (not the checks' afterwards)
    sockets: int  # sockets the scenario opened
    steps: int  # steps (up to a checkpoint) of the scenario's tasks


# --- the HTTP/1.1 invariants -------------------------------------------------------------


async def check_recovered(
    client: trioclient.Client, injector: FaultInjector, url: str, where: str
) -> None:
    """After an interruption: the shared invariants; then every idle connection works."""
    idle = check_connections(client, HTTP11, injector, where)
    created = len(injector.sockets)
    async with AsyncExitStack() as stack:
        responses = []
        for _ in range(idle):
            stream = client.stream("GET", f"{url}/ok")
            responses.append(await stack.enter_async_context(stream))
        if len(injector.sockets) != created:
            raise HarnessFailure(f"{where}: an idle connection could not be reused")
        for response in responses:
            if await response.aread() != b"ok":
                raise HarnessFailure(f"{where}: a reused connection answered wrongly")
    response = await client.get(f"{url}/ok")
    if response.text != "ok" or response.http_version != HTTP11.http_version:
        raise HarnessFailure(f"{where}: the next request failed: {response!r}")
    check_connections(client, HTTP11, injector, where)


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
    client = trioclient.Client(
        timeout=HARNESS_TIMEOUT,
        limits=limits,
        verify=servers.client_ssl,
        **HTTP11.client_options(scenario.tls),
    )
    steps = StepCanceller(injector, trio.lowlevel.current_task())
    error: BaseException | None = None
    caller = trio.CancelScope()
    outcome = Outcome(None, None, "", [], 0, 0)

    async def run() -> None:
        nonlocal error
        with caller:
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

    async def check() -> tuple[BaseException | None, bool]:
        outcome.ops = list(injector.ops)
        outcome.sockets = len(injector.sockets)
        outcome.result = judge(scenario, bool(plans), injector, error, where)
        check_generators(env.bodies, where)
        await check_recovered(client, injector, url, where)
        return error, caller.cancelled_caught

    trio.lowlevel.add_instrument(steps)
    try:
        await run_in_client(
            client, injector, where, excluded=steps.excluded, scenario=run, check=check
        )
    finally:
        trio.lowlevel.remove_instrument(steps)
    outcome.plan, outcome.fired, outcome.steps = injector.fired_plan, injector.fired, steps.steps
    return outcome
