"""Content, text and line decoders, fed in random chunk splits."""

from __future__ import annotations

import gzip
import itertools
import re
import struct
import tracemalloc
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trioclient._decoders import (
    MAX_CODINGS,
    STEP,
    ContentDecoder,
    DeflateDecoder,
    GzipDecoder,
    IdentityDecoder,
    MultiDecoder,
    decoder_for,
)
from trioclient._exceptions import DecodingError
from trioclient._text_decoders import ByteChunker, LineDecoder, TextChunker, TextDecoder


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


def _feed(decoder: ContentDecoder, chunks: list[bytes]) -> bytes:
    return b"".join(decoder.decode(chunk) for chunk in chunks) + decoder.flush()


def _deflate(data: bytes, wbits: int) -> bytes:
    compressor = zlib.compressobj(wbits=wbits)
    return compressor.compress(data) + compressor.flush()


cuts = st.lists(st.integers(min_value=0, max_value=10_000), max_size=8)
payloads = st.binary(max_size=2000) | st.text(max_size=500).map(str.encode)


# -- content codings -----------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(payloads, cuts)
def test_gzip_round_trips_in_any_chunking(data: bytes, split: list[int]) -> None:
    assert _feed(GzipDecoder(), _split(gzip.compress(data), split)) == data


@settings(max_examples=60, deadline=None)
@given(st.lists(payloads, min_size=1, max_size=4), cuts, st.integers(0, 3))
def test_gzip_concatenated_members_with_zero_padding(
    parts: list[bytes], split: list[int], padding: int
) -> None:
    wire = b"".join(gzip.compress(p) + b"\x00" * padding for p in parts)
    assert _feed(GzipDecoder(), _split(wire, split)) == b"".join(parts)


@settings(max_examples=60, deadline=None)
@given(payloads, cuts, st.sampled_from([zlib.MAX_WBITS, -zlib.MAX_WBITS]))
def test_deflate_zlib_wrapped_or_raw_round_trips(data: bytes, split: list[int], wbits: int) -> None:
    assert _feed(DeflateDecoder(), _split(_deflate(data, wbits), split)) == data


@settings(max_examples=40, deadline=None)
@given(payloads, cuts)
def test_gzip_then_deflate_is_decoded_in_reverse(data: bytes, split: list[int]) -> None:
    wire = _deflate(gzip.compress(data), zlib.MAX_WBITS)
    decoder = decoder_for("gzip, deflate")
    assert isinstance(decoder, MultiDecoder)
    assert _feed(decoder, _split(wire, split)) == data


def test_trailing_garbage_after_a_gzip_member_is_ignored() -> None:
    assert _feed(GzipDecoder(), [gzip.compress(b"hello") + b"\x00\x00junk"]) == b"hello"
    assert _feed(GzipDecoder(), [gzip.compress(b"hello"), b"\x1f", b"x"]) == b"hello"
    assert _feed(GzipDecoder(), [gzip.compress(b"hello"), b"j", b"\x1f\x8b"]) == b"hello"


@pytest.mark.parametrize(
    ("coding", "decoder"), [("gzip", GzipDecoder()), ("deflate", DeflateDecoder())]
)
def test_corrupt_data_raises_decoding_error_naming_the_coding(
    coding: str, decoder: ContentDecoder
) -> None:
    # A deflate block type of 0b11 is reserved, so 0xff right after the header is invalid.
    header = gzip.compress(b"x")[:10] if coding == "gzip" else _deflate(b"x", 15)[:2]
    broken = header + b"\xff" * 20
    with pytest.raises(DecodingError, match=f"^{coding}: invalid data: "):
        _feed(decoder, [broken])


def test_not_gzip_at_all() -> None:
    with pytest.raises(DecodingError, match="gzip: invalid data"):
        GzipDecoder().decode(b"plain text, not gzip")


def test_truncated_streams_and_empty_bodies_yield_what_they_hold() -> None:
    original = bytes(range(256)) * 40
    partial = _feed(GzipDecoder(), [gzip.compress(original)[:-20]])
    assert partial
    assert original.startswith(partial)
    assert _feed(GzipDecoder(), []) == b""
    assert _feed(DeflateDecoder(), []) == b""
    assert _feed(DeflateDecoder(), [b"x"]) == b""


def test_decoder_for() -> None:
    assert isinstance(decoder_for(""), IdentityDecoder)
    assert isinstance(decoder_for("identity"), IdentityDecoder)
    assert isinstance(decoder_for("GZip"), GzipDecoder)
    assert isinstance(decoder_for("x-gzip"), GzipDecoder)
    assert isinstance(decoder_for(" identity , deflate "), DeflateDecoder)
    # One unknown layer means nothing can be decoded correctly: pass the body through.
    assert isinstance(decoder_for("compress"), IdentityDecoder)
    assert isinstance(decoder_for("compress, gzip"), IdentityDecoder)


def test_identity_and_base() -> None:
    assert _feed(IdentityDecoder(), [b"a", b"", b"b"]) == b"ab"
    with pytest.raises(NotImplementedError):
        ContentDecoder().decode(b"")
    with pytest.raises(NotImplementedError):
        ContentDecoder().flush()
    with pytest.raises(NotImplementedError):
        ContentDecoder().read()


# -- hostile bodies: bounded output per step (issue 10) ------------------------------------

MIB = 1024 * 1024


def gzip_of_zeros(mib: int) -> bytes:
    """gzip of `mib` MiB of zeros (~1 KB per MiB), built incrementally: never the zeros.

    Each MiB is one raw-deflate segment ended by a full flush, which resets the compressor,
    so every segment is the same bytes; header and trailer (CRC-32, size) are added by hand.
    """
    block = bytes(MIB)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    segment = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    for _ in range(mib):
        crc = zlib.crc32(block, crc)
    tail = compressor.flush(zlib.Z_FINISH)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
    trailer = struct.pack("<II", crc, (mib * MIB) & 0xFFFFFFFF)
    return header + segment * mib + tail + trailer


def test_gzip_of_zeros_is_real_gzip() -> None:
    assert gzip.decompress(gzip_of_zeros(3)) == bytes(3 * MIB)


def _read_pieces(decoder: ContentDecoder, count: int) -> list[int]:
    return [len(decoder.read(STEP)) for _ in range(count)]


def test_a_gzip_bomb_decodes_in_bounded_steps() -> None:
    # 1 GiB from ~1 MB: zlib.decompress() made it one 1 GiB bytes object.
    bomb = gzip_of_zeros(1024)
    assert len(bomb) < 1100 * 1024
    decoder = GzipDecoder()
    tracemalloc.start()
    try:
        decoder.feed(bomb)
        sizes = _read_pieces(decoder, 64)  # the first 4 MiB
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sizes == [STEP] * 64
    assert peak < 4 * MIB


def test_a_double_gzip_bomb_decodes_in_bounded_steps() -> None:
    # gzip, gzip: 2 GiB from a few KB. Each layer must hand on one step at a time.
    inner = gzip_of_zeros(2048)
    bomb = gzip.compress(inner)
    assert len(bomb) < 8 * 1024
    decoder = decoder_for("gzip, gzip")
    tracemalloc.start()
    try:
        decoder.feed(bomb)
        sizes = _read_pieces(decoder, 64)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sizes == [STEP] * 64
    assert peak < 4 * MIB


@settings(max_examples=30, deadline=None)
@given(payloads, cuts, st.integers(min_value=1, max_value=64))
def test_bounded_reads_give_the_same_bytes(data: bytes, split: list[int], step: int) -> None:
    wire = _deflate(gzip.compress(data * 3), zlib.MAX_WBITS)
    decoder = decoder_for("gzip, deflate")
    out: list[bytes] = []
    for chunk in _split(wire, split):
        decoder.feed(chunk)
        while piece := decoder.read(step):
            assert len(piece) <= step
            out.append(piece)
    decoder.finish()
    while piece := decoder.read(step):
        assert len(piece) <= step
        out.append(piece)
    assert b"".join(out) == data * 3


def test_stacked_codings_are_capped_and_the_error_names_the_header() -> None:
    wire = b"x"
    for _ in range(MAX_CODINGS):
        wire = gzip.compress(wire)
    assert _feed(decoder_for(", ".join(["gzip"] * MAX_CODINGS)), [wire]) == b"x"
    with pytest.raises(DecodingError, match=r"^Content-Encoding lists 6 codings .*at most 5"):
        decoder_for(", ".join(["gzip"] * (MAX_CODINGS + 1)))
    with pytest.raises(DecodingError, match=r"^Content-Encoding lists 1000 codings \('gzip, "):
        decoder_for(", ".join(["gzip"] * 1000))
    # identity entries are not codings
    assert isinstance(decoder_for(", ".join(["identity"] * 10 + ["gzip"])), GzipDecoder)


def test_identity_decoder_hands_out_bounded_pieces() -> None:
    decoder = IdentityDecoder()
    decoder.feed(b"abcdefg")
    assert [decoder.read(3), decoder.read(3), decoder.read(3), decoder.read(3)] == [
        b"abc",
        b"def",
        b"g",
        b"",
    ]


# -- text and lines ------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=300), cuts, st.sampled_from(["utf-8", "utf-16", "utf-32"]))
def test_text_decoder_survives_split_characters(text: str, split: list[int], enc: str) -> None:
    decoder = TextDecoder(enc)
    chunks = _split(text.encode(enc), split)
    assert "".join(decoder.decode(c) for c in chunks) + decoder.flush() == text


def test_text_decoder_replaces_bad_bytes() -> None:
    decoder = TextDecoder("utf-8")
    assert decoder.decode(b"ok \xff ") + decoder.decode(b"\xc3") + decoder.flush() == (
        "ok \ufffd \ufffd"
    )


def _reference_lines(text: str) -> list[str]:
    lines = re.split(r"\r\n|\r|\n", text)
    if lines[-1] == "":
        lines.pop()
    return lines


line_text = st.text(alphabet="ab \r\n\u2028\x0c", max_size=60)


@settings(max_examples=200, deadline=None)
@given(line_text, st.lists(st.integers(min_value=0, max_value=100), max_size=10))
def test_line_decoder_matches_a_one_shot_split(text: str, split: list[int]) -> None:
    points = sorted({c % (len(text) + 1) for c in split})
    bounds = [0, *points, len(text)]
    decoder = LineDecoder()
    lines: list[str] = []
    for a, b in itertools.pairwise(bounds):
        lines.extend(decoder.decode(text[a:b]))
    lines.extend(decoder.flush())
    assert lines == _reference_lines(text)


class _TooLong(Exception):
    pass


@settings(max_examples=300, deadline=None)
@given(
    line_text,
    st.lists(st.integers(min_value=0, max_value=100), max_size=10),
    st.integers(min_value=0, max_value=20),
)
def test_line_decoder_bound_fails_exactly_when_a_line_is_too_long(
    text: str, split: list[int], limit: int
) -> None:
    """Same lines as without a bound while every line fits; the error as soon as one cannot."""
    points = sorted({c % (len(text) + 1) for c in split})
    bounds = [0, *points, len(text)]
    decoder = LineDecoder(limit, lambda size: _TooLong(size))
    lines: list[str] = []
    try:
        for a, b in itertools.pairwise(bounds):
            lines.extend(decoder.decode(text[a:b]))
        lines.extend(decoder.flush())
    except _TooLong as exc:
        (size,) = exc.args
        assert size > limit
        assert any(len(line) > limit for line in _reference_lines(text))
        assert all(len(line) <= limit for line in lines)
    else:
        assert lines == _reference_lines(text)
        assert all(len(line) <= limit for line in lines)


def test_line_decoder_cr_lf_split_across_chunks() -> None:
    decoder = LineDecoder()
    assert decoder.decode("one\r") == ["one"]
    assert decoder.decode("\ntwo\r\n\rthree") == ["two", ""]
    assert decoder.decode("") == []
    assert decoder.flush() == ["three"]
    assert decoder.flush() == []


# -- re-chunking ---------------------------------------------------------------------------


@given(st.lists(st.binary(max_size=50), max_size=10), st.integers(min_value=1, max_value=17))
def test_byte_chunker_makes_exact_chunks(chunks: list[bytes], size: int) -> None:
    chunker = ByteChunker(size)
    out = [piece for chunk in chunks for piece in chunker.decode(chunk)] + chunker.flush()
    assert b"".join(out) == b"".join(chunks)
    assert all(len(piece) == size for piece in out[:-1])
    assert all(0 < len(piece) <= size for piece in out)


@given(st.lists(st.text(max_size=50), max_size=10), st.integers(min_value=1, max_value=17))
def test_text_chunker_makes_exact_chunks(chunks: list[str], size: int) -> None:
    chunker = TextChunker(size)
    out = [piece for chunk in chunks for piece in chunker.decode(chunk)] + chunker.flush()
    assert "".join(out) == "".join(chunks)
    assert all(len(piece) == size for piece in out[:-1])
    assert all(0 < len(piece) <= size for piece in out)


def test_chunkers_without_a_size_pass_chunks_through() -> None:
    assert ByteChunker().decode(b"abc") == [b"abc"]
    assert ByteChunker(None).decode(b"") == []
    assert ByteChunker().flush() == []
    assert TextChunker().decode("abc") == ["abc"]
    assert TextChunker().decode("") == []
    assert TextChunker().flush() == []


@pytest.mark.parametrize("cls", [ByteChunker, TextChunker])
def test_chunkers_refuse_non_positive_sizes(cls: type[ByteChunker | TextChunker]) -> None:
    with pytest.raises(ValueError, match="chunk_size must be a positive"):
        cls(0)
