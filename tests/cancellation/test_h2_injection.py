"""The cancellation harness applied to HTTP/2: faults at every point of multiplexed scenarios.

Each scenario is a *victim* request and its siblings, started together on one HTTP/2
connection to a raw h2 server (``servers.h2_raw``, which records every frame the client
sends): five GETs over h2c (bodies of 3 KB to 300 KB); three uploads over h2c, each larger
than the server's 16 KB stream window (the victim's body from an async generator); five GETs
over TLS with ALPN h2; five GETs where the first connection answers its first n streams and
then sends GOAWAY, the others being retried on a new connection (n = 1 and 3; 1 to 4 in the
full sweep). See ``h2_driver`` (and ``harness``) for how faults are injected and what is
checked after each run.

* ``test_peer_faults``: a reset / EOF / broken pipe at socket operation k of a counting run
  (whichever task does it: the request connecting, the reader, the writer);
* ``test_victim_interrupted``: the victim's own scope cancelled, or a KeyboardInterrupt
  delivered to it as Trio delivers one to the main task, after step k: of the victim's own
  task (``*-at-step``: every checkpoint of its request) or of any task of the run
  (``*-at-any-step``: every moment of the exchange); the victim starts first (it opens the
  connection) or one schedule point after its siblings (it waits for theirs);
* ``test_victim_timeout``: the server stalls only the victim's stream (no head, half a body,
  no credit for its upload) and its per-request read/write timeout fires at 0.05 ... 0.55 s,
  while the siblings' responses drip in over 0.3 s;
* ``test_ctrl_c_in_whichever_task_runs``: Ctrl-C at each socket operation of a download and
  of an upload, handled as Trio's SIGINT handler does, in the task doing the operation (often
  the connection's reader or writer): the KeyboardInterrupt must leave the client bare.

Every test runs on pytest-trio's ``autojump_clock``: the clock jumps to the next deadline
whenever every task is blocked, so the victim's timeouts fire and responses drip without
real waiting, and a hang ends in a trioclient timeout (reported as a failure) instead of
blocking forever.

Runtime (about 17 s on two cores): a normal run samples the positions of each sweep (the
``*_LIMIT`` values below: the first and last position of each kind of point, plus evenly
spaced ones; each run takes 10-30 ms); ``TRIOCLIENT_HARNESS_FULL=1`` runs every position
under three scheduler seeds (about 7 minutes). One summary line per sweep goes to the
"cancellation harness" section of the terminal summary.
"""

from __future__ import annotations

import ssl
from collections import Counter

import pytest
import trio
import trio.testing
from faults import PEER_KINDS
from h2_driver import (
    STEP_KINDS,
    H2Outcome,
    H2Plan,
    H2Scenario,
    Req,
    Tls,
    run_h2,
    sample,
)
from h2_interrupts import run_sigint
from harness import FULL, SUMMARY, HarnessFailure

GETS = (
    Req("GET", 3_000, 2),
    Req("GET", 40_000, 3),
    Req("GET", 120_000, 4),
    Req("GET", 300_000, 5),
)
UPLOADS = (Req("POST", 40_000, 2), Req("POST", 70_000, 3))

SCENARIOS = [
    H2Scenario("h2c-gets", Req("GET", 150_000, 1), GETS, stalls=("head", "body")),
    H2Scenario(
        "h2c-uploads",
        Req("POST", 100_000, 1, streamed=True),
        UPLOADS,
        window=16_384,
        stalls=("upload", "head"),
    ),
    H2Scenario("tls-gets", Req("GET", 150_000, 1), GETS, tls=True, stalls=("head", "body")),
    *(
        H2Scenario(f"goaway-after-{n}", Req("GET", 150_000, 1), GETS, goaway_after=n)
        for n in ((1, 2, 3, 4) if FULL else (1, 3))
    ),
]

SEEDS = range(3) if FULL else range(1)
PEER_LIMIT = 10**6 if FULL else 20  # about this many positions per sweep: socket ops
STEP_LIMIT = 10**6 if FULL else 48  # the victim's own steps (all of them, in practice)
ANY_LIMIT = 10**6 if FULL else 12  # every task's steps (hundreds)
AFTER = (0.05, 0.15, 0.25, 0.35, 0.55)  # the victim's timeouts (siblings drip for 0.3 s)
ORDERS = [True, False]


@pytest.fixture
def tls(server_ssl_context: ssl.SSLContext, ssl_context: ssl.SSLContext) -> Tls:
    return Tls(server=server_ssl_context, client=ssl_context)


def _report(title: str, outcomes: list[H2Outcome], failures: list[str], runs: int) -> str:
    results = Counter(outcome.result for outcome in outcomes)
    phases = Counter(outcome.fired for outcome in outcomes if outcome.fired is not None)
    return (
        f"{title}: {runs} runs, {len(failures)} failed; points {dict(phases)};"
        f" outcomes {dict(results)}"
    )


async def _sweep(
    scenario: H2Scenario, plans: list[H2Plan], tls: Tls, title: str
) -> list[H2Outcome]:
    outcomes: list[H2Outcome] = []
    failures: list[str] = []
    for seed in SEEDS:
        for plan in plans:
            try:
                outcomes.append(await run_h2(scenario, plan, tls, seed=seed))
            except HarnessFailure as failure:
                failures.append(str(failure))
    SUMMARY.append(_report(title, outcomes, failures, len(plans) * len(SEEDS)))
    assert not failures, f"{len(failures)} of {len(plans) * len(SEEDS)} runs failed:\n" + (
        "\n".join(failures)
    )
    return outcomes


@pytest.mark.parametrize("kind", sorted(kind.value for kind in PEER_KINDS))
@pytest.mark.parametrize("scenario", SCENARIOS, ids=str)
async def test_peer_faults(
    scenario: H2Scenario, kind: str, tls: Tls, autojump_clock: trio.testing.MockClock
) -> None:
    counting = await run_h2(scenario, H2Plan(), tls)
    positions = sample(counting.ops, PEER_LIMIT)
    plans = [H2Plan(kind, index) for index in positions]
    title = f"{scenario.name} / {kind} ({len(plans)} of {len(counting.ops)} socket ops)"
    outcomes = await _sweep(scenario, plans, tls, title)
    # The operation counts of a run are not exactly reproducible (how the kernel splits
    # the bytes), but nearly every fault must have hit its mark.
    reached = sum(outcome.fired is not None for outcome in outcomes)
    assert reached >= len(outcomes) - 2, f"only {reached} of {len(outcomes)} faults fired"


@pytest.mark.parametrize("first", ORDERS, ids=["victim-first", "victim-late"])
@pytest.mark.parametrize("kind", STEP_KINDS)
@pytest.mark.parametrize("scenario", SCENARIOS, ids=str)
async def test_victim_interrupted(
    scenario: H2Scenario,
    kind: str,
    first: bool,
    tls: Tls,
    autojump_clock: trio.testing.MockClock,
) -> None:
    counting = await run_h2(scenario, H2Plan(kind, victim_first=first), tls)
    if kind.endswith("-at-any-step"):
        positions = sample([""] * counting.all_steps, ANY_LIMIT)
        of = f"{counting.all_steps} steps of all tasks"
    else:
        positions = sample(counting.steps, STEP_LIMIT)
        of = f"{len(counting.steps)} steps of the victim"
    plans = [H2Plan(kind, index, victim_first=first) for index in positions]
    order = "first" if first else "late"
    title = f"{scenario.name} / {kind}, victim {order} ({len(plans)} of {of})"
    outcomes = await _sweep(scenario, plans, tls, title)
    assert any(not outcome.result.startswith("completed") for outcome in outcomes)


@pytest.mark.parametrize("scenario", [s for s in SCENARIOS if s.stalls], ids=str)
async def test_victim_timeout(
    scenario: H2Scenario, tls: Tls, autojump_clock: trio.testing.MockClock
) -> None:
    plans = [
        H2Plan("timeout", victim_first=first, stall=stall, after=after)
        for stall in scenario.stalls
        for after in AFTER
        for first in ORDERS
    ]
    await _sweep(scenario, plans, tls, f"{scenario.name} / timeout")


@pytest.mark.parametrize(
    "req", [Req("GET", 300_000, 7), Req("POST", 300_000, 8)], ids=["download", "upload"]
)
async def test_ctrl_c_in_whichever_task_runs(
    req: Req, autojump_clock: trio.testing.MockClock
) -> None:
    """Ctrl-C at each socket operation of an HTTP/2 request of 300 KB, in the task doing it
    (the request connecting, or the connection's reader or writer), as Trio's SIGINT handler
    does: the KeyboardInterrupt must leave ``async with Client()`` bare."""
    failures: list[str] = []
    points: Counter[str] = Counter()
    landed: Counter[str] = Counter()
    index = 0
    while index < 1000:
        try:
            where, phase = await run_sigint(index, req)
        except HarnessFailure as failure:
            failures.append(str(failure))
            where, phase = "failed", "failed"
        if where is None:
            break
        points[str(phase)] += 1
        landed[str(where)] += 1
        index += 1
    SUMMARY.append(
        f"h2c-{req.method.lower()} / ctrl-c in the running task: {index} runs,"
        f" {len(failures)} failed; points {dict(points)}; landed {dict(landed)}"
    )
    assert index > 5
    assert not failures, f"{len(failures)} of {index} runs failed:\n" + "\n".join(failures)
