"""The two diagnostic modes: a profile of one workload, and callgrind instruction counts.

``--profile W1`` runs one client (trioclient unless ``--clients`` says otherwise) on one
workload with the timed section under pyinstrument (cProfile when pyinstrument is missing)
and writes the profile next to the results.

``--callgrind W1`` counts instructions, which unlike wall time is nearly deterministic on a
noisy shared machine, so a hot-path change of a few percent is visible. The client runs
twice under ``valgrind --tool=callgrind``, with N and 3N requests; start-up, imports, the
warm-up and teardown cost the same in both, so ``(I(3N) - I(N)) / 2N`` is the cost of one
request. Only the client process is counted, never the server.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from .server import REPO, Server
from .workloads import CLIENTS, Workload


def client_env(client: str, base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment a client's process runs in: ours, plus what the client sets."""
    return {**(os.environ if base is None else base), **dict(CLIENTS[client].env)}


def client_command(client: str, workload: Workload, server: Server) -> list[str]:
    """The command line that runs one client script on one workload."""
    base = server.https_url if workload.tls else server.http_url
    cmd = [sys.executable, "-m", f"benchmarks.clients.{CLIENTS[client].module}"]
    cmd += ["--workload", workload.name, "--shape", workload.shape]
    cmd += ["--url", f"{base}/{workload.file}", "--n", str(workload.n)]
    cmd += ["--concurrency", str(workload.concurrency), "--connections", str(workload.connections)]
    cmd += ["--size", str(workload.size), "--ca", server.ca_path]
    if workload.http2:
        cmd.append("--http2")
    return cmd


def profile(client: str, workload: Workload, server: Server, out_dir: Path, stamp: str) -> int:
    """Run one client on one workload under the profiler; print where the report went."""
    out_dir.mkdir(parents=True, exist_ok=True)
    base = out_dir / f"profile-{workload.name}-{client}-{stamp}"
    cmd = [*client_command(client, workload, server), "--profile", str(base)]
    proc = subprocess.run(
        cmd, cwd=REPO, env=client_env(client), capture_output=True, text=True, check=False
    )
    print(proc.stdout.strip())
    if proc.returncode != 0:
        print(proc.stderr[-3000:], file=sys.stderr)
        return 1
    text = base.with_suffix(".txt")
    print(
        f"profile written to {text}"
        + (" (and .html)" if base.with_suffix(".html").exists() else " (and .prof)")
    )
    print(text.read_text(encoding="utf-8")[:6000])
    return 0


def _instructions(out_file: Path) -> int:
    """Total instructions (Ir) from a callgrind output file's ``totals:``/``summary:`` line."""
    text = out_file.read_text(encoding="utf-8", errors="replace")
    match = re.search(r"^(?:totals|summary):\s+(\d+)", text, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"no totals in {out_file}")
    return int(match.group(1))


def callgrind(
    clients: list[str],
    workload: Workload,
    server: Server,
    n: int,
    out_dir: Path,
    stamp: str,
    *,
    keep: bool = False,
) -> int:
    """Print instructions per request for each client: (I(3N) - I(N)) / 2N.

    `keep`: also copy both callgrind output files into `out_dir`, for `callgrind_annotate`
    (diffing its per-function totals at N and 3N gives each function's cost per request).
    """
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        print("valgrind not found: apt-get install valgrind", file=sys.stderr)
        return 1
    env = {**os.environ, "PYTHONHASHSEED": "0"}  # same dict layouts in both runs
    lines = [
        f"# callgrind, {workload.name} ({workload.title}), N={n}, {stamp}",
        "",
        "| client | I(N) | I(3N) | instructions/request |",
        "|---|---|---|---|",
    ]
    status = 0
    with tempfile.TemporaryDirectory(prefix="trioclient-callgrind-") as tmp:
        for client in clients:
            counts: list[int] = []
            for size in (n, 3 * n):
                out_file = Path(tmp) / f"callgrind.{client}.{size}"
                cmd = [valgrind, "--tool=callgrind", f"--callgrind-out-file={out_file}"]
                cmd += client_command(client, replace(workload, n=size), server)
                print(f"running {client} with n={size} under callgrind...", file=sys.stderr)
                proc = subprocess.run(
                    cmd,
                    cwd=REPO,
                    env=client_env(client, env),
                    capture_output=True,
                    text=True,
                    check=False,
                )
                if proc.returncode != 0 or '"status": "ok"' not in proc.stdout:
                    print(proc.stdout.strip(), proc.stderr[-2000:], file=sys.stderr)
                    counts = []
                    break
                counts.append(_instructions(out_file))
                if keep:
                    out_dir.mkdir(parents=True, exist_ok=True)
                    kept = out_dir / f"callgrind-{workload.name}-{client}-{size}-{stamp}.out"
                    shutil.copyfile(out_file, kept)
                    print(f"kept {kept}", file=sys.stderr)
            if len(counts) != 2:
                lines.append(f"| {client} | failed | | |")
                status = 1
                continue
            per_request = (counts[1] - counts[0]) / (2 * n)
            lines.append(f"| {client} | {counts[0]:,} | {counts[1]:,} | {per_request:,.0f} |")
    report = "\n".join(lines) + "\n"
    print(report)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"callgrind-{workload.name}-{stamp}.md").write_text(report, encoding="utf-8")
    return status
