"""httpie-style request items: `Header:value`, `name==query`, `name=value`, `name:=json`, `a@file`.

An item is split at its first separator, reading left to right; where several separators start at
the same place the longest wins (`a:=1` is a JSON field, not a header `a` with value `=1`). A
backslash makes the next character of the name literal (`x\\:y=1` is the field `x:y`); the value
is taken verbatim, so Windows paths and regexes need no escaping.

| item            | meaning                                                        |
|-----------------|----------------------------------------------------------------|
| `Name:value`    | request header                                                 |
| `name==value`   | query parameter, appended to the URL's                         |
| `name=value`    | string field (JSON object member, or form field with --form)   |
| `name:=json`    | raw JSON field (`n:=1`, `tags:='["a"]'`); JSON bodies only     |
| `name@path`     | file upload (multipart form); `name@path;type=image/png`       |
| `name=@path`    | string field read from a text file                             |
| `name:=@path`   | raw JSON field read from a file                                |
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ._exit import UsageError

__all__ = ["Item", "ItemKind", "parse_item"]


class ItemKind(enum.Enum):
    """What a request item adds to the request."""

    HEADER = ":"
    QUERY = "=="
    DATA = "="
    JSON = ":="
    FILE = "@"
    DATA_FILE = "=@"
    JSON_FILE = ":=@"


# Longest first: at one position the longest separator that matches wins.
_SEPARATORS = sorted(ItemKind, key=lambda kind: len(kind.value), reverse=True)
_SEPARATOR_CHARS = frozenset(":=@")

ITEM_FORMS = "Header:value, name==query, name=value, name:=json or name@file"


@dataclass(frozen=True, slots=True)
class Item:
    """One parsed request item: its kind, its (unescaped) name and its verbatim value."""

    kind: ItemKind
    name: str
    value: str


def parse_item(text: str) -> Item:
    """Parse one request item; `UsageError` names the item when it has no separator or name."""
    name: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text):
            name.append(text[i + 1])
            i += 2
            continue
        if char in _SEPARATOR_CHARS:
            # Every separator character is itself a separator, so one always matches.
            kind = next(kind for kind in _SEPARATORS if text.startswith(kind.value, i))
            if not name:
                raise UsageError(f"request item {text!r} has no name before {kind.value!r}")
            return Item(kind, "".join(name), text[i + len(kind.value) :])
        name.append(char)
        i += 1
    raise UsageError(f"{text!r} is not a request item (expected {ITEM_FORMS})")
