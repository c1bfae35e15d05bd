"""Configuration values: `Timeout`, `Limits`, and the "use the client's default" sentinel.

Timeout defaults are a deliberate choice. A network call with no bound at all is a footgun
(one dead peer hangs a crawler forever), but a single 5 s bound for everything (httpx) fails
ordinary slow APIs and large downloads. So:

* connect = 10 s: a TCP + TLS handshake that takes longer is almost always a dead route.
* read = 30 s and write = 30 s: the longest *silence* tolerated, per network operation, not
  per response; a large download that keeps flowing is never cut off.
* pool = 60 s: waiting for a free connection is our own back-pressure, not the server's
  fault, so it gets the longest bound.
* total = None: an end-to-end bound is the caller's decision (or `trio.move_on_after`).
"""

from __future__ import annotations

import enum
import math
from typing import TYPE_CHECKING, Any, Final

import trio

if TYPE_CHECKING:
    from ._request import Request

__all__ = [
    "DEFAULT_LIMITS",
    "DEFAULT_MAX_REDIRECTS",
    "DEFAULT_TIMEOUT",
    "USE_CLIENT_DEFAULT",
    "Deadlines",
    "Limits",
    "Timeout",
    "UseClientDefault",
]


class UseClientDefault(enum.Enum):
    """Sentinel type: "use the client's setting", which differs from `None` ("disable")."""

    USE_CLIENT_DEFAULT = enum.auto()

    def __repr__(self) -> str:
        return "USE_CLIENT_DEFAULT"


USE_CLIENT_DEFAULT: Final = UseClientDefault.USE_CLIENT_DEFAULT


class _Unset(enum.Enum):
    UNSET = enum.auto()


_UNSET: Final = _Unset.UNSET


def describe(value: object) -> str:
    """`int (12345)`: a wrong argument's type and a short repr, for error messages."""
    try:
        text = repr(value)
    except Exception:
        text = "?"
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(value).__name__} ({text})"


def check_bool(name: str, value: object) -> None:
    """Refuse anything but True and False (1, "yes" and None are mistakes, not flags)."""
    if value is not True and value is not False:
        raise TypeError(f"{name} must be a bool, not {describe(value)}")


def check_count(name: str, value: object) -> None:
    """Refuse anything but an int >= 0 (bool excluded)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int >= 0, not {describe(value)}")
    if value < 0:
        raise ValueError(f"{name} must be an int >= 0, not {value!r}")


_DEFAULTS: Final = {"connect": 10.0, "read": 30.0, "write": 30.0, "pool": 60.0}


def _check_seconds(name: str, value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"Timeout {name} must be a number of seconds or None, not {value!r}")
    if math.isnan(value) or value < 0:
        raise ValueError(f"Timeout {name} must be >= 0 seconds, not {value!r}")
    return float(value)


class Timeout:
    """Timeouts in seconds for each phase of a request; `None` disables one.

    `Timeout(5.0)` sets connect, read, write and pool to 5 s. Keyword arguments override
    single phases, and unset phases take the documented defaults. `total` bounds the whole
    exchange, from waiting for the pool to reading the last body byte.
    """

    __slots__ = ("connect", "pool", "read", "total", "write")

    connect: float | None
    read: float | None
    write: float | None
    pool: float | None
    total: float | None

    def __init__(
        self,
        timeout: Timeout | float | tuple[Any, ...] | _Unset | None = _UNSET,
        *,
        connect: float | _Unset | None = _UNSET,
        read: float | _Unset | None = _UNSET,
        write: float | _Unset | None = _UNSET,
        pool: float | _Unset | None = _UNSET,
        total: float | _Unset | None = _UNSET,
    ) -> None:
        base: dict[str, float | None] = dict(_DEFAULTS)
        base["total"] = None
        if isinstance(timeout, Timeout):
            base = timeout.as_dict()
        elif isinstance(timeout, tuple):
            if len(timeout) != 4:
                raise ValueError("A timeout tuple must be (connect, read, write, pool).")
            base.update(zip(("connect", "read", "write", "pool"), timeout, strict=True))
        elif timeout is not _UNSET:
            base.update(connect=timeout, read=timeout, write=timeout, pool=timeout)
        overrides = {"connect": connect, "read": read, "write": write, "pool": pool}
        overrides["total"] = total
        for name, value in overrides.items():
            if value is not _UNSET:
                base[name] = value
        for name, value in base.items():
            object.__setattr__(self, name, _check_seconds(name, value))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Timeout is immutable; build a new one instead.")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("Timeout is immutable; build a new one instead.")

    def as_dict(self) -> dict[str, float | None]:
        """The five settings as a dict (httpx compatible plus `total`)."""
        return {
            "connect": self.connect,
            "read": self.read,
            "write": self.write,
            "pool": self.pool,
            "total": self.total,
        }

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Timeout) and self.as_dict() == other.as_dict()

    def __hash__(self) -> int:
        return hash(tuple(self.as_dict().values()))

    def __repr__(self) -> str:
        values = self.as_dict()
        if values["total"] is None:
            del values["total"]
        if len(set(values.values())) == 1:
            return f"Timeout(timeout={self.connect})"
        return "Timeout(" + ", ".join(f"{k}={v}" for k, v in values.items()) + ")"


class Limits:
    """Connection pool limits.

    Args:
        max_connections: connections open at once, over all origins; None is unbounded.
        max_keepalive_connections: idle connections kept for reuse; None is unbounded, 0
            disables keep-alive (a connection is closed when its response ends).
        keepalive_expiry: seconds an idle connection is kept; None keeps it forever.
        max_connections_per_host: connections to one origin; None is unbounded.
    """

    __slots__ = (
        "keepalive_expiry",
        "max_connections",
        "max_connections_per_host",
        "max_keepalive_connections",
    )

    max_connections: int | None
    max_keepalive_connections: int | None
    keepalive_expiry: float | None
    max_connections_per_host: int | None

    def __init__(
        self,
        *,
        max_connections: int | None = 100,
        max_keepalive_connections: int | None = 20,
        keepalive_expiry: float | None = 5.0,
        max_connections_per_host: int | None = None,
    ) -> None:
        # 0 keep-alive connections is allowed (httpx users pass it to disable keep-alive:
        # each connection is closed once its response ends); 0 connections is not.
        for name, value, least in (
            ("max_connections", max_connections, 1),
            ("max_keepalive_connections", max_keepalive_connections, 0),
            ("max_connections_per_host", max_connections_per_host, 1),
        ):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < least
            ):
                kind = "a positive int" if least else "an int >= 0"
                raise ValueError(f"Limits {name} must be {kind} or None, not {value!r}")
        object.__setattr__(self, "max_connections", max_connections)
        object.__setattr__(self, "max_keepalive_connections", max_keepalive_connections)
        object.__setattr__(
            self, "keepalive_expiry", _check_seconds("keepalive_expiry", keepalive_expiry)
        )
        object.__setattr__(self, "max_connections_per_host", max_connections_per_host)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Limits is immutable; build a new one instead.")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("Limits is immutable; build a new one instead.")

    def _key(self) -> tuple[object, ...]:
        return (
            self.max_connections,
            self.max_keepalive_connections,
            self.keepalive_expiry,
            self.max_connections_per_host,
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Limits) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return (
            f"Limits(max_connections={self.max_connections}, "
            f"max_keepalive_connections={self.max_keepalive_connections}, "
            f"keepalive_expiry={self.keepalive_expiry}, "
            f"max_connections_per_host={self.max_connections_per_host})"
        )


DEFAULT_TIMEOUT: Final = Timeout()
DEFAULT_LIMITS: Final = Limits()
DEFAULT_MAX_REDIRECTS: Final = 20


class Deadlines:
    """The absolute deadlines of one send: each phase's timeout, capped by the total one.

    The client makes one when a send starts (the total deadline spans redirects and auth
    rounds) and hands it to the transport in `request.extensions["deadlines"]`. Every wait
    asks it for its deadline, so `min(now + timeout, total)` is written here only, and so is
    the wording that says which of the two bounds ran out.
    """

    __slots__ = ("timeout", "total")

    def __init__(self, timeout: Timeout, total: float = math.inf) -> None:
        self.timeout = timeout
        self.total = total

    @classmethod
    def start(cls, timeout: Timeout) -> Deadlines:
        """Deadlines for a send starting now."""
        total = timeout.total
        return cls(timeout, math.inf if total is None else trio.current_time() + total)

    @classmethod
    def of(cls, request: Request) -> Deadlines:
        """The request's deadlines: the client's, else started now from its `timeout`."""
        extensions = request.extensions
        deadlines = extensions.get("deadlines")
        if isinstance(deadlines, Deadlines):
            return deadlines
        timeout = extensions.get("timeout")
        if not isinstance(timeout, Timeout):
            timeout = DEFAULT_TIMEOUT if timeout is None else Timeout(timeout)
        return cls.start(timeout)

    def after(self, seconds: float | None) -> float:
        """`seconds` from now, but never past the total deadline (None: the total)."""
        if seconds is None:
            return self.total
        deadline = trio.current_time() + seconds
        return deadline if deadline < self.total else self.total

    def connect(self) -> float:
        """The deadline for connecting (TCP, TLS) starting now."""
        return self.after(self.timeout.connect)

    def read(self) -> float:
        """The deadline for the next byte of the response."""
        return self.after(self.timeout.read)

    def write(self) -> float:
        """The deadline for the next piece of the request to be accepted."""
        return self.after(self.timeout.write)

    def pool(self) -> float:
        """The deadline for getting a connection from the pool."""
        return self.after(self.timeout.pool)

    def why(self, deadline: float, seconds: float | None, what: str = "") -> str:
        """Which bound `deadline` came from, for an error message."""
        if deadline == self.total or seconds is None:
            return "total timeout"
        return f"no {what} for {seconds:g} s" if what else f"{seconds:g} s"
