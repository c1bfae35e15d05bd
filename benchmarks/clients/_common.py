"""What every client script shares: its command line, the measurement, and its one JSON line.

A client script is run as ``python -m benchmarks.clients.<name> --workload W1 --url ... --n
...`` in a fresh process. It sets its client up, then brackets the timed section with
:meth:`Recorder.start` and :meth:`Recorder.stop`, and prints exactly one JSON line on stdout:

- ``{"status": "ok", "elapsed": s, "requests": n, "bytes": b, "cpu": s, ...}``
- ``{"status": "unsupported", "reason": "..."}`` when the client cannot do the workload
  (HTTP/2 for aiohttp or for trioclient today); the run goes on and the cell says n/a.
- ``{"status": "error", "error": "..."}`` for anything else, with exit code 1.

CPU time is user + system from ``resource.getrusage(RUSAGE_SELF)`` around the timed section.
Peak RSS is the process's high-water mark (VmHWM, KiB) at the end, and ``rss_growth`` is
how much that peak rose during the timed section: near zero when a client streams a large
body in constant memory.
"""

from __future__ import annotations

import argparse
import json
import resource
import ssl
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn

if sys.version_info < (3, 11):  # pragma: no cover - trio brings the backport on 3.10
    from exceptiongroup import BaseExceptionGroup

__all__ = ["Args", "Recorder", "Unsupported", "main", "parse_args", "ssl_context"]


class Unsupported(Exception):
    """The client cannot run this workload (e.g. no HTTP/2); reported as n/a, not failed."""


@dataclass(frozen=True)
class Args:
    """A client script's command line."""

    workload: str
    shape: str
    url: str
    n: int
    concurrency: int
    connections: int
    size: int
    http2: bool
    ca: str | None
    profile: str | None


def parse_args(argv: list[str] | None = None) -> Args:
    """Parse a client script's arguments (the orchestrator passes all of them)."""
    p = argparse.ArgumentParser(description="Run one benchmark workload with one client.")
    p.add_argument("--workload", required=True, help="workload name, for the record")
    p.add_argument("--shape", choices=("requests", "stream"), default="requests")
    p.add_argument("--url", required=True, help="the URL every request GETs")
    p.add_argument("--n", type=int, required=True, help="requests (or downloads) in all")
    p.add_argument("--concurrency", type=int, default=1, help="tasks issuing requests")
    p.add_argument("--connections", type=int, default=1, help="pool limit")
    p.add_argument("--size", type=int, required=True, help="expected body size in bytes")
    p.add_argument("--http2", action="store_true", help="speak HTTP/2 (TLS + ALPN h2)")
    p.add_argument("--ca", default=None, help="PEM file of the CA that signed the server")
    p.add_argument("--profile", default=None, help="profile the timed section to PATH.*")
    ns = p.parse_args(argv)
    return Args(**vars(ns))


def ssl_context(args: Args, alpn: list[str]) -> ssl.SSLContext | None:
    """A verifying context trusting ``--ca`` and offering ``alpn``; None for plain http."""
    if not args.url.startswith("https:"):
        return None
    context = ssl.create_default_context(cafile=args.ca)
    context.set_alpn_protocols(alpn)
    return context


def _maxrss_kib() -> int:
    """Peak RSS of this process image in KiB: VmHWM, else ru_maxrss.

    ``ru_maxrss`` is not used on Linux because it survives ``execve``: a fresh child starts
    with the peak of the parent that forked it, so every client would report the runner's
    size. VmHWM belongs to the new address space.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


class Recorder:
    """Times one run: wall clock, CPU, peak RSS, first request and first response.

    Client code calls :meth:`begin` when a request starts and :meth:`done` when its whole
    body has been read; both are a comparison and an addition, the same for every client.
    """

    def __init__(self, args: Args) -> None:
        self.args = args
        self.requests = 0
        self.bytes = 0
        self._t0 = 0.0
        self._t1 = 0.0
        self._cpu0 = 0.0
        self._cpu1 = 0.0
        self._rss0 = 0
        self.first_begin: float | None = None
        self.first_done: float | None = None
        self._profiler: Any = None

    def start(self) -> None:
        """Start the clock (and the profiler, with ``--profile``)."""
        if self.args.profile:
            self._start_profiler()
        self._rss0 = _maxrss_kib()
        usage = resource.getrusage(resource.RUSAGE_SELF)
        self._cpu0 = usage.ru_utime + usage.ru_stime
        self._t0 = time.perf_counter()

    def begin(self) -> None:
        """A request is about to be sent."""
        if self.first_begin is None:
            self.first_begin = time.perf_counter()

    def done(self, nbytes: int) -> None:
        """A response and its whole body arrived; checks the body length."""
        if nbytes != self.args.size:
            raise RuntimeError(f"body of {nbytes} bytes, expected {self.args.size}")
        if self.first_done is None:
            self.first_done = time.perf_counter()
        self.requests += 1
        self.bytes += nbytes

    def stop(self) -> None:
        """Stop the clock; checks that every request was made."""
        self._t1 = time.perf_counter()
        usage = resource.getrusage(resource.RUSAGE_SELF)
        self._cpu1 = usage.ru_utime + usage.ru_stime
        if self._profiler is not None:
            self._stop_profiler()
        if self.requests != self.args.n:
            raise RuntimeError(f"{self.requests} responses, expected {self.args.n}")

    def result(self) -> dict[str, Any]:
        """The run's measurements as one JSON-able dict."""

        def since_start(t: float | None) -> float | None:
            return None if t is None else t - self._t0

        rss = _maxrss_kib()
        return {
            "status": "ok",
            "elapsed": self._t1 - self._t0,
            "requests": self.requests,
            "bytes": self.bytes,
            "cpu": self._cpu1 - self._cpu0,
            "maxrss_kib": rss,
            "rss_growth_kib": rss - self._rss0,
            "first_begin": since_start(self.first_begin),
            "first_response": since_start(self.first_done),
        }

    # -- profiling --------------------------------------------------------------------------

    def _start_profiler(self) -> None:
        try:
            from pyinstrument import Profiler
        except ImportError:
            import cProfile

            self._profiler = cProfile.Profile()
            self._profiler.enable()
            return
        # async_mode="disabled": sample the whole thread, event loop and scheduler included,
        # since where the loop itself spends time is part of the answer.
        self._profiler = Profiler(interval=0.0005, async_mode="disabled")
        self._profiler.start()

    def _stop_profiler(self) -> None:
        assert self.args.profile is not None
        base = self.args.profile
        profiler = self._profiler
        if hasattr(profiler, "output_text"):  # pyinstrument
            profiler.stop()
            with open(base + ".txt", "w", encoding="utf-8") as f:
                f.write(profiler.output_text(unicode=True, color=False))
            with open(base + ".html", "w", encoding="utf-8") as f:
                f.write(profiler.output_html())
        else:  # cProfile
            import pstats

            profiler.disable()
            profiler.dump_stats(base + ".prof")
            with open(base + ".txt", "w", encoding="utf-8") as f:
                stats = pstats.Stats(profiler, stream=f)
                stats.sort_stats("cumulative").print_stats(60)
                stats.sort_stats("tottime").print_stats(40)


def _emit(record: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()


def main(run: Callable[[Args], dict[str, Any]], argv: list[str] | None = None) -> NoReturn:
    """Parse the arguments, call ``run(args)``, print its JSON line and exit.

    ``run`` returns :meth:`Recorder.result`; it raises :class:`Unsupported` when the client
    cannot do the workload. Any other exception becomes an ``error`` line and exit code 1.
    """
    args = parse_args(argv)
    try:
        record = run(args)
    except Unsupported as exc:
        _emit({"status": "unsupported", "reason": str(exc)})
        sys.exit(0)
    except BaseException as exc:
        # Groups (trio nurseries, asyncio TaskGroups) hide the real error one level down.
        while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
            exc = exc.exceptions[0]
        if isinstance(exc, Unsupported):
            _emit({"status": "unsupported", "reason": str(exc)})
            sys.exit(0)
        traceback.print_exception(exc, file=sys.stderr)
        _emit({"status": "error", "error": f"{type(exc).__name__}: {exc}"[:300]})
        sys.exit(1)
    _emit(record)
    sys.exit(0)
