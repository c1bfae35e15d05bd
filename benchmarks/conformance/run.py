"""Run the conformance suite: ``python -m benchmarks.conformance`` from the repository root.

Every (client, scenario) pair runs in a fresh process (``child.py``) under a hard bound,
one after another; a pair that does not finish in time is killed and reported as a hang at
its last step. Writes ``results/<UTC timestamp>.json`` (the raw records, the verdicts,
versions) and ``.md``, copies both to ``latest.json`` / ``latest.md``, and with
``--update-docs`` regenerates the table in docs/cancellation.md. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # `python benchmarks/conformance/run.py`
    sys.path.insert(0, str(Path(__file__).absolute().parents[2]))

from benchmarks.conformance import report
from benchmarks.conformance.clients import adaptors
from benchmarks.conformance.judge import judge
from benchmarks.conformance.scenarios import SCENARIOS

REPO = Path(__file__).absolute().parents[2]
RESULTS = REPO / "benchmarks" / "conformance" / "results"
DOCS_PAGE = REPO / "docs" / "cancellation.md"
# Which module each client needs; a client whose module is missing is skipped with a note.
NEEDS = {
    "trioclient": "trio",
    "httpx-trio": "httpx",
    "httpx-asyncio": "httpx",
    "aiohttp": "aiohttp",
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The runner's command line."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.conformance", description=__doc__)
    p.add_argument("--clients", default=None, help=f"comma list of {','.join(adaptors())}")
    p.add_argument("--scenarios", default=None, help=f"comma list of {','.join(SCENARIOS)}")
    p.add_argument(
        "--timeout", type=float, default=60.0, help="seconds one pair may take (default 60)"
    )
    p.add_argument(
        "--results-dir", type=Path, default=RESULTS, help="where results go (default %(default)s)"
    )
    p.add_argument(
        "--update-docs",
        action="store_true",
        help="regenerate the table in docs/cancellation.md (full runs only)",
    )
    p.add_argument(
        "--from",
        dest="from_json",
        type=Path,
        default=None,
        help="re-judge and re-render a results JSON instead of running",
    )
    return p.parse_args(argv)


def _choose(value: str | None, known: list[str], what: str) -> list[str]:
    if value is None:
        return known
    chosen = [v.strip() for v in value.split(",") if v.strip()]
    unknown = [v for v in chosen if v not in known]
    if unknown:
        raise SystemExit(f"unknown {what}: {', '.join(unknown)} (known: {', '.join(known)})")
    return chosen


def versions() -> dict[str, str]:
    """Installed version of every library the report names."""
    out = {}
    for name in report.LIBRARIES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "missing"
    return out


def git_commit() -> str:
    """The last commit that changed trioclient/ (what was measured; stable while other
    files change), ``+dirty`` if trioclient/ has uncommitted changes."""
    try:
        sha = subprocess.run(
            ["git", "-C", str(REPO), "log", "-1", "--format=%h", "--abbrev=12", "--", "trioclient"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--", "trioclient"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return (sha or "unknown") + ("+dirty" if dirty else "")


def run_pair(client: str, scenario: str, timeout: float) -> dict[str, Any]:
    """One pair in its own process; its raw record (or what killed it)."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    cmd = [sys.executable, "-m", "benchmarks.conformance.child"]
    cmd += ["--client", client, "--scenario", scenario]
    try:
        proc = subprocess.run(
            cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout if isinstance(exc.stdout, str) else (exc.stdout or b"").decode()
        steps = [line[5:] for line in out.splitlines() if line.startswith("STEP ")]
        return {
            "client": client,
            "scenario": scenario,
            "killed_after": timeout,
            "last_step": steps[-1] if steps else None,
        }
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])  # type: ignore[no-any-return]
    return {
        "client": client,
        "scenario": scenario,
        "crashed": f"exit status {proc.returncode}: {proc.stderr.strip()[-1500:]}",
    }


def render(run: dict[str, Any], out_dir: Path, stamp: str) -> Path:
    """Judge every record, write ``<stamp>.json``/``.md`` and the ``latest`` copies."""
    for scenario in run["scenarios"]:
        for client in run["clients"]:
            raw = run["results"][scenario["id"]][client]["raw"]
            run["results"][scenario["id"]][client] = {"raw": raw, **judge(raw)}
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / f"{stamp}.json"
    json_path.write_text(json.dumps(run, indent=1) + "\n", encoding="utf-8")
    md_path = json_path.with_suffix(".md")
    md_path.write_text(report.full(run), encoding="utf-8")
    for path in (json_path, md_path):
        latest = out_dir / f"latest{path.suffix}"
        if latest.resolve() != path.resolve():
            shutil.copyfile(path, latest)
    return md_path


def main(argv: list[str] | None = None) -> int:
    """Run the suite (or re-render a results file); returns the exit status."""
    args = parse_args(argv)
    if args.from_json is not None:
        run = json.loads(args.from_json.read_text(encoding="utf-8"))
        stamp = run["stamp"]
    else:
        clients = _choose(args.clients, list(adaptors()), "clients")
        missing = [c for c in clients if importlib.util.find_spec(NEEDS[c]) is None]
        for client in missing:
            print(
                f"skipping {client}: {NEEDS[client]} is not installed (pip install -e '.[bench]')"
            )
        clients = [c for c in clients if c not in missing]
        scenarios = _choose(args.scenarios, list(SCENARIOS), "scenarios")
        now = datetime.now(timezone.utc)
        stamp = now.strftime("%Y%m%dT%H%M%SZ")
        run = {
            "stamp": stamp,
            "date": now.strftime("%Y-%m-%d %H:%M UTC"),
            "python": platform.python_version(),
            "platform": f"{platform.system()} {platform.release()}",
            "commit": git_commit(),
            "versions": versions(),
            "clients": clients,
            "scenarios": [
                {"id": s, "title": SCENARIOS[s].title, "how": SCENARIOS[s].how} for s in scenarios
            ],
            "results": {s: {} for s in scenarios},
        }
        started = time.monotonic()
        for scenario in scenarios:
            for client in clients:
                t0 = time.monotonic()
                raw = run_pair(client, scenario, args.timeout)
                run["results"][scenario][client] = {"raw": raw}
                print(f"{scenario:20} {client:14} {time.monotonic() - t0:5.1f} s", flush=True)
        run["seconds"] = round(time.monotonic() - started, 1)
    md_path = render(run, args.results_dir, stamp)
    print("\n".join(report.matrix(run)))
    print(f"\nwrote {md_path} and its .json (and latest.*)")
    if args.update_docs:
        full_run = set(run["clients"]) == set(adaptors()) and len(run["scenarios"]) == len(
            SCENARIOS
        )
        if not full_run:
            raise SystemExit("--update-docs needs a full run (every client and scenario)")
        report.update_docs(DOCS_PAGE, report.docs_block(run))
        print(f"updated {DOCS_PAGE.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
