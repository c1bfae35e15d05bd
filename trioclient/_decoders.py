"""Incremental decoders for content codings (`Content-Encoding`), in bounded steps.

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
costs a decoder state (about 40 KiB for zlib) however little data it sees.

Content codings:

* gzip uses zlib with a gzip wrapper. A body may hold several gzip members back to back
  (RFC 1952 allows it, `gzip -c a b` makes it); each is decoded in turn. Zero padding and
  other bytes after a complete member that do not start a new member are ignored, as
  browsers do.
* deflate is meant to be zlib-wrapped (RFC 9110), but some servers send raw deflate. The
  first two bytes decide: a valid zlib header means zlib, anything else means raw.
* br (RFC 7932) needs the optional `brotli` package (C; the `trioclient[brotli]` extra
  installs it on CPython) or `brotlicffi` (the extra's choice elsewhere, e.g. PyPy), at
  1.2 or later: 1.2 added `process(data, output_buffer_limit=)` and
  `can_accept_more_data()`, without which one call inflates without bound, so an older
  one is not used. The C binding's output buffer grows in blocks and may pass the limit by
  one block (a 64 KiB limit gave 96 KiB pieces); the excess is kept and handed out first.
  Bytes after the end of the stream are invalid data (both bindings say so).
* zstd (RFC 8878) uses Python 3.14's `compression.zstd`, or its backport `backports.zstd`
  before 3.14 (the `trioclient[zstd]` extra). Not the `zstandard` package (httpx's
  choice): its `decompressobj().decompress(data)` takes no output bound, and a 4-byte RLE
  block alone inflates to 128 KiB. The window is capped at 8 MiB (RFC 9659 limits the
  `zstd` content coding to that; a larger one is a DecodingError), which bounds the
  decoder's own memory. Frames may follow each other; each is decoded in turn.
* "gzip, deflate" means gzip was applied first, so decoding runs the list in reverse.
* An unknown coding anywhere in the list makes the whole body pass through untouched:
  decoding only the known layers would hand out bytes that match neither the wire nor the
  original content (httpx skips just the unknown layer). A known coding whose package is
  missing (br, zstd) is a DecodingError naming the extra to install: the body cannot be
  decoded, and handing it out undecoded would pass compressed bytes off as content.
* A body that ends in the middle of a compressed stream is not an error: HTTP framing
  already says whether the body was complete, and a truncated stream yields what it held.
  Corrupt data raises `DecodingError` naming the coding.

`SUPPORTED_ENCODINGS` and the `Accept-Encoding` the client sends (`ACCEPT_ENCODING`) are
computed at import from what is importable, so br and zstd are offered only when they can
be decoded.

Text and re-chunking helpers are in `_text_decoders.py`.
"""

from __future__ import annotations

import importlib
import sys
import zlib
from typing import Any, Final

from ._exceptions import DecodingError

__all__ = [
    "ACCEPT_ENCODING",
    "MAX_CODINGS",
    "STEP",
    "SUPPORTED_ENCODINGS",
    "BrotliDecoder",
    "ContentDecoder",
    "DeflateDecoder",
    "GzipDecoder",
    "IdentityDecoder",
    "MultiDecoder",
    "ZstdDecoder",
    "decoder_for",
]


def _load_brotli() -> Any:
    """The brotli binding to use, or None: `brotli`, else `brotlicffi`, each from 1.2 on."""
    for name in ("brotli", "brotlicffi"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        if hasattr(getattr(module, "Decompressor", None), "can_accept_more_data"):
            return module
    return None


def _load_zstd() -> Any:
    """`compression.zstd` (Python 3.14) or `backports.zstd`, or None."""
    name = "compression.zstd" if sys.version_info >= (3, 14) else "backports.zstd"
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


_brotli: Any = _load_brotli()
_zstd: Any = _load_zstd()

#: The codings this installation decodes, in the order `Accept-Encoding` lists them.
SUPPORTED_ENCODINGS: Final[tuple[str, ...]] = (
    ("gzip", "deflate") + (("br",) if _brotli else ()) + (("zstd",) if _zstd else ())
)
ACCEPT_ENCODING: Final = ", ".join(SUPPORTED_ENCODINGS).encode("ascii")

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


#: The largest zstd window accepted: RFC 9659's limit for the `zstd` content coding.
ZSTD_WINDOW_LOG_MAX: Final = 23  # 8 MiB


def _missing(coding: str) -> DecodingError:
    """The error for a known coding whose package is not installed."""
    if coding == "br":
        needs = "brotli >= 1.2 (or brotlicffi >= 1.2)"
    elif sys.version_info >= (3, 14):  # pragma: no cover (the suite runs on 3.10-3.13)
        needs = "Python's compression.zstd module (this Python was built without it)"
    else:
        needs = "backports.zstd"
    return DecodingError(
        f"The response has Content-Encoding: {coding}, which needs {needs}; it is not "
        f"installed. Install trioclient[{'brotli' if coding == 'br' else 'zstd'}], or read "
        "the body as sent with aiter_raw()."
    )


class BrotliDecoder(ContentDecoder):
    """br (RFC 7932), through brotli's `output_buffer_limit` (see the module docstring)."""

    __slots__ = ("_decoder", "_error", "_input", "_spill")

    def __init__(self) -> None:
        if _brotli is None:
            raise _missing("br")
        self._decoder = _brotli.Decompressor()
        self._error: type[Exception] = _brotli.error
        self._input = b""
        self._spill = b""  # output past `max_length` from the binding's last call

    def feed(self, data: bytes) -> None:
        """Queue `data`."""
        self._input = self._input + data if self._input else data

    def finish(self) -> None:
        """The input has ended (a truncated stream yields what it held)."""

    def read(self, max_length: int = STEP) -> bytes:
        """At most `max_length` decoded bytes; b"" when more input is needed."""
        out = self._spill or self._process(max_length)
        if len(out) <= max_length:
            self._spill = b""
            return out
        self._spill = out[max_length:]
        return out[:max_length]

    def _process(self, max_length: int) -> bytes:
        """One bounded call into the binding."""
        decoder = self._decoder
        data = b""
        # While the binding holds output it must be called with no input (its contract).
        if self._input and decoder.can_accept_more_data():
            if decoder.is_finished():
                self._input = b""
                raise DecodingError("br: invalid data: bytes after the end of the stream")
            data, self._input = self._input, b""
        try:
            out: bytes = decoder.process(data, output_buffer_limit=max_length)
        except self._error as exc:
            raise DecodingError(f"br: invalid data: {exc}") from None
        return out


# Senders use one frame, or a few; a body of thousands is an attack, not a file.
MAX_ZSTD_FRAMES = 1024


class ZstdDecoder(ContentDecoder):
    """zstd (RFC 8878): frames back to back, each decoded with `max_length` steps."""

    __slots__ = ("_decoder", "_frames", "_input")

    def __init__(self) -> None:
        if _zstd is None:
            raise _missing("zstd")
        self._decoder = self._new_frame()
        self._input = b""
        self._frames = 1

    @staticmethod
    def _new_frame() -> Any:
        options = {_zstd.DecompressionParameter.window_log_max: ZSTD_WINDOW_LOG_MAX}
        return _zstd.ZstdDecompressor(options=options)

    def feed(self, data: bytes) -> None:
        """Queue `data`."""
        self._input = self._input + data if self._input else data

    def finish(self) -> None:
        """The input has ended (a truncated frame yields what it held)."""

    def read(self, max_length: int = STEP) -> bytes:
        """At most `max_length` decoded bytes; b"" when more input is needed."""
        while True:
            decoder = self._decoder
            if decoder.eof:
                # A frame ended: what follows it starts the next one.
                rest = decoder.unused_data + self._input
                if not rest:
                    return b""
                self._frames += 1
                if self._frames > MAX_ZSTD_FRAMES:
                    # Empty frames yield nothing for a size cap to see, yet each costs a
                    # decompressor: a stream of them would keep this loop busy for free.
                    raise DecodingError(f"zstd: more than {MAX_ZSTD_FRAMES} frames in one body")
                self._decoder, self._input = self._new_frame(), rest
                continue
            if decoder.needs_input:
                if not self._input:
                    return b""
                data, self._input = self._input, b""
            else:
                data = b""  # the last call stopped at max_length: more output is waiting
            try:
                out: bytes = decoder.decompress(data, max_length)
            except _zstd.ZstdError as exc:
                raise DecodingError(f"zstd: invalid data: {exc}") from None
            if out:
                return out
            # No output with max_length > 0: the input was all taken, or the frame ended.


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
    "br": BrotliDecoder,
    "zstd": ZstdDecoder,
}


def decoder_for(content_encoding: str) -> ContentDecoder:
    """A decoder for a Content-Encoding value ("gzip", "gzip, deflate", ...).

    Case-insensitive; "identity" entries are ignored. If any listed coding is unknown, the
    body is passed through undecoded (see the module docstring). More than `MAX_CODINGS`
    codings, or br/zstd without their package, raise DecodingError.
    """
    codings = [part.strip().lower() for part in content_encoding.split(",")]
    codings = [coding for coding in codings if coding and coding != "identity"]
    if len(codings) > MAX_CODINGS:
        shown = content_encoding if len(content_encoding) <= 60 else content_encoding[:57] + "..."
        raise DecodingError(
            f"Content-Encoding lists {len(codings)} codings ({shown!r}); at most "
            f"{MAX_CODINGS} are decoded."
        )
    if any(coding not in _DECODERS for coding in codings):
        return IdentityDecoder()
    children = [_DECODERS[coding]() for coding in codings]
    if not children:
        return IdentityDecoder()
    if len(children) == 1:
        return children[0]
    return MultiDecoder(children)
