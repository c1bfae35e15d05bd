"""httpie-style request items: the splitting rules, by example and as properties."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from trioclient._cli._exit import ExitCode, UsageError
from trioclient._cli._items import Item, ItemKind, parse_item


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("X-API-Key:abc", Item(ItemKind.HEADER, "X-API-Key", "abc")),
        ("Accept: text/html", Item(ItemKind.HEADER, "Accept", " text/html")),
        ("X-Empty:", Item(ItemKind.HEADER, "X-Empty", "")),
        ("q==trio client", Item(ItemKind.QUERY, "q", "trio client")),
        ("name=Ada", Item(ItemKind.DATA, "name", "Ada")),
        ("url=http://a/b?c=d", Item(ItemKind.DATA, "url", "http://a/b?c=d")),
        ("n:=1", Item(ItemKind.JSON, "n", "1")),
        ("tags:=[1, 2]", Item(ItemKind.JSON, "tags", "[1, 2]")),
        ("photo@~/a b.png", Item(ItemKind.FILE, "photo", "~/a b.png")),
        ("bio=@bio.txt", Item(ItemKind.DATA_FILE, "bio", "bio.txt")),
        ("cfg:=@cfg.json", Item(ItemKind.JSON_FILE, "cfg", "cfg.json")),
        # The first separator wins; the value keeps the rest verbatim.
        ("Link:<a>; rel=next", Item(ItemKind.HEADER, "Link", "<a>; rel=next")),
        ("email=me@example.org", Item(ItemKind.DATA, "email", "me@example.org")),
        ("path=C:\\dir", Item(ItemKind.DATA, "path", "C:\\dir")),
        # Backslash escapes separators (and backslashes) in the name.
        ("a\\:b=1", Item(ItemKind.DATA, "a:b", "1")),
        ("a\\=b==c", Item(ItemKind.QUERY, "a=b", "c")),
        ("a\\\\b:c", Item(ItemKind.HEADER, "a\\b", "c")),
        ("a\\@b@c", Item(ItemKind.FILE, "a@b", "c")),
    ],
)
def test_examples(text: str, expected: Item) -> None:
    assert parse_item(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("plain", "'plain' is not a request item"),
        ("a\\=b", "'a\\\\=b' is not a request item"),
        (":value", "has no name before ':'"),
        ("=value", "has no name before '='"),
        (":=1", "has no name before ':='"),
        ("@file", "has no name before '@'"),
    ],
)
def test_bad_items_are_usage_errors(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message.replace("\\", "\\\\")) as info:
        parse_item(text)
    assert info.value.code is ExitCode.USAGE


def _escape(name: str) -> str:
    return "".join("\\" + c if c in ":=@\\" else c for c in name)


def _unambiguous(kind: ItemKind, value: str) -> bool:
    """`a` `=` `=x` reads as `a` `==` `x`: the longest separator wins, as documented."""
    joined = kind.value + value
    return not any(
        len(other.value) > len(kind.value) and joined.startswith(other.value) for other in ItemKind
    )


@given(
    name=st.text(min_size=1, max_size=20),
    kind=st.sampled_from(ItemKind),
    value=st.text(max_size=20),
)
def test_escaped_names_round_trip(name: str, kind: ItemKind, value: str) -> None:
    """Any name, escaped, then any separator and any value: both come back as given."""
    assume(_unambiguous(kind, value))
    assert parse_item(_escape(name) + kind.value + value) == Item(kind, name, value)


@given(
    name=st.text(alphabet=st.characters(blacklist_characters=":=@\\"), min_size=1),
    kind=st.sampled_from(ItemKind),
    value=st.text(),
)
def test_plain_names_need_no_escaping(name: str, kind: ItemKind, value: str) -> None:
    assume(_unambiguous(kind, value))
    assert parse_item(name + kind.value + value) == Item(kind, name, value)


@given(st.text(alphabet=st.characters(blacklist_characters=":=@"), max_size=30))
def test_text_without_separators_is_rejected(text: str) -> None:
    with pytest.raises(UsageError, match="is not a request item"):
        parse_item(text)
