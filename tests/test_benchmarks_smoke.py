"""Smoke test of the benchmark suite (benchmarks/), so it cannot rot unnoticed.

``python -m benchmarks.run --quick`` runs every workload at a tiny size with every client
that is installed, against nginx or (when nginx is missing) the hypercorn fallback. Nothing
here asserts a timing: only that the suite runs, writes its results, and that each client
either ran, is unsupported for the workload (HTTP/2 for aiohttp, say), or is not installed.
A peer that is not installed (httpx and aiohttp come with the ``bench`` extra, not ``dev``)
is recorded as missing, which is not a failure.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from servers.peers import unavailable

REPO = Path(__file__).resolve().parent.parent
WORKLOADS = {"W1", "W2", "W2-10", "W3", "W3-h2", "W4", "W5", "W6", "W7"}


def _run(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "benchmarks.run", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.mark.slow
def test_quick_run_covers_every_workload(tmp_path: Path) -> None:
    proc = _run("--quick", "--results-dir", str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-4000:]

    (json_file,) = [p for p in tmp_path.glob("*.json")]
    result = json.loads(json_file.read_text())
    assert set(result["summary"]) == WORKLOADS
    for name, row in result["summary"].items():
        trioclient = row["trioclient"]
        assert trioclient["status"] == "ok", (name, trioclient)
        for client, cell in row.items():
            assert cell["status"] in {"ok", "unsupported", "missing"}, (name, client, cell)
    assert result["summary"]["W1"]["floor-h11"]["status"] == "ok"
    assert result["summary"]["W4"]["floor-h2"]["status"] == "ok"

    markdown = (tmp_path / "latest.md").read_text()
    assert markdown == json_file.with_suffix(".md").read_text()
    assert "## Targets (trioclient)" in markdown
    assert "| trioclient |" in markdown


@pytest.mark.slow
def test_profile_mode_writes_a_profile(tmp_path: Path) -> None:
    proc = _run("--quick", "--profile", "W1", "--results-dir", str(tmp_path), timeout=120)
    assert proc.returncode == 0, proc.stderr[-4000:]
    (profile,) = tmp_path.glob("profile-W1-trioclient-*.txt")
    assert profile.stat().st_size > 0


@pytest.mark.slow
def test_callgrind_mode_counts_instructions(tmp_path: Path) -> None:
    if shutil.which("valgrind") is None:
        unavailable("valgrind is not installed", "valgrind")
    proc = _run(
        "--quick", "--callgrind", "W1", "--callgrind-n", "3", "--results-dir", str(tmp_path)
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert re.search(r"^\| trioclient \| [\d,]+ \| [\d,]+ \| -?[\d,]+ \|$", proc.stdout, re.M)
    (report,) = tmp_path.glob("callgrind-W1-*.md")
    assert "instructions/request" in report.read_text()


@pytest.mark.slow
def test_crawl_benchmark_quick(tmp_path: Path) -> None:
    # benchmarks/crawl.py: the crawler's pages/s (1 and 2 processes) and memory at N queued
    # URLs, at tiny sizes. It starts its own redis-server.
    if shutil.which("redis-server") is None and not shutil.which("redis-server", path="/usr/sbin"):
        unavailable("redis-server is not installed", "redis-server")
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.crawl", "--quick", "--results-dir", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    (json_file,) = tmp_path.glob("crawl-*.json")
    result = json.loads(json_file.read_text())
    runs = result["crawl"]
    assert set(runs) == {
        "1 process, MemoryFrontier",
        "1 process, RedisFrontier",
        "2 processes, RedisFrontier",
    }
    # Every set-up crawled the same site completely: the same number of pages.
    assert len({run["pages"] for run in runs.values()}) == 1
    assert len(runs["2 processes, RedisFrontier"]["per_process"]) == 2
    for name in ("MemoryFrontier", "RedisFrontier"):
        assert result["memory"][name]["queued"] == result["sizes"]["queued"]
    assert result["memory"]["RedisFrontier"]["server_bytes"] > 0
    assert "| 2 processes, RedisFrontier |" in proc.stdout
