"""fetch_all and Politeness against the suite's hypercorn server (tests/servers/asgi_app.py)
on 127.0.0.1: HTTP/1.1, and HTTP/2 over TLS, real sockets and the real clock. Every check
counts or compares; the only time bounds are generous outer ones (nothing must take them)."""

from __future__ import annotations

import ssl

import pytest
import trio
from helpers import assert_quiet
from servers.asgi_app import GZIP_BODY, PAYLOAD_BYTES

import trioclient
from trioclient.crawl import FetchLimits, Politeness, fetch_all

PATHS = {
    "/": "ok",
    "/gzip": "ContentTypeNotAllowed",  # application/json, like /json
    "/redirect/3": "ok",
    "/status/404": "404",  # an empty body: no type to check
    "/bytes/5000": "ResponseTooLarge",  # declared: refused before reading
    "/stream/100000": "ResponseTooLarge",  # chunked: stopped at the cap
    "/json": "ContentTypeNotAllowed",
}
LIMITS = FetchLimits(
    max_body=4096, content_types=("text/plain", "application/octet-stream"), total_timeout=30
)


def outcome(result: trioclient.crawl.FetchResult) -> str:
    if result.error:
        return result.error
    return "ok" if result.ok else str(result.status)


@pytest.mark.parametrize("scheme", ["http", "https"])
async def test_a_mixed_batch_over_both_protocols(
    http_url: str, https_url: str, ssl_context: ssl.SSLContext, scheme: str
) -> None:
    base = http_url if scheme == "http" else https_url
    urls = [f"{base}{path}" for path in PATHS] * 3
    polite = Politeness(per_host=4, rate=None)  # robots.txt: a 404 here, so no rules
    with trio.fail_after(60):
        async with trioclient.Client(verify=ssl_context, http2=True) as client:
            async with fetch_all(
                client, urls, workers=6, politeness=polite, limits=LIMITS
            ) as results:
                got = [r async for r in results]
            assert_quiet(client)
    assert len(got) == len(urls)
    for result in got:
        path = result.url[len(base) :]
        assert outcome(result) == PATHS[path], (path, result.error_message)
    by_path = {r.url[len(base) :]: r for r in got}
    assert by_path["/redirect/3"].final_url == f"{base}/redirect/0"
    assert polite.robots_fetches == 1
    async with trioclient.Client(verify=ssl_context, http2=True) as client:
        gzipped = await polite.fetch(client, f"{base}/gzip", limits=FetchLimits(content_types=None))
    assert gzipped.content == PAYLOAD_BYTES != GZIP_BODY


async def test_stopping_while_requests_hang(http_url: str) -> None:
    """/hold never answers: stop once the quick pages are in; the held ones are reported
    unfetched and their connections closed."""
    urls = [f"{http_url}/hold"] * 3 + [f"{http_url}/"] * 3
    with trio.fail_after(60):
        async with trioclient.Client() as client:
            async with fetch_all(
                client, urls, workers=6, limits=FetchLimits(content_types=None)
            ) as results:
                quick = 0
                async for result in results:
                    assert result.ok
                    quick += 1
                    if quick == 3:
                        results.stop()
            assert [str(u) for u in results.unfetched] == [f"{http_url}/hold"] * 3
            assert results.undelivered == []
            assert_quiet(client)
