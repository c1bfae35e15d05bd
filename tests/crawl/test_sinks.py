"""Result sinks: JSON lines and WARC (read back with warcio's own ArchiveIterator)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import trio
from servers.hypercorn_server import HypercornServer
from warcio.archiveiterator import ArchiveIterator

import trioclient
from trioclient.crawl import Crawler, FetchResult, JsonLinesSink, Politeness, ResultSink, WarcSink
from trioclient.crawl._output import result_to_json

PAGE = b"<!doctype html><title>x</title><a href='/b'>b</a>"


def page(url: str = "http://127.0.0.1:1/a", **headers: str) -> FetchResult:
    return FetchResult.success(
        url,
        url,
        200,
        [("Content-Type", "text/html"), *headers.items()],
        PAGE,
        0.25,
    )


def failed(url: str = "http://127.0.0.1:1/down") -> FetchResult:
    return FetchResult.failure(url, "ConnectError", "refused", elapsed=0.5)


def test_result_to_json() -> None:
    assert result_to_json(page()) == {
        "url": "http://127.0.0.1:1/a",
        "final_url": "http://127.0.0.1:1/a",
        "status": 200,
        "headers": [["Content-Type", "text/html"]],
        "size": len(PAGE),
        "sha256": hashlib.sha256(PAGE).hexdigest(),
        "elapsed": 0.25,
        "error": None,
        "error_message": None,
    }
    record = result_to_json(failed())
    assert (record["status"], record["headers"], record["error"]) == (None, None, "ConnectError")


async def test_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    sink = JsonLinesSink(path)
    assert isinstance(sink, ResultSink)
    await sink.write(page())
    await sink.write(failed())
    assert not path.exists()  # buffered
    await sink.aclose()
    await sink.aclose()
    lines = path.read_text().splitlines()
    assert [json.loads(line)["url"] for line in lines] == [
        "http://127.0.0.1:1/a",
        "http://127.0.0.1:1/down",
    ]
    with pytest.raises(RuntimeError, match="closed"):
        await sink.write(page())
    async with JsonLinesSink(path, append=True) as again:
        await again.write(page("http://127.0.0.1:1/\u00e9"))
    assert len(path.read_text(encoding="utf-8").splitlines()) == 3
    assert "\u00e9" in path.read_text(encoding="utf-8")


async def test_jsonl_flushes_at_64_kib_and_on_cancel(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    sink = JsonLinesSink(path)
    big = FetchResult.failure("http://127.0.0.1:1/", "ReadError", "x" * 1000)
    for _ in range(100):
        await sink.write(big)
    assert 0 < path.stat().st_size < 100 * 1000  # the first 64 KiB went out, not the rest
    with trio.CancelScope() as scope:
        scope.cancel()
        await sink.aclose()  # shielded: still writes everything
    assert len(path.read_text().splitlines()) == 100


async def test_empty_jsonl_is_an_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "none.jsonl"
    await JsonLinesSink(path).aclose()
    assert path.read_bytes() == b""


def read_warc(path: Path) -> list[tuple[str, str | None, object, bytes]]:
    records = []
    with open(path, "rb") as stream:
        for record in ArchiveIterator(stream):
            records.append(
                (
                    record.rec_type,
                    record.rec_headers.get_header("WARC-Target-URI"),
                    record.http_headers,
                    record.content_stream().read(),
                )
            )
    return records


@pytest.mark.parametrize("gzip", [True, False])
async def test_warc_records(tmp_path: Path, gzip: bool) -> None:
    path = tmp_path / "out.warc.gz"
    async with WarcSink(path, gzip=gzip, user_agent="test-crawler/1") as sink:
        await sink.write(page(**{"Content-Encoding": "gzip", "Content-Length": "12"}))
        await sink.write(failed())
        teapot = FetchResult.success(
            "http://127.0.0.1:1/t", "http://127.0.0.1:1/t?x=1", 299, [], b"", 0
        )
        await sink.write(teapot)
    assert (sink.written, sink.skipped) == (2, 1)
    records = read_warc(path)
    assert [(kind, uri) for kind, uri, _, _ in records] == [
        ("warcinfo", None),
        # warcio writes a pair response first (as Heritrix does); readers pair them by
        # WARC-Concurrent-To.
        ("response", "http://127.0.0.1:1/a"),
        ("request", "http://127.0.0.1:1/a"),
        ("response", "http://127.0.0.1:1/t?x=1"),
        ("request", "http://127.0.0.1:1/t?x=1"),
    ]
    request_headers = records[2][2]
    assert request_headers.protocol == "GET"  # type: ignore[attr-defined]
    assert request_headers.get_header("User-Agent") == "test-crawler/1"  # type: ignore[attr-defined]
    assert request_headers.get_header("Host") == "127.0.0.1:1"  # type: ignore[attr-defined]
    response_headers = records[1][2]
    assert response_headers.get_statuscode() == "200"  # type: ignore[attr-defined]
    assert response_headers.get_header("X-Archive-Orig-Content-Encoding") == "gzip"  # type: ignore[attr-defined]
    assert response_headers.get_header("Content-Encoding") is None  # type: ignore[attr-defined]
    assert response_headers.get_header("Content-Length") == str(len(PAGE))  # type: ignore[attr-defined]
    assert records[1][3] == PAGE
    assert records[3][2].statusline == "299 Unknown"  # type: ignore[attr-defined]
    assert records[4][2].statusline == "/t?x=1 HTTP/1.1"  # type: ignore[attr-defined]
    if not gzip:
        raw = path.read_bytes()
        assert b"\r\nGET /t?x=1 HTTP/1.1\r\n" in raw
        assert b"\r\nHTTP/1.1 200 OK\r\n" in raw


async def test_empty_warc_is_valid(tmp_path: Path) -> None:
    path = tmp_path / "none.warc.gz"
    sink = WarcSink(path)
    await sink.aclose()
    await sink.aclose()
    assert [kind for kind, *_ in read_warc(path)] == ["warcinfo"]
    with pytest.raises(RuntimeError, match="closed"):
        await sink.write(page())


async def test_crawl_to_jsonl_and_warc(demo_server: HypercornServer, tmp_path: Path) -> None:
    jsonl, warc = tmp_path / "crawl.jsonl", tmp_path / "crawl.warc.gz"
    async with (
        trioclient.AsyncClient() as client,
        JsonLinesSink(jsonl) as lines,
        WarcSink(warc) as archive,
    ):
        stats = await Crawler(
            client,
            [demo_server.http_url + "/"],
            politeness=Politeness(rate=None, per_host=8, retry=None),
            max_depth=1,
            sinks=[lines, archive],
        ).run()
    results = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert len(results) == stats.pages
    with_body = {r["final_url"]: r["sha256"] for r in results if r["sha256"] is not None}
    records = read_warc(warc)
    responses = {uri: body for kind, uri, _, body in records if kind == "response"}
    assert len(responses) == len(with_body) == archive.written
    assert {uri: hashlib.sha256(body).hexdigest() for uri, body in responses.items()} == with_body
    assert sum(kind == "request" for kind, *_ in records) == len(responses)
