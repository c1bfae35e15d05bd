"""Incremental decoders for response bodies: content codings, text, lines, re-chunking.

Theory of operation: every decoder is a small synchronous object with `decode(chunk)` and
`flush()`. The response's body iterator feeds it each chunk as it arrives and calls
`flush()` once at the end of the body, so no decoder ever sees the whole body at once and
none of them does I/O.

Content codings (`Content-Encoding`):

* gzip uses zlib with a gzip wrapper. A body may hold several gzip members back to back
  (RFC 1952 allows it, `gzip -c a b` makes it); each is decoded in turn. Zero padding and
  other bytes after a complete member that do not start a new member are ignored, as
  browsers do.
* deflate is meant to be zlib-wrapped (RFC 9110), but some servers send raw deflate. The
  first two bytes decide: a valid zlib header means zlib, anything else means raw.
* "gzip, deflate" means gzip was applied first, so decoding runs the list in reverse.
* An unknown coding anywhere in the list makes the whole body pass through untouched:
  decoding only the known layers would hand out bytes that match neither the wire nor the
  original content (httpx skips just the unknown layer).
* A body that ends in the middle of a compressed stream is not an error: HTTP framing
  already says whether the body was complete, and a truncated stream yields what it held.
  Corrupt data raises `DecodingError` naming the coding.

Text helpers: `TextDecoder` wraps a codecs incremental decoder (a multi-byte character
split across chunks is kept until complete); `LineDecoder` splits on \\n, \\r\\n and \\r only
(not on the other Unicode line boundaries that `str.splitlines` knows), and remembers a \\r
at the end of one chunk so that a \\n starting the next is not taken for an empty line.
"""

from __future__ import annotations

import codecs
import zlib
from typing import Final

from ._exceptions import DecodingError

__all__ = [
    "ACCEPT_ENCODING",
    "SUPPORTED_ENCODINGS",
    "ByteChunker",
    "ContentDecoder",
    "DeflateDecoder",
    "GzipDecoder",
    "IdentityDecoder",
    "LineDecoder",
    "MultiDecoder",
    "TextChunker",
    "TextDecoder",
    "decoder_for",
]

SUPPORTED_ENCODINGS: Final = ("gzip", "deflate")
ACCEPT_ENCODING: Final = b"gzip, deflate"

_GZIP_MAGIC: Final = b"\x1f\x8b"


class ContentDecoder:
    """Base class: undo one or more content codings, chunk by chunk."""

    def decode(self, data: bytes) -> bytes:
        """Decode the next chunk; may return b"" while waiting for more input."""
        raise NotImplementedError()

    def flush(self) -> bytes:
        """Return whatever is still buffered, at the end of the body."""
        raise NotImplementedError()


class IdentityDecoder(ContentDecoder):
    """No content coding: data passes through unchanged."""

    def decode(self, data: bytes) -> bytes:
        """Return `data` unchanged."""
        return data

    def flush(self) -> bytes:
        """Nothing is ever buffered."""
        return b""


def _invalid(coding: str, exc: zlib.error) -> DecodingError:
    return DecodingError(f"{coding}: invalid data: {exc}")


class GzipDecoder(ContentDecoder):
    """gzip (RFC 1952), including several members concatenated in one body."""

    __slots__ = ("_done", "_pending", "_zlib")

    def __init__(self) -> None:
        self._zlib = zlib.decompressobj(16 + zlib.MAX_WBITS)
        # Bytes after a finished member, held until we know whether a new member starts.
        self._pending = b""
        self._done = False

    def decode(self, data: bytes) -> bytes:
        """Decompress the next chunk."""
        out: list[bytes] = []
        while data and not self._done:
            if self._zlib.eof:
                data = self._pending + data
                self._pending = b""
                data = data.lstrip(b"\x00")
                if len(data) < 2:
                    if data and data != _GZIP_MAGIC[:1]:
                        self._done = True
                    self._pending = data
                    break
                if not data.startswith(_GZIP_MAGIC):
                    self._done = True
                    break
                self._zlib = zlib.decompressobj(16 + zlib.MAX_WBITS)
            try:
                out.append(self._zlib.decompress(data))
            except zlib.error as exc:
                raise _invalid("gzip", exc) from None
            data = self._zlib.unused_data
        return b"".join(out)

    def flush(self) -> bytes:
        """Return any output zlib still holds."""
        try:
            return self._zlib.flush()
        except zlib.error as exc:  # pragma: no cover (zlib's flush does not raise today)
            raise _invalid("gzip", exc) from None


def _is_zlib_header(first: bytes) -> bool:
    """Whether two bytes are a zlib header: method 8 (deflate), window <= 32 KiB, check."""
    cmf, flg = first[0], first[1]
    return cmf & 0x0F == 8 and cmf >> 4 <= 7 and (cmf * 256 + flg) % 31 == 0


class DeflateDecoder(ContentDecoder):
    """deflate: zlib-wrapped (RFC 1950) or, as some servers send it, raw (RFC 1951)."""

    __slots__ = ("_head", "_zlib")

    def __init__(self) -> None:
        self._zlib: zlib._Decompress | None = None
        self._head = b""

    def decode(self, data: bytes) -> bytes:
        """Decompress the next chunk."""
        if self._zlib is None:
            data = self._head + data
            if len(data) < 2:
                self._head = data
                return b""
            self._head = b""
            wbits = zlib.MAX_WBITS if _is_zlib_header(data) else -zlib.MAX_WBITS
            self._zlib = zlib.decompressobj(wbits)
        try:
            return self._zlib.decompress(data)
        except zlib.error as exc:
            raise _invalid("deflate", exc) from None

    def flush(self) -> bytes:
        """Return any output zlib still holds."""
        if self._zlib is None:
            # At most one byte arrived: a truncated stream, which yields nothing.
            self._head = b""
            return b""
        try:
            return self._zlib.flush()
        except zlib.error as exc:  # pragma: no cover (zlib's flush does not raise today)
            raise _invalid("deflate", exc) from None


class MultiDecoder(ContentDecoder):
    """Several codings, given in the order they were applied (as Content-Encoding lists them)."""

    __slots__ = ("_children",)

    def __init__(self, children: list[ContentDecoder]) -> None:
        # The coding applied last is undone first.
        self._children = list(reversed(children))

    def decode(self, data: bytes) -> bytes:
        """Run the chunk through each decoder, last coding first."""
        for child in self._children:
            data = child.decode(data)
        return data

    def flush(self) -> bytes:
        """Flush each decoder in turn, feeding its tail to the next one."""
        data = b""
        for child in self._children:
            data = child.decode(data) + child.flush() if data else child.flush()
        return data


_DECODERS: Final[dict[str, type[ContentDecoder]]] = {
    "gzip": GzipDecoder,
    "x-gzip": GzipDecoder,  # RFC 9110 section 8.4.1.3: treat as gzip.
    "deflate": DeflateDecoder,
}


def decoder_for(content_encoding: str) -> ContentDecoder:
    """A decoder for a Content-Encoding value ("gzip", "gzip, deflate", ...).

    Case-insensitive; "identity" entries are ignored. If any listed coding is unknown, the
    body is passed through undecoded (see the module docstring).
    """
    children: list[ContentDecoder] = []
    for part in content_encoding.split(","):
        coding = part.strip().lower()
        if not coding or coding == "identity":
            continue
        cls = _DECODERS.get(coding)
        if cls is None:
            return IdentityDecoder()
        children.append(cls())
    if not children:
        return IdentityDecoder()
    if len(children) == 1:
        return children[0]
    return MultiDecoder(children)


class TextDecoder:
    """Bytes to str, incrementally; undecodable bytes become U+FFFD."""

    __slots__ = ("_decoder",)

    def __init__(self, encoding: str = "utf-8") -> None:
        self._decoder = codecs.getincrementaldecoder(encoding)(errors="replace")

    def decode(self, data: bytes) -> str:
        """Decode a chunk; an incomplete trailing character waits for the next one."""
        return self._decoder.decode(data)

    def flush(self) -> str:
        """Finish decoding (an incomplete trailing character becomes U+FFFD)."""
        return self._decoder.decode(b"", True)


class LineDecoder:
    """Splits text into lines across chunk boundaries; lines come without their endings."""

    __slots__ = ("_parts", "_trailing_cr")

    def __init__(self) -> None:
        self._parts: list[str] = []  # The unfinished last line, in pieces.
        self._trailing_cr = False

    def decode(self, text: str) -> list[str]:
        """Return the lines completed by this chunk."""
        if self._trailing_cr:
            self._trailing_cr = False
            if text.startswith("\n"):
                text = text[1:]
        if not text:
            return []
        if "\r" in text:
            # A \r ending the chunk ends a line now; a \n opening the next chunk is its pair.
            self._trailing_cr = text.endswith("\r")
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        if "\n" not in text:
            self._parts.append(text)
            return []
        lines = text.split("\n")
        if self._parts:
            self._parts.append(lines[0])
            lines[0] = "".join(self._parts)
        last = lines.pop()
        self._parts = [last] if last else []
        return lines

    def flush(self) -> list[str]:
        """Return the last line if the text did not end with a line ending."""
        self._trailing_cr = False
        if not self._parts:
            return []
        line = "".join(self._parts)
        self._parts = []
        return [line]


class ByteChunker:
    """Re-chunks bytes into pieces of exactly `chunk_size` (the last may be shorter).

    With `chunk_size=None` each non-empty input chunk is passed on as it is.
    """

    __slots__ = ("_buffer", "_size")

    def __init__(self, chunk_size: int | None = None) -> None:
        if chunk_size is not None and chunk_size <= 0:
            raise ValueError(f"chunk_size must be a positive number of bytes, not {chunk_size}")
        self._size = chunk_size
        self._buffer = bytearray()

    def decode(self, data: bytes) -> list[bytes]:
        """Return every full chunk available after adding `data`."""
        size = self._size
        if size is None:
            return [data] if data else []
        if not self._buffer and len(data) == size:
            return [data]
        self._buffer += data
        buffer = self._buffer
        end = len(buffer) - len(buffer) % size
        chunks = [bytes(buffer[start : start + size]) for start in range(0, end, size)]
        del buffer[:end]
        return chunks

    def flush(self) -> list[bytes]:
        """Return the remaining bytes (shorter than `chunk_size`), if any."""
        if not self._buffer:
            return []
        chunk = bytes(self._buffer)
        self._buffer.clear()
        return [chunk]


class TextChunker:
    """Re-chunks text into pieces of exactly `chunk_size` characters (the last may be shorter).

    With `chunk_size=None` each non-empty input chunk is passed on as it is.
    """

    __slots__ = ("_buffer", "_size")

    def __init__(self, chunk_size: int | None = None) -> None:
        if chunk_size is not None and chunk_size <= 0:
            raise ValueError(
                f"chunk_size must be a positive number of characters, not {chunk_size}"
            )
        self._size = chunk_size
        self._buffer = ""

    def decode(self, text: str) -> list[str]:
        """Return every full chunk available after adding `text`."""
        size = self._size
        if size is None:
            return [text] if text else []
        buffer = self._buffer + text
        end = len(buffer) - len(buffer) % size
        self._buffer = buffer[end:]
        return [buffer[start : start + size] for start in range(0, end, size)]

    def flush(self) -> list[str]:
        """Return the remaining text (shorter than `chunk_size`), if any."""
        if not self._buffer:
            return []
        chunk, self._buffer = self._buffer, ""
        return [chunk]
