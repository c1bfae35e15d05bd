"""Request body encoding: content, form data and JSON."""

from __future__ import annotations

import io
import json
import math
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qsl

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trioclient._content import encode_request, needs_zero_length


def test_bytes_and_str_content_get_a_content_length() -> None:
    assert encode_request(content=b"abc") == ({b"Content-Length": b"3"}, b"abc")
    assert encode_request(content="é") == ({b"Content-Length": b"2"}, b"\xc3\xa9")
    assert encode_request(content=bytearray(b"ab")) == (  # type: ignore[arg-type]
        {b"Content-Length": b"2"},
        b"ab",
    )


def test_no_body_and_empty_bodies_get_no_headers() -> None:
    assert encode_request() == ({}, b"")
    assert encode_request(content=b"") == ({}, b"")
    assert encode_request(data={}) == ({}, b"")
    assert encode_request(data={"a": []}) == (
        {b"Content-Type": b"application/x-www-form-urlencoded"},
        b"",
    )


async def test_async_iterable_content_is_sent_chunked_and_untouched() -> None:
    async def body() -> AsyncIterator[bytes]:
        yield b"a"
        yield b"b"

    stream = body()
    headers, out = encode_request(content=stream)
    assert headers == {b"Transfer-Encoding": b"chunked"}
    assert out is stream
    assert [chunk async for chunk in stream] == [b"a", b"b"]


@pytest.mark.parametrize(
    "content", [[b"a", b"b"], iter([b"a"]), io.BytesIO(b"abc"), (b"x" for _ in range(1))]
)
def test_sync_iterables_and_files_are_refused(content: Any) -> None:
    with pytest.raises(TypeError, match="an async client needs bytes, str or an async iterable"):
        encode_request(content=content)


def test_other_content_types_are_refused() -> None:
    with pytest.raises(TypeError, match="not int"):
        encode_request(content=5)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "names"),
    [
        ({"content": b"", "data": {"a": "1"}}, "content and data"),
        ({"content": b"x", "json": 1}, "content and json"),
        ({"data": {}, "json": {}}, "data and json"),
        ({"content": b"", "data": {}, "json": 0}, "content and data and json"),
    ],
)
def test_only_one_body_argument(kwargs: dict[str, Any], names: str) -> None:
    with pytest.raises(TypeError, match=f"not {names}$"):
        encode_request(**kwargs)


def test_data_given_bytes_or_text_is_content() -> None:
    assert encode_request(data=b"raw") == ({b"Content-Length": b"3"}, b"raw")  # type: ignore[arg-type]
    assert encode_request(data="raw") == ({b"Content-Length": b"3"}, b"raw")  # type: ignore[arg-type]


def test_form_values_are_converted_like_query_params() -> None:
    headers, body = encode_request(
        data={"s": "a b&c", "n": 1, "f": 1.5, "t": True, "no": False, "none": None, "l": [1, "x"]}
    )
    assert body == b"s=a+b%26c&n=1&f=1.5&t=true&no=false&none=&l=1&l=x"
    assert headers == {
        b"Content-Length": str(len(body)).encode(),
        b"Content-Type": b"application/x-www-form-urlencoded",
    }


def test_form_refuses_other_values_and_non_mappings() -> None:
    with pytest.raises(TypeError, match="Form field 'a' must be"):
        encode_request(data={"a": {"nested": 1}})
    with pytest.raises(TypeError, match="data= must be a mapping"):
        encode_request(data=[("a", "1")])  # type: ignore[arg-type]


form_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=8)
form_values = st.one_of(form_text, st.lists(form_text, min_size=1, max_size=3))


@given(st.dictionaries(form_text, form_values, max_size=6))
def test_form_encoding_round_trips_through_parse_qsl(data: dict[str, str | list[str]]) -> None:
    _, body = encode_request(data=data)
    assert isinstance(body, bytes)
    expected = [
        (key, item)
        for key, value in data.items()
        for item in (value if isinstance(value, list) else [value])
    ]
    assert parse_qsl(body.decode("ascii"), keep_blank_values=True) == expected


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=20,
)


@given(json_values.filter(lambda v: v is not None))
def test_json_round_trips(value: Any) -> None:
    headers, body = encode_request(json=value)
    assert isinstance(body, bytes)
    assert json.loads(body.decode("utf-8")) == value
    assert headers[b"Content-Type"] == b"application/json"
    assert headers[b"Content-Length"] == str(len(body)).encode()


def test_json_is_compact_utf8_and_refuses_nan() -> None:
    assert encode_request(json={"a": ["é", 1]})[1] == '{"a":["é",1]}'.encode()
    with pytest.raises(ValueError, match="not JSON compliant"):
        encode_request(json={"a": math.nan})


@pytest.mark.parametrize(
    ("method", "expected"),
    [(b"POST", True), (b"PUT", True), (b"PATCH", True), (b"GET", False), (b"DELETE", False)],
)
def test_needs_zero_length(method: bytes, expected: bool) -> None:
    assert needs_zero_length(method) is expected
