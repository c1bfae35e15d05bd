"""Log lines of proxied requests: the proxy's credentials never appear (DEBUG and INFO)."""

from __future__ import annotations

import logging
import ssl

import pytest
from servers.hypercorn_server import HypercornServer
from servers.proxy_peers import PROXY_AUTH, TinyproxyServer

import trioclient


async def test_proxy_credentials_never_logged(
    tinyproxy_auth: TinyproxyServer,
    hypercorn_server: HypercornServer,
    ssl_context: ssl.SSLContext,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="trioclient")
    user, password = PROXY_AUTH
    proxy = tinyproxy_auth.url.replace("://", f"://{user}:{password}@", 1)
    async with trioclient.Client(proxy=proxy, verify=ssl_context) as client:
        assert (await client.get(f"{hypercorn_server.https_url}/")).status_code == 200
        assert (await client.get(f"{hypercorn_server.http_url}/")).status_code == 200
    text = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("trioclient"))
    assert f"via proxy {tinyproxy_auth.url}" in text  # the connection lines name the proxy
    assert "TLS handshake with 127.0.0.1" in text  # TLS to the origin, inside the tunnel
    assert user not in text
    assert password not in text
