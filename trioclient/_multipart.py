"""multipart/form-data request bodies (`files=`), streamed part by part.

Theory of operation
-------------------
`encode_multipart()` turns form fields and files into a `MultipartStream`: a list of
*segments*, each either bytes known now (delimiters, part headers, field values, files given
as bytes or str) or a file object to be read when the body is sent. Neighbouring bytes
segments are joined when the stream is built, so a form of small fields is one chunk on the
wire. A file is never read whole: it is read in chunks of at most `CHUNK_SIZE` bytes as the
transport asks for the next one, so memory stays bounded whatever the file's size.

Decisions:

* **Reading files.** A `BytesIO` is memory already and is read inline. Every other file
  object is read in a worker thread, one `read(CHUNK_SIZE)` per thread call, because a read
  from disk, a pipe or a network filesystem may block for as long as it likes and Trio's
  event loop must not. The thread call abandons the read on cancellation
  (`abandon_on_cancel=True`) so that a cancelled upload returns at once even from a pipe
  that never delivers; that read (at most one, of at most `CHUNK_SIZE` bytes) then finishes
  in its thread and its data is dropped.
* **Content-Length.** Known when every part's size is: bytes and str, and seekable files
  (their size from the current position to the end, found with `seek`). Then the body is
  sent with Content-Length, else chunked. A file that turns out shorter or longer than that
  size while it is sent is a `LocalProtocolError` naming it (the length was promised to the
  server), never a truncated or overlong body.
* **Replay.** A redirect (307/308), an auth round or a retry sends the body again. A stream
  whose files are all seekable can: each send seeks every file back to the position it had
  when the request was built. A stream with a non-seekable file can be sent once; a second
  send raises `StreamConsumed` (and redirects and retries are refused up front, see
  `is_replayable` in `_content.py`).
* **The boundary** is 32 hex digits from `secrets` (128 random bits). The contents of
  streamed files cannot be scanned for it without reading them twice, so it is entropy that
  makes a collision impossible in practice: for the boundary to appear in a body of n bytes
  the body must contain one particular 128-bit string, chosen after the content and
  independently of it; that happens with probability below n / 2**128, about 3e-27 for a
  terabyte. A boundary the caller gives (`Content-Type: multipart/form-data; boundary=...`)
  is used as given, like httpx, and then avoiding a collision is the caller's business.
* **Names and filenames** are UTF-8 inside quotes, escaped as httpx (after the HTML
  standard) does: `"` becomes `%22` and control characters (and DEL) become `%XX`, so no
  name can end the quoted string or the header line early. A backslash becomes `%5C`
  where httpx doubles it: python-multipart (Starlette's parser) and the standard library's
  `Message.get_param` both take the `"` after a doubled backslash for an escaped one, so a
  name ending in a backslash swallowed the rest of the header there. Browsers send a
  backslash as is, which those parsers misread the same way.
"""

from __future__ import annotations

import inspect
import io
import mimetypes
import re
import secrets
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from contextlib import aclosing
from pathlib import Path
from typing import IO, Final, TypeAlias

import trio

from ._config import describe
from ._exceptions import LocalProtocolError, StreamConsumed
from ._types import FileContent, FileTypes, RequestFiles

__all__ = ["CHUNK_SIZE", "MultipartStream", "boundary_from_content_type", "encode_multipart"]

CHUNK_SIZE: Final = 64 * 1024

# Bytes segments shorter than this are joined with their neighbours into one chunk.
_JOIN_BELOW: Final = CHUNK_SIZE

# RFC 2046 5.1.1: 1 to 70 of these characters, not ending with a space.
_BOUNDARY = re.compile(rb"[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]")

_ESCAPES = {'"': "%22", "\\": "%5C", "\x7f": "%7F"}
_ESCAPES.update({chr(code): f"%{code:02X}" for code in range(0x20)})
_ESCAPE = re.compile("|".join(re.escape(char) for char in _ESCAPES))


def _quoted(value: str) -> bytes:
    return b'"' + _ESCAPE.sub(lambda m: _ESCAPES[m.group(0)], value).encode("utf-8") + b'"'


def boundary_from_content_type(content_type: bytes | None) -> bytes | None:
    """The boundary of a `multipart/form-data` Content-Type the caller set, if any.

    Raises ValueError when the type is multipart/form-data but has no usable boundary:
    the body would be built with another one and no server could parse it.
    """
    if content_type is None:
        return None
    kind, _, params = content_type.partition(b";")
    if kind.strip().lower() != b"multipart/form-data":
        return None
    for param in params.split(b";"):
        name, _, value = param.strip().partition(b"=")
        if name.strip().lower() == b"boundary":
            value = value.strip()
            if len(value) >= 2 and value.startswith(b'"') and value.endswith(b'"'):
                value = value[1:-1]
            if _BOUNDARY.fullmatch(value) is None:
                raise ValueError(
                    f"The multipart boundary in Content-Type must be 1 to 70 letters, digits "
                    f"or '()+_,-./:=? (RFC 2046), not {value!r}"
                )
            return value
    raise ValueError(
        "Content-Type is multipart/form-data but has no boundary: leave Content-Type out "
        "(trioclient sets it, with a random boundary) or give one with '; boundary=...'"
    )


class _File:
    """A file object to be read when the body is sent."""

    __slots__ = ("file", "size", "start", "what")

    def __init__(self, file: IO[bytes], what: str) -> None:
        self.file = file
        self.what = what
        self.start: int | None = None  # where each send starts (seekable files)
        self.size: int | None = None  # bytes from `start` to the end, if knowable
        try:
            seekable = file.seekable()
        except (AttributeError, OSError, ValueError):
            seekable = False
        if seekable:
            self.start = file.tell()
            end = file.seek(0, io.SEEK_END)
            file.seek(self.start)
            self.size = max(end - self.start, 0)

    async def chunks(self) -> AsyncGenerator[bytes, None]:
        file, size = self.file, self.size
        if self.start is not None:
            file.seek(self.start)
        inline = isinstance(file, io.BytesIO)
        remaining = size
        while True:
            # One byte more than is left, so that a file that grew shows up in this read.
            want = CHUNK_SIZE if remaining is None else min(CHUNK_SIZE, remaining + 1)
            if inline:
                await trio.lowlevel.checkpoint()
                chunk: object = file.read(want)
            else:
                # A pipe's read may never return, so it is abandoned on cancellation. A
                # seekable file's read is short, and abandoning it would let a replay's
                # seek() race a read still running in its thread: that one is waited for.
                chunk = await trio.to_thread.run_sync(
                    file.read, want, abandon_on_cancel=self.start is None
                )
            if not isinstance(chunk, (bytes, bytearray, memoryview)):
                raise TypeError(
                    f"{self.what}: read() returned {describe(chunk)}, not bytes: open "
                    "files for upload in binary mode ('rb')"
                )
            if not chunk:
                break
            if remaining is not None:
                if len(chunk) > remaining:
                    raise LocalProtocolError(self._changed("grew past"))
                remaining -= len(chunk)
            yield bytes(chunk)
        if remaining:
            raise LocalProtocolError(self._changed("ended before"))

    def _changed(self, how: str) -> str:
        return (
            f"{self.what} {how} the {self.size} bytes it had when the request was built: "
            "the request's Content-Length counted those, so the upload was stopped. Do not "
            "change a file while it is being uploaded."
        )


_Segment: TypeAlias = "bytes | _File"


class MultipartStream:
    """A multipart/form-data body: an async iterable of bytes chunks.

    `content_type` carries the boundary; `content_length` is None when a part's size is
    unknown (the body is then sent chunked). `replayable` tells whether it can be sent
    more than once (no file in it is unseekable).
    """

    __slots__ = ("_segments", "_sent", "boundary", "content_length", "content_type", "replayable")

    def __init__(self, segments: list[_Segment], boundary: bytes) -> None:
        self._segments = segments
        self._sent = False
        self.boundary = boundary
        self.content_type = b"multipart/form-data; boundary=" + boundary
        length: int | None = 0
        replayable = True
        for segment in segments:
            if isinstance(segment, bytes):
                size: int | None = len(segment)
            else:
                size = segment.size
                replayable = replayable and segment.start is not None
            length = None if length is None or size is None else length + size
        self.content_length = length
        self.replayable = replayable

    def __aiter__(self) -> AsyncIterator[bytes]:
        if self._sent and not self.replayable:
            raise StreamConsumed(
                "This multipart body has a file that cannot be rewound (not seekable), and "
                "it was already sent: it cannot be sent again (a redirect, an auth round, a "
                "retry or a second send). Pass a seekable file, or the file's bytes."
            )
        self._sent = True
        return self._generate()

    async def _generate(self) -> AsyncIterator[bytes]:
        for segment in self._segments:
            if isinstance(segment, bytes):
                yield segment
            else:
                # Closed at once if the send stops part-way (an early response, an
                # error, a cancellation), not left to the garbage collector.
                async with aclosing(segment.chunks()) as chunks:
                    async for chunk in chunks:
                        yield chunk

    def __repr__(self) -> str:
        return f"<MultipartStream boundary={self.boundary!r} length={self.content_length}>"


def _file_part(name: str, value: FileTypes) -> tuple[bytes, FileContent]:
    """The part headers (ending with the blank line) and the content of one file field."""
    filename: str | None
    content_type: str | None = None
    headers: Mapping[str, str] = {}
    if isinstance(value, tuple):
        if not 2 <= len(value) <= 4:
            raise TypeError(
                f"files[{name!r}] as a tuple must be (filename, file[, content_type[, "
                f"headers]]), not {len(value)} items"
            )
        filename, content = value[0], value[1]
        if len(value) >= 3:
            content_type = value[2]
        if len(value) == 4:
            headers = value[3]
        if filename is not None and not isinstance(filename, str):
            raise TypeError(f"files[{name!r}]: the filename must be a str or None")
        if content_type is not None and not isinstance(content_type, str):
            raise TypeError(f"files[{name!r}]: the content type must be a str or None")
        if not isinstance(headers, Mapping):
            raise TypeError(f"files[{name!r}]: the part headers must be a mapping of str")
    else:
        content = value
        filename = Path(str(getattr(value, "name", "upload"))).name
    if content_type is None and filename:
        content_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
    head = [b"Content-Disposition: form-data; name=", _quoted(name)]
    if filename:
        head += [b"; filename=", _quoted(filename)]
    lines = dict(headers)
    if content_type is not None and not any(key.lower() == "content-type" for key in lines):
        lines["Content-Type"] = content_type
    for key, header_value in lines.items():
        if not isinstance(key, str) or not isinstance(header_value, str):
            raise TypeError(f"files[{name!r}]: part headers must be str names and values")
        if any(char in key + header_value for char in "\r\n\0") or ":" in key:
            raise ValueError(
                f"files[{name!r}]: part header {key!r}: {header_value!r} has a CR, LF, NUL "
                "(or a colon in its name), which would end the part header early"
            )
        head += [b"\r\n", key.encode("utf-8"), b": ", header_value.encode("utf-8")]
    head.append(b"\r\n\r\n")
    return b"".join(head), content


def _content_segment(name: str, content: object) -> _Segment:
    if isinstance(content, str):
        return content.encode("utf-8")
    if isinstance(content, (bytes, bytearray, memoryview)):
        return bytes(content)
    if isinstance(content, io.TextIOBase):
        raise TypeError(
            f"files[{name!r}] is a file opened in text mode: open it in binary mode ('rb')"
        )
    if not callable(getattr(content, "read", None)):
        raise TypeError(
            f"files[{name!r}] must be bytes, str, a binary file object or a (filename, "
            f"file[, content_type[, headers]]) tuple, not {describe(content)}"
        )
    if inspect.iscoroutinefunction(content.read):  # type: ignore[attr-defined]
        raise TypeError(
            f"files[{name!r}] is an async file object: pass a plain binary file (open(path, "
            "'rb')); trioclient reads it in a worker thread, so the event loop never blocks"
        )
    if getattr(content, "closed", False):
        raise ValueError(f"files[{name!r}] is a closed file")
    return _File(content, f"The file for files[{name!r}]")  # type: ignore[arg-type]


def encode_multipart(
    fields: Sequence[tuple[str, str | bytes]],
    files: RequestFiles,
    boundary: bytes | None = None,
) -> MultipartStream:
    """A multipart body of the form `fields` (already converted to text), then the `files`.

    `files` is a mapping or a sequence of (name, file) pairs (a sequence allows several
    files under one name).
    """
    if boundary is None:
        boundary = secrets.token_hex(16).encode("ascii")
    delimiter = b"--" + boundary + b"\r\n"
    segments: list[_Segment] = []

    def add(segment: _Segment) -> None:
        last = segments[-1] if segments else None
        if (
            isinstance(segment, bytes)
            and isinstance(last, bytes)
            and len(last) + len(segment) < _JOIN_BELOW
        ):
            segments[-1] = last + segment
        else:
            segments.append(segment)

    for name, value in fields:
        head = b"Content-Disposition: form-data; name=" + _quoted(name) + b"\r\n\r\n"
        text = value.encode("utf-8") if isinstance(value, str) else value
        add(delimiter + head)
        add(text)
        add(b"\r\n")
    if isinstance(files, Mapping):
        items = list(files.items())
    elif isinstance(files, (list, tuple)):
        items = list(files)
        for item in items:
            if not isinstance(item, tuple) or len(item) != 2:
                raise TypeError(
                    f"files= as a sequence must hold (name, file) pairs, not {describe(item)}"
                )
    else:
        raise TypeError(
            f"files= must be a mapping or a list of (name, file) pairs, not {describe(files)}"
        )
    for name, file in items:
        if not isinstance(name, str):
            raise TypeError(f"files= field names must be str, not {describe(name)}")
        head, content = _file_part(name, file)
        add(delimiter + head)
        add(_content_segment(name, content))
        add(b"\r\n")
    add(b"--" + boundary + b"--\r\n")
    return MultipartStream(segments, boundary)
