"""Three crawler processes share one crawl of the demo site through Redis; one is SIGKILLed
in the middle of its fetches.

The demo site is served by hypercorn (in this process) behind `AccessLog`, an ASGI wrapper
that records every request with the name of the worker process that sent it (each sends
``X-Test-Worker``) and that never answers the "victim" process after its first
`VICTIM_ANSWERED` requests: its fetches after that hang, each holding a lease. The steps,
each waiting for an event rather than for time:

1. the victim crawls alone until every one of its `VICTIM_WORKERS` workers is stuck in a
   request (so it holds that many leases, and is between no fetch and its ``done``);
2. two survivors start and crawl the rest of the site while the victim is alive (and
   renewing its leases: the survivors must not get those URLs);
3. the victim is SIGKILLed; its leases expire after `LEASE` seconds and the survivors take
   the URLs over; the survivors finish when the frontier is finished.

Then the access log must show every URL of the crawl requested, each exactly once by a live
worker (the victim's stuck requests are the only second requests, and came after the kill),
and the survivors' JSON lines must agree.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import coredis
import pytest
import trio
import trustme
from servers.hypercorn_server import HypercornServer
from servers.redis_peer import RedisServer

from trioclient.crawl import RedisFrontier
from trioclient.crawl._demo_site import DemoSite

REPO = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("redis_worker.py")
PAGES = 300
VICTIM_WORKERS = 3
VICTIM_ANSWERED = 12
SURVIVOR_WORKERS = 4
LEASE = 6.0  # seconds; renewed every third of it (slack for a loaded machine)


@dataclass
class Entry:
    worker: str
    path: str
    start: float
    end: float | None = None


class AccessLog:
    """The demo site, recording who asked for what, and holding the victim's late requests."""

    def __init__(self, app: DemoSite) -> None:
        self.app = app
        self.lock = threading.Lock()
        self.entries: list[Entry] = []
        self.victim_answered = 0
        self.victim_stuck = 0

    def snapshot(self) -> list[Entry]:
        with self.lock:
            return list(self.entries)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        entry = Entry(headers.get(b"x-test-worker", b"?").decode(), scope["path"], time.monotonic())
        # A redirect's second hop belongs to the fetch that got the redirect.
        counted = entry.worker == "victim" and not entry.path.startswith("/moved/")
        with self.lock:
            self.entries.append(entry)
            stuck = counted and self.victim_answered >= VICTIM_ANSWERED
            if stuck:
                self.victim_stuck += 1
            elif counted:
                self.victim_answered += 1
        if stuck:
            await trio.sleep_forever()  # until the server stops (the victim is dead by then)
        await self.app(scope, receive, send)
        entry.end = time.monotonic()


def _output_files(directory: Path, name: str) -> tuple[BinaryIO, BinaryIO]:
    return (directory / f"{name}.out").open("wb"), (directory / f"{name}.err").open("wb")


async def _wait_for(condition: Any, what: str, timeout: float = 90.0) -> None:
    with trio.move_on_after(timeout):
        while not condition():
            await trio.sleep(0.02)
        return
    raise AssertionError(f"waited {timeout} s for {what}")


@pytest.fixture
def logged_site(tls_ca: trustme.CA) -> Iterator[tuple[AccessLog, HypercornServer]]:
    log = AccessLog(DemoSite(PAGES, slow_seconds=0.05))
    with HypercornServer(app=log, ca=tls_ca) as server:
        yield log, server


@pytest.mark.slow
async def test_killed_worker_leases_go_to_the_others_and_nothing_is_fetched_twice(
    redis_server: RedisServer, logged_site: tuple[AccessLog, HypercornServer], tmp_path: Path
) -> None:
    crawl = f"sigkill-{uuid.uuid4().hex}"
    log, server = logged_site
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    processes: dict[str, trio.Process] = {}

    async def start(name: str, workers: int) -> None:
        argv = [
            sys.executable, str(WORKER), "crawl", redis_server.url, crawl, server.http_url,
            name, str(workers), str(tmp_path / f"{name}.jsonl"), str(LEASE),
        ]  # fmt: skip
        out, err = _output_files(tmp_path, name)
        with out, err:
            processes[name] = await trio.lowlevel.open_process(
                argv, stdout=out, stderr=err, env=env
            )

    try:
        # 1. The victim alone, until all its workers are stuck mid-fetch.
        await start("victim", VICTIM_WORKERS)
        await _wait_for(lambda: log.victim_stuck == VICTIM_WORKERS, "the victim to be stuck")
        # 2. The survivors join while the victim lives.
        await start("a", SURVIVOR_WORKERS)
        await start("b", SURVIVOR_WORKERS)

        def survivors_answered() -> int:
            return sum(1 for e in log.snapshot() if e.worker in ("a", "b") and e.end is not None)

        await _wait_for(lambda: survivors_answered() >= 30, "the survivors to crawl")
        # 3. SIGKILL: no cleanup, no release; only lease expiry brings its URLs back.
        assert processes["victim"].returncode is None
        killed_at = time.monotonic()
        processes["victim"].send_signal(signal.SIGKILL)
        await processes["victim"].wait()
        with trio.fail_after(120):
            for name in "ab":
                assert await processes[name].wait() == 0, (tmp_path / f"{name}.err").read_text()
    finally:
        for process in processes.values():
            if process.returncode is None:
                process.kill()
                await process.wait()
    entries = log.snapshot()

    async with (
        coredis.Redis.from_url(redis_server.url) as redis,
        RedisFrontier(redis_server.url, crawl=crawl) as frontier,
    ):
        counts = await frontier.counts()
        seen = {url.decode() for url in await redis.smembers(frontier.keys[3])}
        await frontier.clear()

    base = server.http_url
    fetches = [e for e in entries if not e.path.startswith("/moved/")]
    stuck = [e for e in fetches if e.worker == "victim" and e.end is None]
    live = [e for e in fetches if not (e.worker == "victim" and e.end is None)]

    # The frontier is finished: everything seen was done, by someone.
    assert counts.queued == counts.leased == 0
    assert counts.done == counts.seen == len(seen) > PAGES
    # Every URL of the crawl was requested, and once only by live workers.
    assert {base + e.path for e in fetches} == seen
    twice = {path: n for path, n in Counter(e.path for e in live).items() if n != 1}
    assert not twice, twice
    # The victim's stuck fetches went to the survivors, and only after it was killed.
    assert len(stuck) == VICTIM_WORKERS
    taken_over = [e for e in live if e.path in {s.path for s in stuck}]
    assert {e.worker for e in taken_over} <= {"a", "b"}
    assert len(taken_over) == VICTIM_WORKERS
    assert all(e.start > killed_at for e in taken_over)
    # Both survivors crawled, and their output agrees with the access log.
    lines = {
        name: [
            json.loads(line)["url"]
            for line in (tmp_path / f"{name}.jsonl").read_text().splitlines()
        ]
        for name in "ab"
    }
    assert lines["a"]
    assert lines["b"]
    written = lines["a"] + lines["b"]
    assert len(written) == len(set(written))
    victim_answered = {base + e.path for e in live if e.worker == "victim"}
    assert len(victim_answered) == VICTIM_ANSWERED
    assert set(written) | victim_answered == seen
    assert not set(written) & victim_answered
    for name in "ab":
        stats = json.loads((tmp_path / f"{name}.out").read_text())
        assert stats["leases_lost"] == 0
