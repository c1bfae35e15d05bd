"""Proxies against real peers: tinyproxy (forwarding, CONNECT, Basic auth), microsocks (SOCKS5
with and without auth), nginx (TLS and HTTP/2 behind the tunnel), hypercorn (records the
headers the origin received), and a raw Trio proxy for what tinyproxy cannot do (TLS to the
proxy itself) or cannot show (the request heads a proxy received).
"""

from __future__ import annotations

import ssl

import pytest
import trio
from servers.peers import NginxServer
from servers.proxy_peers import PROXY_AUTH, MicrosocksServer, TinyproxyServer
from servers.raw import respond, serve_raw
from servers.raw_proxy import RelayProxy

import trioclient

USER, PASSWORD = PROXY_AUTH


def _with_auth(url: str) -> str:
    return url.replace("://", f"://{USER}:{PASSWORD}@", 1)


async def test_tinyproxy_forwards_http_and_tunnels_https_with_h2(
    tinyproxy: TinyproxyServer, nginx_server: NginxServer, ssl_context: ssl.SSLContext
) -> None:
    async with trioclient.Client(proxy=tinyproxy.url, verify=ssl_context, http2=True) as client:
        plain = await client.get(f"{nginx_server.http_url}/index.txt")
        assert plain.status_code == 200
        assert plain.http_version == "HTTP/1.1"
        assert plain.text == "hello from nginx\n"
        for _ in range(3):
            tls = await client.get(f"{nginx_server.https_url}/big.bin")
            assert tls.http_version == "HTTP/2"  # ALPN through the tunnel
            assert len(tls.content) == 1 << 20
        async with trio.open_nursery() as nursery:  # multiplexed over one tunnel
            for _ in range(20):
                nursery.start_soon(client.get, f"{nginx_server.https_url}/index.txt")
        stats = {s.origin: s for s in client._transport.connection_statistics()}  # type: ignore[attr-defined]
        proxy_label = tinyproxy.url.replace("http://", "http://", 1)
        assert len(stats) == 2, stats
        assert all(origin.endswith(f"via proxy {proxy_label}") for origin in stats)
        assert client.pool_statistics().in_use == 0


async def test_tinyproxy_basic_auth(
    tinyproxy_auth: TinyproxyServer, hypercorn_server, ssl_context: ssl.SSLContext
) -> None:
    """Basic auth reaches the proxy (it lets us through); the origin never sees it."""
    async with trioclient.Client(
        proxy=_with_auth(tinyproxy_auth.url), verify=ssl_context
    ) as client:
        via_tunnel = await client.get(f"{hypercorn_server.https_url}/headers")
        assert via_tunnel.status_code == 200
        names = {name.lower() for name, _ in via_tunnel.json()["headers"]}
        assert "proxy-authorization" not in names
        forwarded = await client.get(f"{hypercorn_server.http_url}/headers")
        assert forwarded.status_code == 200
    proxy = trioclient.Proxy(tinyproxy_auth.url, auth=PROXY_AUTH)
    async with trioclient.Client(proxy=proxy, verify=ssl_context) as client:
        assert (await client.get(f"{hypercorn_server.https_url}/")).status_code == 200


async def test_tinyproxy_wrong_credentials_is_proxy_error(
    tinyproxy_auth: TinyproxyServer, hypercorn_server
) -> None:
    bad = tinyproxy_auth.url.replace("://", f"://{USER}:wrong-pass@", 1)
    async with trioclient.Client(proxy=bad, verify=False) as client:
        with pytest.raises(trioclient.ProxyError) as caught:
            await client.get(f"{hypercorn_server.https_url}/")
    error = caught.value
    assert error.status_code in (401, 407)  # tinyproxy says 401
    assert error.proxy == tinyproxy_auth.url
    assert error.target is not None
    assert error.target.startswith("127.0.0.1:")
    assert "wrong-pass" not in str(error)
    assert USER not in str(error)
    # A forwarded http:// request gets the proxy's refusal as its response, as with httpx.
    async with trioclient.Client(proxy=bad) as client:
        response = await client.get(f"{hypercorn_server.http_url}/")
        assert response.status_code in (401, 407)


@pytest.mark.parametrize("scheme", ["socks5", "socks5h"])
async def test_microsocks(
    scheme: str,
    microsocks: MicrosocksServer,
    nginx_server: NginxServer,
    ssl_context: ssl.SSLContext,
) -> None:
    proxy = f"{scheme}://127.0.0.1:{microsocks.port}"
    async with trioclient.Client(proxy=proxy, verify=ssl_context, http2=True) as client:
        plain = await client.get(f"{nginx_server.http_url}/index.txt")
        assert plain.text == "hello from nginx\n"
        tls = await client.get(f"{nginx_server.https_url.replace('127.0.0.1', 'localhost')}/json")
        assert tls.http_version == "HTTP/2"
        assert tls.json() == {"hello": "nginx"}


async def test_microsocks_auth(
    microsocks_auth: MicrosocksServer, nginx_server: NginxServer, ssl_context: ssl.SSLContext
) -> None:
    good = f"socks5h://{USER}:{PASSWORD}@127.0.0.1:{microsocks_auth.port}"
    async with trioclient.Client(proxy=good, verify=ssl_context) as client:
        assert (await client.get(f"{nginx_server.https_url}/index.txt")).status_code == 200
    wrong = f"socks5://{USER}:nope@127.0.0.1:{microsocks_auth.port}"
    async with trioclient.Client(proxy=wrong, verify=ssl_context) as client:
        with pytest.raises(trioclient.ProxyError, match="rejected the user name and password"):
            await client.get(f"{nginx_server.https_url}/index.txt")
    none = f"socks5://127.0.0.1:{microsocks_auth.port}"
    async with trioclient.Client(proxy=none, verify=ssl_context) as client:
        with pytest.raises(trioclient.ProxyError, match="requires a user name and password"):
            await client.get(f"{nginx_server.http_url}/index.txt")


async def test_module_level_functions_take_proxy(
    microsocks_auth: MicrosocksServer, nginx_server: NginxServer
) -> None:
    good = f"socks5h://{USER}:{PASSWORD}@127.0.0.1:{microsocks_auth.port}"
    response = await trioclient.get(f"{nginx_server.http_url}/index.txt", proxy=good)
    assert response.text == "hello from nginx\n"
    async with trioclient.stream("GET", f"{nginx_server.http_url}/index.txt", proxy=good) as r:
        assert await r.aread() == b"hello from nginx\n"
    # Only the proxy can refuse these credentials: the request did go through it.
    wrong = f"socks5://{USER}:nope@127.0.0.1:{microsocks_auth.port}"
    with pytest.raises(trioclient.ProxyError, match="rejected the user name and password"):
        await trioclient.post(f"{nginx_server.http_url}/index.txt", proxy=wrong)


async def test_https_proxy_tls_in_tls(
    nginx_server: NginxServer,
    ssl_context: ssl.SSLContext,
    server_ssl_context: ssl.SSLContext,
) -> None:
    """TLS to the proxy, then TLS to nginx inside it, each checked against its own name."""
    proxy = RelayProxy()
    async with trio.open_nursery() as nursery:
        url = await serve_raw(nursery, proxy, tls=server_ssl_context)
        assert url.startswith("https://")
        async with trioclient.Client(proxy=url, verify=ssl_context, http2=True) as client:
            response = await client.get(f"{nginx_server.https_url}/index.txt")
            assert response.http_version == "HTTP/2"
            assert response.text == "hello from nginx\n"
            forwarded = await client.get(f"{nginx_server.http_url}/fixed")
            assert forwarded.text == "fixed response\n"
        nursery.cancel_scope.cancel()
    connect, forward = proxy.heads
    assert connect.startswith(b"CONNECT 127.0.0.1:")
    assert forward.startswith(f"GET {nginx_server.http_url}/fixed HTTP/1.1".encode())


async def test_forwarded_request_is_absolute_form_with_proxy_headers(hypercorn_server) -> None:
    proxy = RelayProxy()
    async with trio.open_nursery() as nursery:
        url = await serve_raw(nursery, proxy)
        config = trioclient.Proxy(url, auth=("alice", "pw"), headers={"X-Proxy-Token": "t"})
        async with trioclient.Client(proxy=config) as client:
            response = await client.get(f"{hypercorn_server.http_url}/headers?x=1")
            assert response.status_code == 200
            origin_saw = {name.lower() for name, _ in response.json()["headers"]}
        nursery.cancel_scope.cancel()
    (head,) = proxy.heads
    assert head.startswith(f"GET {hypercorn_server.http_url}/headers?x=1 HTTP/1.1".encode())
    assert b"Proxy-Authorization: Basic YWxpY2U6cHc=\r\n" in head
    assert b"X-Proxy-Token: t\r\n" in head
    assert "proxy-authorization" not in origin_saw  # this relay strips it, as proxies do
    # ... and the request object the caller sees never carried it.
    assert "proxy-authorization" not in response.request.headers


async def test_tunnel_is_not_reused_for_another_origin_and_direct_is_separate(
    tinyproxy: TinyproxyServer, nginx_server: NginxServer, ssl_context: ssl.SSLContext
) -> None:
    proxied = trioclient.HTTPTransport(proxy=tinyproxy.url, verify=ssl_context)
    # localhost and 127.0.0.1 are the same server, but different origins: two tunnels.
    mounts = {"all://localhost": proxied}
    async with trioclient.Client(verify=ssl_context, mounts=mounts) as client:
        by_name = nginx_server.https_url.replace("127.0.0.1", "localhost")
        for _ in range(2):
            assert (await client.get(f"{by_name}/index.txt")).status_code == 200
            assert (await client.get(f"{nginx_server.https_url}/index.txt")).status_code == 200
        tunnels = proxied.connection_statistics()
        assert sorted(s.origin.split(" ")[0] for s in tunnels) == [
            f"localhost:{nginx_server.ports[0]}"
        ]
        direct = client._transport.connection_statistics()  # type: ignore[attr-defined]
        assert [s.origin for s in direct] == [f"127.0.0.1:{nginx_server.ports[0]}"]


async def test_origin_certificate_is_checked_inside_the_tunnel(
    tinyproxy: TinyproxyServer, tls_ca, ssl_context: ssl.SSLContext
) -> None:
    """The origin's certificate is checked against the origin's name, not the proxy's."""
    other = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls_ca.issue_cert("other.test").configure_cert(other)
    async with trio.open_nursery() as nursery:
        url = await serve_raw(nursery, respond(), tls=other)  # names other.test only
        async with trioclient.Client(proxy=tinyproxy.url, verify=ssl_context) as client:
            with pytest.raises(trioclient.ConnectError) as caught:
                await client.get(url)
        nursery.cancel_scope.cancel()
    message = str(caught.value)
    assert "certificate verify failed" in message
    assert f"through proxy {tinyproxy.url}" in message


async def test_http1_false_refuses_forwarding(tinyproxy: TinyproxyServer, http_url: str) -> None:
    async with trioclient.Client(proxy=tinyproxy.url, http1=False, http2=True) as client:
        with pytest.raises(trioclient.UnsupportedProtocol, match=r"forwarded with HTTP/1\.1"):
            await client.get(http_url)
