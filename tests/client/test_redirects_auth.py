"""Redirects and authentication end to end against hypercorn."""

from __future__ import annotations

import base64
import ssl
from collections.abc import AsyncIterator, Generator
from typing import Any
from urllib.parse import quote

import pytest

import trioclient
from trioclient._redirects import redirect_request


def auth_headers(echoed: dict[str, Any]) -> list[str]:
    return [value for key, value in echoed["headers"] if key == "authorization"]


def redirect_to(base: str, target: str, status: int = 302) -> str:
    return f"{base}/redirect-to?url={quote(target, safe='')}&status={status}"


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


@pytest.fixture
def other_origin(http_url: str) -> str:
    """The same server under another origin (host name `localhost` instead of 127.0.0.1)."""
    return http_url.replace("127.0.0.1", "localhost")


# --- following or not ------------------------------------------------------------------------


async def test_redirects_are_not_followed_by_default(http_url: str) -> None:
    async with trioclient.Client() as client:
        response = await client.get(f"{http_url}/redirect/2")
        assert response.status_code == 302
        assert response.is_redirect
        assert response.has_redirect_location
        assert response.headers["location"] == "/redirect/1"
        assert response.history == []
        next_request = response.next_request
        assert next_request is not None
        assert next_request.method == "GET"
        assert next_request.url == trioclient.URL(f"{http_url}/redirect/1")
        # The next request can be sent by hand.
        second = await client.send(next_request)
        assert second.status_code == 302
        assert second.next_request is not None
        assert second.next_request.url == trioclient.URL(f"{http_url}/redirect/0")


async def test_follow_redirects_records_history(http_url: str) -> None:
    async with trioclient.Client(follow_redirects=True) as client:
        response = await client.get(f"{http_url}/redirect/3")
    assert response.status_code == 200
    assert response.text == "done"
    assert response.url == trioclient.URL(f"{http_url}/redirect/0")
    assert response.next_request is None
    assert [r.url.path for r in response.history] == ["/redirect/3", "/redirect/2", "/redirect/1"]
    assert all(r.status_code == 302 and r.is_closed for r in response.history)
    assert response.history[1].history == response.history[:1]


async def test_per_request_follow_redirects_overrides_the_client(http_url: str) -> None:
    async with trioclient.Client(follow_redirects=True) as client:
        response = await client.get(f"{http_url}/redirect/1", follow_redirects=False)
        assert response.status_code == 302
    async with trioclient.Client() as client:
        response = await client.get(f"{http_url}/redirect/1", follow_redirects=True)
        assert response.status_code == 200


async def test_too_many_redirects(http_url: str) -> None:
    async with trioclient.Client(follow_redirects=True, max_redirects=2) as client:
        with pytest.raises(trioclient.TooManyRedirects) as info:
            await client.get(f"{http_url}/redirect/3")
        # The request whose redirect was one too many (httpx names the next one instead).
        assert info.value.request.url.path.startswith("/redirect/")
        assert (await client.get(f"{http_url}/redirect/2")).text == "done"
        # Nothing was left checked out of the pool.
        assert client.pool_statistics().in_use == 0


async def test_max_redirects_zero(http_url: str) -> None:
    async with trioclient.Client(follow_redirects=True, max_redirects=0) as client:
        with pytest.raises(trioclient.TooManyRedirects):
            await client.get(f"{http_url}/redirect/1")
        assert (await client.get(f"{http_url}/redirect/0")).text == "done"


async def test_relative_redirect(http_url: str) -> None:
    async with trioclient.Client(follow_redirects=True) as client:
        response = await client.get(f"{http_url}/relative-redirect")
    assert response.status_code == 200
    assert response.json()["path"] == "/echo"
    assert response.url == trioclient.URL(f"{http_url}/echo")


async def test_redirect_to_an_absolute_url_with_a_query(http_url: str) -> None:
    async with trioclient.Client(follow_redirects=True) as client:
        response = await client.get(redirect_to(http_url, f"{http_url}/echo?a=1&b=2"))
    assert response.json()["query"] == "a=1&b=2"


async def test_streamed_redirect_is_followed(http_url: str) -> None:
    async with (
        trioclient.Client() as client,
        client.stream("GET", f"{http_url}/redirect/2", follow_redirects=True) as response,
    ):
        assert len(response.history) == 2
        assert await response.aread() == b"done"


# --- method and body rewriting -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "method", "expected"),
    [
        (301, "POST", "GET"),
        (302, "POST", "GET"),
        (303, "POST", "GET"),
        (303, "PUT", "GET"),
        (303, "HEAD", "HEAD"),
        (301, "PUT", "PUT"),
        (307, "POST", "POST"),
        (307, "PATCH", "PATCH"),
        (308, "POST", "POST"),
        (308, "DELETE", "DELETE"),
    ],
)
async def test_redirect_method_rewriting(
    http_url: str, status: int, method: str, expected: str
) -> None:
    async with trioclient.Client(follow_redirects=True) as client:
        response = await client.request(
            method, redirect_to(http_url, "/echo", status), content=b"the body"
        )
    assert response.status_code == 200
    assert response.request.method == expected
    assert response.history[0].status_code == status
    if expected == "HEAD":
        return
    echoed = response.json()
    assert echoed["method"] == expected
    names = [key for key, _ in echoed["headers"]]
    if expected == method:
        assert echoed["body"] == "the body"
        assert "content-length" in names
    else:
        assert echoed["body"] == ""
        assert "content-length" not in names
        assert "content-type" not in names


async def test_303_drops_a_json_body_and_its_content_type(http_url: str) -> None:
    async with trioclient.Client(follow_redirects=True) as client:
        response = await client.post(redirect_to(http_url, "/echo", 303), json={"a": 1})
    echoed = response.json()
    assert (echoed["method"], echoed["body"]) == ("GET", "")
    assert "content-type" not in [key for key, _ in echoed["headers"]]


async def test_307_with_a_streamed_body_cannot_be_followed(http_url: str) -> None:
    async def body() -> AsyncIterator[bytes]:
        yield b"streamed"

    async with trioclient.Client(follow_redirects=True) as client:
        with pytest.raises(trioclient.RemoteProtocolError, match="stream"):
            await client.post(redirect_to(http_url, "/echo", 307), content=body())
        # A 303 needs no body, so it is followed.
        response = await client.post(redirect_to(http_url, "/echo", 303), content=body())
        assert response.json()["method"] == "GET"


async def test_same_origin_redirect_keeps_headers(http_url: str) -> None:
    async with trioclient.Client(follow_redirects=True) as client:
        response = await client.get(
            redirect_to(http_url, "/echo"),
            headers={"Authorization": "Bearer token", "X-Custom": "kept"},
        )
    echoed = response.json()
    assert auth_headers(echoed) == ["Bearer token"]
    assert ["x-custom", "kept"] in echoed["headers"]


# --- credentials across origins ------------------------------------------------------------------


async def test_authorization_header_is_stripped_across_origins(
    http_url: str, other_origin: str
) -> None:
    async with trioclient.Client(follow_redirects=True) as client:
        response = await client.get(
            redirect_to(http_url, f"{other_origin}/echo"),
            headers={"Authorization": "Bearer secret", "X-Custom": "kept"},
        )
    echoed = response.json()
    assert response.url.host == "localhost"
    assert auth_headers(echoed) == []
    assert ["x-custom", "kept"] in echoed["headers"]
    # The Host header follows the new origin.
    assert ["host", other_origin.removeprefix("http://")] in echoed["headers"]


async def test_auth_argument_is_not_sent_across_origins(http_url: str, other_origin: str) -> None:
    # httpx runs the auth flow once, for the request it was given; a redirect to another
    # origin never carries those credentials.
    async with trioclient.Client(follow_redirects=True, auth=("user", "pass")) as client:
        same = await client.get(redirect_to(http_url, "/echo"))
        other = await client.get(redirect_to(http_url, f"{other_origin}/echo"))
    assert auth_headers(same.json()) == [basic("user", "pass")]
    assert auth_headers(other.json()) == []


async def test_authorization_is_stripped_from_http_to_https_on_another_port(
    http_url: str, https_url: str, ssl_context: ssl.SSLContext
) -> None:
    async with trioclient.Client(follow_redirects=True, verify=ssl_context) as client:
        response = await client.get(
            redirect_to(http_url, f"{https_url}/echo"), headers={"Authorization": "Bearer s"}
        )
    echoed = response.json()
    assert echoed["scheme"] == "https"
    assert auth_headers(echoed) == []


def _redirect(url: str, location: str, headers: dict[str, str]) -> trioclient.Request:
    request = trioclient.Request("GET", url, headers=headers)
    response = trioclient.Response(302, headers={"Location": location}, request=request)
    return redirect_request(request, response)


@pytest.mark.parametrize(
    ("url", "location", "kept"),
    [
        ("http://example.org/a", "https://example.org/b", True),  # default ports: upgrade
        ("http://example.org:80/a", "https://example.org:443/b", True),
        ("http://example.org/a", "https://example.org:8443/b", False),
        ("http://example.org:8080/a", "https://example.org/b", False),
        ("https://example.org/a", "http://example.org/b", False),  # downgrade
        ("http://example.org/a", "http://example.org:81/b", False),
        ("http://example.org/a", "http://sub.example.org/b", False),
        ("http://example.org/a", "/b", True),
    ],
)
def test_which_redirects_keep_credentials(url: str, location: str, kept: bool) -> None:
    headers = {"Authorization": "Bearer s", "Proxy-Authorization": "p", "Cookie": "c=1"}
    following = _redirect(url, location, headers)
    assert ("authorization" in following.headers) is kept
    assert ("proxy-authorization" in following.headers) is kept
    assert following.headers["host"] == following.url.netloc.decode("ascii")


def test_redirect_keeps_the_fragment() -> None:
    following = _redirect("http://example.org/a#frag", "/b", {})
    assert str(following.url) == "http://example.org/b#frag"


# --- refused redirects ---------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["ftp://127.0.0.1/file", "file:///etc/passwd"])
async def test_redirect_to_an_unsupported_scheme_is_refused(http_url: str, target: str) -> None:
    async with trioclient.Client(follow_redirects=True) as client:
        with pytest.raises(trioclient.UnsupportedProtocol) as info:
            await client.get(redirect_to(http_url, target))
        assert info.value.request.url.path == "/redirect-to"
        assert client.pool_statistics().in_use == 0
        assert (await client.get(f"{http_url}/")).status_code == 200


async def test_unfollowed_redirect_to_an_unsupported_scheme_is_returned(http_url: str) -> None:
    # httpx returns the 302 (with next_request) when not following; only following fails.
    async with trioclient.Client() as client:
        response = await client.get(redirect_to(http_url, "ftp://127.0.0.1/file"))
    assert response.status_code == 302
    assert response.headers["location"] == "ftp://127.0.0.1/file"


@pytest.mark.parametrize("location", ["//", "///x"])
async def test_redirect_to_an_unusable_location(http_url: str, location: str) -> None:
    """A Location that parses but cannot be joined to the request's URL: unfollowed, the
    302 comes back without next_request; followed, RemoteProtocolError. Either way the
    connection is given back (it once stayed in use, blocking a 1-connection pool)."""
    limits = trioclient.Limits(max_connections=1)
    async with trioclient.Client(limits=limits, timeout=5) as client:
        response = await client.get(redirect_to(http_url, location))
        assert response.status_code == 302
        assert response.next_request is None
        assert client.pool_statistics().in_use == 0
        with pytest.raises(trioclient.RemoteProtocolError, match="Location"):
            await client.get(redirect_to(http_url, location), follow_redirects=True)
        assert client.pool_statistics().in_use == 0
        assert (await client.get(f"{http_url}/")).status_code == 200


# --- auth -----------------------------------------------------------------------------------------


async def test_basic_auth_tuple(http_url: str) -> None:
    async with trioclient.Client() as client:
        response = await client.get(f"{http_url}/basic-auth/user/pass", auth=("user", "pass"))
    assert response.status_code == 200
    assert response.json() == {"authenticated": True, "user": "user"}
    assert response.request.headers["authorization"] == basic("user", "pass")


async def test_basic_auth_wrong_password(http_url: str) -> None:
    async with trioclient.Client(auth=("user", "wrong")) as client:
        response = await client.get(f"{http_url}/basic-auth/user/pass")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Basic realm="test"'
    assert response.json() == {"authenticated": False}


async def test_basic_auth_object_with_bytes_and_unicode(http_url: str) -> None:
    async with trioclient.Client(auth=trioclient.BasicAuth(b"user", "pass")) as client:
        response = await client.get(f"{http_url}/basic-auth/user/pass")
    assert response.status_code == 200


async def test_per_request_auth_overrides_the_client(http_url: str) -> None:
    async with trioclient.Client(auth=("user", "wrong")) as client:
        default = await client.get(f"{http_url}/basic-auth/user/pass")
        overridden = await client.get(f"{http_url}/basic-auth/user/pass", auth=("user", "pass"))
        disabled = await client.get(f"{http_url}/echo", auth=None)
    assert default.status_code == 401
    assert overridden.status_code == 200
    assert auth_headers(disabled.json()) == []


async def test_auth_in_send(http_url: str) -> None:
    async with trioclient.Client() as client:
        request = client.build_request("GET", f"{http_url}/basic-auth/a/b")
        response = await client.send(request, auth=("a", "b"))
    assert response.status_code == 200


async def test_function_auth(http_url: str) -> None:
    calls: list[str] = []

    def sign(request: trioclient.Request) -> trioclient.Request:
        calls.append(request.method)
        request.headers["Authorization"] = basic("fn", "pw")
        return request

    async with trioclient.Client() as client:
        plain_callable = await client.get(f"{http_url}/basic-auth/fn/pw", auth=sign)
        wrapped = await client.get(
            f"{http_url}/basic-auth/fn/pw", auth=trioclient.FunctionAuth(sign)
        )
    assert plain_callable.status_code == wrapped.status_code == 200
    assert calls == ["GET", "GET"]


class ChallengeAuth(trioclient.Auth):
    """Sends the request bare first; answers a 401 challenge with Basic credentials."""

    requires_response_body = True

    def __init__(self, user: str, password: str) -> None:
        self.user = user
        self.password = password
        self.seen: list[tuple[int, Any]] = []

    def auth_flow(
        self, request: trioclient.Request
    ) -> Generator[trioclient.Request, trioclient.Response, None]:
        response = yield request
        self.seen.append((response.status_code, response.json()))
        if response.status_code != 401:
            return
        assert response.headers["www-authenticate"].startswith("Basic")
        request.headers["Authorization"] = basic(self.user, self.password)
        response = yield request
        self.seen.append((response.status_code, response.json()))


async def test_custom_auth_two_step_flow(http_url: str) -> None:
    auth = ChallengeAuth("user", "pass")
    async with trioclient.Client() as client:
        response = await client.get(f"{http_url}/basic-auth/user/pass", auth=auth)
        assert response.status_code == 200
        assert response.json()["authenticated"] is True
        assert auth.seen == [
            (401, {"authenticated": False}),
            (200, {"authenticated": True, "user": "user"}),
        ]
        # Only the final response is returned; the pool has nothing checked out.
        assert client.pool_statistics().in_use == 0
        assert client.pool_statistics().connections == 1


async def test_custom_auth_flow_wrong_credentials_returns_the_last_response(
    http_url: str,
) -> None:
    auth = ChallengeAuth("user", "nope")
    async with trioclient.Client(auth=auth) as client:
        response = await client.get(f"{http_url}/basic-auth/user/pass")
    assert response.status_code == 401
    assert [status for status, _ in auth.seen] == [401, 401]


async def test_custom_auth_flow_streamed(http_url: str) -> None:
    auth = ChallengeAuth("user", "pass")
    async with (
        trioclient.Client() as client,
        client.stream("GET", f"{http_url}/basic-auth/user/pass", auth=auth) as response,
    ):
        assert response.status_code == 200
        assert await response.aread() == b'{"authenticated": true, "user": "user"}'


async def test_auth_flow_error_closes_the_response(http_url: str) -> None:
    class Failing(trioclient.Auth):
        def auth_flow(
            self, request: trioclient.Request
        ) -> Generator[trioclient.Request, trioclient.Response, None]:
            yield request
            raise ValueError("flow failed")

    async with trioclient.Client() as client:
        with pytest.raises(ValueError, match="flow failed"):
            await client.get(f"{http_url}/bytes/100000", auth=Failing())
        assert client.pool_statistics().in_use == 0
        assert (await client.get(f"{http_url}/")).status_code == 200


def test_invalid_auth_arguments() -> None:
    with pytest.raises(TypeError, match="username"):
        trioclient.Client(auth=("only-one",))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="auth"):
        trioclient.Client(auth=42)  # type: ignore[arg-type]
