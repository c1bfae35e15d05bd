"""Retries: the immutable `Retry` policy, and the pure decision taken after each attempt.

Theory of operation
-------------------
The retry loop lives in the send pipeline (`_send.py`), around the single-request step, so
every attempt goes through that step (event hooks, logs) like any request. The loop does the
I/O: it sends, waits and closes. Every *decision* is taken here, by `Retry.plan`, a pure
function of the policy, the request's method, whether its body can be sent again, the
outcome (an error, or a status and its Retry-After header), the time left before the total
deadline and a random number for the jitter. `plan` returns a `RetryDecision`: either the
next policy (counts decremented, as urllib3's `increment` does) and how long to wait, or why
not to retry. So the rules are unit- and property-tested without sockets or clocks.

What is retried, and why:

* connect errors (`ConnectError`, `ConnectTimeout`): nothing was sent, so any method is
  retried (like urllib3);
* read errors (`ReadError`, `ReadTimeout`, `WriteError`, `WriteTimeout`,
  `RemoteProtocolError`): the server may have seen the request, so only a method in
  `allowed_methods` (the idempotent ones by default) is retried;
* a status in `status_forcelist`, or 413/429/503 with a Retry-After header, for a method in
  `allowed_methods`;
* never: a request whose body is a stream (it cannot be sent again), `PoolTimeout` (our own
  back-pressure, which already waited), `DecodingError`, `ResponseTooLarge`,
  `TooManyRedirects`, `LocalProtocolError`, `UnsupportedProtocol`, and any BaseException
  (`trio.Cancelled`, KeyboardInterrupt): the loop only ever catches `RequestError`.

The pool already resends an idempotent request once when a reused keep-alive connection
turns out to be stale, and resends HTTP/2 streams the server refused unprocessed. Those are
about connections, invisible here and not counted: one attempt is one call of the
single-request step.

Rejected alternatives: `total=None` (urllib3 allows it; with no per-kind count either, the
loop would be unbounded); clamping a long Retry-After to `retry_after_max` and retrying
then (urllib3): a server that asks for an hour will refuse a retry after two minutes too,
so the response is handed back at once instead; raising a `MaxRetryError` wrapper (urllib3):
`except httpx.ConnectError` must keep working, so the last error is raised as itself and
carries the attempts (`exc.attempts`).
"""

from __future__ import annotations

import email.utils
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timezone
from typing import TYPE_CHECKING, ClassVar, Final

from ._config import describe
from ._exceptions import (
    ConnectError,
    ConnectTimeout,
    ReadError,
    ReadTimeout,
    RemoteProtocolError,
    RequestError,
    WriteError,
    WriteTimeout,
)

if TYPE_CHECKING:
    from ._request import Request
    from ._response import Response

__all__ = [
    "DEFAULT_ALLOWED_METHODS",
    "DEFAULT_STATUS_FORCELIST",
    "RETRY_AFTER_STATUS_CODES",
    "Retry",
    "RetryAttempt",
    "RetryDecision",
    "build_retry",
    "parse_retry_after",
]

#: Methods retried after a read error or a retryable status: the idempotent ones.
DEFAULT_ALLOWED_METHODS: Final = frozenset({"DELETE", "GET", "HEAD", "OPTIONS", "PUT", "TRACE"})
#: Statuses retried by default: rate limited, and the gateway/overload family (not 500,
#: which is more often a bug than a passing condition).
DEFAULT_STATUS_FORCELIST: Final = frozenset({429, 502, 503, 504})
#: Statuses retried whenever they carry a Retry-After header (RFC 9110 10.2.3).
RETRY_AFTER_STATUS_CODES: Final = frozenset({413, 429, 503})

_CONNECT_ERRORS = (ConnectError, ConnectTimeout)
_READ_ERRORS = (ReadError, ReadTimeout, WriteError, WriteTimeout, RemoteProtocolError)
_DIGITS = re.compile(r"[0-9]+")
_MAX_DIGITS = 15  # longer delta-seconds mean "a very long time": infinity, not int() work


def parse_retry_after(value: str, now: float) -> float | None:
    """Seconds to wait from a Retry-After value: delay-seconds or an HTTP-date.

    `now` is the wall-clock time (`time.time()`) an HTTP-date is measured from; a date in
    the past means 0. Returns None for a value that is neither (the caller then falls
    back on its own backoff), `math.inf` for an absurdly long delay.
    """
    text = value.strip(" \t")
    if _DIGITS.fullmatch(text):
        digits = text.lstrip("0")
        return math.inf if len(digits) > _MAX_DIGITS else float(int(digits or "0"))
    if not text or not text.isascii() or text[0].isdigit():
        return None  # "-1", "1.5", "10s": not delay-seconds, and no HTTP-date starts so
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (ValueError, TypeError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # "-0000": UTC by RFC 5322, and HTTP-dates are always GMT
        when = when.replace(tzinfo=timezone.utc)
    seconds = when.timestamp() - now  # aware, years 1-9999: never raises
    return seconds if seconds > 0 else 0.0


def _count(name: str, value: object, *, optional: bool) -> int | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        what = "an int >= 0 or None" if optional else "an int >= 0"
        raise TypeError(f"Retry {name} must be {what}, not {describe(value)}")
    if value < 0:
        raise ValueError(f"Retry {name} must be >= 0, not {value}")
    return value


def _seconds(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"Retry {name} must be a number of seconds, not {describe(value)}")
    if not value >= 0 or value == math.inf:  # NaN included
        raise ValueError(f"Retry {name} must be a finite number of seconds >= 0, not {value!r}")
    return float(value)


def _methods(value: object) -> frozenset[str] | None:
    if value is None:
        return None
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise TypeError(
            f"Retry allowed_methods must be a collection of method names or None (any "
            f"method), not {describe(value)}"
        )
    methods = []
    for method in value:
        if not isinstance(method, str) or not method:
            raise TypeError(f"Retry allowed_methods must hold method names, not {describe(method)}")
        methods.append(method.upper())
    return frozenset(methods)


def _statuses(value: object) -> frozenset[int]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise TypeError(
            f"Retry status_forcelist must be a collection of status codes, not {describe(value)}"
        )
    codes = []
    for code in value:
        if isinstance(code, bool) or not isinstance(code, int) or not 100 <= code <= 599:
            raise ValueError(f"Retry status_forcelist holds {code!r}, not a status 100-599")
        codes.append(code)
    return frozenset(codes)


@dataclass(frozen=True, slots=True)
class RetryAttempt:
    """One attempt that was retried: what was sent, what came back, how long was waited.

    `response` is the attempt's response for a status retry (closed: status and headers
    are there, the body was drained and dropped), `error` the exception for an error retry;
    `kind` is "connect", "read" or "status", and `delay` the seconds waited before the next
    attempt.
    """

    request: Request
    response: Response | None
    error: RequestError | None
    kind: str
    delay: float


@dataclass(frozen=True, slots=True)
class RetryDecision:
    """What `Retry.plan` decided: `retry` is the policy for the next attempt after waiting
    `delay` seconds, or None to stop, with `reason` saying why (empty when the outcome was
    not a retryable one at all: a success, or an error no retry can cure)."""

    retry: Retry | None
    kind: str | None
    delay: float
    reason: str


_NOT_RETRYABLE: Final = RetryDecision(None, None, 0.0, "")


class Retry:
    """How to retry a request that failed in a way a new attempt may cure. Immutable.

    Args:
        total: retries allowed in all, whatever their kind (an int: every loop is bounded).
        connect: retries after a connect error (None: only `total` limits them).
        read: retries after an error once the request may have been sent (None: `total`).
        status: retries after a status in `status_forcelist` (None: `total`).
        allowed_methods: methods retried after a read error or a retryable status; the
            idempotent ones by default; None for every method. Connect errors are retried
            for any method: nothing was sent.
        status_forcelist: statuses that are retried (429, 502, 503 and 504 by default).
            413, 429 and 503 are also retried whenever they carry a Retry-After.
        backoff_factor: the wait before retry n is `backoff_factor * 2 ** (n - 1)` seconds,
        backoff_jitter: plus a random `0 <= extra < backoff_jitter` seconds,
        backoff_max: and never more than this.
        respect_retry_after: wait as long as a response's Retry-After header asks instead
            (seconds or an HTTP-date),
        retry_after_max: unless that is more than this many seconds: then the response is
            returned at once, not retried.

    A request is never retried past its total timeout (`Timeout(total=...)`): a wait that
    would end after it stops the retries instead. Each retry returns a new `Retry` with
    the counts decremented (`plan`), so one can be shared by any number of requests.
    """

    __slots__ = (
        "_made",
        "allowed_methods",
        "backoff_factor",
        "backoff_jitter",
        "backoff_max",
        "connect",
        "read",
        "respect_retry_after",
        "retry_after_max",
        "status",
        "status_forcelist",
        "total",
    )

    total: int
    connect: int | None
    read: int | None
    status: int | None
    allowed_methods: frozenset[str] | None
    status_forcelist: frozenset[int]
    backoff_factor: float
    backoff_jitter: float
    backoff_max: float
    respect_retry_after: bool
    retry_after_max: float
    _made: int

    #: Methods retried after a read error or a retryable status: the idempotent ones.
    DEFAULT_ALLOWED_METHODS: ClassVar[frozenset[str]] = DEFAULT_ALLOWED_METHODS
    #: Statuses retried by default.
    DEFAULT_STATUS_FORCELIST: ClassVar[frozenset[int]] = DEFAULT_STATUS_FORCELIST
    #: Statuses retried whenever they carry a Retry-After header.
    RETRY_AFTER_STATUS_CODES: ClassVar[frozenset[int]] = RETRY_AFTER_STATUS_CODES

    def __init__(
        self,
        total: int = 3,
        *,
        connect: int | None = None,
        read: int | None = None,
        status: int | None = None,
        allowed_methods: Iterable[str] | None = DEFAULT_ALLOWED_METHODS,
        status_forcelist: Iterable[int] = DEFAULT_STATUS_FORCELIST,
        backoff_factor: float = 0.5,
        backoff_jitter: float = 0.25,
        backoff_max: float = 30.0,
        respect_retry_after: bool = True,
        retry_after_max: float = 120.0,
    ) -> None:
        if respect_retry_after is not True and respect_retry_after is not False:
            raise TypeError(
                f"Retry respect_retry_after must be a bool, not {describe(respect_retry_after)}"
            )
        values = {
            "total": _count("total", total, optional=False),
            "connect": _count("connect", connect, optional=True),
            "read": _count("read", read, optional=True),
            "status": _count("status", status, optional=True),
            "allowed_methods": _methods(allowed_methods),
            "status_forcelist": _statuses(status_forcelist),
            "backoff_factor": _seconds("backoff_factor", backoff_factor),
            "backoff_jitter": _seconds("backoff_jitter", backoff_jitter),
            "backoff_max": _seconds("backoff_max", backoff_max),
            "respect_retry_after": respect_retry_after,
            "retry_after_max": _seconds("retry_after_max", retry_after_max),
            "_made": 0,
        }
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Retry is immutable; build a new one instead.")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("Retry is immutable; build a new one instead.")

    @property
    def retries_made(self) -> int:
        """How many retries led to this policy (0 for one you built)."""
        return self._made

    def _after(self, kind: str) -> Retry:
        """A copy with the counts of one more retry of `kind` taken off."""
        new = object.__new__(Retry)
        for name in Retry.__slots__:
            object.__setattr__(new, name, object.__getattribute__(self, name))
        object.__setattr__(new, "total", self.total - 1)
        own = object.__getattribute__(self, kind)
        if own is not None:
            object.__setattr__(new, kind, own - 1)
        object.__setattr__(new, "_made", self._made + 1)
        return new

    def _exhausted(self) -> str:
        """Which count ran out ("" if none did)."""
        for name in ("total", "connect", "read", "status"):
            value = object.__getattribute__(self, name)
            if value is not None and value < 0:
                return name
        return ""

    def backoff(self, random: float) -> float:
        """The wait before the next retry, the `retries_made`-th (`random` in [0, 1))."""
        made = self._made
        if made <= 0:
            return 0.0
        delay = self.backoff_factor * 2.0 ** min(made - 1, 64) + random * self.backoff_jitter
        return delay if delay < self.backoff_max else self.backoff_max

    def is_method_allowed(self, method: str) -> bool:
        """True if `method` may be retried after the request may have been sent."""
        allowed = self.allowed_methods
        return allowed is None or method.upper() in allowed

    def kind_of(
        self,
        *,
        error: BaseException | None = None,
        status_code: int | None = None,
        has_retry_after: bool = False,
    ) -> str | None:
        """ "connect", "read" or "status" for an outcome a retry may cure; None otherwise."""
        if error is not None:
            if isinstance(error, _CONNECT_ERRORS):
                return "connect"
            if isinstance(error, _READ_ERRORS):
                return "read"
            return None
        if status_code is None:
            return None
        if status_code in self.status_forcelist or (
            has_retry_after and self.respect_retry_after and status_code in RETRY_AFTER_STATUS_CODES
        ):
            return "status"
        return None

    def plan(
        self,
        method: str,
        *,
        replayable: bool,
        error: BaseException | None = None,
        status_code: int | None = None,
        retry_after: str | None = None,
        remaining: float = math.inf,
        now: float = 0.0,
        random: float = 0.0,
    ) -> RetryDecision:
        """Decide what follows one attempt. Pure: no I/O, no clock, no randomness of its own.

        Args:
            method: the request's method.
            replayable: whether the request body can be sent again (bytes, or a multipart
                body of seekable files; not a stream).
            error: the attempt's exception, or None if a response came back,
            status_code: and then its status,
            retry_after: and its Retry-After header, if any.
            remaining: seconds left before the request's total deadline.
            now: the wall-clock time (`time.time()`), for a Retry-After HTTP-date.
            random: a number in [0, 1) for the backoff jitter.
        """
        kind = self.kind_of(
            error=error, status_code=status_code, has_retry_after=retry_after is not None
        )
        if kind is None:
            return _NOT_RETRYABLE
        if not replayable:
            return RetryDecision(
                None, kind, 0.0, "the request body is a stream, which cannot be sent again"
            )
        if kind != "connect" and not self.is_method_allowed(method):
            return RetryDecision(
                None, kind, 0.0, f"{method} is not in allowed_methods (it may not be idempotent)"
            )
        after = self._after(kind)
        exhausted = after._exhausted()
        if exhausted:
            made = self._made
            return RetryDecision(
                None,
                kind,
                0.0,
                f"retries exhausted (the {exhausted} count ran out after {made} "
                f"retr{'y' if made == 1 else 'ies'})",
            )
        delay = None
        if retry_after is not None and self.respect_retry_after:
            delay = parse_retry_after(retry_after, now)
            if delay is not None and delay > self.retry_after_max:
                return RetryDecision(
                    None,
                    kind,
                    0.0,
                    f"Retry-After asks for {delay:g} s, more than retry_after_max="
                    f"{self.retry_after_max:g} s",
                )
        if delay is None:
            delay = after.backoff(random)
        if delay >= remaining:
            return RetryDecision(
                None,
                kind,
                0.0,
                f"waiting {delay:g} s would pass the total timeout "
                f"({max(remaining, 0):.3g} s left)",
            )
        return RetryDecision(after, kind, delay, "")

    def _key(self) -> tuple[object, ...]:
        return tuple(object.__getattribute__(self, name) for name in Retry.__slots__)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Retry) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return (
            f"Retry(total={self.total}, connect={self.connect}, read={self.read}, "
            f"status={self.status})"
        )


def build_retry(value: object, name: str = "retries") -> Retry | None:
    """`retries=`: None or 0 for no retries, an int n for `Retry(total=n)`, or a `Retry`."""
    if value is None or isinstance(value, Retry):
        return value
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(
            f"{name} must be None, an int >= 0 or a trioclient.Retry, not {describe(value)}"
        )
    if value < 0:
        raise ValueError(f"{name} must be None, an int >= 0 or a trioclient.Retry, not {value}")
    return Retry(total=value) if value else None
