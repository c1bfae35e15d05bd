"""Politeness per host: how a crawler keeps from hurting the sites it reads.

Theory of operation
-------------------
One `Politeness` is shared by every worker of a crawl. `fetch` runs one request the way a
well-behaved crawler does, per *host* (an origin: scheme, host and port, because
robots.txt is per origin, RFC 9309 section 2.3):

1. robots.txt: fetched once per host by whichever task needs it first (the others wait
   for it), parsed with protego, cached for `robots_ttl` seconds. A 4xx means no rules; a
   5xx, 429 or network failure means "unreachable", which RFC 9309 says must be read as
   "disallow everything" (cached for a shorter `robots_error_ttl`). A disallowed URL is a
   result with error "RobotsDisallowed": no request is sent.
2. a slot: at most `per_host` requests to a host at once (a `trio.Semaphore` per host),
   held from sending until the body is read.
3. a turn: a token bucket per host on Trio's clock (`TokenBucket`: `rate` requests a
   second, `burst` at once), whose interval is stretched to the site's `Crawl-delay` /
   `Request-rate` (capped by `max_crawl_delay`) and doubled for each 429/503 in a row.
   A 429 or 503 also pauses the host: for its Retry-After (capped by `max_pause`), else
   for 1, 2, 4... seconds. Any other answer halves the slow-down again.
4. the request, with retries by `retry` (a `trioclient.Retry`: its pure `plan` decides,
   this loop sends and waits, so each attempt takes a slot and a turn like any request),
   redirects followed hop by hop (each hop is a request to its own host: robots, slot,
   turn), the Content-Type checked before the body is read, the body bounded by the
   client's `max_response_size` mechanism, the whole under `total_timeout`.

Per-host state lives in an LRU map bounded by `max_hosts`: the least recently used idle
host is forgotten (its robots.txt, its slow-down). A host some task is using is never
evicted (two states for one host would double its limits), so the map can exceed
`max_hosts` by at most the number of tasks inside `fetch` at that moment.

Rejected alternatives: letting the client follow redirects and retry (a redirect to
another host would skip its robots.txt and its rate limit, and retries would skip the
turn); a token bucket that refills a float counter (it needs a wake-up order for
waiters; the "virtual scheduling" form of GCRA used here hands each waiter its start
time up front, so waiters are served in arrival order with one sleep each).
"""

from __future__ import annotations

import math
import random
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

import trio

from .. import __version__
from .._config import Timeout, describe
from .._content import is_replayable
from .._exceptions import (
    InvalidURL,
    PoolTimeout,
    RequestError,
    ResponseTooLarge,
    TooManyRedirects,
    UnsupportedProtocol,
)
from .._origin import Origin
from .._request import Request
from .._retry import Retry, parse_retry_after
from .._send import DRAIN_GRACE
from .._send import _drain as drain
from .._urls import URL
from ._fetch import (
    CONTENT_TYPE_NOT_ALLOWED,
    ROBOTS_DISALLOWED,
    FetchLimits,
    FetchResult,
)

if TYPE_CHECKING:
    from .._client import Client
    from .._response import Response

__all__ = ["DEFAULT_RETRY", "DEFAULT_USER_AGENT", "Politeness", "TokenBucket"]

#: Names the crawler and where to read about it, as robots.txt etiquette asks.
DEFAULT_USER_AGENT = (
    f"trioclient-crawl/{__version__} (+https://pypi.org/project/trioclient/; a polite crawler)"
)

#: robots.txt bytes parsed at most (RFC 9309 asks parsers for at least 500 KiB); the rest
#: is ignored, as Google does.
ROBOTS_MAX_SIZE = 512 * 1024
#: redirect hops followed for robots.txt (RFC 9309: at least five).
ROBOTS_MAX_REDIRECTS = 5
#: the longest slow-down: a host's interval is multiplied by at most 2**MAX_SLOW.
MAX_SLOW = 6
#: the first pause after a 429/503 without Retry-After; it doubles with each one in a row.
BASE_PAUSE = 1.0

_NO_BODY_STATUSES = frozenset({204, 304})


#: The default retry policy: three retries 1, 2 and 4 s apart (a crawler can afford to
#: wait), or as Retry-After asks up to two minutes (a server asking more is skipped).
DEFAULT_RETRY = Retry(3, backoff_factor=1.0, backoff_max=30.0, retry_after_max=120.0)


class TokenBucket:
    """A token bucket on Trio's clock: at most `burst` grants at once, then one per
    `interval` seconds; in any window of t seconds at most `burst + t / interval` grants.

    It is GCRA's virtual scheduling: `_tat` (the theoretical arrival time) is when the
    bucket will be full again; a grant is allowed once `now >= _tat - (burst-1)*interval`.
    `reserve` is pure bookkeeping (tested without a clock); `acquire` sleeps until the
    reserved time. The interval may change between grants (a Crawl-delay learnt, a
    slow-down): each grant uses the interval current when it is reserved.

    A waiter cancelled while sleeping keeps its reservation: the bucket then serves the
    next waiter a little later than it could have, never sooner.
    """

    __slots__ = ("_tat", "burst", "interval")

    def __init__(self, interval: float, burst: int = 1) -> None:
        self.interval = interval
        self.burst = burst
        self._tat = -math.inf

    def reserve(self, now: float) -> float:
        """Book the next grant for a request arriving at `now`; return when it may start."""
        interval = self.interval
        if interval <= 0:
            return now
        tat = self._tat if self._tat > now else now
        start = tat - (self.burst - 1) * interval
        if start < now + 1e-9 * interval:  # a full bucket, give or take a rounding error
            start = now
        self._tat = tat + interval
        return start

    async def acquire(self) -> None:
        """Wait for a grant (a checkpoint even when one is free at once)."""
        now = trio.current_time()
        start = self.reserve(now)
        if start > now:
            await trio.sleep_until(start)
        else:
            await trio.lowlevel.checkpoint()  # cheaper than sleep_until(now)


class _Rules(Protocol):
    def can_fetch(self, url: str, user_agent: str) -> bool: ...
    def crawl_delay(self, user_agent: str) -> float | None: ...


class _Robots:
    """A host's robots.txt verdict: parsed rules, or everything allowed / disallowed."""

    __slots__ = ("allow_all", "delay", "expires", "note", "rules")

    def __init__(
        self,
        rules: _Rules | None,
        *,
        allow_all: bool,
        note: str,
        delay: float,
        expires: float,
    ) -> None:
        self.rules = rules
        self.allow_all = allow_all
        self.note = note  # why everything is disallowed (robots.txt unreachable), if it is
        self.delay = delay
        self.expires = expires

    def allows(self, url: str, token: str) -> bool:
        if self.rules is not None:
            return self.rules.can_fetch(url, token)
        return self.allow_all


class _Host:
    """What Politeness knows about one origin. `users` counts the tasks inside `fetch`
    for it: a host in use is never evicted."""

    __slots__ = (
        "base_burst",
        "base_interval",
        "bucket",
        "name",
        "paused_until",
        "robots",
        "robots_fetching",
        "slots",
        "slow",
        "users",
    )

    def __init__(self, name: str, per_host: int, interval: float, burst: int) -> None:
        self.name = name
        self.slots = trio.Semaphore(per_host)
        self.base_interval = interval
        self.base_burst = burst
        self.bucket = TokenBucket(interval, burst)
        self.slow = 0
        self.paused_until = -math.inf
        self.robots: _Robots | None = None
        self.robots_fetching: trio.Event | None = None
        self.users = 0

    def _retune(self) -> None:
        crawl_delay = self.robots.delay if self.robots is not None else 0.0
        interval = max(self.base_interval, crawl_delay)
        # A Crawl-delay is the time between two requests: no bursts then.
        self.bucket.burst = 1 if crawl_delay > 0 else self.base_burst
        if interval > 0:
            interval *= 2**self.slow
        elif self.slow:
            interval = BASE_PAUSE * 2 ** (self.slow - 1)  # no rate limit: slow down anyway
        self.bucket.interval = interval

    def learn_robots(self, robots: _Robots) -> None:
        self.robots = robots
        self._retune()

    def observe(self, status: int, retry_after: str | None, max_pause: float) -> None:
        """A 429 or 503 slows this host down (a pause, a longer interval); any other
        status halves the slow-down."""
        if status in (429, 503):
            self.slow = min(self.slow + 1, MAX_SLOW)
            pause = None
            if retry_after is not None:
                pause = parse_retry_after(retry_after, time.time())
            if pause is None:
                pause = BASE_PAUSE * 2 ** (self.slow - 1)
            pause = min(pause, max_pause)
            self.paused_until = max(self.paused_until, trio.current_time() + pause)
        elif self.slow:
            self.slow -= 1
        else:
            return
        self._retune()

    async def wait_turn(self) -> None:
        """Wait out a pause (which may grow while waiting), then the token bucket."""
        # A loop, not an Event: a 429 seen by another task may push the pause further.
        while self.paused_until > trio.current_time():  # noqa: ASYNC110
            await trio.sleep_until(self.paused_until)
        if self.bucket.interval > 0:
            await self.bucket.acquire()
        # else no rate limit: the caller checkpointed already (taking the slot)


class _Clock:
    """The total deadline of one fetch: it starts with the first attempt."""

    __slots__ = ("deadline", "started", "total")

    def __init__(self, total: float | None) -> None:
        self.total = total
        self.started: float | None = None
        self.deadline = math.inf

    def start(self) -> None:
        if self.started is None:
            self.started = trio.current_time()
            if self.total is not None:
                self.deadline = self.started + self.total

    def remaining(self) -> float:
        return self.deadline - trio.current_time()

    def elapsed(self) -> float:
        return 0.0 if self.started is None else trio.current_time() - self.started


async def _discard(response: Response) -> None:
    """Close a response we do not keep (a redirect hop, a retried 429/503), reading its
    body first if it is small and quick (the client's own bounded drain: at most 64 KiB,
    half a second), so that an HTTP/1.1 connection is reused rather than dropped."""
    await drain(response, trio.current_time() + DRAIN_GRACE)


def _load_protego() -> Callable[[str], _Rules]:
    try:
        from protego import Protego
    except ImportError as exc:
        raise ImportError(
            "robots.txt needs protego: `pip install trioclient[crawl]` (or pass "
            "Politeness(robots=False) to skip robots.txt)"
        ) from exc
    return Protego.parse


def _seconds(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"Politeness {name} must be a number of seconds, not {describe(value)}")
    if not (value >= 0 and math.isfinite(value)):
        raise ValueError(f"Politeness {name} must be a finite number >= 0, not {value!r}")
    return float(value)


def _rate(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"Politeness rate must be a number > 0 or None, not {describe(value)}")
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"Politeness rate must be a finite number > 0 or None, not {value!r}")
    return float(value)


def _count(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"Politeness {name} must be an int >= 1, not {describe(value)}")
    if value < 1:
        raise ValueError(f"Politeness {name} must be an int >= 1, not {value}")
    return value


class Politeness:
    """Per-host politeness shared by every worker of a crawl (see `fetch`).

    Args:
        per_host: requests to one host (origin) at once.
        rate: requests a second to one host (None: no rate limit),
        burst: of which this many may start at once.
        robots: obey robots.txt (needs `trioclient[crawl]`, for protego).
        user_agent: the User-Agent sent with every request; its first word (before "/")
            is the product token matched against robots.txt groups.
        max_crawl_delay: the longest Crawl-delay (or Request-rate interval) obeyed; a
            site asking for more gets this.
        retry: the retry policy (None: no retries); by default 3 retries, 1 s, 2 s, 4 s
            apart or as Retry-After asks (up to 120 s).
        max_hosts: hosts remembered (robots.txt, slow-down); the least recently used idle
            one is forgotten beyond that.
        robots_ttl: seconds a robots.txt is trusted (RFC 9309: at most a day);
        robots_error_ttl: and how long an unreachable one means "disallow all".
        max_pause: the longest pause a 429/503 (or its Retry-After) imposes on a host.
    """

    def __init__(
        self,
        *,
        per_host: int = 2,
        rate: float | None = 1.0,
        burst: int = 1,
        robots: bool = True,
        user_agent: str = DEFAULT_USER_AGENT,
        max_crawl_delay: float = 30.0,
        retry: Retry | None = DEFAULT_RETRY,
        max_hosts: int = 100_000,
        robots_ttl: float = 24 * 3600.0,
        robots_error_ttl: float = 300.0,
        max_pause: float = 120.0,
    ) -> None:
        self.per_host = _count("per_host", per_host)
        self.rate = _rate(rate)
        self.burst = _count("burst", burst)
        if robots is not True and robots is not False:
            raise TypeError(f"Politeness robots must be a bool, not {describe(robots)}")
        self._protego = _load_protego() if robots else None
        self.robots = robots
        if not isinstance(user_agent, str) or not user_agent.strip():
            raise TypeError(
                f"Politeness user_agent must be a non-empty str, not {describe(user_agent)}"
            )
        self.user_agent = user_agent
        self.robots_token = user_agent.strip().split()[0].split("/")[0].lower()
        self.max_crawl_delay = _seconds("max_crawl_delay", max_crawl_delay)
        if retry is not None and not isinstance(retry, Retry):
            raise TypeError(
                f"Politeness retry must be a trioclient.Retry or None, not {describe(retry)}"
            )
        self.retry = retry
        self.max_hosts = _count("max_hosts", max_hosts)
        self.robots_ttl = _seconds("robots_ttl", robots_ttl)
        self.robots_error_ttl = _seconds("robots_error_ttl", robots_error_ttl)
        self.max_pause = _seconds("max_pause", max_pause)
        self._hosts: OrderedDict[Origin, _Host] = OrderedDict()
        self.robots_fetches = 0  # robots.txt requests made (for statistics and tests)

    # -- per-host state ---------------------------------------------------------------------

    @property
    def hosts(self) -> int:
        """How many hosts are remembered now."""
        return len(self._hosts)

    def _enter(self, url: URL) -> _Host:
        key = url._origin_key
        host = self._hosts.get(key)
        if host is None:
            name = f"{url.scheme}://{url.netloc.decode('ascii')}"
            interval = 0.0 if self.rate is None else 1.0 / self.rate
            host = self._hosts[key] = _Host(name, self.per_host, interval, self.burst)
            host.users += 1  # before evicting: the new host is in use
            self._evict()
            return host
        self._hosts.move_to_end(key)
        host.users += 1
        return host

    def _leave(self, host: _Host) -> None:
        host.users -= 1
        if len(self._hosts) > self.max_hosts:
            self._evict()

    def _evict(self) -> None:
        excess = len(self._hosts) - self.max_hosts
        if excess <= 0:
            return
        # Least recently used first; the busy ones skipped are at most the fetches running.
        idle: list[Origin] = []
        for key, host in self._hosts.items():
            if host.users == 0:
                idle.append(key)
                if len(idle) == excess:
                    break
        for key in idle:
            del self._hosts[key]

    # -- robots.txt -------------------------------------------------------------------------

    async def _robots_for(
        self, client: Client, host: _Host, url: URL, limits: FetchLimits
    ) -> _Robots:
        """The host's robots.txt, fetched by the first task that needs it; the others wait."""
        while True:
            robots = host.robots
            if robots is not None and robots.expires > trio.current_time():
                await trio.lowlevel.checkpoint()
                return robots
            fetching = host.robots_fetching
            if fetching is not None:
                await fetching.wait()
                continue
            fetching = host.robots_fetching = trio.Event()
            try:
                robots = await self._fetch_robots(client, host, url, limits)
                host.learn_robots(robots)
                return robots
            finally:
                # Cancelled or not, wake the waiters: one of them fetches if we did not.
                host.robots_fetching = None
                fetching.set()

    async def _fetch_robots(
        self, client: Client, host: _Host, url: URL, limits: FetchLimits
    ) -> _Robots:
        self.robots_fetches += 1
        robots_url = url.copy_with(
            raw_path=b"/robots.txt", fragment=None, username=None, password=None
        )
        # No max_response_size: the body is cut at ROBOTS_MAX_SIZE below, not refused.
        request = client.build_request(
            "GET", robots_url, headers={"User-Agent": self.user_agent}, max_response_size=None
        )
        clock = _Clock(limits.total_timeout)
        now = trio.current_time()
        try:
            response = await self._send(client, host, request, clock, hops=ROBOTS_MAX_REDIRECTS)
            try:
                status = response.status_code
                if 200 <= status < 300:
                    body = bytearray()
                    async for chunk in response.aiter_bytes():
                        body += chunk[: ROBOTS_MAX_SIZE - len(body)]
                        if len(body) >= ROBOTS_MAX_SIZE:
                            break
                    # RFC 9309: UTF-8 (a BOM is allowed and skipped).
                    text = bytes(body).decode("utf-8-sig", errors="replace")
                    assert self._protego is not None
                    try:
                        rules = self._protego(text)
                    except Exception as exc:  # protego is tolerant; be careful all the same
                        return _Robots(
                            None,
                            allow_all=False,
                            note=f"{robots_url} could not be parsed ({exc!r}): the host is "
                            "disallowed for now",
                            delay=0.0,
                            expires=trio.current_time() + self.robots_error_ttl,
                        )
                    return _Robots(
                        rules,
                        allow_all=True,
                        note="",
                        delay=self._delay_of(rules),
                        expires=trio.current_time() + self.robots_ttl,
                    )
            finally:
                host.slots.release()
                await response.aclose()
        except RequestError as exc:
            reason = f"{type(exc).__name__}: {exc}"
        else:
            if 300 <= status < 500 and status != 429:
                # "Unavailable": no rules at all (RFC 9309 section 2.3.1.3); so is a
                # redirect chain longer than five hops (section 2.3.1.2).
                return _Robots(
                    None, allow_all=True, note="", delay=0.0, expires=now + self.robots_ttl
                )
            reason = f"status {status}"
        # "Unreachable" (5xx, 429, a redirect loop, a network error): disallow everything
        # for a while (RFC 9309 section 2.3.1.4).
        return _Robots(
            None,
            allow_all=False,
            note=f"{robots_url} is unreachable ({reason}): the host is disallowed for now",
            delay=0.0,
            expires=trio.current_time() + self.robots_error_ttl,
        )

    def _delay_of(self, rules: _Rules) -> float:
        token = self.robots_token
        delay = rules.crawl_delay(token) or 0.0
        rate = getattr(rules, "request_rate", None)
        if rate is not None:
            request_rate = rate(token)
            if request_rate is not None and request_rate.requests > 0:
                delay = max(delay, request_rate.seconds / request_rate.requests)
        return min(max(float(delay), 0.0), self.max_crawl_delay)

    # -- sending ----------------------------------------------------------------------------

    async def _send(
        self, client: Client, host: _Host, request: Request, clock: _Clock, *, hops: int = 0
    ) -> Response:
        """Send with retries (and, if `hops`, follow that many redirects on this host's
        slots): the final response, streamed, with one of `host`'s slots held. The caller
        releases that slot (`host.slots.release()`) and closes the response."""
        retry = self.retry
        replayable = is_replayable(request._body)
        while True:
            await host.slots.acquire()
            keep = False
            try:
                await host.wait_turn()
                clock.start()
                self._apply_deadline(client, request, clock)
                try:
                    response = await client.send(
                        request, stream=True, follow_redirects=False, retries=None
                    )
                except RequestError as error:
                    if retry is None:
                        raise
                    decision = retry.plan(
                        request.method,
                        replayable=replayable,
                        error=error,
                        remaining=clock.remaining(),
                        random=random.random(),
                    )
                    if decision.retry is None:
                        raise
                else:
                    retry_after = response.headers.get("retry-after")
                    host.observe(response.status_code, retry_after, self.max_pause)
                    if retry is not None:
                        decision = retry.plan(
                            request.method,
                            replayable=replayable,
                            status_code=response.status_code,
                            retry_after=retry_after,
                            remaining=clock.remaining(),
                            now=time.time(),
                            random=random.random(),
                        )
                    if retry is None or decision.retry is None:
                        next_request = response.next_request
                        if hops and response.has_redirect_location and next_request is not None:
                            hops -= 1
                            request = next_request
                            await _discard(response)
                            continue
                        keep = True
                        return response
                    await _discard(response)
            finally:
                if not keep:
                    host.slots.release()
            retry = decision.retry
            # Outside the slot: another request may use it while this one waits.
            await trio.sleep(decision.delay)

    def _apply_deadline(self, client: Client, request: Request, clock: _Clock) -> None:
        """The request's timeout, with `total` cut to what is left of the fetch's."""
        if clock.deadline == math.inf:
            return
        remaining = clock.remaining()
        if remaining <= 0:
            raise PoolTimeout(
                f"The fetch's total timeout ({clock.total:g} s) passed while waiting for "
                "the host's turn (politeness).",
                request=request,
            )
        base = request.extensions.get("timeout")
        if not isinstance(base, Timeout):
            base = client.timeout
        total = remaining if base.total is None else min(base.total, remaining)
        request.extensions["timeout"] = Timeout(base, total=total)

    def _prepare(
        self, client: Client, request: str | URL | Request, limits: FetchLimits
    ) -> Request:
        if isinstance(request, Request):
            request.headers["User-Agent"] = self.user_agent
        elif isinstance(request, (str, URL)):
            request = client.build_request("GET", request, headers={"User-Agent": self.user_agent})
        else:
            raise TypeError(
                f"fetch() takes a URL (str or trioclient.URL) or a trioclient.Request, not "
                f"{describe(request)}"
            )
        request.extensions["max_response_size"] = limits.max_body
        return request

    async def fetch(
        self,
        client: Client,
        request: str | URL | Request,
        *,
        limits: FetchLimits = FetchLimits(),  # noqa: B008 (immutable)
    ) -> FetchResult:
        """Fetch politely: robots.txt, a per-host slot and turn, the request with retries
        (a 429/503 and Retry-After slow the host down), redirects hop by hop, the
        Content-Type checked before the body is read, the body bounded by `limits`.

        Network and HTTP errors (and a bad URL) become `FetchResult.error`; `trio.Cancelled`
        and other BaseExceptions propagate. A `Request` given here gets the User-Agent
        and `limits.max_body` (as its `max_response_size`) set on it.
        """
        if not isinstance(limits, FetchLimits):
            raise TypeError(f"fetch() limits must be a FetchLimits, not {describe(limits)}")
        url_text = str(request.url) if isinstance(request, Request) else str(request)
        clock = _Clock(limits.total_timeout)
        try:
            request = self._prepare(client, request, limits)
        except (InvalidURL, RequestError) as exc:
            await trio.lowlevel.checkpoint()
            return FetchResult.failure(url_text, type(exc).__name__, str(exc))
        hops = 0
        while True:
            url = request.url
            if url.scheme not in ("http", "https") or not url.host:
                await trio.lowlevel.checkpoint()
                message = f"Cannot crawl {str(url)!r}: not an http(s) URL with a host."
                return FetchResult.failure(
                    url_text, UnsupportedProtocol.__name__, message, final_url=str(url)
                )
            host = self._enter(url)
            try:
                if self._protego is not None:
                    robots = await self._robots_for(client, host, url, limits)
                    if not robots.allows(str(url), self.robots_token):
                        why = robots.note or f"robots.txt of {host.name} disallows it"
                        return FetchResult.failure(
                            url_text,
                            ROBOTS_DISALLOWED,
                            f"{url} not fetched: {why}",
                            final_url=str(url),
                            elapsed=clock.elapsed(),
                        )
                try:
                    response = await self._send(client, host, request, clock)
                except RequestError as exc:
                    return self._failed(url_text, url, exc, clock)
                try:
                    next_request = self._next_hop(response, hops, limits)
                    if next_request is not None:
                        hops += 1
                        request = next_request
                        request.extensions["max_response_size"] = limits.max_body
                        await _discard(response)
                        continue
                    return await self._read(url_text, response, limits, clock)
                except RequestError as exc:
                    return self._failed(url_text, url, exc, clock, response)
                finally:
                    host.slots.release()
                    await response.aclose()
            finally:
                self._leave(host)

    def _next_hop(self, response: Response, hops: int, limits: FetchLimits) -> Request | None:
        if limits.max_redirects == 0 or not response.has_redirect_location:
            return None
        if hops >= limits.max_redirects:
            raise TooManyRedirects(
                f"Exceeded the maximum of {limits.max_redirects} redirects (FetchLimits).",
                request=response.request,
            )
        # None when the Location cannot be followed (another scheme, a bad URL): then the
        # 3xx itself is the result.
        return response.next_request

    async def _read(
        self, url_text: str, response: Response, limits: FetchLimits, clock: _Clock
    ) -> FetchResult:
        final_url = str(response.url)
        headers = response.headers.multi_items()
        status = response.status_code
        bodyless = (
            response.request.method == "HEAD"
            or status in _NO_BODY_STATUSES
            or response.headers.get("content-length") == "0"
        )
        content_type = response.headers.get("content-type")
        if not bodyless and not limits.allows(content_type):  # an empty body has no type
            await trio.lowlevel.checkpoint()
            return FetchResult.failure(
                url_text,
                CONTENT_TYPE_NOT_ALLOWED,
                f"{final_url} is {content_type or 'of no stated type'!s}, not one of "
                f"{', '.join(limits.content_types or ())}: its body was not read",
                final_url=final_url,
                status=status,
                headers=headers,
                elapsed=clock.elapsed(),
            )
        content = await response.aread()
        return FetchResult.success(url_text, final_url, status, headers, content, clock.elapsed())

    def _failed(
        self,
        url_text: str,
        url: URL,
        exc: RequestError,
        clock: _Clock,
        response: Response | None = None,
    ) -> FetchResult:
        size = 0
        if response is None:
            response = getattr(exc, "response", None)
        if isinstance(exc, ResponseTooLarge) and not exc.declared:
            size = exc.size
        return FetchResult.failure(
            url_text,
            type(exc).__name__,
            str(exc),
            final_url=str(response.url) if response is not None else str(url),
            status=response.status_code if response is not None else None,
            headers=response.headers.multi_items() if response is not None else None,
            size=size,
            elapsed=clock.elapsed(),
        )

    def __repr__(self) -> str:
        return (
            f"<Politeness per_host={self.per_host} rate={self.rate} burst={self.burst} "
            f"robots={self.robots} hosts={len(self._hosts)}>"
        )
