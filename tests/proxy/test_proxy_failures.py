"""Proxies that refuse, answer nonsense, stall or cannot be reached: raw Trio proxies.

Each failure must be a precise trioclient exception naming the proxy and the target (never
the credentials), close what it opened, leave the books quiet, and leave the client usable.
"""

from __future__ import annotations

import socket
import ssl

import pytest
import trio
from helpers import assert_quiet
from servers.raw import BufferedStream, serve_raw
from servers.raw_proxy import RelayProxy, connect_reply, refuse, relay, socks_reply, socks_server

import trioclient
from trioclient._transport._tunnel import MAX_CONNECT_HEAD

SECRET = "hunter2-secret"


async def _still_works(client: trioclient.Client, nursery: trio.Nursery, http_url: str) -> None:
    """The client is quiet and a fresh request through a working proxy succeeds."""
    assert_quiet(client)
    url = await serve_raw(nursery, RelayProxy())
    async with trioclient.Client(proxy=url) as other:
        assert (await other.get(f"{http_url}/")).status_code == 200


async def _hang_up(stream: BufferedStream) -> None:
    pass  # returning closes the connection


def _target(url: str) -> str:
    return url.split("://", 1)[1].rstrip("/")


@pytest.mark.parametrize(
    ("status", "reason"),
    [(407, "Proxy Authentication Required"), (403, "Forbidden"), (502, "Bad Gateway")],
)
async def test_connect_refusal_is_proxy_error(
    nursery: trio.Nursery, https_url: str, http_url: str, status: int, reason: str
) -> None:
    proxy_url = await serve_raw(nursery, refuse(status))
    proxy = trioclient.Proxy(proxy_url, auth=("user", SECRET))
    async with trioclient.Client(proxy=proxy) as client:
        with pytest.raises(trioclient.ProxyError) as caught:
            await client.get(https_url)
        error = caught.value
        assert (error.status_code, error.reason) == (status, reason)
        assert error.proxy == proxy_url
        assert error.target == _target(https_url)
        assert str(error) == (
            f"Proxy {proxy_url} refused to open a tunnel to {_target(https_url)}: {status} {reason}"
        )
        assert error.request.url == trioclient.URL(https_url)
        assert SECRET not in str(error)
        assert SECRET not in repr(proxy)
        await _still_works(client, nursery, http_url)


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (b"SSH-2.0-OpenSSH_9.2\r\n\r\n", "sent an invalid reply"),
        (b"HTTP/1.1 200 OK\r\n\r\nunexpected", "sent data before the tunnel was used"),
        (b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * MAX_CONNECT_HEAD, "over the limit of 16 KiB"),
        (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\nEXTRA", "sent data before"),
    ],
)
async def test_connect_garbage_is_proxy_error(
    nursery: trio.Nursery, https_url: str, http_url: str, reply: bytes, expected: str
) -> None:
    proxy_url = await serve_raw(nursery, connect_reply(reply))
    async with trioclient.Client(proxy=proxy_url) as client:
        with pytest.raises(trioclient.ProxyError, match=expected) as caught:
            await client.get(https_url)
        assert caught.value.status_code is None
        assert proxy_url in str(caught.value)
        assert f"CONNECT {_target(https_url)}" in str(caught.value)
        await _still_works(client, nursery, http_url)


async def test_proxy_closing_without_an_answer(
    nursery: trio.Nursery, https_url: str, http_url: str
) -> None:
    proxy_url = await serve_raw(nursery, connect_reply(b"", then=_hang_up))
    async with trioclient.Client(proxy=proxy_url) as client:
        with pytest.raises(trioclient.ProxyError, match="closed the connection without answering"):
            await client.get(https_url)
        await _still_works(client, nursery, http_url)


async def test_stalled_connect_is_connect_timeout_naming_the_proxy(
    nursery: trio.Nursery, https_url: str, http_url: str
) -> None:
    proxy_url = await serve_raw(nursery, connect_reply(b""))  # reads CONNECT, never answers
    timeout = trioclient.Timeout(10, connect=0.2)
    async with trioclient.Client(proxy=proxy_url, timeout=timeout) as client:
        with pytest.raises(trioclient.ConnectTimeout) as caught:
            await client.get(https_url)
        assert str(caught.value) == (
            f"Timed out waiting for proxy {proxy_url} to open a tunnel to"
            f" {_target(https_url)} (0.2 s)"
        )
        await _still_works(client, nursery, http_url)


async def test_stalled_tls_inside_the_tunnel_names_both(
    nursery: trio.Nursery, http_url: str
) -> None:
    async def silent_origin(stream: BufferedStream) -> None:
        while await stream.receive_some(65536):
            pass

    origin = await serve_raw(nursery, silent_origin)
    origin_https = origin.replace("http://", "https://")
    proxy_url = await serve_raw(nursery, RelayProxy())
    timeout = trioclient.Timeout(10, connect=0.2)
    async with trioclient.Client(proxy=proxy_url, timeout=timeout) as client:
        with pytest.raises(trioclient.ConnectTimeout) as caught:
            await client.get(origin_https)
        assert str(caught.value) == (
            f"Timed out performing the TLS handshake with {_target(origin_https)} through"
            f" proxy {proxy_url} (0.2 s)"
        )
        await _still_works(client, nursery, http_url)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("scheme", ["http", "socks5h"])
async def test_unreachable_proxy_is_connect_error_naming_it(
    scheme: str, https_url: str, socket_leak_checker
) -> None:
    port = _closed_port()
    proxy = f"{scheme}://user:{SECRET}@127.0.0.1:{port}"
    async with trioclient.Client(proxy=proxy) as client:
        with pytest.raises(trioclient.ConnectError) as caught:
            await client.get(https_url)
    assert str(caught.value).startswith(
        f"Failed while connecting to proxy {scheme}://127.0.0.1:{port} for {_target(https_url)}:"
    )
    assert "ECONNREFUSED" in str(caught.value)
    assert SECRET not in str(caught.value)
    assert socket_leak_checker.open_sockets() == []


async def test_https_proxy_choosing_h2_is_refused(
    nursery: trio.Nursery,
    https_url: str,
    tls_ca,
    h2_ssl_context: ssl.SSLContext,
) -> None:
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls_ca.issue_cert("127.0.0.1").configure_cert(server)
    server.set_alpn_protocols(["h2"])
    proxy_url = await serve_raw(nursery, RelayProxy(), tls=server)
    async with trioclient.Client(proxy=proxy_url, verify=h2_ssl_context, http2=True) as client:
        with pytest.raises(trioclient.ProxyError, match="chose 'h2' through ALPN"):
            await client.get(https_url)


# --- SOCKS5 ------------------------------------------------------------------------------------


@pytest.mark.parametrize("code", range(1, 10))
async def test_socks_reply_codes(nursery: trio.Nursery, https_url: str, code: int) -> None:
    proxy_url = (await serve_raw(nursery, socks_server(reply=socks_reply(code)))).replace(
        "http://", "socks5h://"
    )
    async with trioclient.Client(proxy=proxy_url) as client:
        with pytest.raises(trioclient.ProxyError) as caught:
            await client.get(https_url)
        error = caught.value
        assert error.status_code == code
        assert error.proxy == proxy_url
        assert error.target == _target(https_url)
        assert str(error).startswith(
            f"SOCKS5 proxy {proxy_url} refused to connect to {_target(https_url)}: reply {code} ("
        )
        assert_quiet(client)


@pytest.mark.parametrize(
    ("server", "expected"),
    [
        (socks_server(method=0x02), "chose method 2, which was not offered"),
        (socks_server(reply=b"\x04\x00\x00\x01" + bytes(6)), "expected a SOCKS5 reply"),
        (socks_server(reply=b"\x05\x00\x00\x09\x00"), "unknown address type 9"),
        (
            socks_server(reply=b"\x05\x00\x00\x01\x7f", then=_hang_up),
            "closed the connection in the middle of a reply",
        ),
        (socks_server(reply=b"", then=_hang_up), "closed the connection without replying"),
    ],
)
async def test_socks_garbage(
    nursery: trio.Nursery, https_url: str, http_url: str, server, expected: str
) -> None:
    proxy_url = (await serve_raw(nursery, server)).replace("http://", "socks5://")
    async with trioclient.Client(proxy=proxy_url) as client:
        with pytest.raises(trioclient.ProxyError) as caught:
            await client.get(https_url)
        message = str(caught.value)
        assert message.startswith(
            f"SOCKS5 proxy {proxy_url} sent an invalid reply while connecting to"
            f" {_target(https_url)}: "
        )
        assert expected in message
        await _still_works(client, nursery, http_url)


async def test_socks_reply_byte_by_byte_and_messages(nursery: trio.Nursery, http_url: str) -> None:
    host, port = _target(http_url).split(":")
    seen: list[bytes] = []

    async def to_origin(stream: BufferedStream) -> None:
        await relay(stream, host, int(port))

    # A domain-name bound address, one byte per segment.
    reply = b"\x05\x00\x00\x03\x09localhost\x00\x50"
    server = socks_server(method=2, reply=reply, seen=seen, byte_by_byte=True, then=to_origin)
    proxy_url = (await serve_raw(nursery, server)).replace("http://", "socks5h://")
    proxy = trioclient.Proxy(proxy_url, auth=("ü-user", SECRET))
    async with trioclient.Client(proxy=proxy) as client:
        response = await client.get(http_url.replace("127.0.0.1", "localhost") + "/")
        assert response.text == "Hello, world!"
    greeting, credentials, connect = seen
    assert greeting == b"\x05\x02\x00\x02"
    user = "ü-user".encode()
    assert credentials == bytes([1, len(user)]) + user + bytes([len(SECRET)]) + SECRET.encode()
    assert connect == b"\x05\x01\x00\x03\x09localhost" + int(port).to_bytes(2, "big")


async def test_socks5_resolves_locally_socks5h_remotely(
    nursery: trio.Nursery, http_url: str
) -> None:
    port = int(_target(http_url).split(":")[1])
    local: list[bytes] = []
    remote: list[bytes] = []
    for scheme, seen in (("socks5", local), ("socks5h", remote)):
        server = socks_server(reply=socks_reply(5), seen=seen)
        proxy_url = (await serve_raw(nursery, server)).replace("http://", f"{scheme}://")
        async with trioclient.Client(proxy=proxy_url) as client:
            with pytest.raises(trioclient.ProxyError, match=r"reply 5 \(connection refused\)"):
                await client.get(f"http://localhost:{port}/")
    assert local[1][3] in (1, 4)  # an address: we looked the name up
    assert remote[1] == b"\x05\x01\x00\x03\x09localhost" + port.to_bytes(2, "big")


def test_proxy_model() -> None:
    proxy = trioclient.Proxy(f"socks5h://al%40ice:{SECRET}@[::1]", headers={"X-Token": SECRET})
    assert proxy.auth == ("al@ice", SECRET)
    assert str(proxy.url) == "socks5h://[::1]"
    assert proxy.port == 1080
    assert proxy.label == "socks5h://[::1]:1080"
    assert SECRET not in repr(proxy)
    assert (
        repr(proxy) == "Proxy('socks5h://[::1]', auth=('al@ice', '********'), headers=['x-token'])"
    )
    assert trioclient.Proxy("https://p.example").port == 443
    with pytest.raises(ValueError, match="must start with one of"):
        trioclient.Proxy("ftp://p.example")
    with pytest.raises(ValueError, match="1 to 255 bytes"):
        trioclient.Proxy("socks5://p.example", auth=("u", "x" * 256))
    with pytest.raises(TypeError, match="must be a URL"):
        trioclient.Client(proxy=3128)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="auth must be"):
        trioclient.Proxy("http://p.example", auth="user:pw")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="ssl_context must be"):
        trioclient.Proxy("https://p.example", ssl_context=True)  # type: ignore[arg-type]


async def test_a_host_name_socks5_cannot_carry_is_a_connect_error_before_any_io(
    nursery: trio.Nursery,
) -> None:
    """SOCKS5 carries a host name of at most 255 bytes; a longer (valid) one is refused
    before the proxy is contacted, as a trioclient error naming the proxy, not a ValueError."""
    contacted: list[bool] = []

    async def proxy(stream: BufferedStream) -> None:
        contacted.append(True)
        await stream.receive_some()
        await stream.send_all(b"\x05\x00")  # no authentication
        await stream.receive_some()

    url = await serve_raw(nursery, proxy)
    host = ".".join(["a" * 60] * 5)  # 304 bytes, every label valid
    async with trioclient.Client(proxy=url.replace("http://", "socks5h://")) as client:
        with pytest.raises(trioclient.ConnectError, match="255 bytes") as caught:
            await client.get(f"http://{host}/")
    assert "socks5h://127.0.0.1" in str(caught.value)
    assert contacted == []


async def test_endless_informational_replies_to_connect_are_a_proxy_error(
    nursery: trio.Nursery,
) -> None:
    """CONNECT has no use for 1xx replies; a proxy streaming them forever is refused after
    a few instead of holding the connect phase until its timeout (forever with None)."""

    async def proxy(stream: BufferedStream) -> None:
        await stream.receive_some()
        with trio.move_on_after(10):
            while True:
                await stream.send_all(b"HTTP/1.1 100 Continue\r\n\r\n" * 16)

    url = await serve_raw(nursery, proxy)
    async with trioclient.Client(proxy=url, timeout=trioclient.Timeout(None)) as client:
        with trio.fail_after(5), pytest.raises(trioclient.ProxyError, match="1xx"):
            await client.get("https://example.invalid/")
        assert_quiet(client)
