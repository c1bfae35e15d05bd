"""The proxy environment: HTTP_PROXY/HTTPS_PROXY/ALL_PROXY/NO_PROXY rules, properties of the
NO_PROXY matcher, and a client routing through (or around) a raw proxy the environment names.
"""

from __future__ import annotations

import ipaddress

import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st
from servers.raw import serve_raw
from servers.raw_proxy import RelayProxy

import trioclient
from trioclient._proxy_env import NoProxy, ProxyEnvironment

# --- the variables ---------------------------------------------------------------------------


def test_scheme_specific_then_all_proxy() -> None:
    env = ProxyEnvironment.from_environ({"HTTP_PROXY": "http://h:1", "ALL_PROXY": "socks5h://a:2"})
    assert env.proxy_for("http", "example.org", 80) == "http://h:1"
    assert env.proxy_for("https", "example.org", 443) == "socks5h://a:2"
    assert env.proxy_for("ws", "example.org", 80) is None
    assert env.sources == {"http://h:1": "HTTP_PROXY", "socks5h://a:2": "ALL_PROXY"}


def test_lower_case_wins_even_when_empty() -> None:
    env = ProxyEnvironment.from_environ(
        {
            "https_proxy": "lower:1",
            "HTTPS_PROXY": "http://upper:2",
            "http_proxy": "",
            "HTTP_PROXY": "x:3",
        }
    )
    assert env.https == "http://lower:1"  # no scheme: an HTTP proxy
    assert env.http is None
    assert env.is_empty is False


def test_httpoxy_upper_case_http_proxy_ignored_under_cgi() -> None:
    cgi = {"HTTP_PROXY": "http://attacker:1", "REQUEST_METHOD": "GET", "HTTPS_PROXY": "s:2"}
    env = ProxyEnvironment.from_environ(cgi)
    assert env.http is None
    assert env.https == "http://s:2"
    assert ProxyEnvironment.from_environ({**cgi, "http_proxy": "ok:3"}).http == "http://ok:3"


def test_no_proxy_star_and_empty() -> None:
    assert ProxyEnvironment.from_environ({"HTTP_PROXY": "p:1", "NO_PROXY": "a, *"}).is_empty
    assert ProxyEnvironment.from_environ({}).is_empty
    assert ProxyEnvironment.from_environ({"no_proxy": "x", "NO_PROXY": "*"}).no_proxy.names == {
        "x": None
    }


@pytest.mark.parametrize(
    ("entries", "host", "port", "direct"),
    [
        ("example.com", "example.com", 443, True),
        ("example.com", "www.example.com", 443, True),
        ("example.com", "badexample.com", 443, False),
        (".example.com", "example.com", 443, True),
        ("*.example.com", "a.b.example.com", 80, True),
        ("EXAMPLE.com.", "example.COM", 80, True),
        ("example.com:8080", "example.com", 8080, True),
        ("example.com:8080", "example.com", 80, False),
        ("example.com:8080 example.com:9090", "example.com", 9090, True),
        ("10.0.0.0/8", "10.1.2.3", 80, True),
        ("10.0.0.0/8", "11.1.2.3", 80, False),
        ("10.0.0.0/8", "ten.example", 80, False),
        ("192.168.1.5", "192.168.1.5", 80, True),
        ("192.168.1.5:81", "192.168.1.5", 80, False),
        ("::1", "::1", 80, True),
        ("[::1]:8080", "::1", 8080, True),
        ("[::1]:8080", "::1", 80, False),
        ("fd00::/8", "fd12::1", 443, True),
        ("bücher.example", "xn--bcher-kva.example", 443, True),
        ("localhost", "127.0.0.1", 80, False),  # names are never resolved
        ("http://skip.example/", "skip.example", 80, True),
        ("[::1, :99999, 1.2.3.4/99, a:b:c, [x]y", "example.org", 80, False),
    ],
)
def test_no_proxy_entries(entries: str, host: str, port: int, direct: bool) -> None:
    assert NoProxy.parse(entries).matches(host, port) is direct


labels = st.from_regex(r"[a-z]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)  # not an IP
names = st.lists(labels, min_size=1, max_size=4).map(".".join)


@given(domain=names, sub=names, port=st.integers(1, 65535))
def test_a_name_covers_itself_and_its_subdomains_only(domain: str, sub: str, port: int) -> None:
    for entry in (domain, f".{domain}", f"*.{domain}", domain.upper()):
        rules = NoProxy.parse(entry)
        assert rules.matches(domain, port)
        assert rules.matches(f"{sub}.{domain}", port)
        assert not rules.matches(f"x{domain}", port)


@given(
    network=st.ip_addresses(v=4).map(int),
    prefix=st.integers(0, 32),
    address=st.ip_addresses(v=4),
)
def test_cidr_is_membership(network: int, prefix: int, address: ipaddress.IPv4Address) -> None:
    net = ipaddress.ip_network(f"{ipaddress.IPv4Address(network)}/{prefix}", strict=False)
    assert NoProxy.parse(f"a.example, {net}").matches(str(address), 80) is (address in net)


def test_a_non_ascii_digit_port_is_skipped_not_a_crash() -> None:
    # str.isdigit() accepts "\u00b2" (superscript two); int() does not.
    rules = NoProxy.parse("a.example:\u00b2, b.example")
    assert not rules.matches("a.example", 80)
    assert rules.matches("b.example", 80)


@given(st.text(max_size=60))
def test_any_no_proxy_value_parses(value: str) -> None:
    rules = NoProxy.parse(value)  # never raises; nonsense is skipped
    rules.matches("example.org", 443)
    rules.matches("::1", 443)


@given(port=st.integers(1, 65535), other=st.integers(1, 65535))
def test_port_entries(port: int, other: int) -> None:
    rules = NoProxy.parse(f"h.example:{port},[::2]:{port}")
    assert rules.matches("h.example", port)
    assert rules.matches("::2", port)
    assert rules.matches("h.example", other) is (other == port)


# --- the client ------------------------------------------------------------------------------


async def test_client_routes_through_the_environment(
    nursery: trio.Nursery, monkeypatch: pytest.MonkeyPatch, http_url: str
) -> None:
    proxy = RelayProxy()
    proxy_url = await serve_raw(nursery, proxy)
    monkeypatch.setenv("HTTP_PROXY", proxy_url.removeprefix("http://"))
    async with trioclient.Client() as client:
        assert (await client.get(f"{http_url}/")).text == "Hello, world!"
    assert len(proxy.heads) == 1
    assert proxy.heads[0].startswith(f"GET {http_url}/ HTTP/1.1".encode())

    monkeypatch.setenv("NO_PROXY", "localhost, 127.0.0.0/8")
    async with trioclient.Client() as client:
        assert (await client.get(f"{http_url}/")).status_code == 200
    assert len(proxy.heads) == 1  # went direct

    monkeypatch.setenv("REQUEST_METHOD", "GET")  # httpoxy: HTTP_PROXY no longer counts
    monkeypatch.delenv("NO_PROXY")
    async with trioclient.Client() as client:
        assert (await client.get(f"{http_url}/")).status_code == 200
    assert len(proxy.heads) == 1


async def test_explicit_settings_beat_the_environment(
    nursery: trio.Nursery, monkeypatch: pytest.MonkeyPatch, http_url: str
) -> None:
    from_env, explicit = RelayProxy(), RelayProxy()
    monkeypatch.setenv("ALL_PROXY", await serve_raw(nursery, from_env))
    explicit_url = await serve_raw(nursery, explicit)
    async with trioclient.Client(proxy=explicit_url) as client:
        await client.get(f"{http_url}/")
    async with trioclient.Client(trust_env=False) as client:
        await client.get(f"{http_url}/")
    async with trioclient.Client(transport=trioclient.HTTPTransport()) as client:
        await client.get(f"{http_url}/")
    # An explicit proxy= with a transport=: everything goes through the proxy (httpx's rule).
    async with trioclient.Client(
        proxy=explicit_url, transport=trioclient.HTTPTransport()
    ) as client:
        await client.get(f"{http_url}/")
    # A mount matching the URL beats the environment; one that does not leaves it in charge.
    async with trioclient.Client(mounts={"http://127.0.0.1": None}) as client:
        await client.get(f"{http_url}/")
    async with trioclient.Client(mounts={"https://": trioclient.HTTPTransport()}) as client:
        await client.get(f"{http_url}/")
    assert (len(from_env.heads), len(explicit.heads)) == (1, 2)


def test_invalid_environment_proxy_never_quoted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("https_proxy", "ftp://user:topsecret@proxy.example")
    with pytest.raises(ValueError, match="https_proxy is not a proxy URL") as caught:
        trioclient.Client()
    assert "topsecret" not in str(caught.value)
    trioclient.Client(trust_env=False)  # the way out the message names
