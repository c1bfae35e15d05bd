"""Smoke test of the cancellation conformance suite (benchmarks/conformance/).

One scenario, trioclient and one peer (httpx on Trio: httpx comes with the test extra,
aiohttp only with ``bench``), through the real runner: each pair in its own process, the
results written, the Markdown rendered. Nothing here asserts a peer's verdicts, only that
the suite runs and that trioclient passes; the committed docs table is checked against the
committed results (a re-run regenerates both).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # benchmarks/ is not an installed package

from benchmarks.conformance import report  # noqa: E402
from benchmarks.conformance.judge import CHECKS, judge  # noqa: E402

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/fd").is_dir() or not Path("/proc/net/tcp").exists(),
    reason="the suite counts sockets through Linux's /proc",
)


@pytest.mark.slow
def test_one_scenario_for_trioclient_and_a_peer(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.conformance",
            "--clients",
            "trioclient,httpx-trio",
            "--scenarios",
            "cancel-body",
            "--timeout",
            "120",
            "--results-dir",
            str(tmp_path),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]

    run = json.loads((tmp_path / "latest.json").read_text())
    cells = run["results"]["cancel-body"]
    assert set(cells) == {"trioclient", "httpx-trio"}
    for check in CHECKS:
        assert cells["trioclient"]["verdicts"][check]["verdict"] in {"ok", "n/a"}, cells
        assert cells["httpx-trio"]["verdicts"][check]["verdict"] in {"ok", "n/a", "fail"}
    raw = cells["trioclient"]["raw"]
    assert raw["interrupted"]["exception"]["type"] == "trio.Cancelled"
    assert raw["next"]["value"] == 200

    markdown = (tmp_path / "latest.md").read_text()
    assert "| cancelled while reading the body | ✓ |" in markdown
    assert "httpx on Trio" in markdown


def test_a_pair_killed_at_its_bound_is_a_hang() -> None:
    verdicts = judge(
        {
            "client": "aiohttp",
            "scenario": "cancel-body",
            "killed_after": 60.0,
            "last_step": "exit",
        }
    )["verdicts"]
    assert verdicts["hang"]["verdict"] == "fail"
    assert "last step: exit" in verdicts["hang"]["detail"]
    assert {verdicts[c]["verdict"] for c in CHECKS if c != "hang"} == {"n/a"}


def test_an_interruption_that_missed_its_point_is_not_measured() -> None:
    # No body chunk came before the cancellation: whatever the library did, it was not
    # interrupted mid-body, so the pair says so instead of judging it.
    result = judge(
        {
            "client": "trioclient",
            "scenario": "cancel-body",
            "chunks": 0,
            "interrupted": {"outcome": "raised", "exception": {"type": "x.Y", "message": ""}},
        }
    )
    assert {v["verdict"] for v in result["verdicts"].values()} == {"n/a"}
    assert result["unreached"].startswith("no body chunk arrived first")
    assert report._cell(result) == "? not measured"


def test_the_docs_table_is_the_latest_run() -> None:
    latest = REPO / "benchmarks" / "conformance" / "results" / "latest.json"
    run = json.loads(latest.read_text(encoding="utf-8"))
    page = (REPO / "docs" / "cancellation.md").read_text(encoding="utf-8")
    assert report.docs_block(run) in page, (
        "docs/cancellation.md's conformance table is not the latest run's: "
        "python -m benchmarks.conformance --from benchmarks/conformance/results/latest.json "
        "--update-docs"
    )
