"""HTTP/3 against HTTP/2 on one server: W4's shape (1 KiB GETs from 100 tasks over ONE
connection), trioclient over QUIC and over TLS+h2 to the same hypercorn, ratio in one run.

Run from the repository root (the ``http3`` and ``bench`` extras installed)::

    python -m benchmarks.http3            # 5,000 requests per run, 3 repetitions
    python -m benchmarks.http3 --quick    # 200 requests, 1 repetition (the smoke test)

The server is benchmarks/h3_server.py (hypercorn's asyncio worker: its HTTP/3 needs it) in
a child process, pinned to its own CPU like benchmarks/run.py pins nginx; each run is a
fresh ``python -m benchmarks.clients.trioclient_h3`` process (``--http3`` or ``--http2``)
that makes one warm-up request and then times the workload, as every client of the main
suite does (benchmarks/clients/_common.py). The protocols alternate within a repetition
and the order flips each repetition. Medians are reported, with the HTTP/3 / HTTP/2 ratio
of request rates (below 1: HTTP/3 is slower) and of CPU per request.

hypercorn is a Python server and is likely the bottleneck for both protocols, more so for
QUIC (aioquic does its packet protection and loss recovery in Python); the ratio says what
a trioclient user gets from this server, not what QUIC costs in general.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .machine import cpu_model, plan_pinning, versions

REPO = Path(__file__).resolve().parent.parent
# Not benchmarks/results itself: the docs site shows the newest .md there as the main suite's.
RESULTS = REPO / "benchmarks" / "results" / "http3"
PROTOCOLS = ("HTTP/2", "HTTP/3")
SIZE = 1024
CONCURRENCY = 100


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=5000, help="requests per run (default 5,000)")
    p.add_argument("--reps", type=int, default=3, help="repetitions (default 3)")
    p.add_argument("--quick", action="store_true", help="200 requests, one repetition")
    p.add_argument("--timeout", type=float, default=300, help="seconds one run may take")
    p.add_argument("--results-dir", type=Path, default=None, help="write JSON and .md here")
    args = p.parse_args(argv)
    if args.quick:
        args.n, args.reps = 200, 1
    return args


@contextmanager
def running_server(cpu: int | None) -> Iterator[tuple[int, str]]:
    """benchmarks/h3_server.py in a child process: yields (port, CA path)."""
    import trustme

    with tempfile.TemporaryDirectory(prefix="trioclient-h3bench-") as tmp:
        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1", "localhost")
        cert_path, key_path, ca_path = (Path(tmp) / n for n in ("cert.pem", "key.pem", "ca.pem"))
        cert_path.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
        cert.private_key_pem.write_to_path(str(key_path))
        ca.cert_pem.write_to_path(str(ca_path))
        command = [sys.executable, "-m", "benchmarks.h3_server"]
        command += ["--cert", str(cert_path), "--key", str(key_path)]
        proc = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE)
        try:
            if cpu is not None:
                os.sched_setaffinity(proc.pid, {cpu})
            assert proc.stdout is not None
            line = proc.stdout.readline()
            if not line:
                raise RuntimeError("benchmarks/h3_server.py exited before it bound its port")
            port = int(json.loads(line)["port"])
            _wait_listening(proc, port)
            yield port, str(ca_path)
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()


def _wait_listening(proc: subprocess.Popen[bytes], port: int, timeout: float = 30) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("benchmarks/h3_server.py exited during start-up")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"benchmarks/h3_server.py did not listen within {timeout} s")


def run_one(protocol: str, port: int, ca: str, n: int, timeout: float) -> dict[str, Any]:
    """One fresh client process; its JSON line, or an error/timeout record."""
    flag = "--http3" if protocol == "HTTP/3" else "--http2"
    command = [sys.executable, "-m", "benchmarks.clients.trioclient_h3", flag]
    command += ["--workload", f"W4-{protocol[-1]}", "--url", f"https://127.0.0.1:{port}/bytes/"]
    command[-1] += str(SIZE)
    command += ["--n", str(n), "--concurrency", str(CONCURRENCY), "--connections", "1"]
    command += ["--size", str(SIZE), "--ca", ca]
    try:
        proc = subprocess.run(
            command, cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False
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


def summarize(runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Medians per protocol and the HTTP/3 / HTTP/2 ratios."""
    summary: dict[str, Any] = {}
    for protocol, records in runs.items():
        ok = [r for r in records if r.get("status") == "ok"]
        if not ok:
            last = records[-1] if records else {"status": "missing"}
            summary[protocol] = {
                "status": last["status"],
                "reason": last.get("reason") or last.get("error", ""),
            }
            continue
        rates = [r["requests"] / r["elapsed"] for r in ok]
        summary[protocol] = {
            "status": "ok",
            "reps": len(ok),
            "rate": statistics.median(rates),
            "rate_min": min(rates),
            "rate_max": max(rates),
            "cpu_per_request_us": statistics.median([r["cpu"] * 1e6 / r["requests"] for r in ok]),
            "peak_rss_mib": statistics.median([r["maxrss_kib"] / 1024 for r in ok]),
        }
    h2, h3 = summary.get("HTTP/2", {}), summary.get("HTTP/3", {})
    if h2.get("status") == "ok" and h3.get("status") == "ok":
        summary["ratio_rate"] = h3["rate"] / h2["rate"]
        summary["ratio_cpu"] = h3["cpu_per_request_us"] / h2["cpu_per_request_us"]
    return summary


def markdown(result: dict[str, Any]) -> str:
    summary = result["summary"]
    lines = [
        f"HTTP/3 vs HTTP/2, W4's shape: {result['n']:,} GETs of {SIZE} B from {CONCURRENCY}"
        f" tasks over one connection, {result['reps']} repetition(s), hypercorn"
        f" {result['versions'].get('hypercorn', '?')} (asyncio) on both, aioquic"
        f" {result['versions'].get('aioquic', '?')}; {result['pinning']}.",
        "",
        "| protocol | req/s (median) | min-max | CPU µs/req | peak RSS MiB |",
        "|---|---|---|---|---|",
    ]
    for protocol in PROTOCOLS:
        cell = summary.get(protocol, {"status": "missing"})
        if cell["status"] != "ok":
            lines.append(f"| {protocol} | {cell['status']}: {cell.get('reason', '')} | | | |")
            continue
        lines.append(
            f"| {protocol} | {cell['rate']:,.0f} | {cell['rate_min']:,.0f}-{cell['rate_max']:,.0f}"
            f" | {cell['cpu_per_request_us']:,.0f} | {cell['peak_rss_mib']:.1f} |"
        )
    if "ratio_rate" in summary:
        lines += [
            "",
            f"HTTP/3 / HTTP/2: {summary['ratio_rate']:.2f}x the request rate,"
            f" {summary['ratio_cpu']:.2f}x the client CPU per request.",
        ]
    return "\n".join(lines) + "\n"


def _version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "missing"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    client_cpu, server_cpu, pinning = plan_pinning()
    if client_cpu is not None:
        os.sched_setaffinity(0, {client_cpu})
    runs: dict[str, list[dict[str, Any]]] = {protocol: [] for protocol in PROTOCOLS}
    with running_server(server_cpu) as (port, ca):
        for rep in range(args.reps):
            order = PROTOCOLS if rep % 2 == 0 else PROTOCOLS[::-1]
            for protocol in order:
                record = run_one(protocol, port, ca, args.n, args.timeout)
                runs[protocol].append(record)
                if record["status"] == "ok":
                    rate = record["requests"] / record["elapsed"]
                    note = f"{rate:,.0f} req/s, {record['cpu'] * 1e6 / record['requests']:,.0f}"
                    note += " µs CPU/req"
                else:
                    note = f"{record['status']}: {record.get('reason') or record.get('error')}"
                print(f"[{rep + 1}/{args.reps}] {protocol}: {note}", flush=True)
    result = {
        "n": args.n,
        "reps": args.reps,
        "pinning": pinning,
        "cpu": cpu_model(),
        "versions": {**versions(), "aioquic": _version("aioquic")},
        "runs": runs,
        "summary": summarize(runs),
    }
    text = markdown(result)
    print()
    print(text, end="")
    out_dir = args.results_dir or (RESULTS / "quick" if args.quick else RESULTS)
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    (out_dir / f"http3-{stamp}.json").write_text(json.dumps(result, indent=2) + "\n")
    (out_dir / f"http3-{stamp}.md").write_text(text)
    ok = all(result["summary"][p]["status"] == "ok" for p in PROTOCOLS)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
