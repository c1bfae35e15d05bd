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

import codecs
import enum
import math
import ssl
from collections.abc import Mapping
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
                raise ValueError(
                    "timeout as a tuple must be (connect, read, write, pool), not "
                    f"{describe(timeout)}"
                )
            base.update(zip(("connect", "read", "write", "pool"), timeout, strict=True))
        elif timeout is not _UNSET:
            if timeout is not None and (
                isinstance(timeout, bool) or not isinstance(timeout, (int, float))
            ):
                raise TypeError(
                    "timeout must be a number of seconds or None, a (connect, read, write,"
                    f" pool) tuple or a trioclient.Timeout, not {describe(timeout)}"
                )
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


def check_client_options(
    *,
    verify: object,
    cert: object,
    trust_env: object,
    http1: object,
    http2: object,
    limits: object,
    default_encoding: object,
    uds: object,
    local_address: object,
    http2_ping_interval: object,
    mounts: object,
) -> None:
    """The type checks of `Client(...)` arguments that no other constructor makes.

    Run once per client, so the requests never pay for them.
    """
    for name, flag in (("trust_env", trust_env), ("http1", http1), ("http2", http2)):
        check_bool(name, flag)
    if not isinstance(verify, (bool, str, ssl.SSLContext)):
        raise TypeError(
            f"verify must be a bool, a CA bundle path (str) or an ssl.SSLContext, "
            f"not {describe(verify)}"
        )
    if cert is not None and not (
        isinstance(cert, str)
        or (
            isinstance(cert, tuple)
            and len(cert) in (2, 3)
            and all(isinstance(part, str) for part in cert[:2])
            and all(isinstance(part, (str, bytes)) for part in cert[2:])
        )
    ):
        raise TypeError(
            "cert must be a path (str), a (cert, key) or a (cert, key, password) tuple of "
            f"str, or None, not {describe(cert)}"
        )
    if not isinstance(limits, Limits):
        raise TypeError(f"limits must be a trioclient.Limits, not {describe(limits)}")
    if isinstance(default_encoding, str):
        try:
            codecs.lookup(default_encoding)
        except LookupError:
            raise ValueError(
                f"default_encoding {default_encoding!r} is not a known codec"
            ) from None
    elif not callable(default_encoding):
        raise TypeError(
            "default_encoding must be a codec name (str) or a callable taking the body "
            f"bytes and returning a codec name, not {describe(default_encoding)}"
        )
    if uds is not None and not isinstance(uds, str):
        raise TypeError(f"uds must be a str (a socket path) or None, not {describe(uds)}")
    if local_address is not None and not isinstance(local_address, str):
        raise TypeError(
            f"local_address must be a str (an IP address) or None, not {describe(local_address)}"
        )
    if http2_ping_interval is not None:
        what = "http2_ping_interval must be a number of seconds > 0 or None"
        if isinstance(http2_ping_interval, bool) or not isinstance(
            http2_ping_interval, (int, float)
        ):
            raise TypeError(f"{what}, not {describe(http2_ping_interval)}")
        if not http2_ping_interval > 0:  # NaN included
            raise ValueError(f"{what}, not {http2_ping_interval!r}")
    if mounts is not None:
        if not isinstance(mounts, Mapping):
            raise TypeError(
                f"mounts must be a mapping of URL patterns to transports, not {describe(mounts)}"
            )
        for key in mounts:
            if not isinstance(key, str):
                raise TypeError(
                    "mounts keys must be str URL patterns such as 'https://example.org', "
                    f"not {describe(key)}"
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
        # `after` inlined: this runs for every read of every response.
        seconds = self.timeout.read
        if seconds is None:
            return self.total
        deadline = trio.current_time() + seconds
        return deadline if deadline < self.total else self.total

    def write(self) -> float:
        """The deadline for the next piece of the request to be accepted."""
        return self.after(self.timeout.write)

    def pool(self) -> float:
        """The deadline for getting a connection from the pool."""
        seconds = self.timeout.pool  # `after` inlined, as in `read`: once per request
        if seconds is None:
            return self.total
        deadline = trio.current_time() + seconds
        return deadline if deadline < self.total else self.total

    def why(self, deadline: float, seconds: float | None, what: str = "") -> str:
        """Which bound `deadline` came from, for an error message."""
        if deadline == self.total or seconds is None:
            return "total timeout"
        return f"no {what} for {seconds:g} s" if what else f"{seconds:g} s"
