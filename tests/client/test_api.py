"""The public client API end to end against hypercorn: verbs, send, streaming, module-level
functions and the client's lifecycle rules."""

from __future__ import annotations

import ssl

import pytest
import trio
from servers.asgi_app import JSON_BODY, pattern_bytes

import trioclient

VERBS = ["GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"]


# --- the verbs -----------------------------------------------------------------------------


@pytest.mark.parametrize("method", VERBS)
async def test_each_verb_method_sends_that_method(http_url: str, method: str) -> None:
    async with trioclient.Client() as client:
        verb = getattr(client, method.lower())
        response = await verb(f"{http_url}/echo")
    assert response.status_code == 200
    assert response.request.method == method
    if method == "HEAD":
        assert response.content == b""
        assert int(response.headers["content-length"]) > 0
    else:
        assert response.json()["method"] == method


@pytest.mark.parametrize("method", [*VERBS, "PROPFIND", "get"])
async def test_request_sends_any_method(http_url: str, method: str) -> None:
    async with trioclient.Client() as client:
        response = await client.request(method, f"{http_url}/echo")
    assert response.request.method == method.upper()
    if method != "HEAD":
        assert response.json()["method"] == method.upper()


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH"])
async def test_body_verbs_accept_content(http_url: str, method: str) -> None:
    async with trioclient.Client() as client:
        verb = getattr(client, method.lower())
        response = await verb(f"{http_url}/echo", content=b"payload")
    echoed = response.json()
    assert echoed["method"] == method
    assert echoed["body"] == "payload"


async def test_keyword_arguments_reach_get(http_url: str) -> None:
    async with trioclient.Client() as client:
        response = await client.get(
            f"{http_url}/echo", params={"q": "1"}, headers={"X-Test": "yes"}
        )
    echoed = response.json()
    assert echoed["query"] == "q=1"
    assert ["x-test", "yes"] in echoed["headers"]


async def test_https_request(https_url: str, ssl_context: ssl.SSLContext) -> None:
    async with trioclient.Client(verify=ssl_context) as client:
        response = await client.get(f"{https_url}/echo")
    assert response.status_code == 200
    assert response.json()["scheme"] == "https"
    assert response.url.scheme == "https"


# --- build_request + send --------------------------------------------------------------------


async def test_build_request_then_send(http_url: str) -> None:
    async with trioclient.Client(headers={"X-Client": "c"}) as client:
        request = client.build_request(
            "PUT", f"{http_url}/echo", params={"a": "1"}, content=b"body"
        )
        assert isinstance(request, trioclient.Request)
        assert request.method == "PUT"
        assert request.url == trioclient.URL(f"{http_url}/echo?a=1")
        assert request.headers["x-client"] == "c"
        assert request.headers["content-length"] == "4"
        assert request.content == b"body"
        response = await client.send(request)
    assert response.request is request
    assert response.is_closed
    echoed = response.json()
    assert (echoed["method"], echoed["query"], echoed["body"]) == ("PUT", "a=1", "body")


async def test_send_a_hand_built_request(http_url: str) -> None:
    request = trioclient.Request("POST", f"{http_url}/echo", json={"k": [1, 2]})
    async with trioclient.Client() as client:
        response = await client.send(request)
    echoed = response.json()
    assert echoed["body"] == '{"k":[1,2]}'
    assert ["content-type", "application/json"] in echoed["headers"]


async def test_build_request_timeout_and_extensions(http_url: str) -> None:
    async with trioclient.Client(timeout=7.0) as client:
        default = client.build_request("GET", f"{http_url}/")
        custom = client.build_request(
            "GET", f"{http_url}/", timeout=3.0, extensions={"custom": "x"}
        )
        response = await client.send(custom)
    assert default.extensions["timeout"] == trioclient.Timeout(7.0)
    assert custom.extensions["timeout"] == trioclient.Timeout(3.0)
    assert custom.extensions["custom"] == "x"
    assert response.text == "Hello, world!"


async def test_send_stream_true_leaves_the_body_unread(http_url: str) -> None:
    async with trioclient.Client() as client:
        request = client.build_request("GET", f"{http_url}/bytes/5000")
        response = await client.send(request, stream=True)
        try:
            assert not response.is_closed
            assert not response.is_stream_consumed
            with pytest.raises(trioclient.ResponseNotRead):
                _ = response.content
            body = await response.aread()
        finally:
            await response.aclose()
    assert body == pattern_bytes(5000)
    assert response.content == body
    assert response.is_closed
    assert response.is_stream_consumed


async def test_sequential_requests_on_one_client(http_url: str) -> None:
    async with trioclient.Client() as client:
        for n in (0, 1, 100, 70000):
            response = await client.get(f"{http_url}/bytes/{n}")
            assert response.content == pattern_bytes(n)


# --- client.stream -------------------------------------------------------------------------


async def test_stream_context_manager_streams_and_closes(http_url: str) -> None:
    async with trioclient.Client() as client:
        async with client.stream("GET", f"{http_url}/stream/20000?chunk=1000") as response:
            assert isinstance(response, trioclient.Response)
            assert response.status_code == 200
            assert not response.is_closed
            chunks = [chunk async for chunk in response.aiter_bytes()]
        assert response.is_closed
        assert b"".join(chunks) == pattern_bytes(20000)
        # The connection went back to the pool and is reusable.
        assert (await client.get(f"{http_url}/")).text == "Hello, world!"


async def test_stream_block_exit_closes_an_unread_response(http_url: str) -> None:
    async with trioclient.Client() as client:
        async with client.stream("GET", f"{http_url}/bytes/100000") as response:
            pass
        assert response.is_closed
        with pytest.raises(trioclient.StreamClosed):
            await response.aread()
        assert (await client.get(f"{http_url}/")).status_code == 200


async def test_stream_block_exit_on_exception_closes_the_response(http_url: str) -> None:
    async with trioclient.Client() as client:
        with pytest.raises(KeyError):
            async with client.stream("GET", f"{http_url}/bytes/100000") as response:
                raise KeyError("boom")
        assert response.is_closed
        assert (await client.get(f"{http_url}/")).status_code == 200


async def test_stream_with_a_request_body(http_url: str) -> None:
    async with (
        trioclient.Client() as client,
        client.stream("POST", f"{http_url}/echo", json={"a": 1}) as response,
    ):
        await response.aread()
    assert response.json()["body"] == '{"a":1}'


# --- module-level functions ----------------------------------------------------------------


@pytest.mark.parametrize("method", VERBS)
async def test_module_level_verbs(http_url: str, method: str) -> None:
    function = getattr(trioclient, method.lower())
    response = await function(f"{http_url}/echo")
    assert response.status_code == 200
    assert response.request.method == method
    assert response.is_closed
    if method != "HEAD":
        assert response.json()["method"] == method


async def test_module_level_request_with_arguments(http_url: str) -> None:
    response = await trioclient.request(
        "POST",
        f"{http_url}/echo",
        params={"x": "1"},
        headers={"X-A": "b"},
        json={"hello": "world"},
    )
    echoed = response.json()
    assert echoed["query"] == "x=1"
    assert ["x-a", "b"] in echoed["headers"]
    assert echoed["body"] == '{"hello":"world"}'


async def test_module_level_post_with_form_data(http_url: str) -> None:
    response = await trioclient.post(f"{http_url}/echo", data={"a": "1", "b": ["2", "3"]})
    assert response.json()["body"] == "a=1&b=2&b=3"


async def test_module_level_follow_redirects_and_auth(http_url: str) -> None:
    response = await trioclient.get(f"{http_url}/redirect/2")
    assert response.status_code == 302
    response = await trioclient.get(f"{http_url}/redirect/2", follow_redirects=True)
    assert response.text == "done"
    assert len(response.history) == 2
    response = await trioclient.get(f"{http_url}/basic-auth/u/p", auth=("u", "p"))
    assert response.json() == {"authenticated": True, "user": "u"}


async def test_module_level_https_with_verify(https_url: str, ca_pem_path: str) -> None:
    response = await trioclient.get(f"{https_url}/json", verify=ca_pem_path)
    assert response.json() == JSON_BODY


async def test_module_level_stream(http_url: str) -> None:
    async with trioclient.stream("GET", f"{http_url}/bytes/3000") as response:
        assert not response.is_closed
        chunks = [chunk async for chunk in response.aiter_bytes(1000)]
    assert chunks == [pattern_bytes(1000, i) for i in (0, 1000, 2000)]
    assert response.is_closed


async def test_module_level_stream_with_options(http_url: str) -> None:
    async with trioclient.stream(
        "GET",
        f"{http_url}/redirect-to?url=/basic-auth/a/b",
        follow_redirects=True,
        auth=("a", "b"),
        timeout=5.0,
    ) as response:
        await response.aread()
    assert response.status_code == 200
    assert response.json()["authenticated"] is True


async def test_module_level_stream_failure_closes_its_client() -> None:
    with pytest.raises(trioclient.UnsupportedProtocol):
        async with trioclient.stream("GET", "ftp://127.0.0.1/"):
            pass  # pragma: no cover


async def test_module_level_connect_error() -> None:
    with pytest.raises(trioclient.ConnectError):
        await trioclient.get(f"http://127.0.0.1:{_closed_port()}/")


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# --- client lifecycle ------------------------------------------------------------------------


async def test_client_never_entered_raises_client_state_error(http_url: str) -> None:
    client = trioclient.Client()
    with pytest.raises(trioclient.ClientStateError, match="async with"):
        await client.get(f"{http_url}/")
    request = client.build_request("GET", f"{http_url}/")  # building needs no open client
    with pytest.raises(trioclient.ClientStateError, match="async with"):
        await client.send(request)
    with pytest.raises(trioclient.ClientStateError, match="async with"):
        async with client.stream("GET", f"{http_url}/"):
            pass  # pragma: no cover
    assert not client.is_closed


async def test_client_used_after_exit_raises(http_url: str) -> None:
    async with trioclient.Client() as client:
        await client.get(f"{http_url}/")
    assert client.is_closed
    with pytest.raises(trioclient.ClientStateError, match="closed"):
        await client.get(f"{http_url}/")


async def test_client_used_after_aclose_raises(http_url: str) -> None:
    async with trioclient.Client() as client:
        await client.aclose()
        assert client.is_closed
        with pytest.raises(trioclient.ClientStateError):
            await client.get(f"{http_url}/")


async def test_client_cannot_be_entered_twice() -> None:
    client = trioclient.Client()
    async with client:
        with pytest.raises(trioclient.ClientStateError, match="already open"):
            await client.__aenter__()
    with pytest.raises(trioclient.ClientStateError, match="closed"):
        async with client:
            pass  # pragma: no cover


async def test_client_exit_makes_open_streamed_responses_unreadable(http_url: str) -> None:
    async with trioclient.Client() as client:
        response = await client.send(
            client.build_request("GET", f"{http_url}/bytes/200000"), stream=True
        )
    with pytest.raises(trioclient.StreamClosed, match="client"):
        await response.aread()
    assert response.is_closed


async def test_client_exit_marks_open_streamed_responses_closed(http_url: str) -> None:
    # README: leaving the block "closes every connection and every response still open".
    async with trioclient.Client() as client:
        response = await client.send(
            client.build_request("GET", f"{http_url}/bytes/200000"), stream=True
        )
    assert response.is_closed


async def test_exception_leaves_the_client_block_unwrapped(http_url: str) -> None:
    with pytest.raises(ZeroDivisionError):
        async with trioclient.Client() as client:
            await client.get(f"{http_url}/")
            1 / 0  # noqa: B018


def test_no_protocol_at_all_is_refused() -> None:
    with pytest.raises(trioclient.UnsupportedProtocol, match="no protocol"):
        trioclient.Client(http1=False, http2=False)


def test_async_client_is_an_alias_of_client() -> None:
    assert trioclient.AsyncClient is trioclient.Client


async def test_client_properties(http_url: str) -> None:
    client = trioclient.Client(
        base_url=http_url, params={"p": "1"}, headers={"X-H": "v"}, auth=("u", "p")
    )
    assert str(client.base_url) == http_url
    assert client.base_url.raw_path == b"/"
    assert dict(client.params) == {"p": "1"}
    assert client.headers["x-h"] == "v"
    assert isinstance(client.auth, trioclient.BasicAuth)
    client.auth = None
    assert client.auth is None
    client.headers = {"X-Other": "w"}
    assert client.headers["x-other"] == "w"
    assert "x-h" not in client.headers
    assert "unopened" in repr(client)
    async with client:
        assert "opened" in repr(client)
        echoed = (await client.get("/echo")).json()
        assert echoed["query"] == "p=1"
        assert ["x-other", "w"] in echoed["headers"]
    assert "closed" in repr(client)


async def test_many_concurrent_requests(http_url: str) -> None:
    results: dict[int, bytes] = {}
    async with trioclient.Client() as client:

        async def fetch(n: int) -> None:
            results[n] = (await client.get(f"{http_url}/bytes/{n}")).content

        async with trio.open_nursery() as nursery:
            for n in range(1, 21):
                nursery.start_soon(fetch, n * 100)
    assert results == {n * 100: pattern_bytes(n * 100) for n in range(1, 21)}
