"""RFC 3986 parsing, normalisation and reference resolution (pure functions).

Theory of operation
-------------------
A URL is split with the regular expression of RFC 3986 appendix B into scheme,
authority, path, query and fragment; the authority is then split into userinfo, host
and port. Every component is *validated and normalised on the way in*, so a
`ParseResult` only ever holds a URL that can be sent on the wire as it is:

* the scheme is lowercased and must match ``ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )``;
* the host is stored in its ASCII form, lowercased: IPv4 literals are checked with
  `ipaddress`, IPv6 literals (written in brackets) likewise, and non-ASCII names go
  through IDNA 2008 with the UTS 46 mapping (the `idna` package);
* a default port (80 for http and ws, 443 for https and wss, 21 for ftp) is dropped;
* characters that may not appear literally in a component are percent-encoded as
  UTF-8, valid ``%XX`` escapes are kept byte for byte (re-casing or decoding them can
  break signed URLs) and a stray ``%`` becomes ``%25``;
* dot segments are removed from absolute paths (RFC 3986 section 5.2.4).

Anything that cannot be repaired without guessing raises `InvalidURL` with a message
naming the problem and the component: ASCII control characters anywhere (CR/LF would
allow request splitting), ports that are not decimal or exceed 65535, malformed IP
literals, hosts that fail IDNA, and URLs longer than 65536 characters.

Every request builds a URL, so `parse_fast` handles the common case (a lowercase,
already-normal http(s) or ws(s) URL) with one regex match and a few string checks,
and hands anything else to the full parser; a property test checks that both agree.

Alternatives we turned down:

* `urllib.parse` accepts almost anything and mangles it silently: it deletes tabs
  and newlines wherever they are, validates the port only lazily (`.port` raises
  `ValueError` long after parsing "succeeded"), percent-encodes nothing, leaves
  hosts undecoded and unchecked, and the stdlib's only IDNA support (the "idna"
  codec) is IDNA 2003, which maps "ß" to "ss" and so reaches a different host than
  IDNA 2008 and every browser.
* WHATWG URL parsing (what browsers do) turns backslashes into slashes, drops tabs
  and newlines anywhere and guesses at numeric hosts. That is right for an address
  bar and wrong for an HTTP client, where a surprising URL should be refused loudly.
  We borrow two ideas only: leading and trailing spaces are stripped, and a host
  whose last label is a number must be a valid dotted-quad IPv4 address, because
  resolvers would otherwise read "http://2130706433/" as 127.0.0.1 behind the back
  of any allow-list.

`urljoin` is RFC 3986 section 5.2.2 with one deviation the RFC itself allows: for
schemes that require a host (http, https, ws, wss) a reference such as "http:g" with
the base's scheme and no authority is resolved as the relative reference "g".
"""

from __future__ import annotations

import functools
import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

import idna

from ._exceptions import InvalidURL

__all__ = [
    "DEFAULT_PORTS",
    "MAX_URL_LENGTH",
    "PATH_SAFE",
    "QUERY_SAFE",
    "USERINFO_SAFE",
    "ParseResult",
    "build",
    "check_text",
    "decode_host",
    "normalize_host",
    "normalize_port",
    "parse_fast",
    "parse_reference",
    "percent_encode",
    "remove_dot_segments",
    "require_host",
    "split_hostport",
    "urljoin",
    "urlparse",
]

MAX_URL_LENGTH = 65536

DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443, "ftp": 21}

# Schemes whose URLs are meaningless without a host.
_HOST_REQUIRED = frozenset(("http", "https", "ws", "wss"))

# Character classes of RFC 3986 section 2, as regex class bodies.
_UNRESERVED = r"A-Za-z0-9\-._~"
_SUB_DELIMS = r"!$&'()*+,;="
USERINFO_SAFE = _UNRESERVED + _SUB_DELIMS + ":"
PATH_SAFE = _UNRESERVED + _SUB_DELIMS + ":@/"
QUERY_SAFE = PATH_SAFE + "?"  # also the fragment's set

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SPLIT = re.compile(r"(?:([^:/?#]+):)?(?://([^/?#]*))?([^?#]*)(?:\?([^#]*))?(?:#(.*))?", re.S)
_SCHEME = re.compile(r"[a-z][a-z0-9+\-.]*")
_BAD_HOST_CHAR = re.compile(rf"[^{_UNRESERVED}{_SUB_DELIMS}]")
_NUMERIC_LABEL = re.compile(r"[0-9]+|0x[0-9a-f]*")
_ZONE_ID = re.compile(rf"(?:[{_UNRESERVED}]|%[0-9A-Fa-f]{{2}})+")
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")

# The fast path: a lowercase http(s)/ws(s) URL with a plain host, an optional decimal
# port and a path/query made only of characters that never need encoding.
_FAST = re.compile(
    r"(https?|wss?)://([a-z0-9\-.]+)(?::([0-9]{1,5}))?"
    rf"(/[{PATH_SAFE}%]*)?(?:\?([{QUERY_SAFE}%]*))?"
)
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_FAST_IPV4 = re.compile(rf"{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}")
_PCT = [f"%{i:02X}" for i in range(256)]


@dataclass(frozen=True, slots=True)
class ParseResult:
    """A parsed, normalised URI reference; every string is already percent-encoded.

    `host` is None when the reference has no authority at all ("mailto:x", "/path")
    and "" for an empty one ("file:///tmp"). IPv6 hosts are stored without brackets.
    `query` and `fragment` are None when absent and "" when present but empty.
    """

    scheme: str
    userinfo: str
    host: str | None
    port: int | None
    path: str
    query: str | None
    fragment: str | None

    @property
    def netloc(self) -> str:
        """The host (IPv6 in brackets) and the port if it is not the default."""
        host = self.host or ""
        if ":" in host:
            host = f"[{host}]"
        return host if self.port is None else f"{host}:{self.port}"

    @property
    def authority(self) -> str:
        """The netloc, preceded by "userinfo@" when there is userinfo."""
        return f"{self.userinfo}@{self.netloc}" if self.userinfo else self.netloc

    def __str__(self) -> str:
        """Recompose the reference (RFC 3986 section 5.3)."""
        parts = []
        if self.scheme:
            parts.append(self.scheme + ":")
        path = self.path
        if self.host is not None:
            parts.append("//" + self.authority)
        elif path.startswith("//"):
            path = "/." + path  # otherwise the first segment would read as a host
        elif not self.scheme and ":" in path.partition("/")[0]:
            path = "./" + path  # otherwise the first segment would read as a scheme
        parts.append(path)
        if self.query is not None:
            parts.append("?" + self.query)
        if self.fragment is not None:
            parts.append("#" + self.fragment)
        return "".join(parts)


def check_text(text: str, component: str | None = None) -> None:
    """Refuse overly long text and ASCII control characters, naming the position."""
    where = "URL" if component is None else f"URL {component} component"
    if len(text) > MAX_URL_LENGTH:
        raise InvalidURL(f"{where} too long: {len(text)} characters (limit {MAX_URL_LENGTH}).")
    bad = _CONTROL.search(text)
    if bad is not None:
        raise InvalidURL(
            f"Invalid non-printable ASCII character in {where}, "
            f"{bad.group()!r} at position {bad.start()}."
        )


@functools.lru_cache(maxsize=16)
def _encoder(safe: str, keep_escapes: bool) -> re.Pattern[str]:
    if keep_escapes:
        return re.compile(rf"[^{safe}%]+|%(?![0-9A-Fa-f]{{2}})")
    return re.compile(rf"[^{safe}]+")


def percent_encode(text: str, safe: str, *, component: str, keep_escapes: bool = True) -> str:
    """Percent-encode (as UTF-8) every character of `text` outside the class `safe`.

    `safe` is a regex character-class body. With `keep_escapes`, valid "%XX" escapes
    are left alone and only a stray "%" is encoded; otherwise "%" is always encoded.
    """
    pattern = _encoder(safe, keep_escapes)
    if pattern.search(text) is None:
        return text

    def encode(match: re.Match[str]) -> str:
        try:
            data = match.group().encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidURL(
                f"Invalid character in URL {component}: {match.group()!r} is a lone surrogate."
            ) from None
        return "".join([_PCT[byte] for byte in data])

    return pattern.sub(encode, text)


def _normalize_scheme(scheme: str) -> str:
    lowered = scheme.lower()
    if scheme and (not scheme.isascii() or _SCHEME.fullmatch(lowered) is None):
        raise InvalidURL(f"Invalid scheme: {scheme!r}.")
    return lowered


def _normalize_ipv6(text: str) -> str:
    address, sep, zone = text.partition("%")
    try:
        ipaddress.IPv6Address(address)
    except ValueError:
        raise InvalidURL(f"Invalid IPv6 address: {text!r}.") from None
    if not sep:
        return address.lower()
    zone = zone.removeprefix("25")  # RFC 6874 writes the "%" itself as "%25"
    if _ZONE_ID.fullmatch(zone) is None:
        raise InvalidURL(f"Invalid IPv6 zone identifier in host: {text!r}.")
    return f"{address.lower()}%25{zone}"


def _idna_encode(host: str) -> str:
    try:
        return idna.encode(host, uts46=True).decode("ascii")
    except (UnicodeError, ValueError) as exc:
        raise InvalidURL(f"Invalid IDNA hostname: {host!r} ({exc}).") from None


def decode_host(host: str) -> str:
    """Return the Unicode form of an ASCII host: "xn--" labels are IDNA-decoded."""
    if "xn--" not in host:
        return host
    labels = host.split(".")
    return ".".join([idna.decode(lab) if lab.startswith("xn--") else lab for lab in labels])


@functools.lru_cache(maxsize=512)  # IDNA is slow (tens of µs) and hosts repeat a lot
def normalize_host(host: str) -> str:
    """Return the lowercase ASCII form of `host`, or raise InvalidURL.

    Accepts "[v6]" or a bare IPv6 literal, IPv4, ASCII names (percent-escapes are
    decoded), and Unicode names (IDNA 2008 with UTS 46 mapping).
    """
    if not host:
        return ""
    if host.startswith("["):
        if not host.endswith("]"):
            raise InvalidURL(f"Invalid IPv6 address: {host!r} (missing ']').")
        return _normalize_ipv6(host[1:-1])
    if ":" in host:
        return _normalize_ipv6(host)
    if "%" in host:
        if _BAD_ESCAPE.search(host):
            raise InvalidURL(f"Invalid percent-escape in host: {host!r}.")
        try:
            host = unquote_to_bytes(host).decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidURL(f"Invalid percent-encoded UTF-8 in host: {host!r}.") from None
    unicode = not host.isascii()
    if unicode:
        host = _idna_encode(host)
    host = host.lower()
    bad = _BAD_HOST_CHAR.search(host)
    if bad is not None:
        raise InvalidURL(f"Invalid character {bad.group()!r} in host: {host!r}.")
    if _NUMERIC_LABEL.fullmatch(host.rstrip(".").rpartition(".")[2]):
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            raise InvalidURL(f"Invalid IPv4 address: {host!r}.") from None
    if "xn--" in host and not unicode:  # an A-label typed in: check that it decodes
        try:
            decode_host(host)
        except (UnicodeError, ValueError) as exc:
            raise InvalidURL(f"Invalid IDNA hostname: {host!r} ({exc}).") from None
    return host


def normalize_port(port: int | str | None, scheme: str) -> int | None:
    """Parse a port (decimal text or int); None for empty text or the scheme's default."""
    if port is None or port == "":
        return None
    if isinstance(port, str):
        if not (port.isascii() and port.isdigit()):
            raise InvalidURL(f"Invalid port: {port!r}.")
        digits = port.lstrip("0")
        value = int(digits or "0") if len(digits) <= 5 else 65536  # 65536: out of range
    else:
        value = port
    if not 0 <= value <= 65535:
        raise InvalidURL(f"Invalid port: {port!r} (must be between 0 and 65535).")
    return None if DEFAULT_PORTS.get(scheme) == value else value


def remove_dot_segments(path: str) -> str:
    """Remove "." and ".." segments as RFC 3986 section 5.2.4 specifies, in one pass."""
    if "/." not in path and not path.startswith("."):
        return path
    if path.startswith("/"):  # the common case, where a segment stack is equivalent
        kept: list[str] = []
        *segments, last = path[1:].split("/")
        for segment in segments:
            if segment == "..":
                if kept:
                    kept.pop()
            elif segment != ".":
                kept.append(segment)
        if last == "..":
            if kept:
                kept.pop()
            kept.append("")
        else:
            kept.append("" if last == "." else last)
        return "/" + "/".join(kept)
    out: list[str] = []  # segments, each with its leading "/" if it had one
    i, end = 0, len(path)
    while i < end:
        if path.startswith("../", i):  # rule A
            i += 3
        elif path.startswith("./", i) or path.startswith("/./", i):  # rules A and B
            i += 2
        elif path.startswith("/.", i) and i + 2 == end:  # rule B, at the end
            out.append("/")
            break
        elif path.startswith("/../", i):  # rule C
            i += 3
            if out:
                out.pop()
        elif path.startswith("/..", i) and i + 3 == end:  # rule C, at the end
            if out:
                out.pop()
            out.append("/")
            break
        elif i + 2 >= end and path[i:] in (".", ".."):  # rule D
            break
        else:  # rule E
            j = path.find("/", i + 1)
            j = end if j == -1 else j
            out.append(path[i:j])
            i = j
    return "".join(out)


def build(
    *,
    scheme: str,
    userinfo: str,
    host: str | None,
    port: int | str | None,
    path: str,
    query: str | None,
    fragment: str | None,
) -> ParseResult:
    """Validate and normalise raw components into a `ParseResult`.

    Components may be partly encoded already; building from a `ParseResult`'s own
    fields returns an equal result (normalisation is idempotent).
    """
    scheme = _normalize_scheme(scheme)
    if host is None and (userinfo or (port is not None and port != "")):
        host = ""  # userinfo and port only exist inside an authority
    if host is not None:
        host = normalize_host(host)
        if path and not path.startswith("/"):
            raise InvalidURL(f"Invalid path {path!r}: with a host it must be empty or start '/'.")
    elif not scheme and ":" in path.partition("/")[0]:
        raise InvalidURL(
            f"Invalid path {path!r}: a relative URL's first path segment cannot contain ':'."
        )
    path = percent_encode(path, PATH_SAFE, component="path")
    if path.startswith("/"):
        path = remove_dot_segments(path)
    return ParseResult(
        scheme=scheme,
        userinfo=percent_encode(userinfo, USERINFO_SAFE, component="userinfo"),
        host=host,
        port=normalize_port(port, scheme),
        path=path,
        query=None if query is None else percent_encode(query, QUERY_SAFE, component="query"),
        fragment=(
            None if fragment is None else percent_encode(fragment, QUERY_SAFE, component="fragment")
        ),
    )


def parse_fast(url: str) -> ParseResult | None:
    """Parse a simple, already-normal absolute http(s)/ws(s) URL; None if not simple."""
    match = _FAST.fullmatch(url) if len(url) <= MAX_URL_LENGTH else None
    if match is None:
        return None
    scheme, host, port_text, path, query = match.groups()
    last = host[-1]
    if "xn--" in host or "0x" in host or last == ".":
        return None  # needs IDNA or numeric-host checks
    if last.isdigit() and _FAST_IPV4.fullmatch(host) is None:
        return None  # ends in a number, so it must be a valid IPv4 address
    if path is None:
        path = ""
    elif "/." in path:
        return None  # may hold dot segments
    if "%" in url and _BAD_ESCAPE.search(url):
        return None
    port = None
    if port_text is not None:
        port = int(port_text)
        if port > 65535:
            return None
        if DEFAULT_PORTS[scheme] == port:
            port = None
    return ParseResult(scheme, "", host, port, path, query, None)


def split_hostport(hostport: str) -> tuple[str, str]:
    """Split "host[:port]" (host possibly a bracketed IPv6 literal) into host and port text."""
    if not hostport.startswith("["):
        host, _, port = hostport.partition(":")
        return host, port
    end = hostport.find("]")
    if end == -1:
        raise InvalidURL(f"Invalid IPv6 address: {hostport!r} (missing ']').")
    rest = hostport[end + 1 :]
    if rest and not rest.startswith(":"):
        raise InvalidURL(f"Invalid text after IPv6 address in host: {hostport!r}.")
    return hostport[: end + 1], rest[1:]


def parse_reference(url: str) -> ParseResult:
    """Parse any URI reference, absolute or relative, without scheme-specific checks."""
    check_text(url)
    url = url.strip(" ")
    match = _SPLIT.fullmatch(url)
    assert match is not None  # every group is optional: the pattern matches any text
    scheme, authority, path, query, fragment = match.groups()
    userinfo, host, port = "", None, None
    if authority is not None:
        userinfo, _, hostport = authority.rpartition("@")
        host, port = split_hostport(hostport)
    return build(
        scheme=scheme or "",
        userinfo=userinfo,
        host=host,
        port=port,
        path=path,
        query=query,
        fragment=fragment,
    )


def require_host(result: ParseResult) -> ParseResult:
    """Refuse an http, https, ws or wss URL whose host is missing or empty."""
    if result.scheme in _HOST_REQUIRED and not result.host:
        raise InvalidURL(f"Missing host in {result.scheme!r} URL: {str(result)!r}.")
    return result


def urlparse(url: str) -> ParseResult:
    """Parse and normalise `url`, refusing host-less http(s) and ws(s) URLs."""
    return parse_fast(url) or require_host(parse_reference(url))


def _merge(base: ParseResult, path: str) -> str:
    if base.host is not None and not base.path:
        return "/" + path
    return base.path[: base.path.rfind("/") + 1] + path


def urljoin(base: ParseResult, ref: ParseResult) -> ParseResult:
    """Resolve the reference `ref` against `base` (RFC 3986 section 5.2.2)."""
    if ref.scheme and not (
        ref.scheme == base.scheme and ref.host is None and ref.scheme in _HOST_REQUIRED
    ):
        scheme, userinfo, host, port = ref.scheme, ref.userinfo, ref.host, ref.port
        path, query = remove_dot_segments(ref.path), ref.query
    elif ref.host is not None:
        scheme, userinfo, host, port = base.scheme, ref.userinfo, ref.host, ref.port
        path, query = remove_dot_segments(ref.path), ref.query
    else:
        scheme, userinfo, host, port = base.scheme, base.userinfo, base.host, base.port
        if not ref.path:
            path = base.path
            query = base.query if ref.query is None else ref.query
        else:
            raw = ref.path if ref.path.startswith("/") else _merge(base, ref.path)
            path, query = remove_dot_segments(raw), ref.query
    if port is not None and DEFAULT_PORTS.get(scheme) == port:
        port = None
    return ParseResult(scheme, userinfo, host, port, path, query, ref.fragment)
