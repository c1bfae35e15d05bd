"""Reading a response body: the raw-stream protocol, and the iterators over it.

Body iteration uses small iterator classes, never async generators: an async generator
abandoned by a cancellation is finalised later by the garbage collector, outside any cancel
scope (and Trio warns about it). An iterator object has nothing to finalise; the response's
`aclose()` (or the `client.stream()` block) gives the connection back.

Bounded reads: a content-coded body is decoded one piece of at most `STEP` (64 KiB) at a
time, with a Trio checkpoint before every piece that needs no network read, so a
decompression bomb can neither allocate its whole output at once nor keep a surrounding
`move_on_after` from firing. `request.extensions["max_response_size"]` (set by the
client) caps the body: the decoded bytes for `aread()`, `aiter_bytes()` and the client's
own full read, the bytes as sent for `aiter_raw()`. Passing it, or a `Content-Length`
above it, raises `ResponseTooLarge` and closes the response, so the pool closes the
connection (its body was not read to the end) and its books stay balanced.
"""

from __future__ import annotations

import sys
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Callable
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

import trio

from ._content import checked_chunk, close_abandoned
from ._decoders import STEP, ContentDecoder, IdentityDecoder, decoder_for
from ._exceptions import DecodingError, StreamClosed, StreamConsumed
from ._text_decoders import ByteChunker, LineDecoder, TextChunker, TextDecoder

if TYPE_CHECKING:
    from ._response import Response

__all__ = ["RawStream"]

_In = TypeVar("_In")
_Out = TypeVar("_Out")


class RawStream(Protocol):
    """A body as transports hand it over: raw (still content-encoded) chunks on demand.

    `receive_some()` returns b"" at the end; `close()` is synchronous (it must work from any
    cleanup path); `closed_reason` says why the transport closed it under the reader.
    """

    @property
    def closed_reason(self) -> str | None: ...

    @property
    def trailers(self) -> list[tuple[bytes, bytes]]: ...

    async def receive_some(self) -> bytes: ...

    def close(self) -> None: ...


class _IterableStream:
    """Adapts a user-supplied async iterable to the raw-stream protocol.

    Closing it early (sync) only stops reading, and a later read raises StreamClosed (never
    b"", which would pass for the body's end); `finalize()` then closes the iterator at once
    (an async generator's `finally` runs now, not whenever the garbage collector finds it).
    If another task is inside the iterator's `__anext__` at that moment, that reader closes
    it when `__anext__` returns: an iterator cannot be closed while it runs.
    """

    __slots__ = ("_abandoned", "_closed", "_iterator", "_reading")

    def __init__(self, iterable: AsyncIterable[bytes]) -> None:
        self._iterator: AsyncIterator[bytes] | None = iterable.__aiter__()
        self._abandoned: AsyncIterator[bytes] | None = None
        self._closed = False  # closed before its end
        self._reading = False  # a task is inside __anext__

    async def receive_some(self) -> bytes:
        iterator = self._iterator
        if iterator is None:
            if self._closed:
                raise StreamClosed()
            return b""
        self._reading = True
        try:
            chunk = await iterator.__anext__()
        except StopAsyncIteration:
            self._iterator = None
            return b""
        finally:
            self._reading = False
        if self._closed:  # closed by another task while we were inside __anext__
            self._abandoned = None
            await close_abandoned(iterator)
            raise StreamClosed()
        return bytes(checked_chunk(chunk, "response"))

    def close(self) -> None:
        if self._iterator is not None:
            self._closed = True
            self._abandoned, self._iterator = self._iterator, None

    async def finalize(self) -> None:
        """Close an iterator abandoned part-way; bounded, never raises."""
        self.close()
        if self._reading:
            return  # the task inside __anext__ closes it (see the class docstring)
        abandoned, self._abandoned = self._abandoned, None
        if abandoned is not None:
            await close_abandoned(abandoned)

    @property
    def closed_reason(self) -> str | None:
        return None

    @property
    def trailers(self) -> list[tuple[bytes, bytes]]:
        return []


def _content_length(response: Response) -> int | None:
    """The Content-Length the server declared, if it is a plain number."""
    value = response.headers.get("content-length")
    request = response._request
    if value is None or response.status_code in (204, 304):
        return None
    if request is not None and request.method == "HEAD":
        return None  # the size a GET would get: this response has no body
    try:
        return int(value.split(",")[0])
    except ValueError:
        return None


class _BodyIterator:
    """Pulls raw chunks from the response's stream; optionally decodes and re-chunks.

    With `checkpoint` set (public iteration) every `__anext__` is a Trio checkpoint even
    when the data was already buffered; the client's own full read skips that cost.
    """

    __slots__ = (
        "_checkpoint",
        "_chunker",
        "_decoder",
        "_done",
        "_draining",
        "_ended",
        "_limit",
        "_pending",
        "_received",
        "_response",
        "_step",
    )

    def __init__(
        self, response: Response, *, decode: bool, chunk_size: int | None, checkpoint: bool
    ) -> None:
        self._response = response
        self._pending: deque[bytes] = deque()
        self._done = False
        self._checkpoint = checkpoint
        self._chunker = ByteChunker(chunk_size) if chunk_size else None
        # Without a coding no decoder is called (`_step` says so); this one is never fed.
        self._decoder: ContentDecoder = _NO_CODING
        self._step = sys.maxsize  # no coding: chunks pass through as they came
        self._ended = False  # the raw body has ended (the decoder may still hold output)
        self._draining = False  # the decoder's last step gave output: it may have more
        self._received = 0  # bytes handed out, counted against the limit
        self._limit: int | None = None
        if response._content is not None:
            if not decode:
                # Only the decoded body was kept: the bytes as sent are gone (like httpx).
                raise StreamConsumed()
            limit = response._size_limit()
            if limit is not None and len(response._content) > limit:
                # A body given whole (Response(content=...), a mock) obeys the cap too.
                raise response._too_large(limit, len(response._content), declared=False)
            self._done = True
            self._push(response._content)
            return
        if response.is_stream_consumed:
            raise StreamConsumed()
        if response.is_closed:
            raise response._closed_error()
        response.is_stream_consumed = True
        limit = self._limit = response._size_limit()
        if limit is not None:
            declared = _content_length(response)
            if declared is not None and declared > limit:
                raise response._too_large(limit, declared, declared=True)
        codings = response.headers._get_raw(b"content-encoding") if decode else None
        if codings:  # the common case, none, keeps the IdentityDecoder made above
            try:
                self._decoder = decoder_for(b", ".join(codings).decode("latin-1"))
            except DecodingError as exc:
                response._close()
                if response._request is not None:
                    exc.request = response._request
                raise
            if not isinstance(self._decoder, IdentityDecoder):
                self._step = STEP

    def _push(self, data: bytes) -> None:
        chunker = self._chunker
        if chunker is None:
            if data:
                self._pending.append(data)
            return
        self._pending.extend(chunker.decode(data))
        if self._done:
            self._pending.extend(chunker.flush())

    def __aiter__(self) -> _BodyIterator:
        return self

    async def __anext__(self) -> bytes:
        if self._checkpoint:
            await trio.lowlevel.checkpoint()
        while not self._pending:
            if self._done:
                raise StopAsyncIteration
            await self._pull()
        return self._pending.popleft()

    async def _pull(self) -> None:
        response = self._response
        stream = response._stream
        # `_closed`, not `is_closed`: a stream the transport closed under us says so itself
        # (StreamClosed naming the reason) on the read below, and this runs per chunk.
        if stream is None or response._closed:
            raise response._closed_error()
        if self._step == sys.maxsize:
            # No coding: the bytes as they came (the common case, so no decoder calls).
            try:
                data = await stream.receive_some()
            except BaseException:
                response._close()
                raise
            self._take_plain(data)
            return
        decoder = self._decoder
        try:
            if self._draining:
                # Output without a network read: the checkpoint between steps.
                await trio.lowlevel.checkpoint()
            else:
                raw = await stream.receive_some()
                if raw:
                    response.num_bytes_downloaded += len(raw)
                    decoder.feed(raw)
                else:
                    self._ended = True
                    decoder.finish()
            data = decoder.read(self._step)
            # A step may leave output behind: drain it next, with a checkpoint.
            self._draining = bool(data)
            self._done = self._ended and not data
            limit = self._limit
            if limit is not None:
                self._received += len(data)
                if self._received > limit:
                    raise response._too_large(limit, self._received, declared=False)
        except DecodingError as exc:
            response._close()
            exc.request = response.request
            raise
        except BaseException:
            response._close()
            raise
        if self._done:
            response._close()
        if self._chunker is None:
            if data:
                self._pending.append(data)
        else:
            self._push(data)

    def _take_plain(self, data: bytes) -> None:
        """What a read of a body without a coding gave: counted, capped, kept; the
        response is closed at the body's end (or when the cap is passed)."""
        response = self._response
        if data:
            response.num_bytes_downloaded += len(data)
            limit = self._limit
            if limit is not None:
                self._received += len(data)
                if self._received > limit:
                    response._close()
                    raise response._too_large(limit, self._received, declared=False)
            if self._chunker is None:
                self._pending.append(data)
            else:
                self._push(data)
        else:
            self._ended = self._done = True
            response._close()
            if self._chunker is not None:
                self._push(data)


_NO_CODING = IdentityDecoder()


class _DecodingIterator(Generic[_In, _Out]):
    """Turns each chunk of `source` into zero or more items (`decode`), then `flush` at
    the end: the text and line iterators. Every call is a checkpoint: the source
    checkpoints on each pull, and a call served from items already decoded (or finding
    the end) checkpoints itself."""

    __slots__ = ("_decode", "_done", "_flush", "_pending", "_source")

    def __init__(
        self,
        source: AsyncIterator[_In],
        decode: Callable[[_In], list[_Out]],
        flush: Callable[[], list[_Out]],
    ) -> None:
        self._source = source
        self._decode = decode
        self._flush = flush
        self._pending: deque[_Out] = deque()
        self._done = False

    def __aiter__(self) -> _DecodingIterator[_In, _Out]:
        return self

    async def __anext__(self) -> _Out:
        pulled = False
        while not self._pending and not self._done:
            pulled = True
            try:
                chunk = await self._source.__anext__()
            except StopAsyncIteration:
                self._done = True
                self._pending.extend(self._flush())
            else:
                self._pending.extend(self._decode(chunk))
        if not pulled:
            await trio.lowlevel.checkpoint()
        if not self._pending:
            raise StopAsyncIteration
        return self._pending.popleft()


def _text_iterator(
    source: AsyncIterator[bytes], decoder: TextDecoder, chunk_size: int | None
) -> _DecodingIterator[bytes, str]:
    chunker = TextChunker(chunk_size or None)
    return _DecodingIterator(
        source,
        lambda data: chunker.decode(decoder.decode(data)),
        lambda: chunker.decode(decoder.flush()) + chunker.flush(),
    )


def _line_iterator(
    source: AsyncIterator[str], max_length: int | None, too_long: Callable[[int], Exception]
) -> _DecodingIterator[str, str]:
    lines = LineDecoder(max_length, too_long)
    return _DecodingIterator(source, lines.decode, lines.flush)
