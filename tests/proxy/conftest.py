"""Proxy fixtures: tinyproxy and microsocks (Debian peers), each with and without auth.

Session-scoped child processes, started the first time a test asks; a missing binary skips
locally and fails in CI (`servers.peers.unavailable`).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from servers.peers import unavailable
from servers.proxy_peers import (
    PROXY_APT_PACKAGES,
    PROXY_AUTH,
    MicrosocksServer,
    TinyproxyServer,
)


@pytest.fixture(scope="session")
def tinyproxy() -> Iterator[TinyproxyServer]:
    """tinyproxy without authentication."""
    if not TinyproxyServer.available():
        unavailable("tinyproxy is not installed", PROXY_APT_PACKAGES)
    with TinyproxyServer() as server:
        yield server


@pytest.fixture(scope="session")
def tinyproxy_auth() -> Iterator[TinyproxyServer]:
    """tinyproxy wanting Basic auth with PROXY_AUTH."""
    if not TinyproxyServer.available():
        unavailable("tinyproxy is not installed", PROXY_APT_PACKAGES)
    with TinyproxyServer(auth=PROXY_AUTH) as server:
        yield server


@pytest.fixture(scope="session")
def microsocks() -> Iterator[MicrosocksServer]:
    """microsocks without authentication."""
    if not MicrosocksServer.available():
        unavailable("microsocks is not installed", PROXY_APT_PACKAGES)
    with MicrosocksServer() as server:
        yield server


@pytest.fixture(scope="session")
def microsocks_auth() -> Iterator[MicrosocksServer]:
    """microsocks wanting the user name/password method with PROXY_AUTH."""
    if not MicrosocksServer.available():
        unavailable("microsocks is not installed", PROXY_APT_PACKAGES)
    with MicrosocksServer(auth=PROXY_AUTH) as server:
        yield server
