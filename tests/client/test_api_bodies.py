"""Request bodies, query parameters, headers and base_url, checked by what /echo saw."""

from __future__ import annotations

import json
import string
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from typing import Any
from urllib.parse import parse_qsl

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from servers.hypercorn_server import HypercornServer

import trioclient
from trioclient._decoders import ACCEPT_ENCODING

NETWORK_EXAMPLES = settings(max_examples=25)
NO_SURROGATES = st.characters(exclude_categories=["Cs"])  # not encodable as UTF-8


def header_values(echoed: dict[str, Any], name: str) -> list[str]:
    return [value for key, value in echoed["headers"] if key == name]


def body_bytes(echoed: dict[str, Any]) -> bytes:
    # /echo reports the body decoded as latin-1, which maps bytes 1:1.
    return str(echoed["body"]).encode("latin-1")


async def echo(client: trioclient.Client, url: str, method: str = "POST", **kwargs: Any) -> Any:
    response = await client.request(method, url, **kwargs)
    assert response.status_code == 200
    return response.json()


async def chunks(*parts: bytes | bytearray | memoryview) -> AsyncIterator[Any]:
    for part in parts:
        yield part


# --- content= ------------------------------------------------------------------------------


async def test_content_bytes_is_sent_with_content_length(http_url: str) -> None:
    async with trioclient.Client() as client:
        echoed = await echo(client, f"{http_url}/echo", content=b"\x00\x01binary\xff")
    assert body_bytes(echoed) == b"\x00\x01binary\xff"
    assert header_values(echoed, "content-length") == ["9"]
    assert header_values(echoed, "transfer-encoding") == []


async def test_content_str_is_utf8_encoded(http_url: str) -> None:
    async with trioclient.Client() as client:
        echoed = await echo(client, f"{http_url}/echo", content="héllo ✓")
    assert body_bytes(echoed) == "héllo ✓".encode()
    assert header_values(echoed, "content-length") == [str(len("héllo ✓".encode()))]


async def test_async_iterable_is_sent_chunked(http_url: str) -> None:
    parts: list[bytes | bytearray | memoryview] = [
        b"first,",
        b"",
        bytearray(b"second,"),
        memoryview(b"third"),
        b"x" * 70000,
    ]
    async with trioclient.Client() as client:
        echoed = await echo(client, f"{http_url}/echo", content=chunks(*parts))
    assert body_bytes(echoed) == b"first,second,third" + b"x" * 70000
    assert header_values(echoed, "transfer-encoding") == ["chunked"]
    assert header_values(echoed, "content-length") == []


async def test_empty_async_iterable(http_url: str) -> None:
    async with trioclient.Client() as client:
        echoed = await echo(client, f"{http_url}/echo", content=chunks())
    assert echoed["body"] == ""
    assert header_values(echoed, "transfer-encoding") == ["chunked"]


async def test_async_iterable_with_explicit_content_length_is_not_chunked(http_url: str) -> None:
    async with trioclient.Client() as client:
        echoed = await echo(
            client,
            f"{http_url}/echo",
            content=chunks(b"abc", b"def"),
            headers={"Content-Length": "6"},
        )
    assert echoed["body"] == "abcdef"
    assert header_values(echoed, "content-length") == ["6"]
    assert header_values(echoed, "transfer-encoding") == []


async def test_bytes_with_explicit_transfer_encoding_is_sent_chunked(http_url: str) -> None:
    async with trioclient.Client() as client:
        echoed = await echo(
            client, f"{http_url}/echo", content=b"hello", headers={"Transfer-Encoding": "chunked"}
        )
    assert echoed["body"] == "hello"
    assert header_values(echoed, "transfer-encoding") == ["chunked"]
    assert header_values(echoed, "content-length") == []


async def test_async_iterable_yielding_a_non_bytes_chunk_fails(http_url: str) -> None:
    async def bad() -> AsyncGenerator[Any, None]:
        yield b"ok"
        yield "not bytes"

    async with trioclient.Client() as client, aclosing(bad()) as body:
        with pytest.raises(TypeError, match="bytes"):
            await client.post(f"{http_url}/echo", content=body)
        assert (await client.get(f"{http_url}/")).status_code == 200


def test_sync_iterable_content_is_refused_when_building() -> None:
    with pytest.raises(TypeError, match="async"):
        trioclient.Request("POST", "http://127.0.0.1/", content=iter([b"a"]))  # type: ignore[arg-type]


def test_only_one_body_argument() -> None:
    with pytest.raises(TypeError, match="only one"):
        trioclient.Request("POST", "http://127.0.0.1/", content=b"a", json={"a": 1})


@pytest.mark.parametrize(("method", "length"), [("POST", ["0"]), ("PUT", ["0"]), ("GET", [])])
async def test_empty_body_content_length(http_url: str, method: str, length: list[str]) -> None:
    async with trioclient.Client() as client:
        echoed = await echo(client, f"{http_url}/echo", method=method)
    assert echoed["body"] == ""
    assert header_values(echoed, "content-length") == length


# --- data= and json= -----------------------------------------------------------------------


async def test_form_data_with_repeated_keys(http_url: str) -> None:
    data = {"a": "1", "b": ["x", "y"], "c": 3, "d": True, "e": None, "f": "é&="}
    async with trioclient.Client() as client:
        echoed = await echo(client, f"{http_url}/echo", data=data)
    assert header_values(echoed, "content-type") == ["application/x-www-form-urlencoded"]
    assert parse_qsl(echoed["body"], keep_blank_values=True) == [
        ("a", "1"),
        ("b", "x"),
        ("b", "y"),
        ("c", "3"),
        ("d", "true"),
        ("e", ""),
        ("f", "é&="),
    ]


async def test_json_body(http_url: str) -> None:
    payload = {"text": "héllo", "n": [1, 2.5, None, True], "nested": {"k": "v"}}
    async with trioclient.Client() as client:
        echoed = await echo(client, f"{http_url}/echo", json=payload)
    assert header_values(echoed, "content-type") == ["application/json"]
    assert json.loads(body_bytes(echoed).decode("utf-8")) == payload


async def test_explicit_content_type_wins_over_json_default(http_url: str) -> None:
    async with trioclient.Client() as client:
        echoed = await echo(
            client,
            f"{http_url}/echo",
            json=[1],
            headers={"Content-Type": "application/vnd.test+json"},
        )
    assert header_values(echoed, "content-type") == ["application/vnd.test+json"]


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(NO_SURROGATES),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(NO_SURROGATES), inner, max_size=4)
    ),
    max_leaves=12,
)


@NETWORK_EXAMPLES
@given(payload=json_values.filter(lambda value: value is not None))  # json=None: no body
async def test_json_bodies_round_trip(hypercorn_server: HypercornServer, payload: Any) -> None:
    async with trioclient.Client() as client:
        echoed = await echo(client, f"{hypercorn_server.http_url}/echo", json=payload)
    assert json.loads(body_bytes(echoed).decode("utf-8")) == payload


form_text = st.text(NO_SURROGATES, max_size=8)


@NETWORK_EXAMPLES
@given(
    form=st.dictionaries(
        form_text, st.one_of(form_text, st.lists(form_text, min_size=1, max_size=3)), max_size=5
    )
)
async def test_form_bodies_round_trip(
    hypercorn_server: HypercornServer, form: dict[str, str | list[str]]
) -> None:
    async with trioclient.Client() as client:
        echoed = await echo(client, f"{hypercorn_server.http_url}/echo", data=form)
    expected = [
        (key, item)
        for key, value in form.items()
        for item in (value if isinstance(value, list) else [value])
    ]
    assert parse_qsl(echoed["body"], keep_blank_values=True) == expected


# --- params= -------------------------------------------------------------------------------


async def test_request_params(http_url: str) -> None:
    async with trioclient.Client() as client:
        echoed = await echo(
            client, f"{http_url}/echo", method="GET", params={"a": "1", "b": ["2", "3"], "c": ""}
        )
    assert echoed["query"] == "a=1&b=2&b=3&c="


async def test_client_and_request_params_merge(http_url: str) -> None:
    async with trioclient.Client(params={"client": "1", "shared": "client"}) as client:
        only_client = await echo(client, f"{http_url}/echo", method="GET")
        merged = await echo(
            client, f"{http_url}/echo", method="GET", params={"shared": "req", "r": "2"}
        )
    assert parse_qsl(only_client["query"]) == [("client", "1"), ("shared", "client")]
    assert sorted(parse_qsl(merged["query"])) == [("client", "1"), ("r", "2"), ("shared", "req")]


async def test_params_merge_with_the_url_query(http_url: str) -> None:
    # Like requests and httpx < 0.28: the URL's own query is kept, params= add to it.
    async with trioclient.Client() as client:
        echoed = await echo(client, f"{http_url}/echo?keep=1&x=old", method="GET", params={"x": 2})
    assert sorted(parse_qsl(echoed["query"])) == [("keep", "1"), ("x", "2")]


@NETWORK_EXAMPLES
@given(
    params=st.lists(
        st.tuples(form_text.filter(bool), form_text),
        min_size=1,
        max_size=5,
        unique_by=lambda p: p[0],
    )
)
async def test_params_round_trip(
    hypercorn_server: HypercornServer, params: list[tuple[str, str]]
) -> None:
    async with trioclient.Client() as client:
        echoed = await echo(
            client, f"{hypercorn_server.http_url}/echo", method="GET", params=params
        )
    assert parse_qsl(echoed["query"], keep_blank_values=True) == params


# --- headers= ------------------------------------------------------------------------------


async def test_default_headers_are_sent(http_url: str) -> None:
    async with trioclient.Client() as client:
        echoed = await echo(client, f"{http_url}/echo", method="GET")
    assert header_values(echoed, "user-agent") == [f"python-trioclient/{trioclient.__version__}"]
    # "gzip, deflate", plus br and zstd when their extras are installed (test_br_zstd.py).
    assert header_values(echoed, "accept-encoding") == [ACCEPT_ENCODING.decode()]
    assert header_values(echoed, "accept") == ["*/*"]
    assert header_values(echoed, "host") == [http_url.removeprefix("http://")]


async def test_client_headers_merge_and_request_headers_override(http_url: str) -> None:
    client = trioclient.Client(headers={"X-Client": "c", "User-Agent": "custom-agent/1"})
    async with client:
        plain = await echo(client, f"{http_url}/echo", method="GET")
        overridden = await echo(
            client,
            f"{http_url}/echo",
            method="GET",
            headers={"x-client": "request", "X-Request": "r", "accept-encoding": "identity"},
        )
    assert header_values(plain, "x-client") == ["c"]
    assert header_values(plain, "user-agent") == ["custom-agent/1"]
    assert header_values(overridden, "x-client") == ["request"]
    assert header_values(overridden, "x-request") == ["r"]
    assert header_values(overridden, "accept-encoding") == ["identity"]
    assert header_values(overridden, "user-agent") == ["custom-agent/1"]


async def test_repeated_request_headers(http_url: str) -> None:
    async with trioclient.Client() as client:
        echoed = await echo(
            client, f"{http_url}/echo", method="GET", headers=[("X-Multi", "1"), ("X-Multi", "2")]
        )
    assert header_values(echoed, "x-multi") == ["1", "2"]


def test_header_injection_is_refused() -> None:
    with pytest.raises(trioclient.LocalProtocolError, match="X-Bad"):
        trioclient.Request("GET", "http://127.0.0.1/", headers={"X-Bad": "a\r\nX-Evil: 1"})


header_value = (
    st.text(
        st.sampled_from(string.ascii_letters + string.digits + string.punctuation + " "),
        min_size=1,
        max_size=20,
    )
    .map(str.strip)
    .filter(bool)
)


@NETWORK_EXAMPLES
@given(
    headers=st.dictionaries(
        st.text(st.sampled_from(string.ascii_lowercase + "-"), min_size=1, max_size=10),
        header_value,
        max_size=5,
    )
)
async def test_header_values_round_trip(
    hypercorn_server: HypercornServer, headers: dict[str, str]
) -> None:
    sent = {f"x-t-{name}": value for name, value in headers.items()}
    async with trioclient.Client() as client:
        echoed = await echo(client, f"{hypercorn_server.http_url}/echo", method="GET", headers=sent)
    received = {key: value for key, value in echoed["headers"] if key.startswith("x-t-")}
    assert received == sent


# --- base_url ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("base_path", "url", "expected"),
    [
        ("", "/echo", "/echo"),
        ("", "echo", "/echo"),
        ("/", "echo", "/echo"),
        ("/api", "echo", "/api/echo"),
        ("/api", "/echo", "/api/echo"),
        ("/api/", "echo", "/api/echo"),
        ("/api/", "/echo", "/api/echo"),
        ("/api/v1", "items/3?x=1", "/api/v1/items/3"),
    ],
)
async def test_base_url_merging(http_url: str, base_path: str, url: str, expected: str) -> None:
    async with trioclient.Client(base_url=http_url + base_path) as client:
        response = await client.get(url)
    assert response.url.path == expected
    assert response.status_code == 404 or response.json()["path"] == expected
    assert str(response.url).startswith(http_url)


async def test_base_url_with_absolute_request_url(http_url: str, https_url: str) -> None:
    async with trioclient.Client(base_url=f"{https_url}/api") as client:
        response = await client.get(f"{http_url}/echo")
    assert response.json()["path"] == "/echo"
    assert response.url == trioclient.URL(f"{http_url}/echo")


async def test_base_url_reaches_the_echo_route(http_url: str) -> None:
    async with trioclient.Client(base_url=http_url) as client:
        echoed = await echo(client, "/echo?q=1", method="GET")
    assert echoed["path"] == "/echo"
    assert echoed["query"] == "q=1"


@pytest.mark.parametrize("url", ["/relative", "ftp://127.0.0.1/x", "127.0.0.1/x"])
async def test_unusable_urls_are_refused(url: str) -> None:
    async with trioclient.Client() as client:
        with pytest.raises(trioclient.UnsupportedProtocol):
            await client.get(url)


async def test_invalid_url_raises_invalid_url() -> None:
    async with trioclient.Client() as client:
        with pytest.raises(trioclient.InvalidURL):
            await client.get("http://[::1/")
        with pytest.raises(trioclient.InvalidURL, match="host"):
            await client.get("http:///nohost")
