"""The crawler's benchmark (issue 14): pages/s on the demo site, and memory at 100k queued URLs.

    python -m benchmarks.crawl                  # the full run (a few minutes)
    python -m benchmarks.crawl --quick          # tiny sizes (what the smoke test runs)
    python -m benchmarks.crawl --results-dir DIR

Everything runs on 127.0.0.1 in processes of its own, started and stopped here:

* the demo site (`trioclient.crawl._demo_site.DemoSite`, what ``trioclient demo`` serves)
  under hypercorn on Trio, one process (``--serve``);
* a private ``redis-server`` (Debian's package) on a free port, without persistence;
* each measured crawler in a fresh Python process (``--child``), which prints one JSON line.

Measured:

* **pages/s**: a whole crawl of the site (every page reachable, ``max_depth`` large) by
  ``--workers`` workers per process, with `Politeness(rate=None, per_host=workers)` (no
  rate limit: the point is the crawler's own cost; robots.txt on), in three set-ups:
  1 process with the default `MemoryFrontier`, 1 process with `RedisFrontier`, and 2
  processes sharing one `RedisFrontier`. The rate is results / wall time from the first
  process's start of crawling to the last one's end (imports and start-up excluded).
* **memory at 100k queued URLs**: a process adds ``--queued`` URLs (in batches of 1,000)
  to an empty frontier; reported is how much its peak RSS (``VmHWM``) grew, and for Redis
  how much ``used_memory`` grew on the server too, per URL.

The site's server is Python (hypercorn), so on a small machine it is likely what limits the
2-process figure: the machine's CPU count is printed with the results. Nothing here is a
test; tests/test_benchmarks_smoke.py runs ``--quick`` so it cannot rot.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # `python benchmarks/crawl.py`
    sys.path.insert(0, str(Path(__file__).absolute().parent.parent))

from benchmarks import machine

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results" / "crawl"  # not results/: docs show its newest .md
FULL = {"pages": 2000, "workers": 16, "queued": 100_000}
QUICK = {"pages": 150, "workers": 8, "queued": 2_000}


# --- helpers -------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(proc: subprocess.Popen[bytes], port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port} after {timeout} s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _peak_rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def _env() -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }


# --- children ----------------------------------------------------------------------------------


def serve(port: int, pages: int) -> None:
    """The demo site on 127.0.0.1:port until SIGTERM."""
    import trio
    from hypercorn.config import Config
    from hypercorn.trio import serve as hypercorn_serve

    from trioclient.crawl._demo_site import DemoSite

    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = None
    config.errorlog = None
    config.keep_alive_timeout = 75

    async def main() -> None:
        stop = trio.Event()
        with trio.open_signal_receiver(signal.SIGTERM) as signals:
            async with trio.open_nursery() as nursery:

                async def wait_signal() -> None:
                    async for _ in signals:
                        stop.set()
                        return

                nursery.start_soon(wait_signal)
                await hypercorn_serve(DemoSite(pages), config, shutdown_trigger=stop.wait)
                nursery.cancel_scope.cancel()

    trio.run(main)


async def _crawl(args: argparse.Namespace) -> dict[str, Any]:
    import trio

    import trioclient
    from trioclient.crawl import Crawler, Politeness, RedisFrontier

    politeness = Politeness(rate=None, per_host=args.workers)
    async with trioclient.Client() as client:
        if args.redis:
            async with RedisFrontier(args.redis, crawl=args.crawl) as frontier:
                if args.barrier:
                    await _barrier(args.redis, args.crawl, args.barrier)
                crawler = Crawler(
                    client, [args.site + "/"], frontier=frontier, politeness=politeness,
                    max_depth=100, workers=args.workers,
                )  # fmt: skip
                start = time.time()
                stats = await crawler.run()
                end = time.time()
        else:
            crawler = Crawler(
                client, [args.site + "/"], politeness=politeness, max_depth=100,
                workers=args.workers,
            )  # fmt: skip
            start = time.time()
            stats = await crawler.run()
            end = time.time()
    await trio.lowlevel.checkpoint()
    return {"pages": stats.pages, "ok": stats.ok, "start": start, "end": end}


async def _barrier(url: str, crawl: str, parties: int) -> None:
    """Wait until `parties` processes arrived, so the 2-process crawl starts together."""
    import coredis
    import trio

    async with coredis.Redis.from_url(url) as redis:
        key = f"bench:{crawl}:arrived"
        await redis.incr(key)
        with trio.fail_after(60):
            while int(await redis.get(key) or 0) < parties:
                await trio.sleep(0.005)


async def _fill(args: argparse.Namespace) -> dict[str, Any]:
    from trioclient.crawl import CrawlItem, Frontier, MemoryFrontier, RedisFrontier

    async def add_all(frontier: Frontier) -> None:
        for start in range(0, args.queued, 1000):
            batch = [
                CrawlItem(f"http://127.0.0.1:8080/page/{i}", depth=3, referrer=None)
                for i in range(start, min(start + 1000, args.queued))
            ]
            await frontier.add(batch)

    result: dict[str, Any] = {}
    if args.redis:
        async with RedisFrontier(args.redis, crawl=args.crawl) as frontier:
            await frontier.counts()  # connected, scripts loaded: only the adding is measured
            used_before = await _used_memory(args.redis)
            before = _peak_rss_kib()
            await add_all(frontier)
            result["client_peak_growth_kib"] = _peak_rss_kib() - before
            counts = await frontier.counts()
            result["server_bytes"] = await _used_memory(args.redis) - used_before
            await frontier.clear()
    else:
        memory = MemoryFrontier()
        await memory.counts()
        before = _peak_rss_kib()
        await add_all(memory)
        result["client_peak_growth_kib"] = _peak_rss_kib() - before
        counts = await memory.counts()
    result["queued"] = counts.queued
    return result


async def _used_memory(url: str) -> int:
    import coredis

    async with coredis.Redis.from_url(url) as redis:
        info = await redis.info("memory")
        return int(info["used_memory"])


def child(args: argparse.Namespace) -> None:
    import trio

    result = trio.run(_crawl if args.child == "crawl" else _fill, args)
    print(json.dumps(result))


# --- the parent --------------------------------------------------------------------------------


def _run_children(commands: list[list[str]], timeout: float) -> list[dict[str, Any]]:
    procs = [
        subprocess.Popen(command, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for command in commands
    ]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=timeout)
        if proc.returncode != 0:
            raise RuntimeError(f"{proc.args!r} failed:\n{err.decode()[-3000:]}")
        results.append(json.loads(out.decode().strip().splitlines()[-1]))
    return results


def _start_redis(tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    binary = shutil.which("redis-server") or shutil.which("redis-server", path="/usr/sbin:/sbin")
    if binary is None:
        raise SystemExit("redis-server is not installed (Debian: apt-get install redis-server)")
    port = _free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(tmp), "--logfile", ""],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    _wait_port(proc, port)
    return proc, f"redis://127.0.0.1:{port}/0"


def measure(sizes: dict[str, int], timeout: float) -> dict[str, Any]:
    """Every figure, each in fresh processes; see the module docstring."""
    me = [sys.executable, "-m", "benchmarks.crawl"]
    with tempfile.TemporaryDirectory(prefix="trioclient-bench-crawl-") as tmp:
        redis_proc, redis_url = _start_redis(Path(tmp))
        site_port = _free_port()
        site_cmd = [*me, "--serve", str(site_port), "--pages", str(sizes["pages"])]
        site = subprocess.Popen(site_cmd, env=_env(), cwd=REPO)
        try:
            _wait_port(site, site_port)
            site_url = f"http://127.0.0.1:{site_port}"
            crawl_args = ["--site", site_url, "--workers", str(sizes["workers"])]
            runs: dict[str, Any] = {}
            for name, processes, redis in (
                ("1 process, MemoryFrontier", 1, False),
                ("1 process, RedisFrontier", 1, True),
                ("2 processes, RedisFrontier", 2, True),
            ):
                crawl = uuid.uuid4().hex
                command = [*me, "--child", "crawl", *crawl_args, "--crawl", crawl]
                if redis:
                    command += ["--redis", redis_url, "--barrier", str(processes)]
                results = _run_children([command] * processes, timeout)
                pages = sum(r["pages"] for r in results)
                wall = max(r["end"] for r in results) - min(r["start"] for r in results)
                runs[name] = {
                    "processes": processes,
                    "pages": pages,
                    "per_process": [r["pages"] for r in results],
                    "seconds": round(wall, 3),
                    "pages_per_s": round(pages / wall, 1),
                }
            memory: dict[str, Any] = {}
            for name, redis in (("MemoryFrontier", False), ("RedisFrontier", True)):
                command = [*me, "--child", "fill", "--queued", str(sizes["queued"])]
                if redis:
                    command += ["--redis", redis_url, "--crawl", uuid.uuid4().hex]
                [result] = _run_children([command], timeout)
                memory[name] = result
        finally:
            _stop(site)
            _stop(redis_proc)
    return {"crawl": runs, "memory": memory}


def markdown(result: dict[str, Any]) -> str:
    """The two tables."""
    sizes = result["sizes"]
    lines = [
        f"## Crawl benchmark ({result['when']}, commit {result['commit']}, "
        f"{result['cpus']} CPUs, {result['cpu']})",
        "",
        f"Demo site of {sizes['pages']} pages on hypercorn (one process), {sizes['workers']} "
        "workers per crawler process, no rate limit.",
        "",
        "| set-up | pages | pages per process | seconds | pages/s |",
        "|---|---|---|---|---|",
    ]
    for name, run in result["crawl"].items():
        per = " + ".join(str(p) for p in run["per_process"])
        rate = run["pages_per_s"]
        lines.append(f"| {name} | {run['pages']:,} | {per} | {run['seconds']:.2f} | {rate:,.0f} |")
    queued = sizes["queued"]
    lines += [
        "",
        f"Memory with {queued:,} URLs queued:",
        "",
        "| frontier | crawler peak RSS growth | per URL | Redis used_memory growth | per URL |",
        "|---|---|---|---|---|",
    ]
    for name, m in result["memory"].items():
        client = m["client_peak_growth_kib"] * 1024
        server = m.get("server_bytes")
        server_cells = (
            f"{server / 2**20:.1f} MiB | {server / queued:.0f} B" if server is not None else "- | -"
        )
        lines.append(
            f"| {name} | {client / 2**20:.1f} MiB | {client / queued:.0f} B | {server_cells} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.crawl", description=__doc__)
    p.add_argument("--quick", action="store_true", help="tiny sizes (the smoke test)")
    p.add_argument("--pages", type=int, default=None, help="demo site pages (default 2000)")
    p.add_argument("--workers", type=int, default=None, help="workers per process (16)")
    p.add_argument("--queued", type=int, default=None, help="URLs for the memory figure (100000)")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds one child may take")
    p.add_argument("--results-dir", type=Path, default=None, help="write .json and .md here")
    # Internal: the children.
    p.add_argument("--serve", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--child", choices=("crawl", "fill"), default=None, help=argparse.SUPPRESS)
    p.add_argument("--site", default="", help=argparse.SUPPRESS)
    p.add_argument("--redis", default="", help=argparse.SUPPRESS)
    p.add_argument("--crawl", default="bench", help=argparse.SUPPRESS)
    p.add_argument("--barrier", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    sizes = dict(QUICK if args.quick else FULL)
    for key in sizes:
        if getattr(args, key) is not None:
            sizes[key] = getattr(args, key)
    args.workers, args.queued = sizes["workers"], sizes["queued"]
    if args.serve is not None:
        serve(args.serve, sizes["pages"])
        return 0
    if args.child:
        child(args)
        return 0

    result = {
        "when": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": machine.git_commit(REPO),
        "cpus": os.cpu_count(),
        "cpu": machine.cpu_model(),
        "sizes": sizes,
        **measure(sizes, args.timeout),
    }
    text = markdown(result)
    print(text)
    if args.results_dir is not None or not args.quick:
        directory = args.results_dir or RESULTS
        directory.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        (directory / f"crawl-{stamp}.json").write_text(json.dumps(result, indent=2) + "\n")
        (directory / f"crawl-{stamp}.md").write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
