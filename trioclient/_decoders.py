"""Incremental decoders for response bodies: content codings, text, lines, re-chunking.

Theory of operation: every decoder is a small synchronous object that does no I/O. A
content decoder is fed each raw chunk as it arrives (`feed`), hands out its output in
pieces of at most `max_length` bytes (`read`, b"" when it needs more input) and is told
when the body ends (`finish`). The response's body iterator reads one bounded piece per
step, with a Trio checkpoint between steps, so memory is bounded by `STEP` (64 KiB) and
the event loop keeps running whatever the compression ratio: a 1 MB gzip body that
inflates to 1 GiB is decoded as 16,384 pieces, never as one allocation.

Rejected alternatives: `zlib.decompress(data)` per chunk (what we did first) has no output
bound, so one 64 KiB chunk of a bomb became 64 MiB at once and `gzip, gzip` inflated a
3.5 KB body to 2 GiB in one call that blocked the event loop for 15 s; handing each layer
of a stacked coding the previous layer's whole output multiplies the ratios. zlib's
`decompressobj().decompress(data, max_length)` keeps the rest of the input in
`unconsumed_tail`, which is what every layer here does. A stack of more than `MAX_CODINGS`
(5, urllib3's number) codings is refused: nobody legitimately sends more, and each layer
costs a zlib state (about 40 KiB) however little data it sees.

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
    "MAX_CODINGS",
    "STEP",
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

#: The most output one decoding step produces, whatever the compression ratio.
STEP: Final = 64 * 1024
#: The most content codings a body may stack (urllib3's limit); more is a DecodingError.
MAX_CODINGS: Final = 5

_GZIP_MAGIC: Final = b"\x1f\x8b"


class ContentDecoder:
    """Base class: undo one or more content codings, in bounded steps.

    `feed(data)` queues input; `read(max_length)` returns at most `max_length` bytes of
    output, and b"" once it needs more input; `finish()` says the input has ended, after
    which `read` drains what is left and returns b"" at the very end. `decode` and `flush`
    are unbounded conveniences over those three (for tests and small bodies).
    """

    def feed(self, data: bytes) -> None:
        """Queue the next chunk of input; call `read` until it returns b"" before the next."""
        raise NotImplementedError()

    def read(self, max_length: int = STEP) -> bytes:
        """At most `max_length` bytes of output; b"" when more input is needed (or at the end)."""
        raise NotImplementedError()

    def finish(self) -> None:
        """The input has ended: `read` now drains the rest."""
        raise NotImplementedError()

    def decode(self, data: bytes) -> bytes:
        """Decode the next chunk and return all the output it gives (unbounded)."""
        self.feed(data)
        return self._drain()

    def flush(self) -> bytes:
        """Return whatever is still buffered, at the end of the body (unbounded)."""
        self.finish()
        return self._drain()

    def _drain(self) -> bytes:
        out: list[bytes] = []
        while piece := self.read(STEP):
            out.append(piece)
        return b"".join(out)


class IdentityDecoder(ContentDecoder):
    """No content coding: data passes through unchanged (in pieces of at most max_length)."""

    __slots__ = ("_input",)

    def __init__(self) -> None:
        self._input = b""

    def feed(self, data: bytes) -> None:
        """Queue `data`."""
        self._input = self._input + data if self._input else data

    def read(self, max_length: int = STEP) -> bytes:
        """Up to `max_length` bytes of what was fed."""
        data = self._input
        if len(data) <= max_length:
            self._input = b""
            return data
        self._input = data[max_length:]
        return data[:max_length]

    def finish(self) -> None:
        """Nothing is ever held back."""


def _invalid(coding: str, exc: zlib.error) -> DecodingError:
    return DecodingError(f"{coding}: invalid data: {exc}")


class _ZlibDecoder(ContentDecoder):
    """One zlib stream decoded with an output bound per call.

    `decompress(data, max_length)` keeps the input it did not get to in `unconsumed_tail`;
    we hold that as `_input` and hand it back on the next call. A call that filled
    `max_length` may leave output inside zlib even with no input left, so the next `read`
    calls again (`_full`) before asking for more input.
    """

    __slots__ = ("_coding", "_ended", "_flushed", "_full", "_input", "_zlib")

    def __init__(self, coding: str) -> None:
        self._coding = coding
        self._zlib: zlib._Decompress | None = None
        self._input = b""
        self._full = False
        self._ended = False
        self._flushed = False

    def feed(self, data: bytes) -> None:
        """Queue `data`."""
        self._input = self._input + data if self._input else data

    def finish(self) -> None:
        """The input has ended."""
        self._ended = True

    def _step(self, max_length: int) -> bytes:
        """One bounded call into zlib (which must exist); b"" when it needs input."""
        assert self._zlib is not None
        if not self._input and not self._full:
            return b""
        try:
            out = self._zlib.decompress(self._input, max_length)
        except zlib.error as exc:
            raise _invalid(self._coding, exc) from None
        if self._zlib.eof:
            self._input = self._zlib.unused_data
            self._full = False
        else:
            self._input = self._zlib.unconsumed_tail
            self._full = len(out) >= max_length
        return out

    def _final(self) -> bytes:
        """At the end of the input: what zlib still holds of a truncated stream, once."""
        if self._flushed or self._zlib is None:
            self._flushed = True
            return b""
        self._flushed = True
        try:
            return self._zlib.flush()
        except zlib.error as exc:  # pragma: no cover (zlib's flush does not raise today)
            raise _invalid(self._coding, exc) from None


class GzipDecoder(_ZlibDecoder):
    """gzip (RFC 1952), including several members concatenated in one body."""

    __slots__ = ("_done",)

    def __init__(self) -> None:
        super().__init__("gzip")
        self._zlib = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self._done = False  # bytes after a member that do not start a new one: ignore the rest

    def read(self, max_length: int = STEP) -> bytes:
        """At most `max_length` decoded bytes; b"" when more input is needed."""
        while not self._done:
            assert self._zlib is not None
            if self._zlib.eof:
                # A member ended: zero padding is skipped; a new member must start with
                # the magic, anything else ends decoding.
                data = self._input.lstrip(b"\x00")
                self._input = data
                if len(data) < 2:
                    if (data and data != _GZIP_MAGIC[:1]) or self._ended:
                        self._done = True
                        break
                    return b""  # wait for the next byte: it may complete the magic
                if not data.startswith(_GZIP_MAGIC):
                    self._done = True
                    break
                self._zlib = zlib.decompressobj(16 + zlib.MAX_WBITS)
            out = self._step(max_length)
            if out:
                return out
            if not self._input and not self._zlib.eof:
                return self._final() if self._ended else b""
        self._input = b""
        return b""


def _is_zlib_header(first: bytes) -> bool:
    """Whether two bytes are a zlib header: method 8 (deflate), window <= 32 KiB, check."""
    cmf, flg = first[0], first[1]
    return cmf & 0x0F == 8 and cmf >> 4 <= 7 and (cmf * 256 + flg) % 31 == 0


class DeflateDecoder(_ZlibDecoder):
    """deflate: zlib-wrapped (RFC 1950) or, as some servers send it, raw (RFC 1951)."""

    __slots__ = ()

    def __init__(self) -> None:
        super().__init__("deflate")

    def read(self, max_length: int = STEP) -> bytes:
        """At most `max_length` decoded bytes; b"" when more input is needed."""
        if self._zlib is None:
            if len(self._input) < 2:
                if self._ended:
                    # At most one byte arrived: a truncated stream, which yields nothing.
                    self._input = b""
                return b""
            wbits = zlib.MAX_WBITS if _is_zlib_header(self._input) else -zlib.MAX_WBITS
            self._zlib = zlib.decompressobj(wbits)
        out = self._step(max_length)
        if out:
            return out
        if self._zlib.eof:
            self._input = b""  # bytes after the end of the stream are ignored
            return b""
        return self._final() if self._ended else b""


class MultiDecoder(ContentDecoder):
    """Several codings, given in the order they were applied (as Content-Encoding lists them).

    Output is pulled from the last layer; a layer that needs input pulls one bounded step
    (`STEP`) from the layer before it, so no layer ever holds more than one step of another
    layer's output, whatever the ratios multiply to.
    """

    __slots__ = ("_children", "_ended")

    def __init__(self, children: list[ContentDecoder]) -> None:
        # The coding applied last is undone first.
        self._children = list(reversed(children))
        self._ended = [False] * len(self._children)  # per layer: its input has ended

    def feed(self, data: bytes) -> None:
        """Queue `data` for the outermost coding."""
        self._children[0].feed(data)

    def finish(self) -> None:
        """The input has ended."""
        self._ended[0] = True
        self._children[0].finish()

    def read(self, max_length: int = STEP) -> bytes:
        """At most `max_length` bytes of the innermost layer's output."""
        return self._pull(len(self._children) - 1, max_length)

    def _pull(self, index: int, max_length: int) -> bytes:
        child = self._children[index]
        while True:
            out = child.read(max_length)
            if out or index == 0 or self._ended[index]:
                return out
            upstream = self._pull(index - 1, STEP)
            if upstream:
                child.feed(upstream)
            elif self._ended[index - 1]:
                self._ended[index] = True
                child.finish()
            else:
                return b""


_DECODERS: Final[dict[str, type[ContentDecoder]]] = {
    "gzip": GzipDecoder,
    "x-gzip": GzipDecoder,  # RFC 9110 section 8.4.1.3: treat as gzip.
    "deflate": DeflateDecoder,
}


def decoder_for(content_encoding: str) -> ContentDecoder:
    """A decoder for a Content-Encoding value ("gzip", "gzip, deflate", ...).

    Case-insensitive; "identity" entries are ignored. If any listed coding is unknown, the
    body is passed through undecoded (see the module docstring). More than `MAX_CODINGS`
    codings raise DecodingError.
    """
    codings = [part.strip().lower() for part in content_encoding.split(",")]
    codings = [coding for coding in codings if coding and coding != "identity"]
    if len(codings) > MAX_CODINGS:
        shown = content_encoding if len(content_encoding) <= 60 else content_encoding[:57] + "..."
        raise DecodingError(
            f"Content-Encoding lists {len(codings)} codings ({shown!r}); at most "
            f"{MAX_CODINGS} are decoded."
        )
    children: list[ContentDecoder] = []
    for coding in codings:
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
