"""What a result was measured on: CPU, cores, Python, library versions, commit, pinning."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

LIBRARIES = (
    "trioclient",
    "trio",
    "h11",
    "h2",
    "httpx",
    "httpcore",
    "anyio",
    "aiohttp",
    "hypercorn",
    "pyinstrument",
    "httptools",
)


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (or platform's guess)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def versions() -> dict[str, str]:
    """Installed version of every library the suite touches ("missing" if absent)."""
    out: dict[str, str] = {}
    for name in LIBRARIES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "missing"
    return out


def git_commit(repo: Path) -> str:
    """``<sha>`` of the checkout, ``+dirty`` if trioclient/ has uncommitted changes."""
    try:
        sha = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--", "trioclient"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return sha + ("+dirty" if dirty else "")


def plan_pinning() -> tuple[int | None, int | None, str]:
    """(client CPU, server CPU, description): clients on one CPU, the server on another.

    The runner pins itself to the client CPU, so every client script (its child) inherits
    it; the server is pinned when it is started. With one usable CPU nothing is pinned.
    """
    if not hasattr(os, "sched_getaffinity"):
        return None, None, "not pinned (no sched_setaffinity on this platform)"
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None, None, f"not pinned (only CPU {cpus} available)"
    client, server = cpus[0], cpus[1]
    return client, server, f"clients (and the runner) on CPU {client}, server on CPU {server}"


TASK_FLOOR_SCRIPT = """
import sys, time, trio
n = int(sys.argv[1])
async def main():
    gate = trio.Event()
    seen = []
    async def task():
        seen.append(time.perf_counter())
        if len(seen) == n:
            gate.set()
        await gate.wait()
    async with trio.open_nursery() as nursery:
        for _ in range(n):
            nursery.start_soon(task)
    print(seen[-1] - seen[0])
trio.run(main)
"""


def trio_task_floor_ms(tasks: int, repeats: int = 3) -> float | None:
    """Milliseconds Trio alone takes to run the first step of `tasks` tasks started at once.

    Trio runs every runnable task once before it polls for I/O, so with W6's 16,000 tasks
    started together no client on Trio can see its first response sooner than this: each
    task must at least reach the point where it parks. The best of `repeats` fresh runs.
    """
    best: float | None = None
    for _ in range(repeats):
        try:
            out = subprocess.run(
                [sys.executable, "-c", TASK_FLOOR_SCRIPT, str(tasks)],
                capture_output=True,
                text=True,
                check=True,
                timeout=60,
            ).stdout
            seconds = float(out.strip())
        except (OSError, ValueError, subprocess.SubprocessError):
            return None
        best = seconds if best is None else min(best, seconds)
    return None if best is None else best * 1000
