"""The public `URL` and `QueryParams` models (API after httpx.URL and httpx.QueryParams).

All parsing, validation and normalisation lives in `_urlparse`; this module turns its
`ParseResult` into a friendly object and handles the keyword-argument surface.

Every request constructs a `URL`, so construction is kept cheap: a simple absolute URL
goes through one compiled regex (`parse_fast`), and the two values the transport needs
on every request, `_origin_key` and `_target`, are computed once here and stored in
slots. The string form is only recomposed (and then cached) when it is asked for.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import unquote, unquote_plus

from ._config import describe
from ._exceptions import InvalidURL
from ._origin import Origin
from ._types import PrimitiveData, QueryParamTypes
from ._urlparse import (
    DEFAULT_PORTS,
    ParseResult,
    build,
    check_text,
    decode_host,
    parse_reference,
    percent_encode,
    require_host,
    split_hostport,
    urljoin,
    urlparse,
)

__all__ = ["URL", "QueryParams"]

_UNRESERVED = r"A-Za-z0-9\-._~"
_CREDENTIAL_SAFE = _UNRESERVED + r"!$&'()*+,;="  # "%", ":" and "@" always get encoded

# Keyword arguments of URL() and the type each one must have (None is always allowed).
_KWARG_TYPES: dict[str, type] = {
    "scheme": str,
    "username": str,
    "password": str,
    "userinfo": bytes,
    "host": str,
    "port": int,
    "netloc": bytes,
    "path": str,
    "query": bytes,
    "raw_path": bytes,
    "fragment": str,
    "params": object,
}


class URL:
    """An immutable, validated and normalised URL.

    For "https://jo%40x.org:s%20ecret@bücher.example:8443/a%20b?q=1#top":

    * `scheme` "https", `username` "jo@x.org", `password` "s ecret",
      `userinfo` b"jo%40x.org:s%20ecret";
    * `host` "bücher.example", `raw_host` b"xn--bcher-kva.example", `port` 8443,
      `netloc` b"xn--bcher-kva.example:8443";
    * `path` "/a b", `query` b"q=1", `raw_path` b"/a%20b?q=1", `fragment` "top".

    Construction raises `InvalidURL` for anything that cannot be sent as it is; see
    `_urlparse` for the rules. Keyword arguments replace single components.
    """

    __slots__ = ("_netloc", "_origin_key", "_str", "_target", "_uri")

    _uri: ParseResult
    _origin_key: Origin
    _target: bytes
    _str: str | None

    def __init__(self, url: URL | str = "", **kwargs: Any) -> None:
        if kwargs:
            uri = require_host(_apply_kwargs(url, kwargs))
        elif isinstance(url, str):
            uri = urlparse(url)
        elif isinstance(url, URL):
            uri = url._uri
        else:
            raise TypeError(_url_type_message(url))
        self._set(uri)

    @classmethod
    def _from_uri(cls, uri: ParseResult) -> URL:
        url = cls.__new__(cls)
        url._set(uri)
        return url

    def _set(self, uri: ParseResult) -> None:
        scheme = uri.scheme
        port = uri.port
        if port is None:
            port = DEFAULT_PORTS.get(scheme, 0)
        self._uri = uri
        self._origin_key = Origin(scheme, (uri.host or "").encode("ascii"), port)
        target = uri.path or "/"
        if uri.query is not None:
            target = f"{target}?{uri.query}"
        self._target = target.encode("ascii")
        self._str = None
        self._netloc: bytes | None = None

    # -- components ------------------------------------------------------------------

    @property
    def scheme(self) -> str:
        """The scheme, lowercased: "https"; "" for a relative URL."""
        return self._uri.scheme

    @property
    def raw_scheme(self) -> bytes:
        """The scheme as ASCII bytes, lowercased: b"https"."""
        return self._uri.scheme.encode("ascii")

    @property
    def userinfo(self) -> bytes:
        """The percent-encoded "username:password" part, b"" when absent."""
        return self._uri.userinfo.encode("ascii")

    @property
    def username(self) -> str:
        """The user name, percent-decoded."""
        return unquote(self._uri.userinfo.partition(":")[0])

    @property
    def password(self) -> str:
        """The password, percent-decoded."""
        return unquote(self._uri.userinfo.partition(":")[2])

    @property
    def host(self) -> str:
        """The host in Unicode (IDNA-decoded) form; IPv6 literals have no brackets."""
        return decode_host(self._uri.host or "")

    @property
    def raw_host(self) -> bytes:
        """The host as sent on the wire: ASCII, punycode for IDNA names, lowercase."""
        return self._origin_key.host

    @property
    def _tls_server_name(self) -> str:
        """The name for SNI and certificate checks: ASCII host, no zone or trailing dot."""
        return (self._uri.host or "").partition("%")[0].rstrip(".")

    @property
    def port(self) -> int | None:
        """The explicit port, or None when absent or equal to the scheme's default."""
        return self._uri.port

    @property
    def netloc(self) -> bytes:
        """b"host" or b"host:port", with IPv6 literals in brackets."""
        netloc = self._netloc
        if netloc is None:
            netloc = self._netloc = self._uri.netloc.encode("ascii")
        return netloc

    @property
    def path(self) -> str:
        """The path, percent-decoded; "/" when empty."""
        return unquote(self._uri.path or "/")

    @property
    def query(self) -> bytes:
        """The percent-encoded query string without "?", b"" when absent."""
        return (self._uri.query or "").encode("ascii")

    @property
    def params(self) -> QueryParams:
        """The query string parsed into `QueryParams`."""
        return QueryParams(self._uri.query or "")

    @property
    def raw_path(self) -> bytes:
        """The HTTP request target: encoded path ("/" when empty) plus "?query" if any."""
        return self._target

    @property
    def fragment(self) -> str:
        """The fragment, percent-decoded, "" when absent."""
        return unquote(self._uri.fragment or "")

    @property
    def is_absolute_url(self) -> bool:
        """True when the URL has both a scheme and a host, so it can be requested."""
        return bool(self._uri.scheme and self._uri.host)

    @property
    def is_relative_url(self) -> bool:
        """The opposite of `is_absolute_url`."""
        return not self.is_absolute_url

    # -- derived URLs ------------------------------------------------------------------

    def copy_with(self, **kwargs: Any) -> URL:
        """Return a copy with the given components replaced (same keywords as URL())."""
        return URL(self, **kwargs)

    def copy_set_param(self, key: str, value: PrimitiveData = None) -> URL:
        """Return a copy whose query has `key` set to the single `value`."""
        return self.copy_with(params=self.params.set(key, value))

    def copy_add_param(self, key: str, value: PrimitiveData = None) -> URL:
        """Return a copy whose query has `value` appended under `key`."""
        return self.copy_with(params=self.params.add(key, value))

    def copy_remove_param(self, key: str) -> URL:
        """Return a copy whose query no longer contains `key`."""
        return self.copy_with(params=self.params.remove(key))

    def copy_merge_params(self, params: QueryParamTypes) -> URL:
        """Return a copy whose query has the keys of `params` replaced or added."""
        return self.copy_with(params=self.params.merge(params))

    def join(self, url: URL | str) -> URL:
        """Resolve `url` against this URL as a base (RFC 3986 section 5.2)."""
        if isinstance(url, URL):
            ref = url._uri
        elif isinstance(url, str):
            ref = parse_reference(url)
        else:
            raise TypeError(_url_type_message(url))
        return URL._from_uri(require_host(urljoin(self._uri, ref)))

    # -- dunder methods ----------------------------------------------------------------

    def __str__(self) -> str:
        """The normalised URL text."""
        text = self._str
        if text is None:
            text = self._str = str(self._uri)
        return text

    def __repr__(self) -> str:
        """`URL('...')`, with any password shown as "[secure]"."""
        uri = self._uri
        if ":" in uri.userinfo:
            masked = uri.userinfo.partition(":")[0] + ":[secure]"
            uri = dataclasses.replace(uri, userinfo=masked)
        return f"{type(self).__name__}({str(uri)!r})"

    def __eq__(self, other: object) -> bool:
        """Compare the normalised text with another URL or a str (parsed first)."""
        if isinstance(other, URL):
            return str(self) == str(other)
        if isinstance(other, str):
            try:
                return str(self) == str(URL(other))
            except InvalidURL:
                return False
        return NotImplemented

    def __hash__(self) -> int:
        """Hash of the normalised text, consistent with `__eq__`."""
        return hash(str(self))


def _url_type_message(url: object) -> str:
    return f"Invalid type for url: url must be a str or trioclient.URL, not {describe(url)}"


def _apply_kwargs(url: URL | str, kwargs: dict[str, Any]) -> ParseResult:
    """Replace the components named in `kwargs` and normalise the result."""
    text: dict[str, str] = {}
    for key, value in kwargs.items():
        expected = _KWARG_TYPES.get(key)
        if expected is None:
            raise TypeError(f"{key!r} is an invalid keyword argument for URL()")
        if value is not None and not isinstance(value, expected):
            raise TypeError(
                f"Argument {key!r} must be {expected.__name__} but got {type(value).__name__}"
            )
        if isinstance(value, bytes):
            try:
                value = value.decode("utf-8")
            except UnicodeDecodeError:
                raise InvalidURL(f"Invalid UTF-8 in URL {key} component: {value!r}.") from None
        if isinstance(value, str):
            check_text(value, key)
            text[key] = value

    if isinstance(url, URL):
        base = url._uri
    elif isinstance(url, str):
        base = parse_reference(url)
    else:
        raise TypeError(_url_type_message(url))
    parts: dict[str, Any] = dataclasses.asdict(base)

    if "scheme" in kwargs:
        parts["scheme"] = text.get("scheme", "")
    if "userinfo" in kwargs:
        parts["userinfo"] = text.get("userinfo", "")
    if "username" in kwargs or "password" in kwargs:
        user, _, password = parts["userinfo"].partition(":")
        if "username" in kwargs:
            user = percent_encode(
                text.get("username", ""), _CREDENTIAL_SAFE, component="username", keep_escapes=False
            )
        if "password" in kwargs:
            password = percent_encode(
                text.get("password", ""), _CREDENTIAL_SAFE, component="password", keep_escapes=False
            )
        parts["userinfo"] = f"{user}:{password}" if password else user
    if "netloc" in kwargs:
        netloc = text.get("netloc")
        parts["host"], parts["port"] = (None, None) if netloc is None else split_hostport(netloc)
    if "host" in kwargs:
        parts["host"] = text.get("host")
    if "port" in kwargs:
        parts["port"] = kwargs["port"]
    if "raw_path" in kwargs:
        path, sep, query = text.get("raw_path", "").partition("?")
        parts["path"], parts["query"] = path, (query if sep else None)
    if "path" in kwargs:
        parts["path"] = text.get("path", "")
    if "query" in kwargs:
        parts["query"] = text.get("query")
    if "params" in kwargs:
        params = kwargs["params"]
        parts["query"] = (str(QueryParams(params)) or None) if params else None
    if "fragment" in kwargs:
        parts["fragment"] = text.get("fragment")
    return build(**parts)


def _primitive(value: PrimitiveData) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return ""
    return str(value)


def _param(key: str, value: object) -> str:
    """One query parameter value as text; a type that has no sure text form is refused."""
    if isinstance(value, str):
        return value
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return ""
    if isinstance(value, (int, float)):
        return str(value)
    raise TypeError(
        f"params[{key!r}] must be str, int, float, bool or None (or a list or tuple of "
        f"those), not {describe(value)}"
    )


_PARAMS_TYPES = "a mapping, a list of (key, value) pairs, a str, bytes or trioclient.QueryParams"


def _form_encode(text: str) -> str:
    encoded = percent_encode(text, _UNRESERVED + " ", component="query", keep_escapes=False)
    return encoded.replace(" ", "+")


class QueryParams(Mapping[str, str]):
    """An immutable, ordered, multi-valued mapping of query parameters.

    Indexing, `get()`, `keys()`, `values()` and `items()` see the first value of each
    key; `multi_items()` and `get_list()` see all of them. Every "modifying" method
    returns a new instance. The original order of all pairs is kept.
    """

    __slots__ = ("_dict", "_items")

    def __init__(self, params: QueryParamTypes | None = None, /, **kwargs: Any) -> None:
        if kwargs:
            if params is not None:
                raise TypeError("QueryParams takes params or keyword arguments, not both")
            params = kwargs
        items: list[tuple[str, str]] = []
        if isinstance(params, bytes):
            params = params.decode("utf-8")
        if params is None:
            pass
        elif isinstance(params, str):
            for piece in params.split("&"):
                if piece:
                    key, _, value = piece.partition("=")
                    items.append((unquote_plus(key), unquote_plus(value)))
        elif isinstance(params, QueryParams):
            items = list(params._items)
        elif isinstance(params, Mapping):
            for key, values in params.items():
                name = str(key)
                if isinstance(values, (list, tuple)):
                    items.extend((name, _param(name, item)) for item in values)
                else:
                    items.append((name, _param(name, values)))
        elif isinstance(params, (list, tuple)):
            for pair in params:
                if not isinstance(pair, (list, tuple)) or len(pair) != 2:
                    raise TypeError(
                        f"params must be {_PARAMS_TYPES}; as a list it must hold (key, value)"
                        f" pairs, not {describe(pair)}"
                    )
                name = str(pair[0])
                items.append((name, _param(name, pair[1])))
        else:
            raise TypeError(f"params must be {_PARAMS_TYPES}, not {describe(params)}")
        self._load(tuple(items))

    def _load(self, items: tuple[tuple[str, str], ...]) -> None:
        self._items = items
        self._dict: dict[str, list[str]] = {}
        for key, value in items:
            self._dict.setdefault(key, []).append(value)

    def multi_items(self) -> list[tuple[str, str]]:
        """All (key, value) pairs, repeated keys included, in their original order."""
        return list(self._items)

    def get_list(self, key: str) -> list[str]:
        """All values of `key`, in order; [] when absent."""
        return list(self._dict.get(key, ()))

    def set(self, key: str, value: PrimitiveData = None) -> QueryParams:
        """Return a copy where `key` has the single `value` (at its first position)."""
        return self._replace({key: [_primitive(value)]})

    def add(self, key: str, value: PrimitiveData = None) -> QueryParams:
        """Return a copy with (`key`, `value`) appended."""
        return self._from_items((*self._items, (key, _primitive(value))))

    def remove(self, key: str) -> QueryParams:
        """Return a copy without any value for `key`."""
        return self._from_items(tuple(item for item in self._items if item[0] != key))

    def update(self, params: QueryParamTypes | None = None) -> None:
        """Always RuntimeError, as in httpx: QueryParams are immutable; use `merge`."""
        raise RuntimeError(
            "QueryParams are immutable: use `params = params.merge(...)` for an updated copy."
        )

    def merge(self, params: QueryParamTypes | None = None) -> QueryParams:
        """Return a copy where each key of `params` replaces that key's values here."""
        return self._replace(QueryParams(params)._dict)

    def _replace(self, new: dict[str, list[str]]) -> QueryParams:
        items: list[tuple[str, str]] = []
        done: set[str] = set()
        for key, value in self._items:
            if key not in new:
                items.append((key, value))
            elif key not in done:
                done.add(key)
                items.extend((key, v) for v in new[key])
        items.extend((key, v) for key, values in new.items() if key not in done for v in values)
        return self._from_items(tuple(items))

    @classmethod
    def _from_items(cls, items: tuple[tuple[str, str], ...]) -> QueryParams:
        params = cls.__new__(cls)
        params._load(items)
        return params

    def __getitem__(self, key: str) -> str:
        """The first value of `key`; KeyError when absent."""
        return self._dict[key][0]

    def __contains__(self, key: object) -> bool:
        """Whether `key` has at least one value."""
        return key in self._dict

    def __iter__(self) -> Iterator[str]:
        """The distinct keys, in order of first appearance."""
        return iter(self._dict)

    def __len__(self) -> int:
        """The number of distinct keys."""
        return len(self._dict)

    def __bool__(self) -> bool:
        """Whether there is any parameter at all."""
        return bool(self._items)

    def __eq__(self, other: object) -> bool:
        """Equal when both hold the same pairs; order between pairs does not matter."""
        if not isinstance(other, QueryParams):
            return NotImplemented
        return sorted(self._items) == sorted(other._items)

    def __hash__(self) -> int:
        """Hash consistent with `__eq__`."""
        return hash(tuple(sorted(self._items)))

    def __str__(self) -> str:
        """The form-encoded query string: "a=1&b=x+y"."""
        return "&".join(f"{_form_encode(k)}={_form_encode(v)}" for k, v in self._items)

    def __repr__(self) -> str:
        """`QueryParams('a=1&b=2')`."""
        return f"{type(self).__name__}({str(self)!r})"
