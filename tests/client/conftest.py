"""The ``any_client`` fixture: one entered client per transport, for behaviour every transport
shares (tests/client/test_shared_behaviour.py).

Each param yields a :class:`ClientUnderTest` whose ``base_url`` reaches the same routes of
``servers.asgi_app``:

=========  =====================================================================================
``http11``  ``Client()`` against hypercorn's plain listener (HTTP/1.1)
``h2c``     ``Client(http1=False, http2=True)`` against the plain listener (h2 prior knowledge)
``h2-tls``  ``Client(http2=True, verify=<test CA>)`` against the TLS listener (ALPN h2)
``mock``    ``Client(transport=ASGITransport(app))``: the same app in-process, no socket
=========  =====================================================================================

On teardown, a network client's pool must be quiet (``helpers.assert_quiet``). A test that
cannot apply to every transport carries ``@pytest.mark.network_only(reason=...)``.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from helpers import assert_quiet
from servers.asgi_app import app

import trioclient

PROTOCOLS = ["http11", "h2c", "h2-tls", "mock"]
NETWORK_PROTOCOLS = frozenset({"http11", "h2c", "h2-tls"})
HTTP_VERSIONS = {"http11": "HTTP/1.1", "h2c": "HTTP/2", "h2-tls": "HTTP/2", "mock": "HTTP/1.1"}


@dataclass(frozen=True)
class ClientUnderTest:
    """An entered client, the base URL its requests go to, and which transport it uses."""

    client: trioclient.Client
    base_url: str
    protocol: str

    @property
    def is_network(self) -> bool:
        """True for the transports that open sockets (and keep a connection pool)."""
        return self.protocol in NETWORK_PROTOCOLS

    @property
    def http_version(self) -> str:
        """What ``response.http_version`` must say over this transport."""
        return HTTP_VERSIONS[self.protocol]

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"


def _client_for(
    protocol: str, http_url: str, https_url: str, ssl_context: ssl.SSLContext
) -> tuple[trioclient.Client, str]:
    if protocol == "http11":
        return trioclient.Client(), http_url
    if protocol == "h2c":
        return trioclient.Client(http1=False, http2=True), http_url
    if protocol == "h2-tls":
        return trioclient.Client(http2=True, verify=ssl_context), https_url
    if protocol == "mock":
        # The test app annotates its scope as dict, ASGITransport's type says MutableMapping.
        transport = trioclient.ASGITransport(app)  # type: ignore[arg-type]
        return trioclient.Client(transport=transport), "http://testserver"
    raise AssertionError(f"unknown protocol {protocol!r}")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "network_only(reason): run this any_client test over the network transports only; "
        "the other params are skipped with the reason",
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Skip ``network_only`` tests at collection, so the reason shows (a skip raised inside
    the Trio run loses its message on the way out)."""
    for item in items:
        marker = item.get_closest_marker("network_only")
        callspec = getattr(item, "callspec", None)
        if marker is None or callspec is None:
            continue
        protocol = callspec.params.get("any_client")
        if protocol is not None and protocol not in NETWORK_PROTOCOLS:
            reason = marker.kwargs.get("reason") or (marker.args[0] if marker.args else "")
            item.add_marker(pytest.mark.skip(reason=f"{protocol}: {reason}"))


@pytest.fixture(params=PROTOCOLS, ids=PROTOCOLS)
async def any_client(
    request: pytest.FixtureRequest, http_url: str, https_url: str, ssl_context: ssl.SSLContext
) -> AsyncIterator[ClientUnderTest]:
    """An entered client for each transport, with the base URL serving ``servers.asgi_app``."""
    protocol: str = request.param
    client, base_url = _client_for(protocol, http_url, https_url, ssl_context)
    cut = ClientUnderTest(client, base_url, protocol)
    async with client:
        yield cut
        if cut.is_network:
            assert_quiet(client)  # whatever the test did, nothing is left in flight
