"""Alt-Svc (RFC 7838): parsing the header, and the pool's memory of which origins offer HTTP/3.

Sans-I/O and clock-free: every method that needs the time takes `now`, so tests drive it
with plain numbers. The pool (`_pool.py`) feeds it the `Alt-Svc` values of responses it
received over https and asks it, before each request, whether an origin has a live `h3`
alternative.

What is remembered per origin: the UDP port of its first `h3` alternative and when that
advertisement expires (`ma=`, default 24 h, capped at a week). `clear` forgets the origin.
Other protocol ids (`h3-29`, `h2`...) are ignored, and so is an alternative on another host:
the certificate is checked against the origin anyway, and a server should not be able to
point our UDP traffic at a third party (a deviation from RFC 7838, which allows it). An
alternative that failed (`mark_broken`) is not used again for `BROKEN_FOR` seconds, even if
re-advertised. Both tables are bounded (least recently used dropped first), and a header
value longer than `MAX_VALUE` bytes is ignored whole.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Iterable
from dataclasses import dataclass

__all__ = [
    "BROKEN_FOR",
    "DEFAULT_MAX_AGE",
    "MAX_AGE_CAP",
    "MAX_ORIGINS",
    "MAX_VALUE",
    "AltService",
    "AltSvcCache",
    "parse_alt_svc",
]

DEFAULT_MAX_AGE = 86400
MAX_AGE_CAP = 7 * 86400
MAX_ORIGINS = 256
MAX_VALUE = 4096
BROKEN_FOR = 300.0

_TCHAR = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


@dataclass(frozen=True)
class AltService:
    """One alternative: protocol id (percent-decoded), host ("" = the origin's), port, ma."""

    protocol: str
    host: str
    port: int
    max_age: int


def parse_alt_svc(value: str) -> list[AltService] | None:
    """The alternatives of one Alt-Svc value; None for `clear`. Malformed entries are skipped.

    The grammar (RFC 7838 section 3): `clear`, or a comma-separated list of
    `protocol-id="[host]:port"` each followed by `;name=value` parameters.
    """
    if value.strip() == "clear":
        return None
    found: list[AltService] = []
    for entry in _split(value, ","):
        service = _parse_entry(entry)
        if service is not None:
            found.append(service)
    return found


def _split(value: str, separator: str) -> list[str]:
    """Split on `separator` outside double quotes (a quoted authority may hold anything)."""
    parts: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for char in value:
        if escaped:
            escaped = False
        elif quoted and char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == separator and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return parts


def _unquote(text: str) -> str | None:
    """A token as is, or the content of a quoted-string; None if it is neither."""
    if len(text) >= 2 and text[0] == text[-1] == '"':
        out: list[str] = []
        escaped = False
        for char in text[1:-1]:
            if escaped:
                out.append(char)
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                return None
            else:
                out.append(char)
        return None if escaped else "".join(out)
    if text and all(c in _TCHAR for c in text):
        return text
    return None


def _percent_decode(token: str) -> str | None:
    out = bytearray()
    i = 0
    raw = token.encode("ascii")
    while i < len(raw):
        if raw[i] == 0x25:  # "%"
            digits = raw[i + 1 : i + 3]
            if len(digits) != 2 or not all(chr(d) in "0123456789abcdefABCDEF" for d in digits):
                return None
            out.append(int(digits, 16))
            i += 3
        else:
            out.append(raw[i])
            i += 1
    try:
        return out.decode("ascii")
    except UnicodeDecodeError:
        return None


def _parse_entry(entry: str) -> AltService | None:
    pieces = _split(entry, ";")
    head = pieces[0].strip()
    name, equals, authority_text = head.partition("=")
    name = name.strip()
    if not equals or not name or not all(c in _TCHAR for c in name):
        return None
    protocol = _percent_decode(name)
    authority = _unquote(authority_text.strip())
    if protocol is None or authority is None:
        return None
    host, colon, port_text = authority.rpartition(":")
    if not colon or not port_text.isascii() or not port_text.isdigit() or len(port_text) > 5:
        return None
    port = int(port_text)
    if not 0 < port < 65536:
        return None
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    max_age = DEFAULT_MAX_AGE
    for parameter in pieces[1:]:
        key, equals, raw = parameter.partition("=")
        if key.strip().lower() != "ma" or not equals:
            continue  # persist=1 and unknown parameters: nothing for us to do
        text = _unquote(raw.strip())
        if text is None or not text.isascii() or not text.isdigit():
            return None
        max_age = int(text[:12])  # far past the cap either way
    return AltService(protocol, host, port, max_age)


class AltSvcCache:
    """Per pool: which origins offer `h3`, on which UDP port, until when; and which failed.

    Keys are any hashable origin identity (the pool uses its `Origin`); `host` is what an
    alternative's host is compared with. Bounded to `max_origins` of each kind (LRU).
    """

    def __init__(self, max_origins: int = MAX_ORIGINS) -> None:
        self._max = max_origins
        self._alternatives: OrderedDict[Hashable, tuple[int, float]] = OrderedDict()
        self._broken: OrderedDict[Hashable, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._alternatives)

    def learn(self, origin: Hashable, host: str, values: Iterable[str], now: float) -> bool:
        """Take in the Alt-Svc values of one response from `origin`. True if an `h3`
        alternative is now remembered for it (new or refreshed)."""
        joined = ", ".join(values)
        if len(joined) > MAX_VALUE:
            return False
        services = parse_alt_svc(joined)
        if services is None:
            self._alternatives.pop(origin, None)
            return False
        for service in services:
            if service.protocol != "h3":
                continue
            if service.host and service.host.lower() != host.lower():
                continue  # another host: ignored (see the module docstring)
            until = self._broken.get(origin)
            if until is not None:
                if now < until:
                    return False
                del self._broken[origin]
            max_age = min(service.max_age, MAX_AGE_CAP)
            if max_age == 0:
                self._alternatives.pop(origin, None)
                return False
            self._alternatives[origin] = (service.port, now + max_age)
            self._alternatives.move_to_end(origin)
            if len(self._alternatives) > self._max:
                self._alternatives.popitem(last=False)
            return True
        return False

    def lookup(self, origin: Hashable, now: float) -> int | None:
        """The UDP port of `origin`'s live `h3` alternative, or None."""
        entry = self._alternatives.get(origin)
        if entry is None:
            return None
        port, expires = entry
        if now >= expires:
            del self._alternatives[origin]
            return None
        self._alternatives.move_to_end(origin)
        return port

    def mark_broken(self, origin: Hashable, now: float) -> None:
        """The alternative failed: forget it, and ignore re-advertisements for a while."""
        self._alternatives.pop(origin, None)
        self._broken[origin] = now + BROKEN_FOR
        self._broken.move_to_end(origin)
        if len(self._broken) > self._max:
            self._broken.popitem(last=False)

    def is_broken(self, origin: Hashable, now: float) -> bool:
        """True while `origin`'s alternative is marked broken."""
        until = self._broken.get(origin)
        return until is not None and now < until

    def clear(self) -> None:
        """Forget everything."""
        self._alternatives.clear()
        self._broken.clear()
