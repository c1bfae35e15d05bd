"""One client, one scenario, in a process of its own (``run.py`` starts one per pair).

    python -m benchmarks.conformance.child --client httpx-trio --scenario cancel-body

Starts the servers (threads of this process), counts the client's sockets, runs the
scenario under the client's event loop (``trio.run`` / ``asyncio.run``), records what
escaped the runner and which client sockets are still open after it (then again after a
``gc.collect()``: those the garbage collector closed were leaked until then), and what the
process said meanwhile (warnings, log records, unraisable exceptions). Prints ``STEP``
lines as it goes and one ``RESULT {json}`` line at the end.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import sys
import warnings
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # `python benchmarks/conformance/child.py`
    sys.path.insert(0, str(Path(__file__).absolute().parents[2]))

from benchmarks.conformance.clients import adaptors
from benchmarks.conformance.runtimes import describe
from benchmarks.conformance.scenarios import SCENARIOS, step
from benchmarks.conformance.server import client_sockets, running_servers


class _Collect(logging.Handler):
    def __init__(self, into: list[str]) -> None:
        super().__init__(logging.WARNING)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        self.into.append(f"log {record.name} {record.levelname}: {record.getMessage()[:300]}")


def _plain(value: Any) -> Any:
    """The record as JSON data: private keys (``_exc``...) dropped, objects as repr."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if not str(k).startswith("_")}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return repr(value)


def _classify_all(lib: Any, rec: dict[str, Any]) -> None:
    """Tag each recorded exception with the library's families (own, read timeout, network)."""
    for value in list(rec.values()):
        if isinstance(value, dict):
            exc = value.get("_exc")
            if exc is not None:
                value["families"] = lib.classify(exc)
                del value["_exc"]
            _classify_all(lib, value)


def run(client: str, scenario: str) -> dict[str, Any]:
    """Run one pair; the raw record (``judge.py`` turns it into verdicts)."""
    lib = adaptors()[client]()
    chosen = SCENARIOS[scenario]
    said: list[str] = []
    logging.getLogger().addHandler(_Collect(said))
    sys.unraisablehook = lambda u: said.append(
        f"unraisable in {u.object!r}: {type(u.exc_value).__name__}: {u.exc_value}"[:400]
    )
    rec: dict[str, Any] = {"client": client, "scenario": scenario}
    with warnings.catch_warnings(record=True) as caught, running_servers() as servers:
        warnings.simplefilter("always", ResourceWarning)
        ctx = servers.client_context()
        rec["before"] = client_sockets(servers)
        try:
            lib.runtime.run(lambda: chosen.run(lib, servers, ctx, rec))
            rec["runner"] = None
        except BaseException as exc:  # KeyboardInterrupt included: that is the point
            rec["runner"] = describe(exc)
            rec["runner_is_original"] = exc is rec.get("_raised")
        step("after-runner")
        # Classify what was raised, then drop the exception objects: their tracebacks hold
        # the frames that hold the library's sockets, which must not outlive the run on
        # our account.
        rec["raised_families"] = (
            lib.classify(rec["_raised"]) if rec.get("_raised") is not None else None
        )
        _classify_all(lib, rec)
        rec = _plain(rec)
        rec["after_runner"] = client_sockets(servers)
        gc.collect()
        rec["after_gc"] = client_sockets(servers)
        said.extend(f"warning {w.category.__name__}: {str(w.message)[:300]}" for w in caught)
    rec["said"] = said
    return rec


def main(argv: list[str] | None = None) -> int:
    """Entry point: run one pair, print its record."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.conformance.child")
    p.add_argument("--client", required=True, choices=sorted(adaptors()))
    p.add_argument("--scenario", required=True, choices=list(SCENARIOS))
    args = p.parse_args(argv)
    result = run(args.client, args.scenario)
    print("RESULT " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
