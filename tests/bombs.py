"""br and zstd bombs for the decoder and client tests: MiBs of zeros in a few KB.

Each is compressed a MiB at a time, so the zeros are never held whole. Callers skip when the
package is missing (trioclient._decoders._brotli / _zstd is None).
"""

from __future__ import annotations

import functools

import trioclient._decoders as decoders

MIB = 1024 * 1024


@functools.lru_cache(maxsize=2)
def br_of_zeros(mib: int) -> bytes:
    """br of `mib` MiB of zeros (about 1.6 KB for 1 GiB)."""
    compressor = decoders._load_brotli().Compressor(quality=5, lgwin=22)
    block = bytes(MIB)
    return b"".join([*(compressor.process(block) for _ in range(mib)), compressor.finish()])


@functools.lru_cache(maxsize=2)
def zstd_of_zeros(mib: int) -> bytes:
    """zstd of `mib` MiB of zeros (about 32 bytes per MiB)."""
    compressor = decoders._load_zstd().ZstdCompressor(level=3)
    block = bytes(MIB)
    return b"".join([*(compressor.compress(block) for _ in range(mib)), compressor.flush()])
