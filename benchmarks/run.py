"""Run the benchmark suite: ``python -m benchmarks.run`` from the repository root.

Starts nginx (or the hypercorn fallback), then for each repetition, for each workload, runs
every client in a fresh process, in an order rotated by one each repetition, and finally
writes benchmarks/results/<UTC timestamp>.json and .md and benchmarks/results/latest.md.
A client that is not installed, cannot do a workload, fails or times out gets that written
in its cell; the run goes on. See benchmarks/README.md for the method.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # `python benchmarks/run.py`
    sys.path.insert(0, str(Path(__file__).absolute().parent.parent))

from benchmarks import machine, report, tools
from benchmarks.server import REPO, Server, ensure_files, running_server
from benchmarks.workloads import CLIENTS, FULL, QUICK, Workload

RESULTS = REPO / "benchmarks" / "results"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The runner's command line."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    p.add_argument(
        "--quick", action="store_true", help="tiny sizes, 1 repetition (what the smoke test runs)"
    )
    p.add_argument("--reps", type=int, default=None, help="repetitions (default 3; 1 with --quick)")
    p.add_argument("--workloads", default=None, help=f"comma list of {','.join(FULL)}")
    p.add_argument("--clients", default=None, help=f"comma list of {','.join(CLIENTS)}")
    p.add_argument(
        "--server",
        choices=("auto", "nginx", "hypercorn"),
        default="auto",
        help="auto: nginx if installed, else hypercorn with a note",
    )
    p.add_argument("--nginx", default=None, help="path of the nginx binary")
    p.add_argument(
        "--timeout", type=float, default=None, help="seconds one client run may take (default 60)"
    )
    p.add_argument(
        "--results-dir",
        type=Path,
        default=None,
        help="where results go (default benchmarks/results, or its quick/ subdir)",
    )
    p.add_argument(
        "--profile",
        metavar="WORKLOAD",
        default=None,
        help="profile one workload (trioclient unless --clients names another)",
    )
    p.add_argument(
        "--callgrind",
        metavar="WORKLOAD",
        default=None,
        help="instructions per request under valgrind --tool=callgrind",
    )
    p.add_argument(
        "--update-readme",
        action="store_true",
        help="paste this run's tables into benchmarks/README.md (full runs only)",
    )
    p.add_argument("--callgrind-n", type=int, default=1000, help="N for --callgrind (runs N, 3N)")
    p.add_argument(
        "--callgrind-keep",
        action="store_true",
        help="keep --callgrind's output files (for callgrind_annotate) in the results dir",
    )
    return p.parse_args(argv)


def _pick(names: str | None, known: dict[str, Any], default: list[str]) -> list[str]:
    if names is None:
        return default
    picked = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in picked if n not in known]
    if unknown:
        raise SystemExit(f"unknown: {', '.join(unknown)} (known: {', '.join(known)})")
    return picked


def missing_modules(client: str) -> list[str]:
    """Modules a client script needs that are not importable here."""
    return [m for m in CLIENTS[client].requires if importlib.util.find_spec(m) is None]


def run_one(client: str, workload: Workload, server: Server, timeout: float) -> dict[str, Any]:
    """Run one client script once; its JSON line, or an error/timeout record."""
    cmd = tools.client_command(client, workload, server)
    try:
        proc = subprocess.run(
            cmd,
            cwd=REPO,
            env=tools.client_env(client),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {"status": "timeout", "reason": f"no result within {timeout:.0f} s"}
    lines = proc.stdout.strip().splitlines()
    try:
        record: dict[str, Any] = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        tail = proc.stderr.strip().splitlines()[-1:] or [f"exit code {proc.returncode}"]
        record = {"status": "error", "error": tail[0][:300]}
    if record.get("status") == "error" and proc.stderr:
        sys.stderr.write(proc.stderr[-2000:])
    return record


def _progress(rep: int, reps: int, client: str, workload: Workload, rec: dict[str, Any]) -> str:
    head = f"[{rep + 1}/{reps}] {workload.name:<6} {client:<16}"
    if rec["status"] != "ok":
        return f"{head} {rec['status']}: {rec.get('reason') or rec.get('error', '')}"
    rate = (rec["bytes"] / 1e6 if workload.shape == "stream" else rec["requests"]) / rec["elapsed"]
    cpu = rec["cpu"] * 1e6 / rec["requests"]
    return f"{head} {rate:>10,.1f} {workload.unit:<5}  {cpu:>8,.0f} µs CPU/req"


def run_matrix(
    workloads: dict[str, Workload], clients: list[str], server: Server, reps: int, timeout: float
) -> list[dict[str, Any]]:
    """Every (repetition, workload, client) in a fresh process; clients rotate per repetition.

    A client that is missing, unsupported or timed out for a workload is not run again for
    it in later repetitions; its first record stands for all of them.
    """
    runs: list[dict[str, Any]] = []
    settled: dict[tuple[str, str], str] = {}
    for client in clients:
        missing = missing_modules(client)
        for name in workloads:
            if missing:
                runs.append(
                    {
                        "client": client,
                        "workload": name,
                        "rep": 0,
                        "status": "missing",
                        "reason": f"not installed: {', '.join(missing)}",
                    }
                )
                settled[client, name] = "missing"
    for rep in range(reps):
        order = clients[rep % len(clients) :] + clients[: rep % len(clients)]
        for name, workload in workloads.items():
            for client in order:
                if (client, name) in settled:
                    continue
                rec = run_one(client, workload, server, timeout)
                print(_progress(rep, reps, client, workload, rec), file=sys.stderr, flush=True)
                runs.append({"client": client, "workload": name, "rep": rep, **rec})
                if rec["status"] in ("unsupported", "timeout"):
                    settled[client, name] = rec["status"]
    return runs


README = REPO / "benchmarks" / "README.md"
START, END = "<!-- latest-results:start -->", "<!-- latest-results:end -->"


def update_readme(text: str) -> None:
    """Replace the README's latest-results section with ``text`` (headings one level down)."""
    body = "\n".join("#" + line if line.startswith("#") else line for line in text.splitlines())
    readme = README.read_text()
    head, _, rest = readme.partition(START)
    _, _, tail = rest.partition(END)
    README.write_text(f"{head}{START}\n{body}\n{END}{tail}")


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = parse_args(argv)
    sizes = QUICK if args.quick else FULL
    single = args.profile or args.callgrind  # the diagnostic modes take one workload
    workloads = {n: sizes[n] for n in _pick(single or args.workloads, sizes, list(sizes))}
    clients = _pick(args.clients, CLIENTS, list(CLIENTS))
    reps = args.reps or (1 if args.quick else 3)
    timeout = args.timeout or 60.0
    results_dir = args.results_dir or (RESULTS / "quick" if args.quick else RESULTS)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")

    client_cpu, server_cpu, pinning = machine.plan_pinning()
    if client_cpu is not None:
        os.sched_setaffinity(0, {client_cpu})
    ensure_files({w.file for w in workloads.values()})
    started = time.monotonic()
    with running_server(args.server, args.nginx, server_cpu) as server:
        for note in server.notes:
            print(f"NOTE: {note}", file=sys.stderr)
        if args.profile:
            client = clients[0] if args.clients else "trioclient"
            return tools.profile(client, workloads[args.profile], server, results_dir, stamp)
        if args.callgrind:
            chosen = clients if args.clients else ["trioclient"]
            workload = workloads[args.callgrind]
            return tools.callgrind(
                chosen,
                workload,
                server,
                args.callgrind_n,
                results_dir,
                stamp,
                keep=args.callgrind_keep,
            )
        runs = run_matrix(workloads, clients, server, reps, timeout)
        server_text = f"{server.kind} {server.version}"
    task_floor = None
    if "W6" in workloads:  # Trio's own lower bound for W6's first response
        task_floor = machine.trio_task_floor_ms(workloads["W6"].concurrency)
    result: dict[str, Any] = {
        "meta": {
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "stamp": stamp,
            "cpu_model": machine.cpu_model(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "versions": machine.versions(),
            "commit": machine.git_commit(REPO),
            "server": server_text,
            "pinning": pinning,
            "mode": "quick" if args.quick else "full",
            "reps": reps,
            "duration_s": round(time.monotonic() - started, 1),
            "notes": server.notes,
            "trio_task_floor_ms": task_floor,
        },
        "workloads": {n: w.as_dict() for n, w in workloads.items()},
        "runs": runs,
    }
    result["summary"] = report.summarize(runs, workloads, clients)
    result["targets"] = report.targets(result["summary"], workloads, task_floor)
    result["meta"]["versions"]["trioclient"] += f" ({result['meta']['commit']})"
    text = report.markdown(result, workloads)
    results_dir.mkdir(parents=True, exist_ok=True)
    (results_dir / f"{stamp}.json").write_text(json.dumps(result, indent=1) + "\n")
    (results_dir / f"{stamp}.md").write_text(text)
    (results_dir / "latest.md").write_text(text)
    if args.update_readme and not args.quick:
        update_readme(text)
    print(text)
    print(
        f"results: {results_dir / stamp}.json / .md ({result['meta']['duration_s']} s)",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
