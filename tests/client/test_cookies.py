"""Cookies end to end: hypercorn for the flows, and a raw server on a Unix socket for the
jar's rules, where any host name reaches the one local server (`Client(uds=...)`), so
domain rules can be exercised with real names and nothing leaves the machine."""

from __future__ import annotations

import os
import ssl
import tempfile
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlsplit

import pytest
import trio
import trustme
from helpers import assert_quiet
from servers.raw import BufferedStream, read_request, response_bytes, serve_raw_unix

import trioclient


def to(base: str, target: str, **cookies: str) -> str:
    """A hypercorn URL that sets `cookies` and redirects to `target`."""
    pairs = "".join(f"&{name}={value}" for name, value in cookies.items())
    return f"{base}/cookies/redirect?to={quote(target, safe='')}{pairs}"


# --- the client's jar against hypercorn ----------------------------------------------------------


async def test_client_cookies_are_sent_and_set_cookie_persists(http_url: str) -> None:
    async with trioclient.Client(cookies={"given": "1"}) as client:
        assert (await client.get(f"{http_url}/cookies")).json() == {"cookies": {"given": "1"}}
        response = await client.get(f"{http_url}/cookies/set?session=abc&theme=dark")
        assert dict(response.cookies) == {"session": "abc", "theme": "dark"}
        assert client.cookies["session"] == "abc"
        echoed = (await client.get(f"{http_url}/cookies")).json()["cookies"]
        assert echoed == {"given": "1", "session": "abc", "theme": "dark"}
        # The jar is mutable and the client reads it on every request.
        del client.cookies["theme"]
        client.cookies.set("added", "2")
        echoed = (await client.get(f"{http_url}/cookies")).json()["cookies"]
        assert echoed == {"given": "1", "session": "abc", "added": "2"}
        client.cookies = {"only": "this"}  # type: ignore[assignment]
        assert (await client.get(f"{http_url}/cookies")).json()["cookies"] == {"only": "this"}
        assert isinstance(client.cookies, trioclient.Cookies)


async def test_login_flow_sets_a_cookie_on_every_hop(http_url: str) -> None:
    """Each redirect hop's Set-Cookie is in the jar before the next hop is sent."""
    final = f"{http_url}/cookies"
    second = to(http_url, final, step2="b")
    first = to(http_url, second, step1="a")
    async with trioclient.Client(follow_redirects=True) as client:
        response = await client.post(first, data={"user": "me"})
        assert response.json() == {"cookies": {"step1": "a", "step2": "b"}}
        sent = [hop.request.headers.get("cookie") for hop in [*response.history, response]]
        assert sent == [None, "step1=a", "step1=a; step2=b"]
        assert dict(client.cookies) == {"step1": "a", "step2": "b"}
        assert_quiet(client)


async def test_redirect_to_another_origin_carries_no_host_cookie(http_url: str) -> None:
    other = http_url.replace("127.0.0.1", "localhost")
    async with trioclient.Client(follow_redirects=True) as client:
        await client.get(f"{http_url}/cookies/set?session=secret")
        client.cookies.set("pinned", "1", domain="127.0.0.1")
        response = await client.get(
            to(http_url, f"{other}/cookies", more="x"),
            cookies={"per_request": "y"},
            headers={"Cookie": "explicit=z"},
        )
        # Neither the server's host-only cookies, nor cookies pinned to the first host, nor
        # the request's own cookies or Cookie header go to another origin.
        assert response.json() == {"cookies": {}}
        assert response.request.url.host == "localhost"
        # The first hop carried the caller's explicit header (it wins over the jar).
        assert response.history[0].request.headers["cookie"] == "explicit=z"
        # Back on the first origin, the jar's cookies (including `more`) are sent again.
        echoed = (await client.get(f"{http_url}/cookies")).json()["cookies"]
        assert echoed == {"session": "secret", "pinned": "1", "more": "x"}


async def test_a_cookie_set_without_a_domain_goes_everywhere(http_url: str) -> None:
    """httpx's rule for cookies set by hand: no domain means every host (docs/cookies.md)."""
    other = http_url.replace("127.0.0.1", "localhost")
    async with trioclient.Client(cookies={"everywhere": "1"}, follow_redirects=True) as client:
        response = await client.get(to(http_url, f"{other}/cookies"))
        assert response.json() == {"cookies": {"everywhere": "1"}}


async def test_per_request_cookies(http_url: str) -> None:
    async with trioclient.Client(cookies={"a": "client", "b": "client"}) as client:
        response = await client.get(f"{http_url}/cookies", cookies={"b": "request", "c": "3"})
        assert response.json()["cookies"] == {"a": "client", "b": "request", "c": "3"}
        assert "c" not in client.cookies  # the request's own, not the client's
        # They follow a redirect on the same origin...
        response = await client.get(
            to(http_url, f"{http_url}/cookies"), cookies={"c": "3"}, follow_redirects=True
        )
        assert response.json()["cookies"] == {"a": "client", "b": "client", "c": "3"}
        # ...and ride on every verb, build_request and stream.
        for verb in ("head", "options", "post", "put", "patch", "delete"):
            response = await getattr(client, verb)(f"{http_url}/echo", cookies={"v": verb})
            assert response.request.headers["cookie"] == f"a=client; b=client; v={verb}"
        request = client.build_request("GET", f"{http_url}/cookies", cookies={"d": "4"})
        assert request.headers["cookie"] == "a=client; b=client; d=4"
        async with client.stream("GET", f"{http_url}/cookies", cookies={"e": "5"}) as streamed:
            await streamed.aread()
        assert streamed.json()["cookies"] == {"a": "client", "b": "client", "e": "5"}


async def test_a_built_request_gets_cookies_set_after_it_was_built(http_url: str) -> None:
    async with trioclient.Client() as client:
        request = client.build_request("GET", f"{http_url}/cookies")
        assert "cookie" not in request.headers
        await client.get(f"{http_url}/cookies/set?late=1")
        response = await client.send(request)
        assert response.json() == {"cookies": {"late": "1"}}
        # A request made by hand gets the client's cookies too.
        response = await client.send(trioclient.Request("GET", f"{http_url}/cookies"))
        assert response.json() == {"cookies": {"late": "1"}}
        # A Request's own cookies= are merged over the client's.
        own = trioclient.Request("GET", f"{http_url}/cookies", cookies={"own": "2"})
        assert own.headers["cookie"] == "own=2"
        response = await client.send(own)
        assert response.json() == {"cookies": {"late": "1", "own": "2"}}


async def test_module_level_api_takes_cookies(http_url: str) -> None:
    response = await trioclient.get(f"{http_url}/cookies", cookies={"a": "1"})
    assert response.json() == {"cookies": {"a": "1"}}
    response = await trioclient.post(f"{http_url}/cookies", cookies=[("b", "2")])
    assert response.json() == {"cookies": {"b": "2"}}
    async with trioclient.stream("GET", f"{http_url}/cookies", cookies={"c": "3"}) as streamed:
        await streamed.aread()
        assert streamed.json() == {"cookies": {"c": "3"}}


async def test_auth_rounds_carry_cookies_set_by_earlier_rounds(http_url: str) -> None:
    class TwoRounds(trioclient.Auth):
        def auth_flow(
            self, request: trioclient.Request
        ) -> Generator[trioclient.Request, trioclient.Response, None]:
            first = trioclient.Request("GET", f"{http_url}/cookies/set?round=1")
            yield first
            yield request

    async with trioclient.Client() as client:
        response = await client.get(f"{http_url}/cookies", auth=TwoRounds())
        assert response.json() == {"cookies": {"round": "1"}}


async def test_set_cookie_over_http2(https_url: str, ssl_context: ssl.SSLContext) -> None:
    async with trioclient.Client(http2=True, verify=ssl_context) as client:
        response = await client.get(f"{https_url}/cookies/set?h2=yes")
        assert response.http_version == "HTTP/2"
        assert response.cookies["h2"] == "yes"
        response = await client.get(f"{https_url}/cookies")
        assert response.json() == {"cookies": {"h2": "yes"}}


# --- the jar's rules, with real host names over a Unix socket ------------------------------------


@dataclass
class RuleServer:
    """Records each request's host, path and Cookie header.

    ``/set?c=<Set-Cookie value>&c=...`` answers 200 with those Set-Cookie fields;
    ``/redirect?to=U&c=...`` answers 302 to U with them; anything else answers 200.
    """

    seen: list[tuple[str, str, str | None]] = field(default_factory=list)

    async def handler(self, stream: BufferedStream) -> None:
        while True:
            try:
                head, _ = await read_request(stream)
            except trio.BrokenResourceError:
                return
            lines = head.decode("latin-1").split("\r\n")
            target = lines[0].split(" ")[1]
            fields = dict(line.lower().split(": ", 1) for line in lines[1:] if ": " in line)
            cookie = next(
                (
                    line.split(": ", 1)[1]
                    for line in lines[1:]
                    if line.lower().startswith("cookie:")
                ),
                None,
            )
            url = urlsplit(target)
            self.seen.append((fields["host"], url.path, cookie))
            query = parse_qsl(url.query)
            headers = [("Set-Cookie", value) for name, value in query if name == "c"]
            if url.path.endswith("/redirect"):
                headers.append(("Location", dict(query)["to"]))
                await stream.send_all(response_bytes(302, headers))
            else:
                await stream.send_all(response_bytes(200, headers, b"ok"))

    def last(self) -> str | None:
        return self.seen[-1][2]


def _socket_path(tmp_path: Path, name: str) -> str:
    path = str(tmp_path / name)
    if len(path) < 100:
        return path
    return os.path.join(tempfile.mkdtemp(prefix="tc-"), name)  # pragma: no cover


@pytest.fixture
async def rules(
    nursery: trio.Nursery, tmp_path: Path, tls_ca: trustme.CA
) -> tuple[RuleServer, trioclient.Client]:
    """A RuleServer on two Unix sockets (plain and TLS), and a client whose http:// and
    https:// URLs reach them whatever their host name."""
    server = RuleServer()
    cert = tls_ca.issue_cert("*.example.test", "example.test", "*.app.example.test")
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_tls)
    client_tls = ssl.create_default_context()
    tls_ca.configure_trust(client_tls)
    plain, secure = _socket_path(tmp_path, "p.sock"), _socket_path(tmp_path, "s.sock")
    await serve_raw_unix(nursery, plain, server.handler)
    await serve_raw_unix(nursery, secure, server.handler, tls=server_tls)
    client = trioclient.Client(
        uds=plain, mounts={"https://": trioclient.HTTPTransport(uds=secure, verify=client_tls)}
    )
    return server, client


def set_url(base: str, *set_cookies: str, path: str = "/set") -> str:
    query = "&".join(f"c={quote(value, safe='')}" for value in set_cookies)
    return f"{base}{path}?{query}"


async def test_domain_and_host_only_rules(rules: tuple[RuleServer, trioclient.Client]) -> None:
    server, client = rules
    async with client:
        await client.get(
            set_url(
                "http://app.example.test",
                "host=1",
                "dom=2; Domain=example.test",
                "foreign=3; Domain=other.test",  # not the setter's domain: refused
            )
        )
        assert sorted(client.cookies) == ["dom", "host"]
        expected = {
            "http://app.example.test/": "host=1; dom=2",
            "http://www.example.test/": "dom=2",
            "http://example.test/": "dom=2",
            # Host-only (no Domain attribute): not even a subdomain of the host gets it.
            "http://sub.app.example.test/": "dom=2",
            "http://other.test/": None,
            "http://example.test.evil/": None,
        }
        for url, cookie in expected.items():
            await client.get(url)
            assert server.last() == cookie, url


async def test_path_rules(rules: tuple[RuleServer, trioclient.Client]) -> None:
    server, client = rules
    async with client:
        await client.get(set_url("http://app.example.test", "admin=1; Path=/admin"))
        # Without a Path attribute the default is the directory of the setting URL.
        await client.get(set_url("http://app.example.test", "docs=2", path="/docs/set"))
        expected = {
            "/admin": "admin=1",
            "/admin/users": "admin=1",
            "/administrator": None,
            "/docs/page": "docs=2",
            "/docs": "docs=2",
            "/": None,
        }
        for path, cookie in expected.items():
            await client.get(f"http://app.example.test{path}")
            assert server.last() == cookie, path


async def test_secure_cookies_go_over_https_only(
    rules: tuple[RuleServer, trioclient.Client],
) -> None:
    server, client = rules
    async with client:
        await client.get(set_url("https://app.example.test", "sec=1; Secure", "plain=2"))
        await client.get("https://app.example.test/")
        assert server.last() == "sec=1; plain=2"
        await client.get("http://app.example.test/")
        assert server.last() == "plain=2"


async def test_expiry(rules: tuple[RuleServer, trioclient.Client]) -> None:
    server, client = rules
    async with client:
        base = "http://app.example.test"
        await client.get(
            set_url(
                base,
                "a=1; Max-Age=3600",
                "b=2",
                "c=3",
                "gone=4; Expires=Thu, 01 Jan 1970 00:00:00 GMT",
            )
        )
        assert sorted(client.cookies) == ["a", "b", "c"]
        # A server deletes cookies by expiring them, with Max-Age=0 or a past Expires.
        await client.get(
            set_url(base, "b=; Max-Age=0", "c=; Expires=Thu, 01 Jan 1970 00:00:00 GMT")
        )
        assert sorted(client.cookies) == ["a"]
        # A cookie whose time ran out is not sent (the jar checks on every request).
        for cookie in client.cookies.jar:
            cookie.expires = 1
        await client.get(f"{base}/")
        assert server.last() is None


async def test_redirect_hops_follow_the_jar_rules(
    rules: tuple[RuleServer, trioclient.Client],
) -> None:
    """A login on one host that redirects to a sibling: only the domain cookie follows."""
    server, client = rules
    async with client:
        target = "http://www.example.test/home"
        start = set_url(
            "http://login.example.test", "sso=1; Domain=example.test", "local=2", path="/redirect"
        )
        response = await client.get(f"{start}&to={quote(target, safe='')}", follow_redirects=True)
        assert response.status_code == 200
        assert server.seen[-1] == ("www.example.test", "/home", "sso=1")
        # Back on the login host, both are sent.
        await client.get("http://login.example.test/")
        assert server.last() == "sso=1; local=2"


async def test_a_hand_written_cookie_header_follows_same_origin_redirects(http_url: str) -> None:
    async with trioclient.Client(follow_redirects=True) as client:
        response = await client.get(
            to(http_url, f"{http_url}/cookies", hop="1"), headers={"Cookie": "mine=1"}
        )
        # The caller's header wins over the jar on every hop of the same origin, so the
        # hop's Set-Cookie is stored but not added to it.
        assert response.json() == {"cookies": {"mine": "1"}}
        assert dict(client.cookies) == {"hop": "1"}
