"""Smoke test of the HTTP/3 benchmark (benchmarks/http3.py), so it cannot rot unnoticed:
``--quick`` runs W4's shape over HTTP/3 and over HTTP/2 against the same hypercorn and
writes both figures and their ratio. Nothing here asserts a timing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("aioquic", reason="the http3 extra (aioquic) is not installed")

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_quick_run_measures_both_protocols_and_the_ratio(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.http3", "--quick", "--results-dir", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    (json_file,) = tmp_path.glob("http3-*.json")
    result = json.loads(json_file.read_text())
    for protocol in ("HTTP/2", "HTTP/3"):
        cell = result["summary"][protocol]
        assert cell["status"] == "ok", (protocol, cell)
        assert cell["rate"] > 0
        (run,) = result["runs"][protocol]
        assert run["requests"] == result["n"]
    assert result["summary"]["ratio_rate"] > 0
    markdown = json_file.with_suffix(".md").read_text()
    assert "| HTTP/3 |" in markdown
    assert "HTTP/3 / HTTP/2:" in markdown
