"""Behaviour every transport shares, run over HTTP/1.1, h2c, h2 over TLS and ASGITransport.

Each test takes ``any_client`` (tests/client/conftest.py), so the same assertions run against
hypercorn over three wire protocols and against the same ASGI app in-process. The per-feature
files next to this one test the details over one transport; this file is about the features
behaving *identically* across transports. Network transports end every test with the pool's
books balanced (``finish``).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Protocol

import pytest
import trio
from helpers import assert_quiet
from servers.asgi_app import CHARSET_TEXT, JSON_BODY, PAYLOAD, pattern_bytes

import trioclient

# --- helpers ---------------------------------------------------------------------------------


class ClientUnderTest(Protocol):
    """What ``any_client`` yields (conftest.ClientUnderTest, which two conftest modules named
    ``conftest`` make unimportable by name here)."""

    @property
    def client(self) -> trioclient.Client: ...
    @property
    def protocol(self) -> str: ...
    @property
    def is_network(self) -> bool: ...
    @property
    def http_version(self) -> str: ...
    def url(self, path: str) -> str: ...


async def finish(cut: ClientUnderTest) -> None:
    """Nothing in flight on a network transport, and the client still answers a request."""
    if cut.is_network:
        assert_quiet(cut.client)
    response = await cut.client.get(cut.url("/"))
    assert response.status_code == 200
    assert response.text == "Hello, world!"
    if cut.is_network:
        assert_quiet(cut.client)


def echoed_header(echo: dict[str, object], name: str) -> list[str]:
    headers = echo["headers"]
    assert isinstance(headers, list)
    return [value for key, value in headers if key == name]


# --- simple GETs -----------------------------------------------------------------------------


async def test_get_text(any_client: ClientUnderTest) -> None:
    response = await any_client.client.get(any_client.url("/"))
    assert response.status_code == 200
    assert response.text == "Hello, world!"
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.headers["content-length"] == str(len(b"Hello, world!"))
    assert response.encoding == "utf-8"
    assert str(response.url) == any_client.url("/")
    assert response.is_success


async def test_get_text_in_a_declared_charset(any_client: ClientUnderTest) -> None:
    response = await any_client.client.get(any_client.url("/charset/latin-1"))
    assert response.content == CHARSET_TEXT.encode("latin-1")
    assert response.text == CHARSET_TEXT


async def test_get_json(any_client: ClientUnderTest) -> None:
    response = await any_client.client.get(any_client.url("/json"))
    assert response.headers["content-type"] == "application/json"
    assert response.json() == JSON_BODY
    await finish(any_client)


async def test_query_params(any_client: ClientUnderTest) -> None:
    params = {"a": "1", "b": ["x", "y"], "space": "two words"}
    response = await any_client.client.get(any_client.url("/echo?pre=0"), params=params)
    echo = response.json()
    assert echo["path"] == "/echo"
    # httpx semantics: params= is merged into the URL's own query string.
    assert echo["query"] == "pre=0&a=1&b=x&b=y&space=two+words"
    assert response.request.url.params.get_list("b") == ["x", "y"]


async def test_response_http_version(any_client: ClientUnderTest) -> None:
    response = await any_client.client.get(any_client.url("/echo"))
    assert response.http_version == any_client.http_version
    # What the server saw agrees: "1.1" or "2".
    assert "HTTP/" + response.json()["http_version"] == any_client.http_version


async def test_elapsed_is_positive(any_client: ClientUnderTest) -> None:
    response = await any_client.client.get(any_client.url("/bytes/1000"))
    assert response.elapsed.total_seconds() > 0
    async with any_client.client.stream("GET", any_client.url("/bytes/1000")) as streamed:
        await streamed.aread()
    assert streamed.elapsed.total_seconds() > 0


# --- headers ---------------------------------------------------------------------------------


async def test_request_headers_reach_the_server(any_client: ClientUnderTest) -> None:
    response = await any_client.client.get(
        any_client.url("/headers"),
        headers=[("X-Custom", "one"), ("X-Multi", "a"), ("X-Multi", "b")],
    )
    received = response.json()["headers"]
    assert ["x-custom", "one"] in received
    multi = [value for name, value in received if name == "x-multi"]
    assert multi == ["a", "b"]  # repeated headers stay separate, in order, everywhere
    names = {name for name, _ in received}
    assert {"accept", "accept-encoding", "user-agent"} <= names
    assert not any(name.startswith(":") for name in names)


async def test_response_headers_come_back(any_client: ClientUnderTest) -> None:
    response = await any_client.client.get(
        any_client.url("/response-headers"),
        params=[("x-multi", "1"), ("x-multi", "2"), ("X-One", "a")],
    )
    assert response.headers.get_list("x-multi") == ["1", "2"]
    assert response.headers["X-ONE"] == "a"
    assert response.json()["headers"] == [["x-multi", "1"], ["x-multi", "2"], ["X-One", "a"]]


# --- request bodies --------------------------------------------------------------------------


async def test_post_bytes(any_client: ClientUnderTest) -> None:
    body = bytes(range(128))
    response = await any_client.client.post(any_client.url("/echo"), content=body)
    echo = response.json()
    assert echo["method"] == "POST"
    assert echo["body"].encode("latin-1") == body
    assert echoed_header(echo, "content-length") == ["128"]


async def test_post_json(any_client: ClientUnderTest) -> None:
    payload = {"a": [1, 2, 3], "b": "é"}
    response = await any_client.client.post(any_client.url("/echo"), json=payload)
    echo = response.json()
    assert json.loads(echo["body"].encode("latin-1")) == payload
    assert echoed_header(echo, "content-type") == ["application/json"]


async def test_post_form(any_client: ClientUnderTest) -> None:
    response = await any_client.client.post(
        any_client.url("/echo"), data={"a": "1", "b": "two words", "c": ["x", "y"]}
    )
    echo = response.json()
    assert echo["body"] == "a=1&b=two+words&c=x&c=y"
    assert echoed_header(echo, "content-type") == ["application/x-www-form-urlencoded"]


async def test_post_streamed_body(any_client: ClientUnderTest) -> None:
    async def body() -> AsyncIterator[bytes]:
        for index in range(5):
            await trio.lowlevel.checkpoint()
            yield pattern_bytes(10_000, offset=index * 10_000)

    response = await any_client.client.put(any_client.url("/echo"), content=body())
    echo = response.json()
    assert echo["method"] == "PUT"
    assert echo["body"].encode("latin-1") == pattern_bytes(50_000)
    if any_client.http_version == "HTTP/1.1" and any_client.is_network:
        assert echoed_header(echo, "transfer-encoding") == ["chunked"]
    assert echoed_header(echo, "content-length") == []
    await finish(any_client)


# --- status codes and redirects --------------------------------------------------------------


async def test_status_codes_and_raise_for_status(any_client: ClientUnderTest) -> None:
    for code in (200, 201, 204):
        response = await any_client.client.get(any_client.url(f"/status/{code}"))
        assert response.status_code == code
        assert response.content == b""
        assert response.raise_for_status() is response
    for code in (304, 400, 404, 418, 500, 503):
        response = await any_client.client.get(any_client.url(f"/status/{code}"))
        assert response.status_code == code
        with pytest.raises(trioclient.HTTPStatusError) as info:
            response.raise_for_status()
        assert info.value.response is response
        assert str(code) in str(info.value)
    assert (await any_client.client.get(any_client.url("/no/such/route"))).status_code == 404
    await finish(any_client)


async def test_redirects_followed_with_history(any_client: ClientUnderTest) -> None:
    response = await any_client.client.get(any_client.url("/redirect/3"), follow_redirects=True)
    assert response.status_code == 200
    assert response.text == "done"
    assert str(response.url) == any_client.url("/redirect/0")
    assert [r.status_code for r in response.history] == [302, 302, 302]
    assert [str(r.url) for r in response.history] == [
        any_client.url(f"/redirect/{n}") for n in (3, 2, 1)
    ]
    assert all(r.is_closed for r in response.history)

    relative = await any_client.client.post(
        any_client.url("/relative-redirect"), content=b"x", follow_redirects=True
    )
    assert relative.json()["method"] == "GET"  # 302 after POST becomes a GET
    assert relative.json()["body"] == ""
    await finish(any_client)


async def test_redirect_not_followed(any_client: ClientUnderTest) -> None:
    response = await any_client.client.get(any_client.url("/redirect/2"))
    assert response.status_code == 302
    assert response.is_redirect
    assert response.headers["location"] == "/redirect/1"
    assert response.history == []
    assert response.next_request is not None
    assert str(response.next_request.url) == any_client.url("/redirect/1")
    with pytest.raises(trioclient.HTTPStatusError, match="Redirect location"):
        response.raise_for_status()

    client = any_client.client
    client.max_redirects = 2
    with pytest.raises(trioclient.TooManyRedirects):
        await client.get(any_client.url("/redirect/5"), follow_redirects=True)
    await finish(any_client)


# --- content decoding --------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/gzip", "/deflate", "/gzip-deflate"])
async def test_content_encoding_is_decoded(any_client: ClientUnderTest, path: str) -> None:
    response = await any_client.client.get(any_client.url(path))
    assert response.json() == PAYLOAD
    async with any_client.client.stream("GET", any_client.url(path)) as streamed:
        decoded = b"".join([chunk async for chunk in streamed.aiter_bytes(100)])
    assert json.loads(decoded) == PAYLOAD


# --- streaming downloads -----------------------------------------------------------------------


@pytest.mark.parametrize("route", ["bytes", "stream"])
async def test_streaming_download(any_client: ClientUnderTest, route: str) -> None:
    size = 300_000
    url = any_client.url(f"/{route}/{size}?chunk=16384")
    async with any_client.client.stream("GET", url) as response:
        assert response.status_code == 200
        chunks = [chunk async for chunk in response.aiter_bytes(50_000)]
    assert b"".join(chunks) == pattern_bytes(size)
    assert [len(chunk) for chunk in chunks] == [50_000] * 6
    assert response.is_closed
    await finish(any_client)


async def test_aiter_lines(any_client: ClientUnderTest) -> None:
    body = "one\ntwo\r\nthree"
    async with any_client.client.stream("POST", any_client.url("/echo"), content=body) as r:
        lines = [line async for line in r.aiter_lines()]
    assert len(lines) == 1  # one JSON document, its body's line breaks escaped
    assert json.loads(lines[0])["body"] == body


async def test_early_close_then_next_request(any_client: ClientUnderTest) -> None:
    url = any_client.url("/stream/5000000?chunk=16384")
    async with any_client.client.stream("GET", url) as response:
        async for chunk in response.aiter_bytes():
            assert chunk
            break
    assert response.is_closed
    with pytest.raises(trioclient.StreamConsumed):  # httpx: part-read, then closed
        await response.aread()
    await finish(any_client)


# --- timeouts and cancellation -----------------------------------------------------------------


@pytest.mark.network_only(
    reason="ASGITransport applies no timeouts (as httpx's); callers use trio.fail_after"
)
async def test_read_timeout_on_slow_headers(any_client: ClientUnderTest) -> None:
    with pytest.raises(trioclient.ReadTimeout):
        await any_client.client.get(
            any_client.url("/slow-headers?delay=5"), timeout=trioclient.Timeout(5, read=0.2)
        )
    await finish(any_client)


async def test_cancel_mid_body_then_next_request(any_client: ClientUnderTest) -> None:
    url = any_client.url("/drip?chunks=100&delay=0.05&size=10")
    received = 0
    # The deadline starts at the first chunk, not before the request: connecting (TLS, h2)
    # on a loaded machine can outlast any fixed budget, and this test is about mid-body.
    with trio.CancelScope() as scope:
        async with any_client.client.stream("GET", url) as response:
            async for chunk in response.aiter_bytes():
                if not received:
                    scope.deadline = trio.current_time() + 0.2
                received += len(chunk)
    assert scope.cancelled_caught
    assert 0 < received < 1000
    assert response.is_closed
    with trio.move_on_after(0.1) as scope:
        await any_client.client.get(url)  # the non-streaming path, cancelled the same way
    assert scope.cancelled_caught
    await finish(any_client)


async def test_concurrent_requests(any_client: ClientUnderTest) -> None:
    results: dict[int, bytes] = {}

    async def fetch(n: int) -> None:
        response = await any_client.client.get(any_client.url(f"/bytes/{n}?chunk=1000"))
        results[n] = response.content

    async with trio.open_nursery() as nursery:
        for n in range(1000, 9000, 1000):
            nursery.start_soon(fetch, n)
    assert results == {n: pattern_bytes(n) for n in range(1000, 9000, 1000)}
    await finish(any_client)
