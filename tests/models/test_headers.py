"""Headers: a reference-model property test, then the details one at a time."""

from __future__ import annotations

import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trioclient._exceptions import LocalProtocolError
from trioclient._headers import Headers, check_header_safety

# -- reference model -----------------------------------------------------------------------

_NAMES = ["a", "b", "Content-Type", "x-Trace"]


def _any_case(name: str) -> st.SearchStrategy[str]:
    return st.tuples(*[st.sampled_from([c.lower(), c.upper()]) for c in name]).map("".join)


names = st.sampled_from(_NAMES).flatmap(_any_case)
values = st.text(alphabet=string.ascii_letters + string.digits + " ,;=-é→", max_size=6)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("set"), names, values),
        st.tuples(st.just("add"), names, values),
        st.tuples(st.just("del"), names),
        st.tuples(st.just("get"), names),
    ),
    max_size=25,
)


class Model:
    """The obvious implementation: a list of (name, value) str pairs, scanned every time."""

    def __init__(self) -> None:
        self.pairs: list[tuple[str, str]] = []

    def matching(self, name: str) -> list[str]:
        return [v for n, v in self.pairs if n.lower() == name.lower()]

    def set(self, name: str, value: str) -> None:
        positions = [i for i, (n, _) in enumerate(self.pairs) if n.lower() == name.lower()]
        if not positions:
            self.pairs.append((name, value))
            return
        first = positions[0]
        self.pairs = [p for i, p in enumerate(self.pairs) if i not in positions[1:]]
        self.pairs[first] = (name, value)

    def delete(self, name: str) -> None:
        self.pairs = [(n, v) for n, v in self.pairs if n.lower() != name.lower()]


def _check(headers: Headers, model: Model) -> None:
    assert headers.raw == [(n.encode(), v.encode()) for n, v in model.pairs]
    assert headers.multi_items() == [(n.lower(), v) for n, v in model.pairs]
    unique = list(dict.fromkeys(n.lower() for n, _ in model.pairs))
    assert list(headers) == unique
    assert len(headers) == len(unique)
    assert dict(headers.items()) == {n: ", ".join(model.matching(n)) for n in unique}
    assert list(headers.values()) == [", ".join(model.matching(n)) for n in unique]


@settings(max_examples=150, deadline=None)
@given(operations)
def test_headers_behave_like_a_list_of_pairs(ops: list[tuple[str, ...]]) -> None:
    headers = Headers()
    model = Model()
    for op in ops:
        if op[0] == "set":
            headers[op[1]] = op[2]
            model.set(op[1], op[2])
        elif op[0] == "add":
            headers = Headers([*headers.raw, (op[1].encode(), op[2].encode())])
            model.pairs.append((op[1], op[2]))
        elif op[0] == "del":
            if model.matching(op[1]):
                del headers[op[1]]
                model.delete(op[1])
            else:
                with pytest.raises(KeyError):
                    del headers[op[1]]
        else:
            found = model.matching(op[1])
            assert (op[1] in headers) == bool(found)
            assert headers.get(op[1]) == (", ".join(found) if found else None)
            assert headers.get_list(op[1]) == found
            if not found:
                with pytest.raises(KeyError):
                    headers[op[1]]
        _check(headers, model)
    assert headers == Headers(model.pairs)
    assert headers == list(reversed(model.pairs))


# -- header safety ---------------------------------------------------------------------------

visible = st.text(alphabet=[chr(c) for c in range(0x21, 0x7F)] + [" ", "\t"], max_size=40)


@given(visible)
def test_safety_accepts_visible_ascii_with_spaces_and_tabs(value: str) -> None:
    check_header_safety([(b"X-Value", value.encode())])


@given(st.binary(max_size=20), st.sampled_from([b"\r", b"\n", b"\x00"]), st.binary(max_size=20))
def test_safety_refuses_cr_lf_nul_anywhere_in_a_value(
    before: bytes, bad: bytes, after: bytes
) -> None:
    with pytest.raises(LocalProtocolError, match="Header value for 'X-Evil' contains"):
        check_header_safety([(b"Host", b"example.com"), (b"X-Evil", before + bad + after)])


@pytest.mark.parametrize("name", [b"", b"X Evil", b"X-Evil:", b"X\r\nEvil", b"X\x00", b"\tX"])
def test_safety_refuses_bad_names(name: bytes) -> None:
    with pytest.raises(LocalProtocolError, match="Header name"):
        check_header_safety([(name, b"1")])


def test_safety_message_names_the_header_but_not_the_value() -> None:
    with pytest.raises(LocalProtocolError) as info:
        check_header_safety([(b"Authorization", b"Bearer secret\r\nX: y")])
    assert "Authorization" in str(info.value)
    assert "secret" not in str(info.value)


# -- construction and encodings -------------------------------------------------------------


def test_constructor_accepts_every_header_type() -> None:
    expected = [(b"A", b"1"), (b"b", b"2")]
    assert Headers({"A": "1", "b": "2"}).raw == expected
    assert Headers({b"A": b"1", b"b": b"2"}).raw == expected
    assert Headers([("A", "1"), ("b", "2")]).raw == expected
    assert Headers([(b"A", b"1"), (b"b", b"2")]).raw == expected
    assert Headers((("A", "1"), ("b", "2"))).raw == expected
    assert Headers(Headers(expected)).raw == expected
    assert Headers().raw == []


def test_constructor_refuses_non_text_values() -> None:
    with pytest.raises(TypeError, match="Header value must be str or bytes, not int"):
        Headers({"a": 1})  # type: ignore[arg-type]


def test_copies_are_independent() -> None:
    original = Headers({"a": "1"})
    for copy in (original.copy(), Headers(original)):
        copy["a"] = "2"
        assert original["a"] == "1"


def test_encoding_detection() -> None:
    assert Headers({"a": "plain"}).encoding == "ascii"
    utf8 = Headers([(b"a", "é".encode())])
    assert (utf8.encoding, utf8["a"]) == ("utf-8", "é")
    latin = Headers([(b"a", "é".encode("latin-1"))])
    assert (latin.encoding, latin["a"]) == ("iso-8859-1", "é")


def test_non_ascii_text_is_sent_as_utf8_unless_an_encoding_is_given() -> None:
    headers = Headers({"a": "plain"})
    assert headers.encoding == "ascii"
    headers["b"] = "é"  # The cached "ascii" must not stick after this.
    assert headers.raw[1] == (b"b", b"\xc3\xa9")
    assert (headers.encoding, headers["b"]) == ("utf-8", "é")
    latin = Headers({"a": "é"}, encoding="iso-8859-1")
    assert latin.raw == [(b"a", b"\xe9")]
    assert latin["a"] == "é"


def test_encoding_is_settable() -> None:
    headers = Headers([(b"a", "é".encode())])
    headers.encoding = "iso-8859-1"
    assert headers["a"] == "Ã©"
    assert headers.copy().encoding == "iso-8859-1"


def test_from_raw_adopts_the_list() -> None:
    items = [(b"Content-Type", b"content-type", b"text/html"), (b"Set-Cookie", b"set-cookie", b"a")]
    headers = Headers._from_raw(items)
    assert headers["content-type"] == "text/html"
    assert headers.raw == [(b"Content-Type", b"text/html"), (b"Set-Cookie", b"a")]
    assert headers._list is items
    assert headers._get_raw(b"set-cookie") == [b"a"]


def test_prepend() -> None:
    headers = Headers({"Accept": "*/*"})
    headers._prepend(b"Host", b"example.com")
    assert headers.raw == [(b"Host", b"example.com"), (b"Accept", b"*/*")]


# -- mapping behaviour ----------------------------------------------------------------------


def test_getitem_joins_values_and_lookups_ignore_case() -> None:
    headers = Headers([("Set-Cookie", "a=1"), ("X", "y"), ("set-cookie", "b=2")])
    assert headers["SET-COOKIE"] == "a=1, b=2"
    assert headers.get_list("set-cookie") == ["a=1", "b=2"]
    assert "Set-Cookie" in headers
    other_keys: list[object] = [b"x", 5]
    assert other_keys[0] in headers
    assert other_keys[1] not in headers
    with pytest.raises(KeyError):
        headers["missing"]
    assert headers.get("missing", "default") == "default"


def test_get_list_split_commas() -> None:
    headers = Headers([("Accept", "a, b"), ("accept", "c")])
    assert headers.get_list("accept", split_commas=True) == ["a", "b", "c"]


def test_setitem_keeps_the_first_position_and_the_new_casing() -> None:
    headers = Headers([("a", "1"), ("B", "2"), ("c", "3"), ("b", "4")])
    headers["b"] = "new"
    assert headers.raw == [(b"a", b"1"), (b"b", b"new"), (b"c", b"3")]


def test_update_replaces_in_place_and_keeps_multiple_values() -> None:
    headers = Headers([("a", "1"), ("b", "2"), ("c", "3")])
    headers.update([("B", "x"), ("d", "4"), ("b", "y")])
    assert headers.raw == [(b"a", b"1"), (b"B", b"x"), (b"b", b"y"), (b"c", b"3"), (b"d", b"4")]
    headers.update()
    assert len(headers.raw) == 5


def test_mutable_mapping_mixins() -> None:
    headers = Headers({"a": "1", "b": "2"})
    assert headers.pop("A") == "1"
    assert headers.pop("a", None) is None
    assert headers.setdefault("c", "3") == "3"
    assert headers.setdefault("C", "other") == "3"
    headers.clear()
    assert headers.raw == []
    assert not headers


def test_equality() -> None:
    headers = Headers([("a", "1"), ("B", "2")])
    assert headers == Headers([("b", "2"), ("A", "1")])
    assert headers == {"a": "1", "b": "2"}
    assert headers == [("b", "2"), ("a", "1")]
    assert headers != Headers([("a", "1")])
    assert headers != Headers([("a", "1"), ("b", "2"), ("b", "2")])
    assert headers != 5
    assert headers != "ab"


def test_repr_masks_credentials() -> None:
    headers = Headers({"Authorization": "Bearer x", "Proxy-Authorization": "y", "a": "1"})
    assert repr(headers) == (
        "Headers({'authorization': '[secure]', 'proxy-authorization': '[secure]', 'a': '1'})"
    )
    multi = Headers([("a", "1"), ("a", "2")])
    assert repr(multi) == "Headers([('a', '1'), ('a', '2')])"
    assert repr(Headers([(b"a", "é".encode())])) == "Headers({'a': 'é'}, encoding='utf-8')"


def test_headers_are_unhashable() -> None:
    with pytest.raises(TypeError):
        hash(Headers())


def test_bytes_keys_and_values_are_accepted_too() -> None:
    headers = Headers()
    headers[b"X-Raw"] = b"\xff"  # type: ignore[index, assignment]
    assert headers[b"x-raw"] == "ÿ"  # type: ignore[index]
    assert headers.raw == [(b"X-Raw", b"\xff")]
    with pytest.raises(TypeError, match="Header name must be str or bytes"):
        headers[1]  # type: ignore[index]


def test_safety_accepts_any_iterable_of_pairs() -> None:
    check_header_safety([])
    check_header_safety(iter([(b"A", b"1")]))
    with pytest.raises(LocalProtocolError, match="'B'"):
        check_header_safety(pair for pair in [(b"A", b"1"), (b"B", b"\n")])
