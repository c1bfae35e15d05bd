"""multipart/form-data encoding (`files=`): the bytes, the framing, replay, and its errors.

The encoder is checked three ways: byte for byte against httpx for the same input and
boundary; by parsing its output back with python-multipart (what Starlette uses) and with
the standard library's email parser, under Hypothesis; and through its failure modes (files
that change size, cannot be rewound, are opened in text mode). End-to-end uploads against
real servers are in tests/client/test_uploads.py.
"""

from __future__ import annotations

import email.parser
import email.policy
import io
import os
import re
import threading
from collections.abc import AsyncIterable
from typing import Any

import httpx
import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st
from python_multipart.multipart import MultipartParser, parse_options_header

import trioclient
from trioclient._content import is_replayable
from trioclient._multipart import CHUNK_SIZE, MultipartStream, boundary_from_content_type


def build(**kwargs: Any) -> trioclient.Request:
    return trioclient.Request("POST", "http://example.org/upload", **kwargs)


async def collect(body: bytes | AsyncIterable[bytes]) -> bytes:
    if isinstance(body, bytes):
        return body
    return b"".join([chunk async for chunk in body])


def collect_sync(body: bytes | AsyncIterable[bytes]) -> bytes:
    return trio.run(collect, body)


class RecordingFile(io.RawIOBase):
    """A seekable binary file over bytes that records each read's size and thread."""

    def __init__(self, data: bytes, *, seekable: bool = True) -> None:
        self._inner = io.BytesIO(data)
        self._seekable = seekable
        self.reads: list[int] = []
        self.threads: set[int] = set()

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return self._seekable

    def read(self, size: int | None = -1) -> bytes:
        self.reads.append(-1 if size is None else size)
        self.threads.add(threading.get_ident())
        return self._inner.read(size)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if not self._seekable:
            raise io.UnsupportedOperation("seek")
        return self._inner.seek(offset, whence)

    def tell(self) -> int:
        return self._inner.tell()


# --- the same bytes as httpx -----------------------------------------------------------------

CASES: dict[str, dict[str, Any]] = {
    "fields and files": {
        "data": {"a": "1", "b": [1, 2.5, True, None], "c": b"raw"},
        "files": {"f": ("a.txt", b"hello", "text/plain"), "g": b"bare bytes"},
    },
    "several files under one name": {
        "files": [("f", ("one.png", b"1")), ("f", ("two.bin", b"2")), ("g", "text, as str")],
    },
    "quotes, controls, unicode": {
        "data": {'na"me': "v"},
        "files": {'fi"le': ('q "x"y\r\n\t.txt', b"z"), "ü": ("naïve €.txt", b"u")},
    },
    "no filename, explicit content type and part headers": {
        "files": {
            "a": (None, b"x"),
            "b": ("b.json", b"{}", None),
            "c": ("c", b"c", "application/x-c", {"X-Extra": "1"}),
            "d": ("d.txt", b"d", "text/plain", {"content-type": "text/x-own"}),
        },
    },
    "a file object": {"files": {"f": ("f.csv", io.BytesIO(b"a,b\n1,2\n"))}},
    "an empty file": {"files": {"f": ("empty", b"")}},
}


@pytest.mark.parametrize("case", CASES, ids=str)
def test_same_bytes_and_headers_as_httpx(case: str) -> None:
    def arguments() -> dict[str, Any]:
        # Fresh file objects for each client.
        kwargs = dict(CASES[case])
        files = kwargs["files"]
        items = files.items() if isinstance(files, dict) else files
        fresh = []
        for name, value in items:
            if isinstance(value, tuple) and isinstance(value[1], io.BytesIO):
                value = (value[0], io.BytesIO(value[1].getvalue()), *value[2:])
            fresh.append((name, value))
        kwargs["files"] = fresh
        return kwargs

    headers = {"Content-Type": "multipart/form-data; boundary=0123456789abcdef"}
    ours = build(headers=headers, **arguments())
    theirs = httpx.Request("POST", "http://example.org/upload", headers=headers, **arguments())
    assert collect_sync(ours.stream) == theirs.read()
    assert dict(ours.headers) == dict(theirs.headers)


def test_a_backslash_is_percent_encoded_where_httpx_doubles_it() -> None:
    # python-multipart reads httpx's `name="a\\\\"; filename="b"` as the name `"; filename="b`.
    request = build(files={"a\\": ("b\\c", b"x")})
    body = collect_sync(request.stream)
    assert b'name="a%5C"; filename="b%5Cc"' in body
    parts = parse(body, request.headers["content-type"])
    assert [(name, filename) for name, filename, _, _ in parts] == [(b"a%5C", b"b%5Cc")]


def test_a_file_object_gets_its_basename_as_filename(tmp_path: Any) -> None:
    path = tmp_path / "report.pdf"
    path.write_bytes(b"%PDF")
    with open(path, "rb") as file:
        request = build(files={"doc": file})
        body = collect_sync(request.stream)
    assert b'name="doc"; filename="report.pdf"\r\nContent-Type: application/pdf\r\n' in body


# --- framing ---------------------------------------------------------------------------------


def test_random_boundary_of_128_bits() -> None:
    first, second = build(files={"f": b"x"}), build(files={"f": b"x"})
    boundaries = []
    for request in (first, second):
        match = re.fullmatch(
            r"multipart/form-data; boundary=([0-9a-f]{32})", request.headers["content-type"]
        )
        assert match is not None
        boundaries.append(match.group(1))
    assert boundaries[0] != boundaries[1]


def test_content_length_counts_every_byte_of_seekable_parts() -> None:
    file = RecordingFile(b"\xff" * (3 * CHUNK_SIZE + 7))
    file.seek(5)  # the part starts where the file is now
    request = build(data={"a": "b"}, files={"f": ("f", file), "g": ("g", b"z" * 10)})
    body = collect_sync(request.stream)
    assert int(request.headers["content-length"]) == len(body)
    assert "transfer-encoding" not in request.headers
    assert body.count(b"\xff") == 3 * CHUNK_SIZE + 2


def test_a_non_seekable_file_makes_the_body_chunked() -> None:
    request = build(files={"f": ("f", RecordingFile(b"data", seekable=False))})
    assert request.headers["transfer-encoding"] == "chunked"
    assert "content-length" not in request.headers
    assert b"\r\n\r\ndata\r\n" in collect_sync(request.stream)


def test_user_framing_is_kept() -> None:
    request = build(files={"f": b"x"}, headers={"Transfer-Encoding": "chunked"})
    assert "content-length" not in request.headers


def test_small_parts_are_one_chunk_and_large_ones_are_not_copied() -> None:
    big = b"b" * (2 * CHUNK_SIZE)
    request = build(data={"a": "1", "b": "2"}, files={"f": ("f", b"small"), "g": ("g", big)})
    stream = request.stream
    assert isinstance(stream, MultipartStream)

    async def chunks() -> list[bytes]:
        return [chunk async for chunk in stream]

    pieces = trio.run(chunks)
    assert len(pieces) == 3  # everything up to g's head, g's bytes, the tail
    assert pieces[1] is big


@pytest.mark.parametrize(
    ("content_type", "boundary"),
    [
        (b"multipart/form-data; boundary=abc", b"abc"),
        (b'Multipart/Form-Data; charset=utf-8; BOUNDARY="a b:c"', b"a b:c"),
        (b"text/plain", None),
        (None, None),
    ],
)
def test_boundary_from_content_type(content_type: bytes | None, boundary: bytes | None) -> None:
    assert boundary_from_content_type(content_type) == boundary


@pytest.mark.parametrize(
    "content_type",
    [
        b"multipart/form-data",
        b"multipart/form-data; boundary=",
        b'multipart/form-data; boundary="a@b"',
        b"multipart/form-data; boundary=" + b"a" * 71,
    ],
)
def test_an_unusable_user_boundary_is_refused(content_type: bytes) -> None:
    with pytest.raises(ValueError, match="boundary"):
        build(files={"f": b"x"}, headers={"Content-Type": content_type.decode("latin-1")})


@given(st.binary(max_size=100))
def test_boundary_parser_returns_or_raises_value_error(value: bytes) -> None:
    try:
        result = boundary_from_content_type(b"multipart/form-data; boundary=" + value)
    except ValueError:
        return
    assert result is not None
    assert 1 <= len(result) <= 70
    assert b"\r" not in result
    assert b"\n" not in result


# --- replay ----------------------------------------------------------------------------------


def test_a_seekable_body_replays_from_each_files_start() -> None:
    file = RecordingFile(b"0123456789")
    file.seek(4)
    request = build(files={"f": ("f", file)})
    assert is_replayable(request.stream)
    first = collect_sync(request.stream)
    second = collect_sync(request.stream)
    assert first == second
    assert b"\r\n\r\n456789\r\n" in first


def test_a_non_seekable_body_is_sent_once() -> None:
    request = build(files={"f": ("f", RecordingFile(b"x", seekable=False))})
    assert not is_replayable(request.stream)
    collect_sync(request.stream)
    with pytest.raises(trioclient.StreamConsumed, match="cannot be rewound"):
        collect_sync(request.stream)


async def test_aread_turns_the_body_into_bytes() -> None:
    request = build(files={"f": ("f", RecordingFile(b"abc", seekable=False))})
    with pytest.raises(trioclient.RequestNotRead):
        request.content  # noqa: B018
    body = await request.aread()
    assert request.content == body
    assert is_replayable(request.stream)


# --- reading files ---------------------------------------------------------------------------


def test_files_are_read_in_chunks_in_a_worker_thread() -> None:
    size = 5 * CHUNK_SIZE + 123
    file = RecordingFile(os.urandom(size))
    body = collect_sync(build(files={"f": ("f", file)}).stream)
    assert len(body) > size
    assert max(file.reads) <= CHUNK_SIZE
    assert threading.get_ident() not in file.threads


def test_bytesio_is_read_inline_in_chunks() -> None:
    class Recording(io.BytesIO):
        reads: list[int] = []

        def read(self, size: int | None = -1) -> bytes:
            self.reads.append(-1 if size is None else size)
            assert threading.current_thread() is threading.main_thread()
            return super().read(size)

    file = Recording(b"z" * (2 * CHUNK_SIZE + 1))
    collect_sync(build(files={"f": ("f", file)}).stream)
    assert file.reads
    assert max(file.reads) <= CHUNK_SIZE


def test_a_pipe_is_streamed_without_a_length() -> None:
    read_fd, write_fd = os.pipe()
    payload = os.urandom(3 * CHUNK_SIZE)

    def writer() -> None:
        with open(write_fd, "wb") as pipe:
            pipe.write(payload)

    thread = threading.Thread(target=writer)
    thread.start()
    with open(read_fd, "rb") as pipe:
        request = build(files={"f": ("f", pipe)})
        assert request.headers["transfer-encoding"] == "chunked"
        body = collect_sync(request.stream)
    thread.join()
    assert payload in body


@pytest.mark.parametrize(("start", "change"), [(b"abcdef", b"abc"), (b"abc", b"abcdefgh")])
def test_a_file_that_changes_size_is_a_local_protocol_error(
    tmp_path: Any, start: bytes, change: bytes
) -> None:
    path = tmp_path / "f"
    path.write_bytes(start)
    with open(path, "rb") as file:
        request = build(files={"f": ("f", file)})
        path.write_bytes(change)
        with pytest.raises(trioclient.LocalProtocolError, match=r"files\['f'\].*Content-Length"):
            collect_sync(request.stream)


def test_a_read_that_returns_text_is_refused() -> None:
    class Texty(RecordingFile):
        def read(self, size: int | None = -1) -> Any:
            return "text"

    with pytest.raises(TypeError, match="binary mode"):
        collect_sync(build(files={"f": ("f", Texty(b"", seekable=False))}).stream)


# --- refused input ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"files": {"f": io.StringIO("x")}}, TypeError, "text mode"),
        ({"files": {"f": 42}}, TypeError, "binary file object"),
        ({"files": {"f": ("a",)}}, TypeError, "not 1 items"),
        ({"files": {"f": ("a", b"x", "t", {}, 5)}}, TypeError, "not 5 items"),
        ({"files": {"f": (b"name", b"x")}}, TypeError, "filename must be a str"),
        ({"files": {"f": ("a", b"x", 5)}}, TypeError, "content type must be a str"),
        ({"files": {"f": ("a", b"x", None, [])}}, TypeError, "mapping"),
        ({"files": {"f": ("a", b"x", None, {"X": 1})}}, TypeError, "str names and values"),
        ({"files": {"f": ("a", b"x", None, {"X": "a\r\nB: c"})}}, ValueError, "CR, LF"),
        ({"files": {"f": ("a", b"x", None, {"X:Y": "a"})}}, ValueError, "colon"),
        ({"files": {1: b"x"}}, TypeError, "field names must be str"),
        ({"files": [("f",)]}, TypeError, r"\(name, file\) pairs"),
        ({"files": "f"}, TypeError, "mapping or a list"),
        ({"files": {"f": b"x"}, "content": b"c"}, TypeError, "data= only"),
        ({"files": {"f": b"x"}, "json": {}}, TypeError, "data= only"),
        ({"files": {"f": b"x"}, "data": b"raw"}, TypeError, "mapping of form fields"),
        ({"files": {"f": b"x"}, "data": {1: "a"}}, TypeError, "names in data= must be str"),
        ({"files": {"f": b"x"}, "data": {"a": object()}}, TypeError, "Form field 'a'"),
    ],
)
def test_bad_input_is_refused_when_the_request_is_built(
    kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        build(**kwargs)


def test_a_closed_file_is_refused() -> None:
    file = io.BytesIO(b"x")
    file.close()
    with pytest.raises(ValueError, match="closed file"):
        build(files={"f": file})


def test_empty_files_fall_back_to_a_form() -> None:
    request = build(data={"a": "1"}, files={})
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert request.content == b"a=1"


# --- parsed back (Hypothesis) ----------------------------------------------------------------

names = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=20)
payloads = st.binary(max_size=300)


def parse(body: bytes, content_type: str) -> list[tuple[bytes, bytes | None, bytes, bytes]]:
    """(name, filename, content type, data) of each part, by python-multipart."""
    _, options = parse_options_header(content_type)
    parts: list[tuple[bytes, bytes | None, bytes, bytes]] = []
    state: dict[str, Any] = {}

    def on_part_begin() -> None:
        state.update(headers={}, field=b"", value=b"", data=b"")

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state["field"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state["value"] += data[start:end]

    def on_header_end() -> None:
        state["headers"][state["field"].lower()] = state["value"]
        state["field"] = state["value"] = b""

    def on_part_data(data: bytes, start: int, end: int) -> None:
        state["data"] += data[start:end]

    def on_part_end() -> None:
        _, params = parse_options_header(state["headers"][b"content-disposition"])
        ctype = state["headers"].get(b"content-type", b"")
        parts.append((params[b"name"], params.get(b"filename"), ctype, state["data"]))

    callbacks: Any = {
        "on_part_begin": on_part_begin,
        "on_header_field": on_header_field,
        "on_header_value": on_header_value,
        "on_header_end": on_header_end,
        "on_part_data": on_part_data,
        "on_part_end": on_part_end,
    }
    parser = MultipartParser(options[b"boundary"], callbacks)
    parser.write(body)
    parser.finalize()
    return parts


def as_parsed(name: str) -> bytes:
    """What a parser that undoes backslash escapes sees: quotes and controls stay %XX."""
    escaped = re.sub(r'["\\\x00-\x1f\x7f]', lambda m: f"%{ord(m.group(0)):02X}", name)
    return escaped.encode("utf-8")


@given(
    fields=st.lists(st.tuples(names, st.one_of(names, payloads)), max_size=4),
    files=st.lists(
        st.tuples(names, st.one_of(st.none(), names), payloads, st.booleans()),
        min_size=1,  # without files, data= is a urlencoded form
        max_size=4,
    ),
)
def test_python_multipart_parses_what_we_encode(
    fields: list[tuple[str, str | bytes]],
    files: list[tuple[str, str | None, bytes, bool]],
) -> None:
    data: dict[str, list[str | bytes]] = {}
    for name, value in fields:
        data.setdefault(name, []).append(value)
    upload = [
        (name, (filename, io.BytesIO(content) if as_file else content, "application/x-test"))
        for name, filename, content, as_file in files
    ]
    request = build(data=data, files=upload)
    body = collect_sync(request.stream)
    assert int(request.headers["content-length"]) == len(body)
    parsed = parse(body, request.headers["content-type"])
    expected = [
        (as_parsed(name), None, b"", value if isinstance(value, bytes) else value.encode())
        for name, values in data.items()
        for value in values
    ] + [
        (as_parsed(name), None if not filename else as_parsed(filename), b"application/x-test", c)
        for name, filename, c, _ in files
    ]
    assert parsed == expected


ascii_names = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1)


@given(files=st.lists(st.tuples(ascii_names, ascii_names, payloads), min_size=1, max_size=4))
def test_the_email_parser_reads_what_we_encode(files: list[tuple[str, str, bytes]]) -> None:
    request = build(files=[(name, (filename, content)) for name, filename, content in files])
    body = collect_sync(request.stream)
    head = f"Content-Type: {request.headers['content-type']}\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    assert message.is_multipart()
    parts = list(message.iter_parts())
    assert len(parts) == len(files)
    for part, (name, filename, content) in zip(parts, files, strict=True):
        params = part["content-disposition"].params
        assert params["name"] == as_parsed(name).decode()
        assert params["filename"] == as_parsed(filename).decode()
        assert part.get_payload(decode=True) == content


def test_a_file_like_object_with_only_read_is_streamed_once() -> None:
    class Reader:
        def __init__(self) -> None:
            self._data = io.BytesIO(b"only read()")

        def read(self, size: int = -1) -> bytes:
            return self._data.read(size)

    request = build(files={"f": ("f", Reader())})
    assert request.headers["transfer-encoding"] == "chunked"
    assert not is_replayable(request.stream)
    assert b"\r\n\r\nonly read()\r\n" in collect_sync(request.stream)
    assert repr(request.stream).startswith("<MultipartStream boundary=")


async def test_an_async_file_is_refused_with_what_to_pass_instead(tmp_path: Any) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x")
    async with await trio.open_file(path, "rb") as file:
        with pytest.raises(TypeError, match="async file object"):
            build(files={"f": file})
