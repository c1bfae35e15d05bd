"""Response attributes, body streaming and content decoding against hypercorn."""

from __future__ import annotations

import datetime
import json
from collections.abc import AsyncIterator

import pytest
import trio
from servers.asgi_app import (
    BAD_GZIP_BODY,
    CHARSET_TEXT,
    DEFLATE_BODY,
    GZIP_BODY,
    GZIP_DEFLATE_BODY,
    JSON_BODY,
    PAYLOAD,
    PAYLOAD_BYTES,
    pattern_bytes,
)
from servers.raw import BufferedStream, read_request, serve_raw

import trioclient

# --- status, reason, version, headers, url ---------------------------------------------------


async def test_basic_response_attributes(http_url: str) -> None:
    async with trioclient.Client() as client:
        response = await client.get(f"{http_url}/")
    assert response.status_code == 200
    assert response.status_code == trioclient.codes.OK
    assert response.http_version == "HTTP/1.1"
    assert response.url == trioclient.URL(f"{http_url}/")
    assert response.request.method == "GET"
    assert response.request.url == response.url
    assert response.content == b"Hello, world!"
    assert response.text == "Hello, world!"
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.headers["Content-Length"] == "13"
    assert response.headers["server"].startswith("hypercorn")
    assert response.is_closed
    assert response.is_stream_consumed
    assert response.num_bytes_downloaded == 13
    assert isinstance(response.elapsed, datetime.timedelta)
    assert response.elapsed >= datetime.timedelta(0)
    assert repr(response) == "<Response [200 OK]>"


@pytest.mark.parametrize(
    ("code", "phrase"),
    [
        (200, "OK"),
        (201, "Created"),
        (404, "Not Found"),
        (429, "Too Many Requests"),
        (500, "Internal Server Error"),
        (599, ""),
    ],
)
async def test_reason_phrase_falls_back_to_the_standard_one(
    http_url: str, code: int, phrase: str
) -> None:
    # hypercorn sends an empty reason phrase on HTTP/1.1.
    async with trioclient.Client() as client:
        response = await client.get(f"{http_url}/status/{code}")
    assert response.status_code == code
    assert response.extensions["reason_phrase"] == b""
    assert response.reason_phrase == phrase


async def test_multi_valued_response_headers(http_url: str) -> None:
    async with trioclient.Client() as client:
        response = await client.get(f"{http_url}/response-headers?x-multi=1&x-multi=2&x-one=a")
    assert response.headers.get_list("x-multi") == ["1", "2"]
    assert response.headers["x-multi"] == "1, 2"
    assert response.headers["X-One"] == "a"
    assert ("x-multi", "2") in response.headers.multi_items()
    assert (b"x-multi", b"1") in response.headers.raw


@pytest.mark.parametrize(
    ("code", "flags"),
    [
        (200, {"is_success"}),
        (204, {"is_success"}),
        (302, {"is_redirect", "has_redirect_location"}),
        (304, set()),
        (404, {"is_client_error", "is_error"}),
        (503, {"is_server_error", "is_error"}),
    ],
)
async def test_status_predicates(http_url: str, code: int, flags: set[str]) -> None:
    url = f"{http_url}/status/{code}"
    if code == 302:
        url = f"{http_url}/redirect-to?url=/"
    async with trioclient.Client() as client:
        response = await client.get(url)
    all_flags = {
        "is_informational",
        "is_success",
        "is_redirect",
        "has_redirect_location",
        "is_client_error",
        "is_server_error",
        "is_error",
    }
    assert {flag for flag in all_flags if getattr(response, flag)} == flags


async def test_raise_for_status_returns_the_response_on_success(http_url: str) -> None:
    async with trioclient.Client() as client:
        response = await client.get(f"{http_url}/status/201")
    assert response.raise_for_status() is response


@pytest.mark.parametrize(("code", "kind"), [(404, "Client error"), (500, "Server error")])
async def test_raise_for_status_errors(http_url: str, code: int, kind: str) -> None:
    async with trioclient.Client() as client:
        response = await client.get(f"{http_url}/status/{code}")
    with pytest.raises(trioclient.HTTPStatusError) as info:
        response.raise_for_status()
    assert info.value.response is response
    assert info.value.request is response.request
    assert kind in str(info.value)
    assert str(code) in str(info.value)
    assert f"{http_url}/status/{code}" in str(info.value)
    assert isinstance(info.value, trioclient.HTTPError)


async def test_raise_for_status_on_an_unfollowed_redirect(http_url: str) -> None:
    async with trioclient.Client() as client:
        response = await client.get(f"{http_url}/redirect/1")
    with pytest.raises(trioclient.HTTPStatusError, match="Redirect location: '/redirect/0'"):
        response.raise_for_status()


async def test_reason_phrase_sent_by_the_server_is_kept() -> None:
    async def handler(stream: BufferedStream) -> None:
        await read_request(stream)
        await stream.send_all(b"HTTP/1.1 200 Totally Fine\r\nContent-Length: 2\r\n\r\nok")

    async with trio.open_nursery() as nursery:
        url = await serve_raw(nursery, handler)
        async with trioclient.Client() as client:
            response = await client.get(url)
        nursery.cancel_scope.cancel()
    assert response.reason_phrase == "Totally Fine"
    assert repr(response) == "<Response [200 Totally Fine]>"


@pytest.mark.parametrize(
    ("content_type", "encoding"),
    [
        ('text/plain; charset="latin-1"', "latin-1"),
        ("text/plain; format=flowed; CHARSET=latin-1", "latin-1"),
        ("text/plain; charset=no-such-codec", "utf-8"),
        ("text/plain; charset=", "utf-8"),
    ],
)
async def test_charset_parameter_parsing(content_type: str, encoding: str) -> None:
    body = CHARSET_TEXT.encode(encoding)
    head = f"HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\n"
    head += f"Content-Length: {len(body)}\r\n\r\n"

    async def handler(stream: BufferedStream) -> None:
        await read_request(stream)
        await stream.send_all(head.encode("latin-1") + body)

    async with trio.open_nursery() as nursery:
        url = await serve_raw(nursery, handler)
        async with trioclient.Client() as client:
            response = await client.get(url)
        nursery.cancel_scope.cancel()
    assert response.encoding == encoding
    assert response.text == CHARSET_TEXT


# --- text, encoding, json --------------------------------------------------------------------


@pytest.mark.parametrize("charset", ["utf-8", "latin-1", "utf-16", "cp1252", "iso-8859-15"])
async def test_text_uses_the_charset_from_content_type(http_url: str, charset: str) -> None:
    async with trioclient.Client() as client:
        response = await client.get(f"{http_url}/charset/{charset}")
    assert response.content == CHARSET_TEXT.encode(charset)
    assert response.charset_encoding == charset
    assert response.encoding == charset
    assert response.text == CHARSET_TEXT


async def test_text_without_charset_uses_the_default_encoding(http_url: str) -> None:
    async with trioclient.Client() as client:
        response = await client.get(f"{http_url}/no-charset")
    assert response.charset_encoding is None
    assert response.encoding == "utf-8"
    assert response.text == CHARSET_TEXT


async def test_client_default_encoding(http_url: str) -> None:
    async with trioclient.Client(default_encoding="latin-1") as client:
        response = await client.get(f"{http_url}/no-charset")
    assert response.encoding == "latin-1"
    assert response.text == CHARSET_TEXT.encode("utf-8").decode("latin-1")


async def test_client_default_encoding_callable(http_url: str) -> None:
    seen: list[bytes] = []

    def guess(content: bytes) -> str:
        seen.append(content)
        return "utf-8"

    async with trioclient.Client(default_encoding=guess) as client:  # type: ignore[arg-type]
        response = await client.get(f"{http_url}/no-charset")
    assert response.text == CHARSET_TEXT
    assert seen == [CHARSET_TEXT.encode("utf-8")]


async def test_encoding_is_settable_before_text(http_url: str) -> None:
    async with trioclient.Client() as client:
        response = await client.get(f"{http_url}/charset/latin-1")
    response.encoding = "utf-8"
    assert response.encoding == "utf-8"
    assert response.text == CHARSET_TEXT.encode("latin-1").decode("utf-8", errors="replace")
    with pytest.raises(ValueError, match="encoding"):
        response.encoding = "latin-1"


async def test_json(http_url: str) -> None:
    async with trioclient.Client() as client:
        response = await client.get(f"{http_url}/json")
    assert response.headers["content-type"] == "application/json"
    assert response.json() == JSON_BODY
    assert response.json(parse_int=str) == {"hello": "world", "n": "1"}


async def test_json_of_a_non_json_body_raises(http_url: str) -> None:
    async with trioclient.Client() as client:
        response = await client.get(f"{http_url}/")
    with pytest.raises(json.JSONDecodeError):
        response.json()


# --- streaming ---------------------------------------------------------------------------------


async def test_aiter_bytes_with_chunk_size_gives_exact_chunks(http_url: str) -> None:
    async with (
        trioclient.Client() as client,
        client.stream("GET", f"{http_url}/bytes/10000?chunk=333") as response,
    ):
        chunks = [chunk async for chunk in response.aiter_bytes(1000)]
    assert [len(chunk) for chunk in chunks] == [1000] * 10
    assert b"".join(chunks) == pattern_bytes(10000)


async def test_aiter_bytes_chunk_size_with_a_short_last_chunk(http_url: str) -> None:
    async with (
        trioclient.Client() as client,
        client.stream("GET", f"{http_url}/stream/2500?chunk=700") as response,
    ):
        chunks = [chunk async for chunk in response.aiter_bytes(1000)]
    assert [len(chunk) for chunk in chunks] == [1000, 1000, 500]
    assert b"".join(chunks) == pattern_bytes(2500)


async def test_aiter_bytes_without_chunk_size(http_url: str) -> None:
    async with (
        trioclient.Client() as client,
        client.stream("GET", f"{http_url}/stream/5000?chunk=1000") as response,
    ):
        chunks = [chunk async for chunk in response.aiter_bytes()]
        assert response.is_stream_consumed
        assert response.is_closed
        assert response.num_bytes_downloaded == 5000
    assert all(chunks)
    assert b"".join(chunks) == pattern_bytes(5000)


async def test_aiter_raw_with_chunk_size(http_url: str) -> None:
    async with (
        trioclient.Client() as client,
        client.stream("GET", f"{http_url}/bytes/3001") as response,
    ):
        chunks = [chunk async for chunk in response.aiter_raw(1000)]
    assert [len(chunk) for chunk in chunks] == [1000, 1000, 1000, 1]
    assert b"".join(chunks) == pattern_bytes(3001)


async def test_aiter_text_with_chunk_size(http_url: str) -> None:
    async with (
        trioclient.Client() as client,
        client.stream("GET", f"{http_url}/charset/utf-16") as response,
    ):
        chunks = [chunk async for chunk in response.aiter_text(3)]
    assert "".join(chunks) == CHARSET_TEXT
    assert all(len(chunk) == 3 for chunk in chunks[:-1])
    assert 0 < len(chunks[-1]) <= 3


async def test_aiter_text_without_chunk_size(http_url: str) -> None:
    async with (
        trioclient.Client() as client,
        client.stream("GET", f"{http_url}/charset/latin-1") as response,
    ):
        text = "".join([chunk async for chunk in response.aiter_text()])
    assert text == CHARSET_TEXT


async def test_aiter_lines(http_url: str) -> None:
    body = "one\ntwo\r\nthree\rfour"
    url = f"{http_url}/echo"
    async with (
        trioclient.Client() as client,
        client.stream("POST", url, content=body) as response,
    ):
        lines = [line async for line in response.aiter_lines()]
    # The echo is one JSON line: the body's line breaks are escaped inside it.
    assert len(lines) == 1
    assert json.loads(lines[0])["body"] == body


async def test_aiter_lines_splits_lines(http_url: str) -> None:
    async with (
        trioclient.Client() as client,
        client.stream("GET", f"{http_url}/response-headers?a=1") as response,
    ):
        await response.aread()
        lines = [line async for line in response.aiter_lines()]
    assert lines == [response.text]
    manual = trioclient.Response(200, content=b"one\ntwo\r\n\nthree\rfour")
    assert [line async for line in manual.aiter_lines()] == ["one", "two", "", "three", "four"]


async def test_aiter_lines_bounds_an_endless_line() -> None:
    """A server that never sends a line break cannot make `aiter_lines` hold its whole body."""
    sent = 0

    async def handler(stream: BufferedStream) -> None:
        nonlocal sent
        await read_request(stream)
        await stream.send_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"%x\r\n%s\r\n" % (64 * 1024, b"x" * 64 * 1024)
        while True:  # endless: only the client's bound can end this
            await stream.send_all(chunk)
            sent += 64 * 1024

    async with trio.open_nursery() as nursery:
        url = await serve_raw(nursery, handler)
        async with trioclient.Client() as client, client.stream("GET", url) as response:
            with pytest.raises(trioclient.ResponseTooLarge, match="max_line_size=1048576") as info:
                async for _line in response.aiter_lines(max_line_size=1024 * 1024):
                    pytest.fail("no line break was sent")  # pragma: no cover
            assert response.is_closed
        nursery.cancel_scope.cancel()
    assert info.value.limit == 1024 * 1024
    assert info.value.size > 1024 * 1024
    assert not info.value.declared
    assert "127.0.0.1" in str(info.value)


async def test_aiter_lines_default_bound_and_none() -> None:
    body = b"y" * (3 * 1024 * 1024) + b"\nend"
    response = trioclient.Response(200, content=body)
    lines = [line async for line in response.aiter_lines()]  # under the 16 MiB default
    assert [len(line) for line in lines] == [3 * 1024 * 1024, 3]
    response = trioclient.Response(200, content=body)
    assert len([line async for line in response.aiter_lines(max_line_size=None)]) == 2


async def test_iterating_a_read_response_replays_the_content(http_url: str) -> None:
    async with trioclient.Client() as client:
        response = await client.get(f"{http_url}/bytes/2500")
    chunks = [chunk async for chunk in response.aiter_bytes(1000)]
    assert [len(chunk) for chunk in chunks] == [1000, 1000, 500]
    assert "".join([text async for text in response.aiter_text()]) == response.text
    assert await response.aread() == pattern_bytes(2500)


async def test_second_iteration_raises_stream_consumed(http_url: str) -> None:
    async with (
        trioclient.Client() as client,
        client.stream("GET", f"{http_url}/bytes/100") as response,
    ):
        assert not response.is_stream_consumed
        async for _ in response.aiter_bytes():
            pass
        assert response.is_stream_consumed
        with pytest.raises(trioclient.StreamConsumed):
            response.aiter_bytes()
        with pytest.raises(trioclient.StreamConsumed):
            await response.aread()
        with pytest.raises(trioclient.ResponseNotRead):
            _ = response.content


async def test_content_of_an_unread_streamed_response(http_url: str) -> None:
    async with (
        trioclient.Client() as client,
        client.stream("GET", f"{http_url}/bytes/100") as response,
    ):
        with pytest.raises(trioclient.ResponseNotRead):
            _ = response.content
        with pytest.raises(trioclient.ResponseNotRead):
            _ = response.text
        with pytest.raises(trioclient.ResponseNotRead):
            response.json()
        with pytest.raises(RuntimeError, match="elapsed"):
            _ = response.elapsed
        assert await response.aread() == pattern_bytes(100)
        assert response.content == pattern_bytes(100)
        assert response.elapsed >= datetime.timedelta(0)


async def test_stream_closed_after_aclose(http_url: str) -> None:
    async with (
        trioclient.Client() as client,
        client.stream("GET", f"{http_url}/bytes/100000") as response,
    ):
        await response.aclose()
        assert response.is_closed
        assert not response.is_stream_consumed
        with pytest.raises(trioclient.StreamClosed):
            await response.aread()
        with pytest.raises(trioclient.StreamClosed):
            response.aiter_raw()
        await response.aclose()  # idempotent


async def test_stream_closed_in_the_middle_of_iteration(http_url: str) -> None:
    async with (
        trioclient.Client() as client,
        client.stream("GET", f"{http_url}/bytes/100000?chunk=1000") as response,
    ):
        iterator = response.aiter_bytes()
        first = await iterator.__anext__()
        assert first
        await response.aclose()
        with pytest.raises(trioclient.StreamClosed):
            await iterator.__anext__()
    # The half-read connection was discarded; the pool still works.
    async with trioclient.Client() as client:
        assert (await client.get(f"{http_url}/")).status_code == 200


async def test_response_as_async_context_manager(http_url: str) -> None:
    async with trioclient.Client() as client:
        request = client.build_request("GET", f"{http_url}/bytes/50000")
        async with await client.send(request, stream=True) as response:
            assert not response.is_closed
        assert response.is_closed


# --- decoding ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "raw"),
    [("/gzip", GZIP_BODY), ("/deflate", DEFLATE_BODY), ("/gzip-deflate", GZIP_DEFLATE_BODY)],
)
async def test_content_encodings_are_decoded(http_url: str, path: str, raw: bytes) -> None:
    async with trioclient.Client() as client:
        response = await client.get(f"{http_url}{path}")
    assert response.content == PAYLOAD_BYTES
    assert response.json() == PAYLOAD
    assert response.num_bytes_downloaded == len(raw)
    assert response.num_bytes_downloaded < len(PAYLOAD_BYTES)
    assert int(response.headers["content-length"]) == len(raw)


@pytest.mark.parametrize(
    ("path", "raw"),
    [("/gzip", GZIP_BODY), ("/deflate", DEFLATE_BODY), ("/gzip-deflate", GZIP_DEFLATE_BODY)],
)
async def test_aiter_raw_yields_the_compressed_bytes(http_url: str, path: str, raw: bytes) -> None:
    async with (
        trioclient.Client() as client,
        client.stream("GET", f"{http_url}{path}") as response,
    ):
        data = b"".join([chunk async for chunk in response.aiter_raw()])
        assert response.num_bytes_downloaded == len(raw)
    assert data == raw


async def test_aiter_bytes_decodes_in_chunks(http_url: str) -> None:
    async with (
        trioclient.Client() as client,
        client.stream("GET", f"{http_url}/gzip") as response,
    ):
        chunks = [chunk async for chunk in response.aiter_bytes(100)]
    assert b"".join(chunks) == PAYLOAD_BYTES
    assert all(len(chunk) == 100 for chunk in chunks[:-1])


async def test_aiter_raw_after_the_body_was_decoded_raises(http_url: str) -> None:
    # The compressed bytes are gone once the body was read (and decoded) into memory.
    async with trioclient.Client() as client:
        response = await client.get(f"{http_url}/gzip")
    with pytest.raises(trioclient.StreamConsumed):
        response.aiter_raw()


async def test_bad_gzip_raises_decoding_error(http_url: str) -> None:
    async with trioclient.Client() as client:
        with pytest.raises(trioclient.DecodingError, match="gzip") as info:
            await client.get(f"{http_url}/bad-gzip")
        assert info.value.request.url == trioclient.URL(f"{http_url}/bad-gzip")
        assert isinstance(info.value, trioclient.RequestError)
        # The client is still usable.
        assert (await client.get(f"{http_url}/")).status_code == 200


async def test_bad_gzip_streamed(http_url: str) -> None:
    async with (
        trioclient.Client() as client,
        client.stream("GET", f"{http_url}/bad-gzip") as response,
    ):
        assert response.status_code == 200
        with pytest.raises(trioclient.DecodingError) as info:
            await response.aread()
        assert info.value.request is response.request
        assert response.is_closed


async def test_bad_gzip_raw_is_readable(http_url: str) -> None:
    async with (
        trioclient.Client() as client,
        client.stream("GET", f"{http_url}/bad-gzip") as response,
    ):
        raw = b"".join([chunk async for chunk in response.aiter_raw()])
    assert raw == BAD_GZIP_BODY


# --- responses without a body -------------------------------------------------------------------


async def test_head_has_no_body(http_url: str) -> None:
    async with trioclient.Client() as client:
        response = await client.head(f"{http_url}/bytes/5000")
        assert response.status_code == 200
        assert response.headers["content-length"] == "5000"
        assert response.content == b""
        assert response.num_bytes_downloaded == 0
        # The connection is still in sync: the next request works on it.
        assert (await client.get(f"{http_url}/bytes/10")).content == pattern_bytes(10)
        assert client.pool_statistics().connections == 1


async def test_head_streamed(http_url: str) -> None:
    async with (
        trioclient.Client() as client,
        client.stream("HEAD", f"{http_url}/gzip") as response,
    ):
        assert [chunk async for chunk in response.aiter_bytes()] == []
        assert response.headers["content-encoding"] == "gzip"


@pytest.mark.parametrize("code", [204, 304])
async def test_no_body_statuses(http_url: str, code: int) -> None:
    async with trioclient.Client() as client:
        response = await client.get(f"{http_url}/status/{code}")
        assert response.status_code == code
        assert response.content == b""
        assert response.text == ""
        assert "content-length" not in response.headers
        assert (await client.get(f"{http_url}/")).text == "Hello, world!"
        assert client.pool_statistics().connections == 1


# --- hand-built responses ------------------------------------------------------------------------


async def test_hand_built_response() -> None:
    request = trioclient.Request("GET", "http://127.0.0.1/x")
    response = trioclient.Response(201, json={"a": "é"}, request=request)
    assert response.json() == {"a": "é"}
    assert response.headers["content-type"] == "application/json"
    assert response.reason_phrase == "Created"
    assert response.http_version == "HTTP/1.1"
    assert response.url == request.url
    assert response.is_closed
    assert [chunk async for chunk in response.aiter_bytes()] == [b'{"a":"\xc3\xa9"}']
    with pytest.raises(trioclient.StreamConsumed):
        response.aiter_raw()  # the body is in memory, not on a stream
    assert trioclient.Response(200, text="hi").text == "hi"
    with pytest.raises(RuntimeError, match="request"):
        _ = trioclient.Response(200).request


async def test_hand_built_streaming_response() -> None:
    async def body() -> AsyncIterator[bytes]:
        yield b"ab"
        yield b"cd"

    response = trioclient.Response(200, stream=body())
    assert not response.is_closed
    assert await response.aread() == b"abcd"
    assert response.is_closed
    with pytest.raises(trioclient.StreamConsumed):
        response.aiter_raw()


async def test_chunked_trailers_are_on_the_response(nursery: trio.Nursery) -> None:
    async def handler(stream: BufferedStream) -> None:
        await read_request(stream)
        await stream.send_all(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Checksum\r\n\r\n"
            b"5\r\nhello\r\n0\r\nX-Checksum: abc123\r\n\r\n"
        )

    url = await serve_raw(nursery, handler)
    async with trioclient.Client() as client:
        async with client.stream("GET", url) as response:
            assert response.trailers == {}
            assert await response.aread() == b"hello"
            assert response.trailers["x-checksum"] == "abc123"
        assert (await client.get(url.replace("127.0.0.1", "localhost"))).trailers == {
            "x-checksum": "abc123"
        }


async def test_trailers_stay_with_their_response_when_the_connection_is_reused(
    nursery: trio.Nursery,
) -> None:
    """The trailers belong to the response, not to the connection that carried it: the next
    request on the same keep-alive connection must not change them."""

    async def handler(stream: BufferedStream) -> None:
        for checksum in (b"first", b"second"):
            await read_request(stream)
            await stream.send_all(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Checksum\r\n\r\n"
                b"5\r\nhello\r\n0\r\nX-Checksum: " + checksum + b"\r\n\r\n"
            )

    url = await serve_raw(nursery, handler)
    async with trioclient.Client() as client:
        first = await client.get(url)
        second = await client.get(url)
        assert client.pool_statistics().connections == 1  # the same connection, reused
        assert second.trailers["x-checksum"] == "second"
        assert first.trailers["x-checksum"] == "first"
