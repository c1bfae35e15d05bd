"""Event hooks against hypercorn: every attempt seen, raising hooks, and nothing leaked."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest
import trio
from helpers import assert_quiet

import trioclient
from trioclient import Request, Response


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, Any]] = []

    async def request(self, request: Request) -> None:
        await trio.lowlevel.checkpoint()
        self.events.append(("request", request.url.path, request.headers.get("authorization")))

    async def response(self, response: Response) -> None:
        await trio.lowlevel.checkpoint()
        self.events.append(("response", response.url.path, response.status_code))

    def hooks(self) -> dict[str, list[Any]]:
        return {"request": [self.request], "response": [self.response]}


async def test_hooks_see_every_redirect_hop(http_url: str) -> None:
    recorder = Recorder()
    async with trioclient.Client(event_hooks=recorder.hooks(), follow_redirects=True) as client:
        response = await client.get(f"{http_url}/redirect/2")
        assert response.text == "done"
    assert recorder.events == [
        ("request", "/redirect/2", None),
        ("response", "/redirect/2", 302),
        ("request", "/redirect/1", None),
        ("response", "/redirect/1", 302),
        ("request", "/redirect/0", None),
        ("response", "/redirect/0", 200),
    ]


async def test_hooks_see_an_unfollowed_redirect_once(http_url: str) -> None:
    recorder = Recorder()
    async with trioclient.Client(event_hooks=recorder.hooks()) as client:
        response = await client.get(f"{http_url}/redirect/2")
        assert response.status_code == 302
    assert [event[0] for event in recorder.events] == ["request", "response"]


async def test_hooks_see_every_auth_round(http_url: str) -> None:
    class ChallengeThenAnswer(trioclient.Auth):
        def auth_flow(self, request: Request) -> Generator[Request, Response, None]:
            response = yield request
            if response.status_code == 401:
                request.headers["Authorization"] = trioclient.BasicAuth("u", "p")._header
                yield request

    recorder = Recorder()
    async with trioclient.Client(event_hooks=recorder.hooks()) as client:
        response = await client.get(f"{http_url}/basic-auth/u/p", auth=ChallengeThenAnswer())
        assert response.json() == {"authenticated": True, "user": "u"}
    path = "/basic-auth/u/p"
    assert recorder.events == [
        ("request", path, None),
        ("response", path, 401),
        ("request", path, "Basic dTpw"),
        ("response", path, 200),
    ]


async def test_a_response_hook_may_raise_for_status(http_url: str) -> None:
    raised: list[BaseException] = []
    seen: list[Response] = []

    async def check(response: Response) -> None:
        seen.append(response)
        try:
            response.raise_for_status()
        except trioclient.HTTPStatusError as exc:
            raised.append(exc)
            raise

    async with trioclient.Client(event_hooks={"response": [check]}) as client:
        with pytest.raises(trioclient.HTTPStatusError) as info:
            await client.get(f"{http_url}/status/404")
        assert info.value is raised[0]  # unchanged, not wrapped
        assert seen[0].is_closed
        assert_quiet(client)
        # And with a streamed body whose status is fine, nothing is raised.
        async with client.stream("GET", f"{http_url}/bytes/10") as streamed:
            assert len(await streamed.aread()) == 10
        assert (await client.get(f"{http_url}/")).text == "Hello, world!"
        assert_quiet(client)


async def test_a_hook_raising_on_a_large_unread_body_does_not_leak(http_url: str) -> None:
    class Boom(Exception):
        pass

    async def boom(response: Response) -> None:
        raise Boom()

    async with trioclient.Client(event_hooks={"response": [boom]}) as client:
        for _ in range(3):
            with pytest.raises(Boom):
                await client.get(f"{http_url}/bytes/500000?chunk=10000")
            stats = client.pool_statistics()
            assert stats.in_use == 0
            assert stats.requests_active == 0
        client.event_hooks["response"].clear()
        assert (await client.get(f"{http_url}/")).text == "Hello, world!"
        assert_quiet(client)


async def test_a_response_hook_may_read_the_body(http_url: str) -> None:
    bodies: list[bytes] = []

    async def read(response: Response) -> None:
        bodies.append(await response.aread())

    async with trioclient.Client(event_hooks={"response": [read]}) as client:
        response = await client.get(f"{http_url}/bytes/1000")
        assert bodies == [response.content]
        assert len(response.content) == 1000


async def test_a_request_hook_may_edit_the_request_or_raise(http_url: str) -> None:
    async def tag(request: Request) -> None:
        request.headers["X-Tag"] = "hooked"

    async def refuse(request: Request) -> None:
        if request.url.path == "/forbidden":
            raise PermissionError("not this one")

    async with trioclient.Client(event_hooks={"request": [tag, refuse]}) as client:
        echoed = (await client.get(f"{http_url}/echo")).json()
        assert ["x-tag", "hooked"] in echoed["headers"]
        with pytest.raises(PermissionError, match="not this one"):
            await client.get(f"{http_url}/forbidden")
        assert_quiet(client)


async def test_a_cancellation_in_a_hook_closes_the_response(http_url: str) -> None:
    async def cancel(response: Response) -> None:
        scope.cancel()
        await trio.sleep_forever()

    async with trioclient.Client(event_hooks={"response": [cancel]}) as client:
        with trio.CancelScope() as scope:
            await client.get(f"{http_url}/bytes/200000?chunk=10000")
        assert scope.cancelled_caught
        assert_quiet(client)
        client.event_hooks = {}
        assert (await client.get(f"{http_url}/")).text == "Hello, world!"


async def test_event_hooks_property(http_url: str) -> None:
    recorder = Recorder()
    async with trioclient.Client() as client:
        assert client.event_hooks == {"request": [], "response": []}
        client.event_hooks["response"].append(recorder.response)  # live lists, as in httpx
        await client.get(f"{http_url}/")
        client.event_hooks = {"request": [recorder.request]}
        assert client.event_hooks == {"request": [recorder.request], "response": []}
        await client.get(f"{http_url}/echo")
    assert recorder.events == [("response", "/", 200), ("request", "/echo", None)]


def sync_hook(request: Request) -> None:
    pass


async def test_a_sync_hook_is_a_type_error_naming_it(http_url: str) -> None:
    async with trioclient.Client(event_hooks={"request": [sync_hook]}) as client:
        with pytest.raises(TypeError, match=r"event hook <function sync_hook .* async function"):
            await client.get(f"{http_url}/")
        assert_quiet(client)


@pytest.mark.parametrize(
    ("value", "error", "match"),
    [
        (
            {"responses": []},
            ValueError,
            'keys must be "request" and/or "response", not \'responses\'',
        ),
        ({"request": sync_hook}, TypeError, r'event_hooks\["request"\] must be a list'),
        (
            {"response": [1]},
            TypeError,
            r'event_hooks\["response"\] must hold async callables, not int',
        ),
        ([sync_hook], TypeError, "event_hooks must be a mapping"),
    ],
)
def test_bad_event_hooks(value: Any, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        trioclient.Client(event_hooks=value)
    client = trioclient.Client()
    with pytest.raises(error, match=match):
        client.event_hooks = value


async def test_hooks_see_every_retry(http_url: str) -> None:
    recorder = Recorder()
    retry = trioclient.Retry(total=2, backoff_factor=0, backoff_jitter=0)
    async with trioclient.Client(event_hooks=recorder.hooks(), retries=retry) as client:
        response = await client.get(f"{http_url}/status/503")
        assert response.status_code == 503
        assert_quiet(client)
    assert (
        recorder.events
        == [
            ("request", "/status/503", None),
            ("response", "/status/503", 503),
        ]
        * 3
    )
