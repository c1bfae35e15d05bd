"""Text and re-chunking helpers for response bodies: bytes to text, lines, fixed-size chunks.

Each is a small synchronous object fed chunk by chunk. `TextDecoder` wraps a codecs
incremental decoder (a multi-byte character split across chunks is kept until complete);
`LineDecoder` splits on \\n, \\r\\n and \\r only (not on the other Unicode line boundaries
that `str.splitlines` knows), and remembers a \\r at the end of one chunk so that a \\n
starting the next is not taken for an empty line; it also bounds a line's length, because
a server that never sends a line break would otherwise have the whole body held as one
unfinished line. `ByteChunker` and `TextChunker` re-cut
a stream into pieces of exactly `chunk_size`.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable

__all__ = ["ByteChunker", "LineDecoder", "TextChunker", "TextDecoder"]


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
    """Splits text into lines across chunk boundaries; lines come without their endings.

    A line longer than `max_length` characters (None: no bound) raises what `too_long(size)`
    returns, `size` being the characters of it seen so far.
    """

    __slots__ = ("_max_length", "_parts", "_pending", "_too_long", "_trailing_cr")

    def __init__(
        self,
        max_length: int | None = None,
        too_long: Callable[[int], Exception] = lambda size: ValueError(f"a {size}-long line"),
    ) -> None:
        self._parts: list[str] = []  # The unfinished last line, in pieces.
        self._pending = 0  # ... and its length
        self._trailing_cr = False
        self._max_length = max_length
        self._too_long = too_long

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
        limit = self._max_length
        if "\n" not in text:
            self._parts.append(text)
            self._pending += len(text)
            if limit is not None and self._pending > limit:
                raise self._too_long(self._pending)
            return []
        lines = text.split("\n")
        # Nothing to check when the pending piece and this chunk together fit the bound.
        check = limit is not None and self._pending + len(text) > limit
        if self._parts:
            self._parts.append(lines[0])
            lines[0] = "".join(self._parts)
        last = lines.pop()
        self._parts = [last] if last else []
        self._pending = len(last)
        if check:
            assert limit is not None
            for line in (*lines, last):
                if len(line) > limit:
                    raise self._too_long(len(line))
        return lines

    def flush(self) -> list[str]:
        """Return the last line if the text did not end with a line ending."""
        self._trailing_cr = False
        if not self._parts:
            return []
        line = "".join(self._parts)
        self._parts = []
        self._pending = 0
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
