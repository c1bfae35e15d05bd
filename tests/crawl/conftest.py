"""Fixtures for the crawler's tests: the demo site served by hypercorn on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import trustme
from servers.hypercorn_server import HypercornServer

from trioclient.crawl._demo_site import DemoSite

DEMO_PAGES = 300


@pytest.fixture
def demo_site() -> DemoSite:
    """A fresh demo site of DEMO_PAGES pages (fresh `hits`), slow pages 0.2 s."""
    return DemoSite(DEMO_PAGES, slow_seconds=0.2)


@pytest.fixture
def demo_server(demo_site: DemoSite, tls_ca: trustme.CA) -> Iterator[HypercornServer]:
    """`demo_site` served by hypercorn for one test (``.http_url``)."""
    with HypercornServer(app=demo_site, ca=tls_ca) as server:
        yield server
