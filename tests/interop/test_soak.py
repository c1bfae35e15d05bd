"""A bounded soak against nginx on loopback (issue 10, "A soak test in CI").

For each protocol (HTTP/1.1, HTTP/2 over TLS, h2c) one Client runs :data:`TASKS` tasks
that together send :data:`REQUESTS_PER_PROTOCOL` GETs to a private nginx. Each request is
planned up front from the seed (so a failure replays with the same plan; only Trio's
scheduling and the machine's load differ):

* most run under a random 0-5 ms deadline (``trio.move_on_after``);
* some are streamed (``client.stream`` + ``aiter_bytes``) to the end, some streamed and
  abandoned part-way (leaving the ``async with`` after a random number of bytes), the rest
  read whole (``client.get``);
* the bodies are known: ``/index.txt``, ``/fixed``, ``/big.bin`` (``pattern_bytes(1 MiB)``)
  and byte ranges of it (``Range: bytes=a-b``, answered 206 with ``pattern_bytes(n, a)``),
  so no nginx content beyond what :class:`servers.peers.NginxServer` serves is needed.

Afterwards: every completed body has the right sha256 (an abandoned one the right prefix),
status and HTTP version; every failure is a ``trioclient.TransportError`` or a
``trio.Cancelled`` caught by the request's own scope (anything else fails the test with its
traceback); no warning at all (ResourceWarning included) even after ``gc.collect()``; the
process's file descriptors are back to the baseline once the client has exited; the pool is
quiet when the tasks have finished and all zero after exit; nginx's error log (level info,
where nginx reports protocol abuse) has none of the lines its rapid-reset and
malformed-request defences write; and the next plain request on the same client works.

Which failures are acceptable, and why: ``TransportError`` (timeouts, network and protocol
errors) is what a client may legitimately raise for a request under load, so such failures
are counted and reported. Everything else is a bug here: ``StreamError`` and
``ClientStateError`` are programming mistakes the test does not make (each body is read
once, inside its ``async with``, on an open client); ``DecodingError`` and
``ResponseTooLarge`` cannot happen (identity bodies, no size cap); ``HTTPStatusError`` is
never raised (no ``raise_for_status``) and a wrong status is checked separately; a bare
``OSError``, h2/h11 exception or an ``ExceptionGroup`` means trioclient leaked an internal
error; and ``trio.Cancelled`` escaping without a deadline of its own would be a hang.

Replay: the seed is printed (shown with the failure) and in every assertion message; run
``TRIOCLIENT_SOAK_SEED=<seed> pytest tests/interop/test_soak.py``. Size:
:data:`REQUESTS_PER_PROTOCOL` is chosen so the three protocols take well under a minute on a
loaded 2-core machine; ``TRIOCLIENT_SOAK_REQUESTS`` runs a longer soak locally.
"""

from __future__ import annotations

import gc
import hashlib
import os
import random
import re
import ssl
import time
import traceback
import warnings
from collections import Counter
from dataclasses import dataclass, field

import pytest
import trio
import trustme
from servers.asgi_app import pattern_bytes
from servers.peers import BIG_FILE_SIZE, INDEX_TEXT, NginxServer

import trioclient

TASKS = 100
REQUESTS_PER_PROTOCOL = int(os.environ.get("TRIOCLIENT_SOAK_REQUESTS", "4000"))
DEADLINE_SHARE = 0.7  # requests under a random deadline of 0 to MAX_DEADLINE seconds
MAX_DEADLINE = 0.005
# How a request reads its body (independently of the deadline).
MODES = {"read": 0.45, "stream": 0.30, "abandon": 0.25}
# A hang, not a slow machine: far above the expected run time of one protocol.
HANG_BOUND = 120.0
SEED = int(os.environ.get("TRIOCLIENT_SOAK_SEED", "0")) or random.SystemRandom().randrange(1, 2**32)

BIG = pattern_bytes(BIG_FILE_SIZE)
FIXED_TEXT = b"fixed response\n"
# nginx writes these (mostly at level info) when a client trips its HTTP/2 stream limits
# or rapid-reset defence (CVE-2023-44487), sends a malformed request, or runs it out of
# connections; alert/crit/emerg are never expected.
FORBIDDEN_LOG = (
    "concurrent streams exceeded",
    "too many refused streams",
    "client sent invalid",
    "too many streams at once",
    "worker_connections are not enough",
    "[alert]",
    "[crit]",
    "[emerg]",
)

PROTOCOLS = {
    # name: (client options, which nginx URL, the http_version every response must have)
    "http1": ({"http1": True, "http2": False}, "http_url", "HTTP/1.1"),
    "h2-tls": ({"http1": True, "http2": True}, "https_url", "HTTP/2"),
    "h2c": ({"http1": False, "http2": True}, "h2c_url", "HTTP/2"),
}


@dataclass(frozen=True)
class Op:
    """One planned request: what to fetch, how to read it, under which deadline."""

    path: str
    start: int | None  # a byte range of /big.bin (inclusive bounds), or the whole path
    end: int | None
    mode: str  # read | stream | abandon
    stop_at: int  # abandon: leave after at least this many body bytes
    deadline: float | None

    @property
    def expected(self) -> bytes:
        if self.path == "/index.txt":
            return INDEX_TEXT
        if self.path == "/fixed":
            return FIXED_TEXT
        if self.start is None:
            return BIG
        assert self.end is not None
        return BIG[self.start : self.end + 1]

    @property
    def headers(self) -> dict[str, str] | None:
        if self.start is None:
            return None
        return {"Range": f"bytes={self.start}-{self.end}"}

    def describe(self) -> str:
        where = self.path if self.start is None else f"{self.path}[{self.start}-{self.end}]"
        stop = f" stop_at={self.stop_at}" if self.mode == "abandon" else ""
        deadline = "none" if self.deadline is None else f"{self.deadline * 1000:.2f} ms"
        return f"GET {where} mode={self.mode}{stop} deadline={deadline}"


def plan(seed: int, task: int, count: int) -> list[Op]:
    """The requests of one task; the same for every protocol, given the seed."""
    rng = random.Random(f"{seed}:{task}")
    ops = []
    for _ in range(count):
        mode = rng.choices(list(MODES), weights=list(MODES.values()))[0]
        deadline = rng.uniform(0, MAX_DEADLINE) if rng.random() < DEADLINE_SHARE else None
        start = end = None
        if mode == "abandon":
            # Something left to abandon: a range of 16 KiB to 1 MiB, or the whole file.
            path = "/big.bin"
            if rng.random() < 0.7:
                size = int(2 ** rng.uniform(14, 20))
                start = rng.randrange(0, BIG_FILE_SIZE - size + 1)
                end = start + size - 1
        else:
            path = rng.choices(
                ["/index.txt", "/fixed", "range", "/big.bin"], weights=[25, 15, 52, 8]
            )[0]
            if path == "range":
                path = "/big.bin"
                size = int(2 ** rng.uniform(0, 18))  # 1 B to 256 KiB, log-uniform
                start = rng.randrange(0, BIG_FILE_SIZE - size + 1)
                end = start + size - 1
        op = Op(path, start, end, mode, 0, deadline)
        if mode == "abandon":
            op = Op(path, start, end, mode, rng.randrange(1, len(op.expected)), deadline)
        ops.append(op)
    return ops


@dataclass
class Tally:
    """What happened to the requests of one protocol."""

    outcomes: Counter[str] = field(default_factory=Counter)
    bodies_verified: int = 0  # completed bodies whose sha256 was checked (and matched)
    prefixes_verified: int = 0  # abandoned bodies whose bytes so far were checked
    wrong: list[str] = field(default_factory=list)  # wrong status/version/body
    unexpected: list[str] = field(default_factory=list)  # tracebacks


def check_head(response: trioclient.Response, op: Op, version: str, tally: Tally) -> bool:
    status = 200 if op.start is None else 206
    problems = []
    if response.status_code != status:
        problems.append(f"status {response.status_code} (expected {status})")
    if response.http_version != version:
        problems.append(f"{response.http_version} (expected {version})")
    if op.start is not None:
        content_range = f"bytes {op.start}-{op.end}/{BIG_FILE_SIZE}"
        if response.headers.get("content-range") != content_range:
            problems.append(f"Content-Range {response.headers.get('content-range')!r}")
    if problems:
        tally.wrong.append(f"{op.describe()}: " + ", ".join(problems))
    return not problems


def check_body(body: bytes, op: Op, tally: Tally) -> None:
    expected = op.expected
    if hashlib.sha256(body).digest() == hashlib.sha256(expected).digest():
        tally.bodies_verified += 1
    else:
        tally.wrong.append(
            f"{op.describe()}: body of {len(body)} bytes, sha256 {hashlib.sha256(body).hexdigest()}"
            f" (expected {len(expected)} bytes, {hashlib.sha256(expected).hexdigest()})"
        )


async def fetch(
    client: trioclient.Client, base: str, op: Op, version: str, tally: Tally, where: list[str]
) -> str:
    """Send one request and check what arrived; return the outcome (if not cancelled).
    ``where[0]`` says how far a streamed request got, for the cancellation statistics."""
    url = base + op.path
    if op.mode == "read":
        response = await client.get(url, headers=op.headers)
        if check_head(response, op, version, tally):
            check_body(response.content, op, tally)
        return "completed"
    async with client.stream("GET", url, headers=op.headers) as response:
        where[0] = "after the headers"
        if not check_head(response, op, version, tally):
            return "completed"
        expected = memoryview(op.expected)
        digest = hashlib.sha256()
        received = 0
        async for chunk in response.aiter_bytes():
            if op.mode == "abandon" and chunk != expected[received : received + len(chunk)]:
                tally.wrong.append(f"{op.describe()}: wrong bytes at offset {received}")
                return "abandoned"
            digest.update(chunk)
            received += len(chunk)
            where[0] = "in the body"
            if op.mode == "abandon" and received >= op.stop_at:
                tally.prefixes_verified += 1
                return "abandoned"  # leaves the async with part-way: the stream is reset
        if digest.digest() == hashlib.sha256(op.expected).digest():
            tally.bodies_verified += 1
        else:
            tally.wrong.append(f"{op.describe()}: streamed {received} bytes, wrong sha256")
        where[0] = "after the body"
        return "completed"


async def run_task(
    client: trioclient.Client, base: str, ops: list[Op], version: str, tally: Tally
) -> None:
    for op in ops:
        where = ["before the response" if op.mode != "read" else "in get()"]
        outcome = ""
        with trio.move_on_after(op.deadline if op.deadline is not None else float("inf")):
            try:
                outcome = await fetch(client, base, op, version, tally, where)
            except trioclient.TransportError as exc:
                outcome = type(exc).__name__
            except (trio.Cancelled, KeyboardInterrupt):
                raise
            except BaseException as exc:
                outcome = f"UNEXPECTED {type(exc).__name__}"
                tally.unexpected.append(
                    f"{op.describe()}:\n" + "".join(traceback.format_exception(exc))
                )
        tally.outcomes[outcome or f"cancelled {where[0]}"] += 1


def forbidden_lines(log: str) -> list[str]:
    return [line for line in log.splitlines() if any(text in line for text in FORBIDDEN_LOG)]


def log_levels(log: str) -> dict[str, int]:
    return dict(Counter(m.group(1) for m in re.finditer(r"\[(\w+)\] \d+#\d+: ", log)))


def count_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.slow
@pytest.mark.parametrize("protocol", list(PROTOCOLS))
async def test_soak(
    protocol: str,
    tls_ca: trustme.CA,
    h2_ssl_context: ssl.SSLContext,
    socket_leak_checker,
) -> None:
    options, url_attribute, version = PROTOCOLS[protocol]
    per_task, extra = divmod(REQUESTS_PER_PROTOCOL, TASKS)
    plans = [plan(SEED, task, per_task + (task < extra)) for task in range(TASKS)]
    ops = [op for ops in plans for op in ops]
    context = f"[soak {protocol}, replay with TRIOCLIENT_SOAK_SEED={SEED}]"
    print(
        f"{context} {len(ops)} requests over {TASKS} tasks: "
        f"{sum(op.deadline is not None for op in ops)} under a 0-{MAX_DEADLINE * 1000:g} ms "
        f"deadline, {Counter(op.mode for op in ops)}"
    )
    tally = Tally()
    # nginx at level info: "concurrent streams exceeded" and friends are info lines.
    with NginxServer(tls_ca, log_level="info") as server:
        base = getattr(server, url_attribute)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            gc.collect()
            fds_before = count_fds()
            started = time.monotonic()
            async with trioclient.Client(verify=h2_ssl_context, **options) as client:
                with trio.fail_after(HANG_BOUND):
                    async with trio.open_nursery() as nursery:
                        for task_ops in plans:
                            nursery.start_soon(run_task, client, base, task_ops, version, tally)
                soak_seconds = time.monotonic() - started
                quiet = client.pool_statistics()
                # The next plain request on the same client works.
                with trio.fail_after(HANG_BOUND):
                    response = await client.get(f"{base}/index.txt")
                assert (response.status_code, response.http_version, response.content) == (
                    200,
                    version,
                    INDEX_TEXT,
                ), context
            after_exit = client.pool_statistics()
            del client, response, nursery
            gc.collect()
            fds_after = count_fds()
        log = server.log()

    print(
        f"{context} {soak_seconds:.1f} s; outcomes {dict(tally.outcomes)}; "
        f"{tally.bodies_verified} bodies and {tally.prefixes_verified} abandoned prefixes "
        f"verified; {socket_leak_checker.created} connections opened; pool after the soak "
        f"{quiet}; nginx log lines by level {log_levels(log)}"
    )
    assert not tally.unexpected, (
        f"{context} {len(tally.unexpected)} request(s) failed with something other than a "
        "trioclient.TransportError or their own deadline; the first ones:\n"
        + "\n".join(tally.unexpected[:5])
    )
    assert not tally.wrong, f"{context} {len(tally.wrong)} wrong responses:\n" + "\n".join(
        tally.wrong[:20]
    )
    assert sum(tally.outcomes.values()) == len(ops), context
    assert tally.bodies_verified > 0, f"{context} no body completed: {dict(tally.outcomes)}"
    assert quiet.in_use == quiet.connecting == quiet.waiting == quiet.requests_active == 0, (
        f"{context} pool not quiet once every task finished: {quiet}"
    )
    abuse = forbidden_lines(log)
    assert not abuse, f"{context} nginx logged {len(abuse)} line(s) of abuse:\n" + "\n".join(
        abuse[:10]
    )
    assert after_exit == trioclient.PoolStatistics(0, 0, 0, 0, 0, 0), context
    assert [str(w) for w in caught] == [], f"{context} warnings (ResourceWarning: a leak)"
    # At most the baseline: in the full suite, sockets other tests left to the collector or
    # to their servers' threads may close during the soak, so the count can also drop.
    assert fds_after <= fds_before, f"{context} file descriptors {fds_before} -> {fds_after}"
