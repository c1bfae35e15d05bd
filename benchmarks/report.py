"""Turning raw runs into medians, ratios, target verdicts and Markdown tables.

A *run* is one client script's JSON line (plus ``client``, ``workload`` and ``rep``). A
*cell* summarises every run of one (workload, client): the median and min-max of the
headline rate, and medians of CPU per unit, peak RSS, RSS growth and time to first
response. Ratios are median / median, against httpx-on-Trio and against the workload's
floor (floor-h2 for HTTP/2, floor-h11 otherwise).
"""

from __future__ import annotations

import statistics
from typing import Any

from .workloads import BASELINE, Workload, floor_for

MB = 1_000_000
MIB = 1024 * 1024


def _rate(run: dict[str, Any], workload: Workload) -> float:
    if workload.shape == "stream":
        return float(run["bytes"]) / float(run["elapsed"]) / MB
    return float(run["requests"]) / float(run["elapsed"])


def _cpu_per_unit(run: dict[str, Any], workload: Workload) -> float:
    """CPU µs per request, or per MB for downloads."""
    units = run["bytes"] / MB if workload.shape == "stream" else run["requests"]
    return float(run["cpu"]) * 1e6 / float(units)


def summarize_cell(runs: list[dict[str, Any]], workload: Workload) -> dict[str, Any]:
    """One (workload, client) from its runs: ok with statistics, or the reason it has none."""
    ok = [r for r in runs if r.get("status") == "ok"]
    if not ok:
        last = runs[-1] if runs else {"status": "missing", "reason": "not run"}
        return {"status": last["status"], "reason": last.get("reason") or last.get("error", "")}
    rates = [_rate(r, workload) for r in ok]

    def median(values: list[float]) -> float:
        return float(statistics.median(values))

    cell: dict[str, Any] = {
        "status": "ok",
        "reps": len(ok),
        "failed_reps": len(runs) - len(ok),
        "rate": median(rates),
        "rate_min": min(rates),
        "rate_max": max(rates),
        "unit": workload.unit,
        "cpu_per_unit_us": median([_cpu_per_unit(r, workload) for r in ok]),
        "peak_rss_mib": median([r["maxrss_kib"] / 1024 for r in ok]),
        "rss_growth_mib": max(r["rss_growth_kib"] / 1024 for r in ok),
        "elapsed_s": median([r["elapsed"] for r in ok]),
    }
    firsts = [r["first_response"] for r in ok if r.get("first_response") is not None]
    if firsts:
        cell["first_response_ms"] = median(firsts) * 1000
        cell["first_response_after_begin_ms"] = median(
            [(r["first_response"] - r["first_begin"]) * 1000 for r in ok]
        )
    return cell


def summarize(
    runs: list[dict[str, Any]], workloads: dict[str, Workload], clients: list[str]
) -> dict[str, dict[str, dict[str, Any]]]:
    """``summary[workload][client]`` with ratios to the baseline and to the floor filled in."""
    summary: dict[str, dict[str, dict[str, Any]]] = {}
    for name, workload in workloads.items():
        row = {
            c: summarize_cell(
                [r for r in runs if r["workload"] == name and r["client"] == c], workload
            )
            for c in clients
        }
        for ref_key, ref in (("vs_baseline", BASELINE), ("vs_floor", floor_for(workload))):
            base = row.get(ref, {})
            for cell in row.values():
                if cell["status"] == "ok" and base.get("status") == "ok" and base["rate"] > 0:
                    cell[ref_key] = cell["rate"] / base["rate"]
        summary[name] = row
    _add_w6_reference(summary, workloads)
    return summary


def _add_w6_reference(
    summary: dict[str, dict[str, dict[str, Any]]], workloads: dict[str, Workload]
) -> None:
    """W6 total / (W6 requests / the same client's W2-10 rate): the issue's 1.2x target."""
    if "W6" not in summary or "W2-10" not in summary:
        return
    for client, cell in summary["W6"].items():
        ref = summary["W2-10"].get(client, {})
        if cell["status"] == "ok" and ref.get("status") == "ok":
            expected = workloads["W6"].n / ref["rate"]
            cell["w6_expected_s"] = expected
            cell["w6_vs_expected"] = cell["elapsed_s"] / expected


def targets(
    summary: dict[str, dict[str, dict[str, Any]]],
    workloads: dict[str, Workload],
    task_floor_ms: float | None = None,
) -> list[dict[str, str]]:
    """The issue's targets for trioclient, each with what was measured and a verdict.

    `task_floor_ms` is Trio's own time to start W6's tasks (see machine.trio_task_floor_ms),
    printed beside W6's first response as the bound no Trio client can beat.
    """
    out: list[dict[str, str]] = []

    def cell(w: str, c: str) -> dict[str, Any]:
        return summary.get(w, {}).get(c, {"status": "not run"})

    def add(target: str, measured: str, ok: bool | None) -> None:
        verdict = "n/a" if ok is None else ("met" if ok else "NOT met")
        out.append({"target": target, "measured": measured, "verdict": verdict})

    def ratio_target(w: str, ref: str, minimum: float, me_name: str = "trioclient") -> None:
        me, other = cell(w, me_name), cell(w, ref)
        who = "" if me_name == "trioclient" else f" ({me_name})"
        if me["status"] != "ok" or other["status"] != "ok":
            add(
                f"{w}{who} >= {minimum}x {ref}",
                f"{me_name} {me['status']}, {ref} {other['status']}",
                None,
            )
            return
        ratio = me["rate"] / other["rate"]
        add(f"{w}{who} >= {minimum}x {ref}", f"{ratio:.2f}x", ratio >= minimum)

    # `trioclient` runs with [speedups] when httptools is installed; `trioclient-pure` is
    # the h11 path (issue 13's targets for each).
    for w in ("W1", "W2", "W5"):
        ratio_target(w, "floor-h11", 0.9)
        ratio_target(w, "aiohttp", 1.0)
    for w in ("W1", "W2"):
        ratio_target(w, "floor-h11", 0.9, "trioclient-pure")
    ratio_target("W3", "floor-h11", 0.9)
    ratio_target("W3", "aiohttp", 1.0)
    w3 = cell("W3", "trioclient")
    if w3["status"] == "ok":
        growth = w3["rss_growth_mib"]
        add(
            "W3 peak RSS independent of body size",
            f"peak grew {growth:.1f} MiB while downloading",
            growth < 16,
        )
    w3h2 = cell("W3-h2", "trioclient")
    if w3h2["status"] == "ok":
        growth = w3h2["rss_growth_mib"]
        add(
            "W3-h2 (HTTP/2) peak RSS independent of body size",
            f"peak grew {growth:.1f} MiB while downloading",
            growth < 16,
        )
    ratio_target("W4", "floor-h2", 0.9)
    ratio_target("W4", "floor-h2", 0.95, "trioclient-pure")
    w6 = cell("W6", "trioclient")
    if w6["status"] == "ok" and "w6_vs_expected" in w6:
        add(
            f"W6 total <= 1.2x ({workloads['W6'].n:,} / W2-10 rate)",
            f"{w6['elapsed_s']:.2f} s = {w6['w6_vs_expected']:.2f}x of {w6['w6_expected_s']:.2f} s",
            w6["w6_vs_expected"] <= 1.2,
        )
        first = w6["first_response_after_begin_ms"]
        floor = (
            ""
            if task_floor_ms is None
            else f" (Trio alone needs {task_floor_ms:.0f} ms to run "
            f"{workloads['W6'].concurrency:,} tasks' first steps)"
        )
        add(
            "W6 first response <= 50 ms after the first request began",
            f"{first:.1f} ms{floor}",
            first <= 50,
        )
    else:
        add("W6 targets", f"trioclient {w6['status']}", None)
    return out


# -- Markdown ----------------------------------------------------------------------------------


def _fmt(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _status_text(cell: dict[str, Any]) -> str:
    status, reason = cell["status"], str(cell.get("reason", "")).replace("|", "/")
    reason = reason.replace("\n", " ")[:120]
    if status == "unsupported":
        return f"n/a (unsupported: {reason})"
    return f"{status}: {reason}" if reason else status


def workload_table(workload: Workload, row: dict[str, dict[str, Any]]) -> str:
    """A Markdown table for one workload."""
    cpu_head = "CPU µs/MB" if workload.shape == "stream" else "CPU µs/req"
    heads = [
        "client",
        f"{workload.unit} median (min-max)",
        cpu_head,
        "peak RSS MiB",
        "RSS growth MiB",
        "vs httpx-trio",
        f"vs {floor_for(workload)}",
    ]
    if workload.name == "W6":
        heads += ["first resp. ms", "total s", "total / (n / W2-10 rate)"]
    lines = ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
    for client, cell in row.items():
        if cell["status"] != "ok":
            cols = [client, _status_text(cell)] + [""] * (len(heads) - 2)
        else:
            ratio = {
                k: f"{cell[k]:.2f}x" if k in cell else "-" for k in ("vs_baseline", "vs_floor")
            }
            cols = [
                client,
                f"{_fmt(cell['rate'])} ({_fmt(cell['rate_min'])}-{_fmt(cell['rate_max'])})",
                _fmt(cell["cpu_per_unit_us"]),
                f"{cell['peak_rss_mib']:.1f}",
                f"{cell['rss_growth_mib']:.1f}",
                ratio["vs_baseline"],
                ratio["vs_floor"],
            ]
            if workload.name == "W6":
                cols += [
                    f"{cell.get('first_response_after_begin_ms', 0):.1f}",
                    f"{cell['elapsed_s']:.2f}",
                    f"{cell['w6_vs_expected']:.2f}x" if "w6_vs_expected" in cell else "-",
                ]
            if cell["failed_reps"]:
                cols[1] += f" ({cell['failed_reps']} reps failed)"
        lines.append("| " + " | ".join(cols) + " |")
    return "\n".join(lines)


def markdown(result: dict[str, Any], workloads: dict[str, Workload]) -> str:
    """The whole report: context, one table per workload, then the targets."""
    meta = result["meta"]
    out = [
        f"# Benchmark results, {meta['date']}",
        "",
        f"- Machine: {meta['cpu_model']}, {meta['cpus']} CPUs, {meta['platform']}",
        f"- Python {meta['python']}; " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()),
        f"- Server: {meta['server']}",
        f"- Pinning: {meta['pinning']}",
        f"- Mode: {meta['mode']}, {meta['reps']} repetition(s), clients interleaved, "
        "each run in a fresh process",
    ]
    out += [f"- **Note:** {note}" for note in meta["notes"]]
    for name, workload in workloads.items():
        if name not in result["summary"]:
            continue
        out += ["", f"## {name}: {workload.title}", ""]
        scheme = ("https" if workload.tls else "http") + (" + h2" if workload.http2 else "")
        out.append(
            f"n={workload.n:,}, concurrency={workload.concurrency:,}, "
            f"connections={workload.connections}, body {workload.size:,} B, {scheme}"
        )
        out += ["", workload_table(workload, result["summary"][name])]
    if result.get("targets"):
        out += [
            "",
            "## Targets (trioclient)",
            "",
            "| target | measured | verdict |",
            "|---|---|---|",
        ]
        out += [f"| {t['target']} | {t['measured']} | {t['verdict']} |" for t in result["targets"]]
    return "\n".join(out) + "\n"
