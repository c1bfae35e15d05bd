"""br and zstd decoders (the trioclient[brotli] and trioclient[zstd] extras).

Each test that needs a package skips, naming the extra, when it is not installed; CI installs
`.[dev]`, which includes both, so there they all run. The behaviour without them is tested
here by swapping the module-level binding for None, and in
tests/client/test_br_zstd.py by a subprocess that blocks the imports.
"""

from __future__ import annotations

import gzip
import importlib
import itertools
import sys
import tracemalloc
import types
from collections.abc import Iterator
from typing import Any

import pytest
from bombs import br_of_zeros, zstd_of_zeros
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import trioclient
import trioclient._decoders as decoders
from trioclient._decoders import (
    STEP,
    BrotliDecoder,
    ContentDecoder,
    IdentityDecoder,
    MultiDecoder,
    ZstdDecoder,
    decoder_for,
)
from trioclient._exceptions import DecodingError

MIB = 1024 * 1024

needs_brotli = pytest.mark.skipif(
    decoders._brotli is None, reason="brotli >= 1.2 not installed (pip install trioclient[brotli])"
)
needs_zstd = pytest.mark.skipif(
    decoders._zstd is None, reason="backports.zstd not installed (pip install trioclient[zstd])"
)


def _zstd() -> Any:
    return decoders._zstd


def _brotli_bindings() -> list[Any]:
    """Every installed binding that bounded decoding can use: both are tested."""
    found = []
    for name in ("brotli", "brotlicffi"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        if hasattr(module.Decompressor, "can_accept_more_data"):
            found.append(module)
    return found


@pytest.fixture(params=_brotli_bindings() or [None], ids=lambda m: getattr(m, "__name__", "none"))
def brotli(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Each installed brotli binding in turn, as the one the decoder uses."""
    if request.param is None:
        pytest.skip(
            "neither brotli nor brotlicffi >= 1.2 installed (pip install trioclient[brotli])"
        )
    monkeypatch.setattr(decoders, "_brotli", request.param)
    return request.param


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


def _feed(decoder: ContentDecoder, chunks: list[bytes]) -> bytes:
    return b"".join(decoder.decode(chunk) for chunk in chunks) + decoder.flush()


def _bounded(decoder: ContentDecoder, chunks: list[bytes], step: int) -> list[bytes]:
    """Feed chunk by chunk, reading pieces of at most `step` as the body iterator does."""
    pieces: list[bytes] = []
    for chunk in [*chunks, None]:
        if chunk is None:
            decoder.finish()
        else:
            decoder.feed(chunk)
        while piece := decoder.read(step):
            assert len(piece) <= step
            pieces.append(piece)
    return pieces


def _zstd_frame(data: bytes) -> bytes:
    return bytes(_zstd().compress(data))


cuts = st.lists(st.integers(min_value=0, max_value=10_000), max_size=8)
payloads = st.binary(max_size=2000) | st.text(max_size=500).map(str.encode)


# -- round trips ---------------------------------------------------------------------------


# The `brotli` fixture only picks a binding: sharing it across examples is fine.
_with_fixture = [HealthCheck.function_scoped_fixture]


@settings(max_examples=60, deadline=None, suppress_health_check=_with_fixture)
@given(payloads, cuts, st.integers(min_value=1, max_value=64))
def test_br_round_trips_in_any_chunking_and_step(
    brotli: Any, data: bytes, split: list[int], step: int
) -> None:
    wire = brotli.compress(data)
    assert _feed(BrotliDecoder(), _split(wire, split)) == data
    assert b"".join(_bounded(BrotliDecoder(), _split(wire, split), step)) == data


@needs_zstd
@settings(max_examples=60, deadline=None)
@given(st.lists(payloads, min_size=1, max_size=4), cuts, st.integers(min_value=1, max_value=64))
def test_zstd_concatenated_frames_round_trip_in_any_chunking_and_step(
    parts: list[bytes], split: list[int], step: int
) -> None:
    # RFC 8878: a zstd body may hold several frames back to back.
    wire = b"".join(_zstd_frame(part) for part in parts)
    assert _feed(ZstdDecoder(), _split(wire, split)) == b"".join(parts)
    assert b"".join(_bounded(ZstdDecoder(), _split(wire, split), step)) == b"".join(parts)


@needs_zstd
def test_zstd_skippable_frames_are_skipped() -> None:
    # Magic 0x184D2A50..5F, a 4-byte size, then that many bytes the decoder skips.
    skippable = b"\x50\x2a\x4d\x18" + (5).to_bytes(4, "little") + b"hello"
    wire = skippable + _zstd_frame(b"one") + skippable + _zstd_frame(b"two")
    assert _feed(ZstdDecoder(), [wire]) == b"onetwo"


@needs_zstd
@settings(max_examples=30, deadline=None, suppress_health_check=_with_fixture)
@given(payloads, cuts)
def test_stacked_gzip_br_zstd_decode_in_reverse(brotli: Any, data: bytes, split: list[int]) -> None:
    wire = _zstd_frame(brotli.compress(gzip.compress(data)))
    decoder = decoder_for("gzip, br, zstd")
    assert isinstance(decoder, MultiDecoder)
    assert _feed(decoder, _split(wire, split)) == data


def test_decoder_for_br_and_zstd() -> None:
    if decoders._brotli is not None:
        assert isinstance(decoder_for(" BR "), BrotliDecoder)
    if decoders._zstd is not None:
        assert isinstance(decoder_for("zstd"), ZstdDecoder)
    # An unknown coding beside them still passes the body through, installed or not.
    assert isinstance(decoder_for("br, compress"), IdentityDecoder)
    assert isinstance(decoder_for("zstd, x-unknown"), IdentityDecoder)


# -- bad and truncated input ----------------------------------------------------------------


def test_corrupt_br_is_a_decoding_error(brotli: Any) -> None:
    with pytest.raises(DecodingError, match=r"^br: invalid data: "):
        _feed(BrotliDecoder(), [b"\xff" * 50])


def test_bytes_after_a_br_stream_are_a_decoding_error(brotli: Any) -> None:
    wire = brotli.compress(b"hello")
    with pytest.raises(DecodingError, match=r"^br: invalid data: "):
        _feed(BrotliDecoder(), [wire + b"junk"])  # in the same chunk: the binding says so
    decoder = BrotliDecoder()
    assert decoder.decode(wire) == b"hello"
    with pytest.raises(DecodingError, match=r"^br: invalid data: bytes after the end"):
        decoder.decode(b"junk")  # in a later chunk: we say so


@needs_zstd
def test_corrupt_zstd_and_garbage_after_a_frame_are_decoding_errors() -> None:
    with pytest.raises(DecodingError, match=r"^zstd: invalid data: "):
        _feed(ZstdDecoder(), [b"\xff" * 50])
    with pytest.raises(DecodingError, match=r"^zstd: invalid data: "):
        _feed(ZstdDecoder(), [_zstd_frame(b"hello") + b"\x00\x00junk"])


def test_truncated_br_yields_what_it_held(brotli: Any) -> None:
    original = bytes(range(256)) * 400
    wire = brotli.compress(original)
    partial = _feed(BrotliDecoder(), [wire[: len(wire) // 2]])
    assert original.startswith(partial)
    assert _feed(BrotliDecoder(), []) == b""


@needs_zstd
def test_truncated_zstd_yields_what_it_held() -> None:
    original = bytes(range(256)) * 4000
    compressor = _zstd().ZstdCompressor()
    # A frame in several blocks (flushed per 64 KiB), cut in the middle.
    blocks = [
        compressor.compress(original[i : i + STEP], compressor.FLUSH_BLOCK)
        for i in range(0, len(original), STEP)
    ]
    wire = b"".join(blocks)
    partial = _feed(ZstdDecoder(), [wire[: len(blocks[0]) + len(blocks[1]) + 5]])
    assert partial[: 2 * STEP] == original[: 2 * STEP]
    assert original.startswith(partial)
    assert _feed(ZstdDecoder(), []) == b""


@needs_zstd
def test_a_zstd_window_over_8_mib_is_refused() -> None:
    # RFC 9659: the zstd content coding's window is at most 8 MiB; a larger one would make
    # the decoder allocate it (up to 2 GiB by the format).
    zstd = _zstd()
    compressor = zstd.ZstdCompressor(options={zstd.CompressionParameter.window_log: 24})
    wire = compressor.compress(b"x" * 1000) + compressor.flush()
    with pytest.raises(DecodingError, match=r"^zstd: invalid data: "):
        _feed(ZstdDecoder(), [wire])
    compressor = zstd.ZstdCompressor(options={zstd.CompressionParameter.window_log: 23})
    wire = compressor.compress(b"x" * 1000) + compressor.flush()
    assert _feed(ZstdDecoder(), [wire]) == b"x" * 1000


# -- bombs decode in bounded steps ------------------------------------------------------------


@pytest.fixture
def traced() -> Iterator[None]:
    tracemalloc.start()
    try:
        yield
    finally:
        tracemalloc.stop()


def _bomb_in_steps(decoder: ContentDecoder, wire: bytes, steps: int) -> list[int]:
    """Feed the whole bomb in one chunk, then read `steps` pieces; their sizes."""
    decoder.feed(wire)
    return [len(decoder.read(STEP)) for _ in range(steps)]


def _bounded_pieces(sizes: list[int]) -> bool:
    """Every piece at most STEP, none empty, and at least half a step on average (brotli's C
    binding passes its limit by one block, kept for the next step: 64 KiB, 32 KiB, ...)."""
    return max(sizes) <= STEP and min(sizes) > 0 and sum(sizes) >= len(sizes) * STEP // 2


def test_a_br_bomb_decodes_in_bounded_steps(brotli: Any, traced: None) -> None:
    wire = br_of_zeros(256)
    tracemalloc.reset_peak()
    sizes = _bomb_in_steps(BrotliDecoder(), wire, 64)
    assert _bounded_pieces(sizes)
    assert tracemalloc.get_traced_memory()[1] < 2 * MIB
    assert len(wire) < 3000  # a ratio of about 100,000


@needs_zstd
def test_a_zstd_bomb_decodes_in_bounded_steps(traced: None) -> None:
    wire = zstd_of_zeros(256)
    tracemalloc.reset_peak()
    sizes = _bomb_in_steps(ZstdDecoder(), wire, 64)
    assert sizes == [STEP] * 64
    assert tracemalloc.get_traced_memory()[1] < 2 * MIB


@needs_zstd
def test_a_stacked_br_zstd_bomb_decodes_in_bounded_steps(brotli: Any, traced: None) -> None:
    # zstd of a br bomb: each layer holds at most one step of the other's output.
    wire = _zstd_frame(br_of_zeros(1024))
    tracemalloc.reset_peak()
    sizes = _bomb_in_steps(decoder_for("br, zstd"), wire, 64)
    assert _bounded_pieces(sizes)
    assert tracemalloc.get_traced_memory()[1] < 2 * MIB


def test_the_whole_br_bomb_arrives(brotli: Any) -> None:
    decoder = BrotliDecoder()
    total = sum(len(piece) for piece in _bounded(decoder, [br_of_zeros(64)], STEP))
    assert total == 64 * MIB


# -- without the packages ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("coding", "attribute", "extra"), [("br", "_brotli", "brotli"), ("zstd", "_zstd", "zstd")]
)
def test_a_coding_whose_package_is_missing_is_a_clear_decoding_error(
    monkeypatch: pytest.MonkeyPatch, coding: str, attribute: str, extra: str
) -> None:
    monkeypatch.setattr(decoders, attribute, None)
    with pytest.raises(
        DecodingError, match=rf"^The response has Content-Encoding: {coding}, "
    ) as info:
        decoder_for(f"gzip, {coding}")
    assert f"Install trioclient[{extra}]" in str(info.value)
    assert "aiter_raw()" in str(info.value)


def _fake_module(name: str, *, bounded: bool) -> types.ModuleType:
    module = types.ModuleType(name)
    decompressor = type("Decompressor", (), {"process": lambda self, data: data})
    if bounded:
        decompressor.can_accept_more_data = lambda self: True  # type: ignore[attr-defined]
    module.Decompressor = decompressor  # type: ignore[attr-defined]
    return module


def test_which_brotli_binding_is_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    # `brotli` first (the extra's choice on CPython), then `brotlicffi`; only from 1.2 on.
    old, new = _fake_module("brotli", bounded=False), _fake_module("brotlicffi", bounded=True)
    monkeypatch.setitem(sys.modules, "brotli", old)
    monkeypatch.setitem(sys.modules, "brotlicffi", new)
    assert decoders._load_brotli() is new
    monkeypatch.setitem(sys.modules, "brotli", _fake_module("brotli", bounded=True))
    assert decoders._load_brotli() is sys.modules["brotli"]
    monkeypatch.setitem(sys.modules, "brotli", None)  # None in sys.modules blocks an import
    monkeypatch.setitem(sys.modules, "brotlicffi", old)
    assert decoders._load_brotli() is None


def test_zstd_is_loaded_from_the_backport_before_3_14(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = types.ModuleType("backports.zstd")
    monkeypatch.setitem(sys.modules, "backports.zstd", fake)
    monkeypatch.setitem(sys.modules, "compression.zstd", fake)
    assert decoders._load_zstd() is fake
    monkeypatch.setitem(sys.modules, "backports.zstd", None)
    monkeypatch.setitem(sys.modules, "compression.zstd", None)
    assert decoders._load_zstd() is None


def test_supported_encodings_follow_what_is_installed() -> None:
    expected = ["gzip", "deflate"]
    if decoders._brotli is not None:
        expected.append("br")
    if decoders._zstd is not None:
        expected.append("zstd")
    assert tuple(expected) == decoders.SUPPORTED_ENCODINGS
    assert ", ".join(expected).encode() == decoders.ACCEPT_ENCODING


@needs_zstd
def test_a_body_of_endless_empty_zstd_frames_is_refused() -> None:
    """An empty frame yields no output, so no size cap sees it, but each costs a new
    decompressor: a body may not hold more than MAX_ZSTD_FRAMES of them."""
    zstd = decoders._load_zstd()
    empty = zstd.compress(b"")
    decoder = decoders.ZstdDecoder()
    decoder.feed(empty * (decoders.MAX_ZSTD_FRAMES + 1))
    with pytest.raises(trioclient.DecodingError, match="frames"):
        while decoder.read():
            pass
    few = decoders.ZstdDecoder()
    few.feed(empty * 10 + zstd.compress(b"data"))
    assert few.read() == b"data"
