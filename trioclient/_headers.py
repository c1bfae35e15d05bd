"""`Headers`: a case-insensitive, multi-valued, order-preserving header collection.

Theory of operation: one list of `(raw_name, lower_name, value)` byte triples is the only
state. The raw name keeps the casing the caller (or the server) used, the lowercased name
makes lookups a plain bytes comparison, and the value is kept as sent. Every view (`raw`,
`items()`, `multi_items()`, `keys()`) is computed from that list, so there are no counters
or indexes to drift out of step with it.

Alternatives turned down:

* A dict from lowercased name to a list of values loses the relative order of different
  fields, which matters for `Set-Cookie` debugging and for sending headers exactly as built.
* Storing `str`: h11 and h2 both speak bytes, so response headers would be decoded eagerly
  and request headers encoded again on every send. Instead values are decoded only when
  read, with an encoding detected once (ascii, then utf-8, then iso-8859-1) and cached
  until the next mutation.
* Validating in the constructor: most headers are built by the client itself or parsed by
  h11/h2, which validate already. `check_header_safety()` runs once, just before sending.

Response headers from h11 arrive as exactly these triples, so `Headers._from_raw()` adopts
that list without copying or checking anything.
"""

from __future__ import annotations

from collections.abc import (
    ItemsView,
    Iterable,
    Iterator,
    KeysView,
    Mapping,
    MutableMapping,
    ValuesView,
)
from typing import Any, cast

from ._config import describe
from ._exceptions import LocalProtocolError
from ._types import HeaderTypes

__all__ = ["Headers", "check_header_safety"]

_Triple = tuple[bytes, bytes, bytes]

_SECURE_NAMES = frozenset({"authorization", "proxy-authorization"})
# A name must be a non-empty token; these are the bytes that are dangerous, not the full
# token grammar (h11 and h2 enforce that). A value may not contain CR, LF or NUL.
# `data.translate(None, bad)` deletes them: a shorter result means one was there. That is
# a single C loop, and measured cheaper than a regex search for header-sized strings.
_BAD_NAME_BYTES = bytes(range(0x21)) + b":\x7f"
_BAD_VALUE_BYTES = b"\r\n\x00"


def _to_bytes(value: str | bytes, encoding: str | None, what: str) -> bytes:
    """Encode one header name or value; ascii (the common case) takes the fast path."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        # utf-8 is a plain copy for ascii strings, so it is also the fastest codec there.
        return value.encode(encoding or "utf-8")
    raise TypeError(f"Header {what} must be str or bytes, not {describe(value)} (in headers)")


_HEADER_TYPES = "a mapping or a list of (name, value) pairs"


def _slow_triples(pairs: Iterable[Any], encoding: str | None) -> list[_Triple]:
    """The items one by one, so that a wrong one gets a message that names it."""
    triples: list[_Triple] = []
    for pair in pairs:
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise TypeError(f"headers must be {_HEADER_TYPES}, not {describe(pair)} in the list")
        raw = _to_bytes(pair[0], encoding, "name")
        triples.append((raw, raw.lower(), _to_bytes(pair[1], encoding, "value")))
    return triples


class Headers(MutableMapping[str, str]):
    """HTTP headers: case-insensitive, multi-valued, ordered, with the raw bytes kept.

    `headers["accept"]` joins the values of every matching field with ", ";
    `get_list()` and `multi_items()` give them one by one.
    """

    __slots__ = ("_encoding", "_explicit_encoding", "_list")

    _list: list[_Triple]
    _encoding: str | None
    _explicit_encoding: str | None

    def __init__(self, headers: HeaderTypes | None = None, encoding: str | None = None) -> None:
        self._explicit_encoding = encoding
        self._encoding = encoding
        pairs: Iterable[tuple[Any, Any]]
        # Cheap exact-type checks first: isinstance() against an ABC costs far more.
        if isinstance(headers, (list, tuple)):
            pairs = cast("list[tuple[Any, Any]]", headers)
        elif headers is None:
            self._list = []
            return
        elif isinstance(headers, Headers):
            self._list = list(headers._list)
            if encoding is None:
                self._explicit_encoding = self._encoding = headers._explicit_encoding
            return
        elif isinstance(headers, Mapping):
            pairs = cast("Mapping[Any, Any]", headers).items()
        elif isinstance(headers, (str, bytes)) or not isinstance(headers, Iterable):
            raise TypeError(f"headers must be {_HEADER_TYPES}, not {describe(headers)}")
        else:
            pairs = list(headers)
        codec = encoding or "utf-8"
        try:
            # Fast path: all str. A bytes (or wrong) item has no .encode().
            self._list = [
                (raw := name.encode(codec), raw.lower(), value.encode(codec))
                for name, value in pairs
            ]
        except (AttributeError, TypeError, ValueError):
            # bytes, a wrong type, or an item that is not a pair: go one by one.
            self._list = _slow_triples(pairs, encoding)

    @classmethod
    def _from_raw(cls, items: list[_Triple]) -> Headers:
        """Adopt a list of (raw name, lower name, value) triples as is: no copy, no checks."""
        self = cls.__new__(cls)
        self._list = items
        self._encoding = None
        self._explicit_encoding = None
        return self

    # -- encoding -----------------------------------------------------------------------
    # Every mutation resets `_encoding` to the explicit one (or None): new bytes may not
    # decode with the codec detected before, so detection runs again on the next read.

    @property
    def encoding(self) -> str:
        """The codec used to decode names and values: set explicitly, or detected."""
        if self._encoding is None:
            self._encoding = self._detect_encoding()
        return self._encoding

    @encoding.setter
    def encoding(self, value: str) -> None:
        self._encoding = self._explicit_encoding = value

    def _detect_encoding(self) -> str:
        if all(raw.isascii() and value.isascii() for raw, _, value in self._list):
            return "ascii"
        try:
            for raw, _, value in self._list:
                raw.decode("utf-8")
                value.decode("utf-8")
        except UnicodeDecodeError:
            return "iso-8859-1"
        return "utf-8"

    # -- raw views ----------------------------------------------------------------------

    @property
    def raw(self) -> list[tuple[bytes, bytes]]:
        """The fields as (name, value) bytes pairs, with the names' original casing."""
        return [(raw, value) for raw, _, value in self._list]

    def _get_raw(self, lower_name: bytes) -> list[bytes]:
        """The raw values of a field, by its lowercased bytes name (for the transport)."""
        return [value for _, lower, value in self._list if lower == lower_name]

    def _has(self, lower_name: bytes) -> bool:
        """Whether a field of that lowercased bytes name is present (for the transport)."""
        for _, lower, _ in self._list:  # noqa: SIM110 (faster than any() here)
            if lower == lower_name:
                return True
        return False

    def _prepend(self, name: bytes, value: str | bytes) -> None:
        """Insert one field before all others (the transport's Host header)."""
        self._list.insert(
            0, (name, name.lower(), _to_bytes(value, self._explicit_encoding, "value"))
        )
        self._encoding = self._explicit_encoding

    def _setdefault_raw(self, name: bytes, value: bytes) -> None:
        """Append a field unless one of that name exists (body headers of a request)."""
        lower = name.lower()
        for _, existing, _ in self._list:
            if existing == lower:
                return
        self._list.append((name, lower, value))
        self._encoding = self._explicit_encoding

    # -- mapping interface --------------------------------------------------------------

    def __getitem__(self, key: str) -> str:
        """All values of the field `key`, joined with ", "; KeyError if there are none."""
        try:
            lookup = key.encode(self._explicit_encoding or "utf-8").lower()
        except AttributeError:
            lookup = self._lookup(key)
        values = [value for _, lower, value in self._list if lower == lookup]
        if not values:
            raise KeyError(key)
        if len(values) == 1:
            value = values[0]
            # Every codec we detect is an ascii superset, so ascii needs no detection.
            if self._explicit_encoding is None and value.isascii():
                return value.decode("ascii")
            return value.decode(self.encoding)
        codec = self.encoding
        return ", ".join(value.decode(codec) for value in values)

    def __setitem__(self, key: str, value: str) -> None:
        """Replace every field named `key` with one field, where the first one stood."""
        codec = self._explicit_encoding
        if isinstance(key, str) and isinstance(value, str):
            raw = key.encode(codec or "utf-8")
            new = (raw, raw.lower(), value.encode(codec or "utf-8"))
        else:
            raw = _to_bytes(key, codec, "name")
            new = (raw, raw.lower(), _to_bytes(value, codec, "value"))
        self._replace(new[1], [new])

    def __delitem__(self, key: str) -> None:
        """Remove every field named `key`; KeyError if there is none."""
        lookup = self._lookup(key)
        kept = [item for item in self._list if item[1] != lookup]
        if len(kept) == len(self._list):
            raise KeyError(key)
        self._list[:] = kept
        self._encoding = self._explicit_encoding

    def _lookup(self, key: str | bytes) -> bytes:
        # bytes.lower() only folds ascii, exactly like the stored lower names.
        return _to_bytes(key, self._explicit_encoding, "name").lower()

    def _replace(self, lookup: bytes, new: list[_Triple]) -> None:
        """Put `new` where the first field named `lookup` was, dropping all such fields."""
        items = self._list
        self._encoding = self._explicit_encoding
        for index, item in enumerate(items):
            if item[1] == lookup:
                items[index:] = [*new, *(i for i in items[index + 1 :] if i[1] != lookup)]
                return
        items.extend(new)

    def __contains__(self, key: object) -> bool:
        """Whether a field of that name (any casing) is present."""
        if isinstance(key, str):
            lookup = key.encode(self._explicit_encoding or "utf-8").lower()
        elif isinstance(key, bytes):
            lookup = key.lower()
        else:
            return False
        for _, lower, _ in self._list:  # noqa: SIM110 (twice as fast as any() here)
            if lower == lookup:
                return True
        return False

    def __iter__(self) -> Iterator[str]:
        """The distinct field names, lowercased, in order of first appearance."""
        return iter(self.keys())

    def __len__(self) -> int:
        """The number of distinct field names."""
        return len({lower for _, lower, _ in self._list})

    def keys(self) -> KeysView[str]:
        """The distinct lowercased names (a dict keys view)."""
        codec = self.encoding
        return {lower.decode(codec): None for _, lower, _ in self._list}.keys()

    def values(self) -> ValuesView[str]:
        """The merged value of each distinct name (a dict values view)."""
        return self._merged().values()

    def items(self) -> ItemsView[str, str]:
        """(lowercased name, merged value) for each distinct name (a dict items view)."""
        return self._merged().items()

    def _merged(self) -> dict[str, str]:
        codec = self.encoding
        merged: dict[str, str] = {}
        for _, lower, value in self._list:
            name = lower.decode(codec)
            text = value.decode(codec)
            merged[name] = f"{merged[name]}, {text}" if name in merged else text
        return merged

    def multi_items(self) -> list[tuple[str, str]]:
        """Every field as a (lowercased name, value) pair, duplicates included."""
        codec = self.encoding
        return [(lower.decode(codec), value.decode(codec)) for _, lower, value in self._list]

    def get(self, key: str, default: Any = None) -> Any:
        """The merged value of `key`, or `default` if absent."""
        try:
            return self[key]
        except KeyError:
            return default

    def get_list(self, key: str, split_commas: bool = False) -> list[str]:
        """Each value of `key` separately; with `split_commas`, comma lists split too."""
        codec = self.encoding
        values = [value.decode(codec) for value in self._get_raw(self._lookup(key))]
        if not split_commas:
            return values
        return [part.strip() for value in values for part in value.split(",")]

    def update(self, headers: HeaderTypes | None = None) -> None:  # type: ignore[override]
        """Set every name in `headers`, replacing existing fields of the same name."""
        other = Headers(headers, encoding=self._explicit_encoding)
        groups: dict[bytes, list[_Triple]] = {}
        for item in other._list:
            groups.setdefault(item[1], []).append(item)
        for lookup, new in groups.items():
            self._replace(lookup, new)

    def clear(self) -> None:
        """Remove every field."""
        self._list.clear()
        self._encoding = self._explicit_encoding

    def copy(self) -> Headers:
        """An independent copy (same fields, same explicit encoding)."""
        return Headers(self, encoding=self._explicit_encoding)

    def __eq__(self, other: object) -> bool:
        """Equal when both hold the same (name, value) fields, in any order."""
        if not isinstance(other, Headers):
            try:
                other = Headers(other)  # type: ignore[arg-type]
            except (TypeError, ValueError):
                return NotImplemented
        mine = sorted((lower, value) for _, lower, value in self._list)
        theirs = sorted((lower, value) for _, lower, value in other._list)
        return mine == theirs

    def __repr__(self) -> str:
        """Like `Headers({...})`, with credentials shown as '[secure]'."""
        pairs = [
            (name, "[secure]" if name in _SECURE_NAMES else value)
            for name, value in self.multi_items()
        ]
        encoding = "" if self.encoding == "ascii" else f", encoding={self.encoding!r}"
        if len({name for name, _ in pairs}) == len(pairs):
            return f"{type(self).__name__}({dict(pairs)!r}{encoding})"
        return f"{type(self).__name__}({pairs!r}{encoding})"


def check_header_safety(raw: Iterable[tuple[bytes, bytes]]) -> None:
    """Refuse names or values that could split or smuggle a message (CR, LF, NUL, ...).

    Names must be non-empty and free of whitespace, control bytes and colons; values must
    not contain CR, LF or NUL. Raises LocalProtocolError naming the header (never quoting
    the value, which may be a credential).
    """
    items = raw if isinstance(raw, list) else list(raw)
    if not items:
        return
    names, values = zip(*items, strict=False)
    # One pass over all names and one over all values; the separators are harmless.
    joined_names = b"x".join(names)
    joined_values = b" ".join(values)
    if (
        all(names)
        and len(joined_names.translate(None, _BAD_NAME_BYTES)) == len(joined_names)
        and len(joined_values.translate(None, _BAD_VALUE_BYTES)) == len(joined_values)
    ):
        return
    for name, value in items:
        label = name.decode("latin-1")
        if not name or len(name.translate(None, _BAD_NAME_BYTES)) != len(name):
            problem = "is empty" if not name else "contains whitespace, a colon or a control byte"
            raise LocalProtocolError(f"Header name {label!r} {problem}")
        if len(value.translate(None, _BAD_VALUE_BYTES)) != len(value):
            raise LocalProtocolError(f"Header value for {label!r} contains CR, LF or NUL")
    raise AssertionError("unreachable: the joined check found a bad byte")  # pragma: no cover
