"""The cancellation harness: one runner and one set of invariants, for HTTP/1.1 and HTTP/2.

Theory of operation
-------------------
A sweep runs a piece of client code again and again, with one fault injected at a different
point each time (``faults.py`` injects them; a *driver* says what the client does and what
each fault must lead to: ``h1_driver.py`` for HTTP/1.1 scenarios against a raw HTTP/1.1
server, ``h2_driver.py`` for multiplexed HTTP/2 scenarios against a raw h2 server). Every
run goes through :func:`run_in_client`, whatever the protocol:

* the scenario runs inside ``async with Client()``; then, with the injector disarmed, the
  driver judges what escaped it and checks its own invariants, calling
  :func:`check_connections`, the invariants both protocols share: the books are quiet
  (nothing in use, connecting, waiting or active; every connection idle), every live
  connection speaks the run's protocol, the client's nursery runs its housekeeping task plus
  the protocol's tasks per live connection (HTTP/2: a reader and a writer) and nothing else,
  every socket the run opened is closed unless it belongs to a pooled connection, and no
  faulted socket does;
* the exception that escaped the scenario is re-raised inside the client block (a
  cancellation: an outer scope is cancelled) and must leave ``async with Client()`` as the
  very same object, never wrapped;
* afterwards every socket of the run is closed and the books are empty.

What differs between the protocols is a :class:`Protocol` value (:data:`HTTP11`,
:data:`HTTP2`): the client options that select it, the tasks a live connection runs, the
phases ``faults.py`` must classify in a counting run (:func:`require_phases`: a rename in
trioclient that defeats the phase lookup fails the sweep instead of turning a phase into
"other"), and the checks of a pooled connection that only private state can answer.

State is read through the public statistics (``Client.pool_statistics()``,
``HTTPTransport.connection_statistics()``) wherever they answer. Private state is read
only where no statistic does, each spot commented, and through :func:`internal`: a missing
private attribute of Trio, h2 or trioclient raises a RuntimeError naming it and the
versions, never a skip or a silently weaker check.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import h2
import trio
from faults import FaultInjector, Op, only_cancelled
from helpers import assert_quiet as _assert_quiet

import trioclient
from trioclient._transport._connect import socket_of

__all__ = [
    "FULL",
    "HARNESS_TIMEOUT",
    "HTTP2",
    "HTTP11",
    "SUMMARY",
    "HarnessFailure",
    "Protocol",
    "TrackedBody",
    "assert_only_housekeeping",
    "assert_quiet",
    "check_closed",
    "check_connections",
    "internal",
    "require_phases",
    "run_in_client",
    "sample",
]

# One line per sweep (scenario / kind: runs, phases, outcomes), for the terminal summary.
SUMMARY: list[str] = []

# TRIOCLIENT_HARNESS_FULL=1: the denser sweeps (more scheduler seeds, every position).
FULL = os.environ.get("TRIOCLIENT_HARNESS_FULL", "") not in ("", "0")

# Distinct values, so that jumping the clock to one deadline fires that one alone.
HARNESS_TIMEOUT = trioclient.Timeout(connect=2.0, read=3.0, write=4.0, pool=10.0)


class HarnessFailure(AssertionError):
    """An invariant or an expectation of the harness failed."""


def _versions() -> str:
    return f"trio {trio.__version__}, h2 {h2.__version__}, trioclient {trioclient.__version__}"


def internal(obj: object, name: str, what: str) -> Any:
    """``obj.<name>``, a private attribute the harness relies on (`what` says whose and why).

    Missing: a RuntimeError naming it and the library versions. The harness must fail loudly
    when an internal it relies on is gone, never skip or check less.
    """
    try:
        return getattr(obj, name)
    except AttributeError:
        raise RuntimeError(
            f"the cancellation harness relies on {type(obj).__qualname__}.{name} ({what}), "
            f"which is missing under {_versions()}: update tests/cancellation"
        ) from None


def _seed_scheduler(seed: int) -> None:
    """Seed Trio's scheduler shuffle, so that a failing position replays.

    Trio has no public way to seed it: the private ``trio._core._run._r`` (a
    ``random.Random``) is the only door. Gone: RuntimeError, never an unseeded run.
    """
    import trio._core._run as run_module

    generator = internal(run_module, "_r", "Trio's scheduler random generator")
    internal(generator, "seed", "Trio's scheduler random generator")(seed)


def sample(labels: Sequence[str], limit: int) -> list[int]:
    """Positions to inject at: every position if there are at most `limit`; else the first
    and the last position of each distinct label (each kind of point is hit) and evenly
    spaced ones, about `limit` in all."""
    count = len(labels)
    if count <= limit:
        return list(range(count))
    chosen: set[int] = set()
    for label in set(labels):
        chosen.add(labels.index(label))
        chosen.add(count - 1 - list(labels)[::-1].index(label))
    spare = max(limit - len(chosen), 2)
    chosen.update(round(i * (count - 1) / (spare - 1)) for i in range(spare))
    return sorted(chosen)


class TrackedBody:
    """A request body made by an async generator that records whether it was finalized."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks
        self.started = False
        self.finished = False  # its `finally` ran: exhausted, or closed by aclose()

    async def generate(self) -> Any:
        self.started = True
        try:
            for chunk in self.chunks:
                yield chunk
        finally:
            self.finished = True


def check_generators(bodies: Iterable[TrackedBody], where: str) -> None:
    """S13: no request-body async generator is left suspended."""
    for body in bodies:
        if body.started and not body.finished:
            raise HarnessFailure(f"{where}: a request body generator was left suspended")


# --- the protocols -----------------------------------------------------------------------


def _no_private_checks(http: Any, where: str) -> None:
    pass


def _h2_private_checks(http: Any, where: str) -> None:
    """A pooled HTTP/2 connection: no error, not draining; h2 counts no open stream on it
    (httpcore #1022); every received byte was acknowledged to h2. No statistic tells these
    (ConnectionStatistics counts the pool's streams, not h2's, and says nothing of flow
    control), so they read trioclient's HTTP2Connection and h2's private window manager."""
    if http.error is not None or not http.is_usable:
        raise HarnessFailure(
            f"{where}: a failed or draining connection is pooled: "
            f"{http.error!r}, draining={http.draining}"
        )
    conn = internal(http, "_h2", "trioclient's h2.connection.H2Connection")
    if conn.open_outbound_streams:
        raise HarnessFailure(
            f"{where}: h2 counts {conn.open_outbound_streams} open streams on an idle "
            "connection (the pool's count and h2's drifted apart)"
        )
    window = internal(conn, "_inbound_flow_control_window_manager", "h2's inbound window")
    processed = internal(window, "_bytes_processed", "h2's unacknowledged inbound bytes")
    if window.current_window_size + processed != window.max_window_size:
        raise HarnessFailure(
            f"{where}: received data was never acknowledged to h2: connection window "
            f"{window.current_window_size} + {processed} processed != {window.max_window_size}"
        )


@dataclass(frozen=True)
class Protocol:
    """What the harness needs to know of one protocol."""

    name: str
    http_version: str  # as Response.http_version and ConnectionStatistics.http_version say
    connection_tasks: tuple[str, ...]  # the tasks a live connection runs in the nursery
    phases: frozenset[str]  # faults.py must classify these in a counting run (plain HTTP)
    check_pooled: Callable[[Any, str], None]  # private checks of a pooled connection
    http2: bool = False

    def client_options(self, tls: bool) -> dict[str, Any]:
        """The Client options selecting this protocol (HTTP/2 without TLS: h2c with prior
        knowledge; with TLS, ALPN picks it)."""
        if not self.http2:
            return {}
        return {"http2": True} if tls else {"http2": True, "http1": False}

    def expected_phases(self, tls: bool) -> frozenset[str]:
        return self.phases | ({"tls-handshake"} if tls else set())

    def __str__(self) -> str:
        return self.name


HTTP11 = Protocol(
    "http1.1",
    "HTTP/1.1",
    connection_tasks=(),
    phases=frozenset({"tcp-connect", "write", "read-head"}),
    check_pooled=_no_private_checks,
)
HTTP2 = Protocol(
    "http2",
    "HTTP/2",
    connection_tasks=("_read_loop", "_write_loop"),
    phases=frozenset({"tcp-connect", "h2-read", "h2-write"}),
    check_pooled=_h2_private_checks,
    http2=True,
)


# --- the shared invariants ---------------------------------------------------------------


def assert_quiet(client: trioclient.Client, where: str = "") -> None:
    """Nothing in flight: every connection the books count is idle (tests/helpers.py's
    check, reported as a HarnessFailure with `where`)."""
    try:
        _assert_quiet(client)
    except AssertionError:
        raise HarnessFailure(
            f"{where}: the books do not balance: {client.pool_statistics()}"
        ) from None


def _nursery(client: trioclient.Client) -> trio.Nursery:
    # Private: the client's nursery (no statistic lists the background tasks it runs).
    nursery = internal(client, "_nursery", "the client's nursery")
    if nursery is None:
        raise HarnessFailure("the client has no nursery")
    return nursery  # type: ignore[no-any-return]


def assert_tasks(client: trioclient.Client, protocol: Protocol, live: int, where: str) -> None:
    """The client's nursery runs its housekeeping task and each live connection's tasks."""
    names = sorted(task.name.rsplit(".", 1)[-1] for task in _nursery(client).child_tasks)
    wanted = sorted(["_run_housekeeping", *(protocol.connection_tasks * live)])
    if names != wanted:
        raise HarnessFailure(
            f"{where}: the client's nursery runs {names}, expected {wanted} "
            f"({live} live {protocol.http_version} connections)"
        )


def assert_only_housekeeping(client: trioclient.Client, where: str = "") -> None:
    """The client's nursery runs its housekeeping task and nothing else."""
    assert_tasks(client, HTTP11, 0, where)


def _pooled_drivers(client: trioclient.Client) -> list[Any]:
    # Private: the protocol driver (HTTP11Connection / HTTP2Connection) of each pooled
    # connection. No statistic names a connection's socket, and the socket is what the fault
    # injector knows (it also carries the HTTP/2 checks of _h2_private_checks).
    pool = internal(client._transport, "_pool", "HTTPTransport's ConnectionPool")
    books = internal(pool, "_books", "the pool's books")
    return [conn.http for conn in books.entries() if not conn.is_closed and conn.http is not None]


def check_connections(
    client: trioclient.Client, protocol: Protocol, injector: FaultInjector, where: str
) -> int:
    """The invariants both protocols share (see the module docstring); returns how many
    connections are pooled (all idle)."""
    assert_quiet(client, where)
    transport = client._transport
    assert isinstance(transport, trioclient.HTTPTransport)
    live = [stats for stats in transport.connection_statistics() if not stats.is_closed]
    for stats in live:
        if stats.http_version != protocol.http_version or stats.in_use:
            raise HarnessFailure(f"{where}: expected an idle {protocol.http_version}: {stats}")
    assert_tasks(client, protocol, len(live), where)
    drivers = _pooled_drivers(client)
    if len(drivers) != len(live):
        raise HarnessFailure(f"{where}: {len(drivers)} drivers for {len(live)} connections")
    for http in drivers:
        protocol.check_pooled(http, where)
    pooled = [socket_of(internal(http, "_stream", "the connection's stream")) for http in drivers]
    for sock in injector.sockets:
        if sock.is_closed:
            continue
        if sock not in pooled:
            raise HarnessFailure(f"{where}: {sock!r} is open but belongs to no pooled connection")
        if sock.dead is not None:
            raise HarnessFailure(f"{where}: faulted {sock!r} is still pooled")
    return len(live)


def check_closed(client: trioclient.Client, injector: FaultInjector, where: str) -> None:
    """After ``async with Client()``: every socket closed, the books empty."""
    still_open = [sock for sock in injector.sockets if not sock.is_closed]
    if still_open:
        raise HarnessFailure(f"{where}: sockets open after the client closed: {still_open}")
    stats = client.pool_statistics()
    transport = client._transport
    assert isinstance(transport, trioclient.HTTPTransport)
    left = transport.connection_statistics()
    if stats.connections or stats.waiting or stats.requests_active or left:
        raise HarnessFailure(f"{where}: books not empty after the client closed: {stats} {left}")


def require_phases(ops: Iterable[Op], expected: Iterable[str], where: str) -> None:
    """A counting run's socket operations were classified as expected: every expected phase
    seen, none "other". faults.py finds phases by trioclient's function names; a rename there
    must fail the sweep, not quietly turn a phase into "other"."""
    seen = [op.phase for op in ops]
    missing = set(expected) - set(seen)
    if missing or "other" in seen:
        raise HarnessFailure(
            f"{where}: faults.py classified the socket operations as {sorted(set(seen))}; "
            f"missing {sorted(missing)}{', some as other' if 'other' in seen else ''}: "
            "did a trioclient function that faults._phase_of_stack looks for get renamed?"
        )


# --- the runner --------------------------------------------------------------------------


async def run_in_client(
    client: trioclient.Client,
    injector: FaultInjector,
    where: str,
    *,
    excluded: set[trio.Nursery],
    scenario: Callable[[], Awaitable[None]],
    check: Callable[[], Awaitable[tuple[BaseException | None, bool]]],
) -> None:
    """Run `scenario` in `client` with `injector` installed, then, disarmed, `check`; see the
    module docstring.

    `check` judges the run and returns what escaped the scenario (to re-raise) and whether
    the caller was cancelled. The client's nursery is added to `excluded` (its tasks are
    not the scenario's steps).
    """
    escaped: BaseException | None = None
    cancelled = False
    with injector.installed(), trio.CancelScope() as outer:
        try:
            async with client:
                excluded.add(_nursery(client))
                await scenario()
                injector.disarm()  # the checks need a healthy network
                escaped, cancelled = await check()
                if escaped is not None:
                    raise escaped  # must leave `async with Client()` unchanged
                if cancelled:
                    outer.cancel()  # and so must a Cancelled
                    await trio.lowlevel.checkpoint()
        except HarnessFailure:
            raise
        except BaseException as exc:
            if outer.cancel_called and only_cancelled(exc):
                raise
            if exc is not escaped:
                raise HarnessFailure(
                    f"{where}: leaving the client raised {exc!r} instead of {escaped!r}"
                ) from exc
    if cancelled and not outer.cancelled_caught:
        raise HarnessFailure(f"{where}: a Cancelled did not get out of the client unchanged")
    check_closed(client, injector, where)
