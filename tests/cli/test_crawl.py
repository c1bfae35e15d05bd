"""`trioclient crawl` and `trioclient demo`, in-process (what coverage counts): the options
reach the crawler, the output files agree with the summary, the display and the summary
render with and without rich. The pseudo-terminal runs are in test_terminal.py."""

from __future__ import annotations

import io
import json
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_types import RunCLI
from servers.hypercorn_server import HypercornServer
from servers.redis_peer import RedisServer

from trioclient._cli import _crawl
from trioclient._cli._exit import ExitCode
from trioclient.crawl import CrawlStats, FetchResult
from trioclient.crawl._demo_site import DemoSite

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@pytest.fixture(scope="module")
def demo_site() -> Iterator[tuple[DemoSite, str]]:
    """The demo site (300 pages) under hypercorn on 127.0.0.1; its URL ends with /."""
    site = DemoSite(300, slow_seconds=0.05)
    with HypercornServer(app=site) as server:
        yield site, server.http_url + "/"


def read_lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_crawl_writes_results_warc_and_summary(
    cli: RunCLI, demo_site: tuple[DemoSite, str], tmp_path: Path
) -> None:
    site, url = demo_site
    out = tmp_path / "out"
    code, stdout, err = cli(
        "crawl", url, "--depth", "2", "--rate", "0", "--per-host", "4", "--out", str(out), "--warc"
    )
    assert (code, err) == (0, "")
    summary = json.loads((out / "summary.json").read_text())
    results = read_lines(out / "results.jsonl")
    assert len(results) == summary["pages"] > 50
    assert len({r["url"] for r in results}) == len(results)  # each URL once
    assert summary["statuses"]["200"] > 0
    assert (out / "crawl.warc.gz").stat().st_size > 0
    text = stdout.decode()
    assert "Crawl summary" in text
    assert re.search(rf"pages\s+│\s+{summary['pages']:,} \(", text)
    assert f"\nwrote {out / 'results.jsonl'}\n" in text
    assert f"\nwrote {out / 'crawl.warc.gz'}\n" in text
    assert text.endswith(f"\nwrote {out / 'summary.json'}\n")
    # Depth 2 from / reaches pages 0..72 (8 children a level), not all 300.
    assert summary["frontier"]["done"] == summary["pages"]
    assert site.hits["/page/299"] == 0 or summary["pages"] < 300


def test_crawl_filters_and_limits(
    cli: RunCLI, demo_site: tuple[DemoSite, str], tmp_path: Path
) -> None:
    _, url = demo_site
    code, _, _ = cli(
        "crawl",
        url,
        "--rate",
        "0",
        "--max-pages",
        "15",
        "--exclude",
        "/r/",
        "--include",
        "/page/",
        "--no-robots",
        "--user-agent",
        "test-crawler/1",
        "--out",
        str(tmp_path),
    )
    assert code == 0
    results = read_lines(tmp_path / "results.jsonl")
    assert len(results) == 15
    assert all("/page/" in str(r["url"]) or r["url"] == url for r in results)


def test_demo_crawls_the_whole_site(cli: RunCLI, tmp_path: Path) -> None:
    code, stdout, err = cli("demo", "--pages", "120", "--out", str(tmp_path))
    assert (code, err) == (0, "")
    text = stdout.decode()
    assert re.match(r"Serving a demo site of 120 pages on http://127\.0\.0\.1:\d+/ ", text)
    summary = json.loads((tmp_path / "summary.json").read_text())
    # Every page, plus the redirects, 404s, robots-disallowed and JSON links they carry.
    assert summary["statuses"]["200"] >= 120
    assert summary["errors"]["RobotsDisallowed"] > 0
    assert summary["frontier"]["queued"] == 0
    assert len(read_lines(tmp_path / "results.jsonl")) == summary["pages"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["crawl"], "give a URL to start from"),
        (["crawl", "http://127.0.0.1:1/", "--warc"], "--warc needs --out DIR"),
        (["demo", "--warc"], "--warc needs --out DIR"),
        (["crawl", "http://127.0.0.1:1/", "--name", "x"], "--name goes with --redis"),
        (["crawl", "http://127.0.0.1:1/", "--exclude", "("], "not a regular expression: '('"),
        (["crawl", "http://127.0.0.1:1/", "--rate", "-1"], "--rate: must be 0 or more"),
        (["crawl", "http://127.0.0.1:1/", "--rate", "x"], "--rate: not a number"),
        (["crawl", "http://127.0.0.1:1/", "--concurrency", "0"], "must be 1 or more"),
        (["demo", "--pages", "0"], "--pages: must be 1 or more"),
    ],
)
def test_usage_errors(cli: RunCLI, argv: list[str], message: str) -> None:
    code, out, err = cli(*argv)
    assert code == ExitCode.USAGE
    assert out == b""
    assert err.startswith("error: ")
    assert message in err


def test_crawl_errors(cli: RunCLI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, _, err = cli("crawl", "http://127.0.0.1:1/", "--out", str(blocker / "dir"))
    assert code == ExitCode.OUTPUT_FAILED
    assert err.startswith(f"error: cannot create {blocker / 'dir'}: ")
    code, _, err = cli("crawl", "http://[::1/")
    assert code == ExitCode.REQUEST_FAILED
    assert err.startswith("error: InvalidURL:")
    monkeypatch.setitem(sys.modules, "selectolax", None)
    code, _, err = cli("crawl", "http://127.0.0.1:1/")
    assert code == ExitCode.REQUEST_FAILED
    assert err.startswith("error: crawling needs its extra: pip install 'trioclient[cli]'")


def _stats() -> CrawlStats:
    stats = CrawlStats(clock=lambda: 10.0)
    stats.start()
    for status, error in [(200, None), (200, None), (404, None), (None, "ReadTimeout")]:
        stats.record(
            FetchResult(
                url="http://a.test/x",
                final_url=None,
                status=status,
                headers=None,
                content=None,
                size=1500,
                sha256=None,
                elapsed=0.1,
                error=error,
                error_message=None,
            )
        )
    return stats


def test_summary_without_rich(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "rich", None)
    out = io.StringIO()
    _crawl.print_summary(_stats(), out, title="Crawl summary", outputs=["o/results.jsonl"])
    lines = out.getvalue().splitlines()
    assert lines[0] == "Crawl summary"
    assert "  pages     4 (" in lines[1]
    assert "  statuses  200: 2, 404: 1" in out.getvalue()
    assert "  errors    1 (ReadTimeout: 1)" in out.getvalue()
    assert lines[-2:] == ["    a.test  4 pages  6.0 kB  1 errors", "wrote o/results.jsonl"]


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("with_rich", [True, False])
def test_live_display(with_rich: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    if not with_rich:
        monkeypatch.setitem(sys.modules, "rich", None)
    stream = FakeTerminal()
    with _crawl._Display(_stats(), "http://a.test/", stream) as display:
        display.draw()
    text = ANSI.sub("", stream.getvalue())
    assert "crawling http://a.test/  pages 4 (0.0/s)  6.0 kB  errors 1  queued 0" in text
    assert "\n" not in text.strip()  # one line, redrawn in place
    off = io.StringIO()
    with _crawl._Display(_stats(), "x", off) as display:
        display.draw()
    assert off.getvalue() == ""


def test_two_processes_share_a_crawl_through_redis(
    redis_server: RedisServer, tmp_path: Path, child_env: dict[str, str]
) -> None:
    """`--redis` and `--name`: two `trioclient crawl` processes split one crawl, each URL
    fetched by one of them."""
    site = DemoSite(150, slow_seconds=0.05)
    with HypercornServer(app=site) as server:
        url = server.http_url + "/"
        argv = [sys.executable, "-m", "trioclient", "crawl", url, "--depth", "6", "--rate", "0"]
        argv += ["--redis", redis_server.url, "--name", f"cli-{tmp_path.name}"]
        processes = [
            subprocess.Popen(
                [*argv, "--out", str(tmp_path / name)],
                env=child_env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            for name in ("a", "b")
        ]
        outputs = [process.communicate(timeout=120) for process in processes]
    for process, (_, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, err
        assert err == b""
    urls = [r["url"] for name in ("a", "b") for r in read_lines(tmp_path / name / "results.jsonl")]
    assert len(urls) == len(set(urls))  # each URL fetched once, by one process
    assert len(urls) > 150  # the whole site (and its redirects, 404s...)
    pages = ["/", *(path for path in site.hits if path.startswith("/page/"))]
    assert len(pages) == 150  # page 0 is /
    assert all(site.hits[path] == 1 for path in pages)
    for name in ("a", "b"):
        summary = json.loads((tmp_path / name / "summary.json").read_text())
        assert summary["frontier"]["queued"] == 0


def test_unreachable_redis(child_env: dict[str, str]) -> None:
    # In a child process: coredis 6.9 leaves a connection that never connected unclosed
    # (its anyio streams warn when collected, at some later point of this process otherwise;
    # see tests/crawl/test_redis_frontier.py's collecting_coredis_leftovers).
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    redis_url = f"redis://u:pw@127.0.0.1:{port}/0"
    result = subprocess.run(
        [sys.executable, "-m", "trioclient", "crawl", "http://127.0.0.1:1/", "--redis", redis_url],
        env=child_env,
        capture_output=True,
        timeout=120,
        check=False,
    )
    err = result.stderr.decode()
    assert result.returncode == ExitCode.REQUEST_FAILED
    assert err.startswith("error: RedisFrontierError: ")
    assert err.count("\n") == 1
    assert "pw" not in err
