"""Peak RSS and wall time of trioclient against hostile bodies (issue 10). A script, not a test.

    python benchmarks/hostile.py                      # the code in this checkout
    python benchmarks/hostile.py --code /tmp/before   # another checkout (git worktree add)

Each case runs in a child process (``--child CASE``) that serves the body from a raw Trio
server on 127.0.0.1 in the same run and reads it with trioclient, then prints its wall time
and ``ru_maxrss``. The parent polls the child's VmRSS in /proc and kills it when it passes
``--max-rss-gib`` (default 3) or ``--timeout`` seconds (default 30), reporting what it saw.
Cases that use ``max_response_size`` report "unsupported" on code without it.

Cases:
  gzip-stream     1 MB gzip of 1 GiB of zeros, read with ``aiter_bytes()`` and discarded
  gzip-get-cap    the same, ``client.get(url, max_response_size=16 MiB)``
  double-stream   ``Content-Encoding: gzip, gzip``, 3.5 KB -> 2 GiB, ``aiter_bytes()``
  double-get-cap  the same, ``client.get(url, max_response_size=16 MiB)``
  endless-get-cap an endless chunked body, ``client.get(url, max_response_size=16 MiB)``
  endless-get     the same without a cap (runs until killed: the "before" behaviour)
  br-stream       1.6 KB br of 1 GiB of zeros, ``aiter_bytes()`` (needs trioclient[brotli])
  br-get-cap      the same, ``client.get(url, max_response_size=16 MiB)``
  zstd-stream     32 KB zstd of 1 GiB of zeros, ``aiter_bytes()`` (needs trioclient[zstd])
  zstd-get-cap    the same, ``client.get(url, max_response_size=16 MiB)``
"""

from __future__ import annotations

import argparse
import functools
import gzip
import json
import os
import resource
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

MIB = 1024 * 1024
CAP = 16 * MIB
CASES = (
    "gzip-stream",
    "gzip-get-cap",
    "double-stream",
    "double-get-cap",
    "endless-get-cap",
    "endless-get",
    "br-stream",
    "br-get-cap",
    "zstd-stream",
    "zstd-get-cap",
)


def gzip_of_zeros(mib: int) -> bytes:
    """gzip of `mib` MiB of zeros without holding them: one full-flushed segment per MiB."""
    block = bytes(MIB)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    segment = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    for _ in range(mib):
        crc = zlib.crc32(block, crc)
    tail = compressor.flush(zlib.Z_FINISH)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
    return header + segment * mib + tail + struct.pack("<II", crc, (mib * MIB) & 0xFFFFFFFF)


def br_of_zeros(mib: int) -> bytes:
    """br of `mib` MiB of zeros, compressed a MiB at a time."""
    import brotli

    compressor = brotli.Compressor(quality=5, lgwin=22)
    block = bytes(MIB)
    return b"".join([*(compressor.process(block) for _ in range(mib)), compressor.finish()])


def zstd_of_zeros(mib: int) -> bytes:
    """zstd of `mib` MiB of zeros, compressed a MiB at a time."""
    if sys.version_info >= (3, 14):
        from compression import zstd
    else:
        from backports import zstd

    compressor = zstd.ZstdCompressor(level=3)
    block = bytes(MIB)
    return b"".join([*(compressor.compress(block) for _ in range(mib)), compressor.flush()])


# --- the child: one case, one process ------------------------------------------------------


def child(case: str) -> None:
    import trio

    import trioclient

    if case.startswith("gzip"):
        body, encoding = gzip_of_zeros(1024), "gzip"
    elif case.startswith("double"):
        body, encoding = gzip.compress(gzip_of_zeros(2048)), "gzip, gzip"
    elif case.startswith("br"):
        body, encoding = br_of_zeros(1024), "br"
    elif case.startswith("zstd"):
        body, encoding = zstd_of_zeros(1024), "zstd"
    else:
        body, encoding = b"", ""

    async def handler(stream: trio.SocketStream) -> None:
        try:
            request = b""
            while b"\r\n\r\n" not in request:
                request += await stream.receive_some(65536)
            if encoding:
                head = (
                    f"HTTP/1.1 200 OK\r\nContent-Encoding: {encoding}\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n"
                ).encode()
                await stream.send_all(head + body)
                while await stream.receive_some(65536):
                    pass
            else:
                await stream.send_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                chunk = b"%x\r\n" % 65536 + bytes(65536) + b"\r\n"
                while True:
                    await stream.send_all(chunk)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass

    async def main() -> dict[str, object]:
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(
                functools.partial(trio.serve_tcp, handler, 0, host="127.0.0.1")
            )
            url = f"http://127.0.0.1:{listeners[0].socket.getsockname()[1]}/"
            started = time.perf_counter()
            result: dict[str, object] = {}
            timeout = trioclient.Timeout(30.0)
            try:
                if case.endswith("-cap"):
                    try:
                        client = trioclient.Client(timeout=timeout, max_response_size=CAP)
                    except TypeError:
                        nursery.cancel_scope.cancel()
                        return {"outcome": "unsupported (no max_response_size)"}
                else:
                    client = trioclient.Client(timeout=timeout)
                async with client:
                    if case.endswith("stream"):
                        total = largest = 0
                        async with client.stream("GET", url) as response:
                            async for chunk in response.aiter_bytes():
                                total += len(chunk)
                                largest = max(largest, len(chunk))
                        result["outcome"] = f"read {total} bytes, largest chunk {largest}"
                    else:
                        response = await client.get(url)
                        result["outcome"] = f"read {len(response.content)} bytes"
            except Exception as exc:
                result["outcome"] = f"{type(exc).__name__}: {str(exc)[:90]}"
            result["wall_s"] = round(time.perf_counter() - started, 2)
            nursery.cancel_scope.cancel()
            return result

    result = trio.run(main)
    # Linux reports ru_maxrss in KiB.
    result["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print(json.dumps(result))


# --- the parent: run each case under a watchdog ----------------------------------------------


def _rss_mib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) // 1024
    except OSError:
        pass
    return 0


def run_case(case: str, code: str, max_rss_mib: int, timeout: float) -> dict[str, object]:
    env = dict(os.environ, PYTHONPATH=code)
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, __file__, "--child", case],
        env=env,
        cwd="/",
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen = 0
    killed = ""
    while proc.poll() is None:
        seen = max(seen, _rss_mib(proc.pid))
        elapsed = time.perf_counter() - started
        if seen > max_rss_mib:
            killed = f"killed: RSS passed {max_rss_mib} MiB after {elapsed:.1f} s"
        elif elapsed > timeout:
            killed = f"killed: still running after {timeout:.0f} s"
        if killed:
            proc.kill()
            break
        time.sleep(0.02)
    out, err = proc.communicate()
    if killed:
        return {
            "outcome": killed,
            "wall_s": round(time.perf_counter() - started, 2),
            "peak_rss_mib": f">={seen}",
        }
    try:
        return dict(json.loads(out.strip().splitlines()[-1]))
    except (ValueError, IndexError):
        return {"outcome": f"child failed: {err.strip()[-200:]}", "peak_rss_mib": seen}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", choices=CASES, help=argparse.SUPPRESS)
    parser.add_argument(
        "--code",
        default=str(Path(__file__).resolve().parent.parent),
        help="directory holding the trioclient package to measure",
    )
    parser.add_argument("--case", action="append", choices=CASES, help="run only these cases")
    parser.add_argument("--max-rss-gib", type=float, default=3.0)
    parser.add_argument("--timeout", type=float, default=30.0)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    print(f"trioclient from {args.code}")
    print(f"{'case':<16} {'peak RSS MiB':>12} {'wall s':>7}  outcome")
    for case in args.case or CASES:
        result = run_case(case, args.code, int(args.max_rss_gib * 1024), args.timeout)
        print(
            f"{case:<16} {result.get('peak_rss_mib', '?')!s:>12} "
            f"{result.get('wall_s', '-')!s:>7}  {result['outcome']}",
            flush=True,
        )


if __name__ == "__main__":
    main()
