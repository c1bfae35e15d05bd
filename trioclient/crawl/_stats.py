"""Live crawl statistics: what the CLI's progress display and the final summary show.

`CrawlStats` is a plain object the crawler updates as results arrive (one Trio task at a
time, so no locks): pages, bytes, errors by kind, statuses, per-host counts, links found,
and the frontier's sizes. Reading it from another task of the same run (a progress bar) is
always safe; its numbers are at most one page old.

Bounded: the per-host table keeps ``max_hosts`` hosts (the least recently updated is
dropped beyond that and counted in ``hosts_dropped``); error kinds and statuses are short
fixed vocabularies (exception class names, toolkit kinds, three-digit statuses).
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import trio

from .._exceptions import InvalidURL
from .._urls import URL
from ._fetch import FetchResult
from ._frontier import FrontierCounts

__all__ = ["CrawlStats", "HostStats"]

DEFAULT_MAX_HOSTS = 10_000


@dataclass(slots=True)
class HostStats:
    """One host's share of the crawl."""

    pages: int = 0
    bytes: int = 0
    errors: int = 0


class CrawlStats:
    """Counters of one crawl, updated live (see the module docstring).

    Attributes:
        pages: results recorded (fetched pages and failed fetches alike).
        ok: results that were a 2xx page with its body.
        bytes: body bytes received.
        errors: results per error kind (``FetchResult.error``: "ReadTimeout",
            "RobotsDisallowed", ...); HTTP error statuses are in ``statuses``, not here.
        statuses: results per HTTP status.
        links_found: links extracted (after normalisation, before filters);
        links_new: of which the frontier had never seen (queued by this crawler);
        links_filtered: dropped by depth, domain and pattern filters.
        leases_lost: fetches whose lease was lost (to expiry) and whose result was dropped.
        frontier: the frontier's last known sizes (queued, leased, done, seen).
        hosts: per-host counts, at most ``max_hosts`` hosts.
    """

    def __init__(
        self, *, max_hosts: int = DEFAULT_MAX_HOSTS, clock: Callable[[], float] = trio.current_time
    ) -> None:
        if max_hosts < 1:
            raise ValueError(f"max_hosts must be >= 1, not {max_hosts!r}")
        self.max_hosts = max_hosts
        self._clock = clock
        self.pages = 0
        self.ok = 0
        self.bytes = 0
        self.errors: Counter[str] = Counter()
        self.statuses: Counter[int] = Counter()
        self.links_found = 0
        self.links_new = 0
        self.links_filtered = 0
        self.leases_lost = 0
        self.frontier = FrontierCounts(queued=0, leased=0, done=0, seen=0)
        self.hosts: OrderedDict[str, HostStats] = OrderedDict()
        self.hosts_dropped = 0
        self.started: float | None = None
        self.finished: float | None = None

    def start(self) -> None:
        """Mark the crawl's start (Trio clock)."""
        self.started = self._clock()
        self.finished = None

    def finish(self) -> None:
        """Mark the crawl's end: `elapsed` and `pages_per_second` stop moving."""
        self.finished = self._clock()

    @property
    def elapsed(self) -> float:
        """Seconds since `start` (until `finish`); 0 before the start."""
        if self.started is None:
            return 0.0
        end = self.finished if self.finished is not None else self._clock()
        return max(0.0, end - self.started)

    @property
    def pages_per_second(self) -> float:
        """Results per second over the crawl so far."""
        elapsed = self.elapsed
        return self.pages / elapsed if elapsed > 0 else 0.0

    @property
    def error_count(self) -> int:
        """Results that ended in an error (any kind)."""
        return sum(self.errors.values())

    def record(self, result: FetchResult) -> None:
        """Count one result."""
        self.pages += 1
        self.bytes += result.size
        if result.ok:
            self.ok += 1
        if result.error is not None:
            self.errors[result.error] += 1
        if result.status is not None:
            self.statuses[result.status] += 1
        try:
            host = URL(result.url).host or "<none>"
        except InvalidURL:  # a URL the fetch itself refused is still a result to count
            host = "<invalid>"
        entry = self.hosts.pop(host, None)
        if entry is None:
            entry = HostStats()
            if len(self.hosts) >= self.max_hosts:
                self.hosts.popitem(last=False)
                self.hosts_dropped += 1
        self.hosts[host] = entry
        entry.pages += 1
        entry.bytes += result.size
        entry.errors += result.error is not None

    def as_dict(self) -> dict[str, Any]:
        """A JSON-serialisable snapshot (the CLI's ``--json`` summary, logs)."""
        return {
            "pages": self.pages,
            "ok": self.ok,
            "bytes": self.bytes,
            "errors": dict(self.errors.most_common()),
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "links_found": self.links_found,
            "links_new": self.links_new,
            "links_filtered": self.links_filtered,
            "leases_lost": self.leases_lost,
            "frontier": {
                "queued": self.frontier.queued,
                "leased": self.frontier.leased,
                "done": self.frontier.done,
                "seen": self.frontier.seen,
            },
            "hosts": {
                host: {"pages": h.pages, "bytes": h.bytes, "errors": h.errors}
                for host, h in self.hosts.items()
            },
            "hosts_dropped": self.hosts_dropped,
            "elapsed": round(self.elapsed, 3),
            "pages_per_second": round(self.pages_per_second, 2),
        }

    def __repr__(self) -> str:
        return (
            f"<CrawlStats pages={self.pages} ok={self.ok} bytes={self.bytes} "
            f"errors={self.error_count} queued={self.frontier.queued} "
            f"pages/s={self.pages_per_second:.1f}>"
        )
