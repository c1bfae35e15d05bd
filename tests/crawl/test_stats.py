"""CrawlStats: counting, the bounded host table, rates on Trio's clock."""

from __future__ import annotations

import json

import pytest
import trio
import trio.testing

from trioclient.crawl import CrawlStats, FetchResult


def result(url: str, status: int | None = 200, error: str | None = None) -> FetchResult:
    if error is not None:
        return FetchResult.failure(url, error, "boom", status=status)
    assert status is not None
    return FetchResult.success(url, url, status, [], b"12345", 0.1)


async def test_counts_and_rate(autojump_clock: trio.testing.MockClock) -> None:
    stats = CrawlStats()
    assert (stats.elapsed, stats.pages_per_second) == (0.0, 0.0)
    stats.start()
    stats.record(result("http://a.test/1"))
    stats.record(result("http://a.test/2", 404))
    stats.record(result("http://b.test/1", None, "ConnectError"))
    stats.record(result("http://b.test/2", 200, "ContentTypeNotAllowed"))
    stats.record(result("http://[bad/", None, "InvalidURL"))
    await trio.sleep(2)
    assert stats.pages_per_second == pytest.approx(2.5)
    stats.finish()
    await trio.sleep(2)
    assert stats.elapsed == pytest.approx(2)
    assert (stats.pages, stats.ok, stats.bytes, stats.error_count) == (5, 1, 10, 3)
    assert stats.statuses == {200: 2, 404: 1}
    assert stats.errors == {"ConnectError": 1, "ContentTypeNotAllowed": 1, "InvalidURL": 1}
    assert stats.hosts["a.test"].pages == 2
    assert stats.hosts["b.test"].errors == 2
    assert stats.hosts["<invalid>"].pages == 1
    snapshot = json.loads(json.dumps(stats.as_dict()))
    assert snapshot["statuses"] == {"200": 2, "404": 1}
    assert snapshot["hosts"]["a.test"] == {"pages": 2, "bytes": 10, "errors": 0}
    assert snapshot["pages_per_second"] == 2.5
    assert "pages=5" in repr(stats)


def test_host_table_is_bounded() -> None:
    stats = CrawlStats(max_hosts=3)
    for host in ["a", "b", "c", "a", "d", "e"]:
        stats.record(result(f"http://{host}.test/"))
    assert list(stats.hosts) == ["a.test", "d.test", "e.test"]
    assert stats.hosts_dropped == 2
    assert stats.hosts["a.test"].pages == 2
    with pytest.raises(ValueError, match="max_hosts"):
        CrawlStats(max_hosts=0)
