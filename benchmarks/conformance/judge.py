"""From one scenario's raw record (``child.py``) to the five verdicts of the report.

Each verdict is ``ok``, ``fail`` or ``n/a`` with a sentence saying exactly what was seen,
so that a reader can check a peer's "failure" against its own behaviour:

* **leaked sockets**: client sockets to the suite's servers still open after the client
  was left and the event loop ended, plus those the library never closed and the garbage
  collector closed instead (Python's ``ResourceWarning: unclosed ...`` names them);
* **pool unbalanced**: the pool's own statistics, once nothing should be in flight, count
  a request or a busy connection (n/a where the library publishes no statistics);
* **next request fails**: a plain GET with the same client after the interruption;
* **wrong exception**: what the interrupted request raised, what left ``async with`` and
  what left the event loop's runner, against what the library and its event loop document;
* **hang**: a request still running 10 s after its interruption (the suite then cancelled
  it), or a scenario the runner had to kill.
"""

from __future__ import annotations

import re
from typing import Any

from .scenarios import BOUND

Verdict = dict[str, str]
CHECKS = ("leaked", "pool", "next", "exception", "hang")
CHECK_TITLES = {
    "leaked": "leaked sockets",
    "pool": "pool unbalanced",
    "next": "next request fails",
    "exception": "wrong exception",
    "hang": "hang",
}
RUNTIME = {
    "trioclient": "trio",
    "httpx-trio": "trio",
    "httpx-asyncio": "asyncio",
    "aiohttp": "asyncio",
}


def _ok(detail: str = "") -> Verdict:
    return {"verdict": "ok", "detail": detail}


def _fail(detail: str) -> Verdict:
    return {"verdict": "fail", "detail": detail}


def _na(detail: str) -> Verdict:
    return {"verdict": "n/a", "detail": detail}


def exc_text(exc: dict[str, Any] | None) -> str:
    """``module.Class('message')``, a group with its members, and the cause if any."""
    if exc is None:
        return "nothing"
    name = exc["type"].removeprefix("builtins.")
    if exc.get("group"):
        members = ", ".join(exc_text(e).split("(", 1)[0] for e in exc["group"])
        return f"{name}[{members}]"
    text = f"{name}({exc['message']!r})" if exc.get("message") else name
    if exc.get("cause"):
        text += f" from {exc['cause']['type'].removeprefix('builtins.')}"
    return text


def _request_text(rec: dict[str, Any] | None) -> str:
    if rec is None:
        return "never ran"
    if rec.get("outcome") == "returned":
        return "returned normally"
    if rec.get("outcome") == "cancelled":
        return "ended cancelled (CancelledError)"
    if rec.get("outcome") == "ignores cancellation":
        return "ignored cancellation"
    text = f"raised {exc_text(rec.get('exception'))}"
    if rec.get("caught_by_scope"):
        text += ", caught by the cancel scope"
    if rec.get("escaped_scope"):
        text += f"; {exc_text(rec['escaped_scope'])} went past the cancel scope"
    return text


# --- the five checks -------------------------------------------------------------------------

_UNCLOSED = re.compile(r"unclosed (?:<socket\.socket|transport <)[^>]*?fd=(\d+)")


def _leaked(raw: dict[str, Any]) -> Verdict:
    open_after = raw.get("after_runner") or []
    open_fds = {str(s["fd"]) for s in open_after}
    by_gc = {m.group(1) for line in raw.get("said", []) for m in _UNCLOSED.finditer(line)}
    parts = []
    if open_after:
        where = ", ".join(f"{s['to']} ({s['state']})" for s in open_after)
        text = (
            f"{_n(len(open_after), 'socket')} still open after the client was left and the "
            f"event loop ended: to {where}"
        )
        if open_fds & by_gc:
            text += "; the garbage collector closed it later (ResourceWarning: unclosed ...)"
        parts.append(text)
    if by_gc - open_fds:
        parts.append(
            f"{_n(len(by_gc - open_fds), 'socket')} never closed by the library, closed by "
            "the garbage collector instead (ResourceWarning: unclosed ...)"
        )
    if not parts:
        return _ok("0")
    return {**_fail("; ".join(parts)), "count": str(len(open_fds | by_gc))}


def _pool(raw: dict[str, Any], scenario: str) -> Verdict:
    snapshot = raw.get("after_exit") if scenario == "abandoned-stream" else raw.get("settled")
    when = {
        "abandoned-stream": "after the client was left (which closed its connections)",
        "close-in-flight": "after the client was closed",
    }.get(scenario, "after the interruption, with nothing in flight")
    if not snapshot or snapshot.get("pool") is None:
        return _na("no snapshot")
    pool = snapshot["pool"]
    if pool.get("source") is None:
        private = pool.get("private")
        return _na(f"no public pool statistics (private, for the reader: {private})")
    if pool["in_flight"] or not pool["books_add_up"]:
        return _fail(f"{when}, the pool's books count {_stats_text(pool['stats'])}")
    return _ok(f"{when}: {_stats_text(pool['stats'])}")


def _stats_text(stats: dict[str, Any]) -> str:
    """trioclient's counts as ``name value``; httpcore's connection list and requests."""
    if "requests" in stats:  # httpcore
        connections = ", ".join(stats["connections"]) or "none"
        requests = _n(stats["requests"], "request")
        return f"{requests} in flight (httpcore's private _requests), connections: {connections}"
    return ", ".join(f"{name} {value}" for name, value in stats.items())


def _n(count: int, what: str) -> str:
    return f"{count} {what}" + ("" if count == 1 else "s")


def _next(raw: dict[str, Any], scenario: str) -> Verdict:
    if scenario == "close-in-flight":
        return _na("the client was closed on purpose")
    rec = raw.get("next")
    if rec is None:
        return _fail("the scenario never got to it")
    if rec.get("hang"):
        return _fail(f"still waiting {BOUND:g} s after it started (the suite cancelled it)")
    if rec.get("outcome") == "returned" and rec.get("value") == 200:
        return _ok("200")
    return _fail(_request_text(rec))


def _exit_problems(raw: dict[str, Any]) -> list[str]:
    problems = []
    if raw.get("escaped_client") is not None:
        problems.append(f"leaving `async with` raised {exc_text(raw['escaped_client'])}")
    if raw.get("runner") is not None:
        problems.append(f"the event loop's runner raised {exc_text(raw['runner'])}")
    return problems


def _exception(raw: dict[str, Any], scenario: str, runtime: str) -> Verdict:
    rec = raw.get("interrupted") or {}
    problems: list[str] = []
    seen = _request_text(raw.get("interrupted"))
    if scenario.startswith("cancel-") and scenario != "cancel-siblings":
        if runtime == "trio":
            exc = rec.get("exception") or {}
            if exc.get("type") != "trio.Cancelled":
                problems.append(f"the request {seen} (expected trio.Cancelled)")
            elif not rec.get("caught_by_scope"):
                problems.append(f"the request {seen}, but the cancel scope did not catch it")
        elif rec.get("outcome") != "cancelled":
            problems.append(f"the request {seen} (expected its task to end cancelled)")
        problems += _exit_problems(raw)
    elif scenario == "timeout-body":
        if not (rec.get("families") or {}).get("read_timeout"):
            problems.append(f"the request {seen} (expected the library's read timeout)")
        problems += _exit_problems(raw)
    elif scenario == "peer-reset":
        if not (rec.get("families") or {}).get("network"):
            problems.append(f"the request {seen} (expected the library's network error)")
        problems += _exit_problems(raw)
    elif scenario == "keyboard-interrupt":
        exc = rec.get("exception") or {}
        wanted = "builtins.KeyboardInterrupt" if runtime == "trio" else ("asyncio.CancelledError")
        if exc.get("type") != wanted:
            problems.append(f"the request {seen} (expected {wanted.removeprefix('builtins.')})")
        runner = raw.get("runner") or {}
        if runner.get("type") != "builtins.KeyboardInterrupt":
            problems.append(f"the runner raised {exc_text(raw.get('runner'))}")
        if runtime == "trio" and not raw.get("runner_is_original"):
            problems.append("the KeyboardInterrupt leaving trio.run is not the one raised")
        seen += f"; the runner raised {exc_text(raw.get('runner'))}"
    elif scenario == "cancel-siblings":
        requests = raw.get("requests") or {}
        seen = "; ".join(f"{name}: {_request_text(r)}" for name, r in requests.items())
        answered = requests.get("answered") or {}
        if answered.get("value") != 200:
            problems.append(f"the answered request {_request_text(answered)}")
        for name, r in requests.items():
            if name == "answered" or r.get("hang"):
                continue
            exc = r.get("exception") or {}
            if runtime == "trio" and not (
                exc.get("type") == "trio.Cancelled" and r.get("caught_by_scope")
            ):
                problems.append(f"the request {name} {_request_text(r)} (expected trio.Cancelled)")
            if runtime == "asyncio" and r.get("outcome") != "cancelled":
                problems.append(f"the request {name} {_request_text(r)} (expected cancelled)")
        problems += _exit_problems(raw)
    elif scenario == "close-in-flight":
        seen = "; ".join(
            f"{name}: {_request_text(r)}" for name, r in (raw.get("requests") or {}).items()
        )
        for name, r in (raw.get("requests") or {}).items():
            if r.get("hang"):
                continue  # a hang, judged as such
            if r.get("outcome") == "returned":
                problems.append(f"the request {name} returned normally after the close")
            elif not (r.get("families") or {}).get("own"):
                problems.append(
                    f"the request {name} raised {exc_text(r.get('exception'))}, "
                    "not an exception of the library's"
                )
        close = raw.get("close") or {}
        if close.get("outcome") != "returned":
            problems.append(f"closing the client {_request_text(close)}")
        problems += _exit_problems(raw)
    elif scenario == "abandoned-stream":
        if rec.get("outcome") != "returned":
            problems.append(f"opening the stream {seen}")
        left = exc_text(raw.get("escaped_client"))
        seen = f"the client was left with the response open; leaving raised {left}"
        problems += _exit_problems(raw)
    if problems:
        return _fail("; ".join(problems))
    return _ok(seen)


def _hang(raw: dict[str, Any]) -> Verdict:
    hung = []
    for name, rec in (
        [("the interrupted request", raw.get("interrupted"))]
        + [(f"the request {k}", v) for k, v in (raw.get("requests") or {}).items()]
        + [("the close", raw.get("close"))]
    ):
        if rec and rec.get("hang"):
            what = (
                f"{name} was still running {BOUND:g} s after it started"
                if raw["scenario"] != "close-in-flight" or name == "the close"
                else f"{name} was still waiting {BOUND:g} s after it started, though the "
                "client was closed under it"
            )
            exc = rec.get("exception") or {}
            if rec.get("outcome") == "cancelled" or exc.get("type") == "trio.Cancelled":
                hung.append(f"{what}; the suite then cancelled it")
            else:
                hung.append(f"{what}; the suite then cancelled it and it {_request_text(rec)}")
    if hung:
        return _fail("; ".join(hung))
    return _ok("")


# --- a whole record ----------------------------------------------------------------------------

_NOTE = re.compile(r"^(warning|log|unraisable)")


def _unreached(raw: dict[str, Any], scenario: str) -> str | None:
    """Why the interruption did not land where the scenario aims, or None if it did."""
    rec = raw.get("interrupted") or {}
    mid_body = ("cancel-body", "timeout-body", "keyboard-interrupt", "peer-reset")
    if scenario in mid_body and not raw.get("chunks"):
        return f"no body chunk arrived first (the request {_request_text(rec)})"
    if scenario == "keyboard-interrupt" and not raw.get("sigint_sent"):
        return "the SIGINT was never sent"
    cancelled_once = scenario.startswith("cancel-") and scenario != "cancel-siblings"
    if cancelled_once and "interrupted_after" not in rec:
        return f"the point the cancellation waits for never came (the request {_request_text(rec)})"
    if scenario == "cancel-siblings":
        requests = raw.get("requests") or {}
        if any("interrupted_after" not in r for k, r in requests.items() if k != "answered"):
            return "the two requests were not both cancelled in flight"
    if scenario == "close-in-flight" and not raw.get("both_in_flight"):
        return "the two requests were not both in flight when the client was closed"
    return None


def judge(raw: dict[str, Any]) -> dict[str, Any]:
    """The verdicts of one (client, scenario) record, plus notes (warnings that are not
    failures) and a one-line account of what the interrupted request did."""
    scenario, client = raw["scenario"], raw["client"]
    if "killed_after" in raw or "crashed" in raw:
        unknown = _na("unknown: the scenario did not finish")
        why = (
            f"the scenario did not finish within {raw['killed_after']:g} s and was killed "
            f"(last step: {raw.get('last_step')})"
            if "killed_after" in raw
            else f"the scenario's process failed: {raw['crashed']}"
        )
        verdicts = {check: unknown for check in CHECKS}
        verdicts["hang" if "killed_after" in raw else "exception"] = _fail(why)
        return {"verdicts": verdicts, "notes": [], "observed": why}
    unreached = _unreached(raw, scenario)
    if unreached is not None:
        # The suite failed to set the scene (a loaded machine, a kernel that completes the
        # blackhole's connects...): nothing can be said of the library.
        why = f"not measured: {unreached}"
        return {
            "verdicts": {check: _na(why) for check in CHECKS},
            "notes": [],
            "observed": why,
            "unreached": unreached,
        }
    runtime = RUNTIME[client]
    verdicts = {
        "leaked": _leaked(raw),
        "pool": _pool(raw, scenario),
        "next": _next(raw, scenario),
        "exception": _exception(raw, scenario, runtime),
        "hang": _hang(raw),
    }
    notes = [
        line for line in raw.get("said", []) if _NOTE.match(line) and not _UNCLOSED.search(line)
    ]
    if scenario in ("close-in-flight", "cancel-siblings"):
        observed = "; ".join(
            f"{name}: {_request_text(r)}" for name, r in (raw.get("requests") or {}).items()
        )
    else:
        observed = _request_text(raw.get("interrupted"))
    if raw.get("escaped_client"):
        observed += f"; leaving the client raised {exc_text(raw['escaped_client'])}"
    return {"verdicts": verdicts, "notes": notes, "observed": observed}
