"""ASGITransport: a Starlette app (on Trio through anyio) and raw ASGI apps, in-process.

Every test checks what the app saw (scope, messages) as well as what the caller got, and the
cancellation tests check that no app task is left once the response is closed. Nothing here
touches the network.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, MutableMapping
from typing import Any

import pytest
import trio
import trio.testing
from servers.asgi_app import app as server_app
from servers.asgi_app import pattern_bytes
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request as StarletteRequest
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

import trioclient
from trioclient import Request
from trioclient._transport._asgi import ASGITransport

Scope = MutableMapping[str, Any]
Receive = Callable[[], Any]
Send = Callable[[MutableMapping[str, Any]], Any]

APP_TASK = "trioclient ASGI app"


async def wait_for_no_app_task(client: trioclient.Client) -> None:
    """Wait (up to a second) until the client's nursery has no ASGI app task left."""
    with trio.fail_after(1):
        while app_tasks(client):
            await trio.sleep(0.01)


def app_tasks(client: trioclient.Client) -> list[trio.lowlevel.Task]:
    """The ASGI app tasks still running in the client's nursery."""
    nursery = client._nursery
    assert nursery is not None
    return [task for task in nursery.child_tasks if task.name.startswith(APP_TASK)]


class Probe:
    """What the Starlette app reports back to the test."""

    def __init__(self) -> None:
        self.release = trio.Event()  # lets a waiting endpoint go on
        self.ended = trio.Event()  # set in the endpoint's (or generator's) finally
        self.got_first = trio.Event()
        self.chunks: list[bytes] = []
        self.received: list[str] = []  # ASGI message types the app received
        self.background: list[str] = []


def starlette_app(probe: Probe) -> Callable[..., Any]:
    async def echo(request: StarletteRequest) -> Response:
        body = await request.body()
        return JSONResponse(
            {
                "method": request.method,
                "path": request.url.path,
                "route_path": request.scope["path"],
                "root_path": request.scope["root_path"],
                "query": request.url.query,
                "params": dict(request.query_params),
                "headers": dict(request.headers),
                "client": list(request.client or ()),
                "body": body.decode(),
                "json": await request.json() if body else None,
            }
        )

    async def items(request: StarletteRequest) -> Response:
        return PlainTextResponse(f"items at {request.url.path}")

    async def upload(request: StarletteRequest) -> Response:
        async for chunk in request.stream():
            if chunk:
                probe.chunks.append(chunk)
                probe.got_first.set()
        return PlainTextResponse(str(len(probe.chunks)))

    async def stream(request: StarletteRequest) -> Response:
        async def produce() -> AsyncIterator[bytes]:
            try:
                yield b"one"
                await probe.release.wait()
                yield b"two"
            finally:
                probe.ended.set()

        return StreamingResponse(produce(), media_type="text/plain")

    async def hang(request: StarletteRequest) -> Response:
        try:
            await trio.sleep_forever()
        finally:
            probe.ended.set()
        raise AssertionError("unreachable")  # pragma: no cover

    async def fail(request: StarletteRequest) -> Response:
        raise RuntimeError("endpoint failed")

    async def fail_mid_body(request: StarletteRequest) -> Response:
        async def produce() -> AsyncIterator[bytes]:
            yield b"partial"
            raise RuntimeError("stream failed")

        return StreamingResponse(produce())

    async def cookies(request: StarletteRequest) -> Response:
        response = PlainTextResponse("ok")
        response.set_cookie("a", "1")
        response.set_cookie("b", "2")
        return response

    async def background(request: StarletteRequest) -> Response:
        async def work() -> None:
            await trio.sleep(0.01)
            probe.background.append("done")

        return PlainTextResponse("queued", background=BackgroundTask(work))

    inner = Starlette(
        routes=[
            Route("/echo", echo, methods=["GET", "POST"]),
            Route("/items", items),
            Route("/upload", upload, methods=["POST"]),
            Route("/stream", stream),
            Route("/hang", hang),
            Route("/fail", fail),
            Route("/fail-mid-body", fail_mid_body),
            Route("/cookies", cookies),
            Route("/background", background),
        ]
    )

    async def recording(scope: Scope, receive: Receive, send: Send) -> None:
        async def recorded_receive() -> Any:
            message = await receive()
            probe.received.append(message["type"])
            return message

        await inner(scope, recorded_receive, send)

    return recording


@pytest.fixture
def probe() -> Probe:
    return Probe()


@pytest.fixture
def app(probe: Probe) -> Callable[..., Any]:
    return starlette_app(probe)


def client_for(app: Callable[..., Any], **kwargs: Any) -> trioclient.Client:
    return trioclient.Client(transport=ASGITransport(app, **kwargs), base_url="http://app.test")


# -- requests and scopes -------------------------------------------------------------------


async def test_get_echo(app: Callable[..., Any]) -> None:
    async with client_for(app) as client:
        response = await client.get("/echo", headers={"X-Token": "abc"})
        assert response.status_code == 200
        assert response.http_version == "HTTP/1.1"
        echo = response.json()
        assert echo["method"] == "GET"
        assert echo["path"] == "/echo"
        assert echo["headers"]["x-token"] == "abc"
        assert echo["headers"]["host"] == "app.test"
        assert echo["client"] == ["127.0.0.1", 123]
        assert app_tasks(client) == []


async def test_post_json_echo(app: Callable[..., Any]) -> None:
    async with client_for(app) as client:
        response = await client.post("/echo", json={"hello": ["world", 1]})
        echo = response.json()
        assert echo["method"] == "POST"
        assert echo["json"] == {"hello": ["world", 1]}
        assert echo["headers"]["content-type"] == "application/json"


async def test_query_string(app: Callable[..., Any]) -> None:
    async with client_for(app) as client:
        response = await client.get("/echo?a=1", params={"b": "x y", "c": "é"})
        echo = response.json()
        assert echo["params"] == {"a": "1", "b": "x y", "c": "é"}


async def test_root_path(app: Callable[..., Any]) -> None:
    async with client_for(app, root_path="/api") as client:
        response = await client.get("/api/items")
        assert response.text == "items at /api/items"
        echo = (await client.get("/api/echo")).json()
        assert echo["root_path"] == "/api"
        assert echo["route_path"] == "/api/echo"  # ASGI: the path keeps the root path


async def test_repeated_response_headers(app: Callable[..., Any]) -> None:
    async with client_for(app) as client:
        response = await client.get("/cookies")
        assert len(response.headers.get_list("set-cookie")) == 2


async def test_scope_of_a_raw_app() -> None:
    seen: list[Scope] = []

    async def raw(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope)
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body"})

    transport = ASGITransport(raw, root_path="/root", client=("10.0.0.1", 4321))
    async with trioclient.Client(transport=transport) as client:
        response = await client.get("https://Example.test/a%20b/c?q=%20x", headers={"X-A": "1"})
        assert response.status_code == 204
        assert response.content == b""
        await client.get("http://example.test:8080/")
    scope = seen[0]
    assert scope["type"] == "http"
    assert scope["asgi"] == {"version": "3.0"}
    assert scope["http_version"] == "1.1"
    assert scope["method"] == "GET"
    assert scope["scheme"] == "https"
    assert scope["path"] == "/a b/c"
    assert scope["raw_path"] == b"/a%20b/c"
    assert scope["query_string"] == b"q=%20x"
    assert scope["root_path"] == "/root"
    assert (b"x-a", b"1") in scope["headers"]
    assert all(name == name.lower() for name, _ in scope["headers"])
    assert scope["client"] == ("10.0.0.1", 4321)
    assert scope["server"] == ("example.test", 443)
    assert scope["extensions"] == {}
    assert seen[1]["server"] == ("example.test", 8080)


async def test_mounts(app: Callable[..., Any]) -> None:
    other: list[str] = []

    async def raw(scope: Scope, receive: Receive, send: Send) -> None:
        other.append(scope["server"][0])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"other"})

    mounts = {"http://app.test": ASGITransport(app), "all://*.other.test": ASGITransport(raw)}
    async with trioclient.Client(mounts=mounts) as client:
        assert (await client.get("http://app.test/items")).text == "items at /items"
        assert (await client.get("https://api.other.test/")).text == "other"
    assert other == ["api.other.test"]


async def test_the_test_servers_app_through_the_transport() -> None:
    """The hypercorn test server's app: content decoding, redirects, a disconnect wait."""
    async with trioclient.Client(transport=ASGITransport(server_app)) as client:
        response = await client.get("http://app.test/gzip")
        assert response.headers["content-encoding"] == "gzip"
        assert len(response.content) > 0
        response = await client.get("http://app.test/redirect/3", follow_redirects=True)
        assert response.text == "done"
        assert len(response.history) == 3
        response = await client.get("http://app.test/bytes/100000?chunk=1000")
        assert response.content == pattern_bytes(100000)
        with trio.move_on_after(0.05) as cs:
            await client.get("http://app.test/hold")
        assert cs.cancelled_caught
        await wait_for_no_app_task(client)


# -- streaming -----------------------------------------------------------------------------


async def test_streamed_request_body_reaches_the_app_incrementally(
    app: Callable[..., Any], probe: Probe
) -> None:
    produced: list[bytes] = []

    async def body() -> AsyncIterator[bytes]:
        produced.append(b"a")
        yield b"a"
        # The app has the first chunk before the second exists: nothing buffered the body.
        await probe.got_first.wait()
        assert probe.chunks == [b"a"]
        produced.append(b"b")
        yield b"b"

    async with client_for(app) as client:
        with trio.fail_after(2):
            response = await client.post("/upload", content=body())
    assert response.text == "2"
    assert probe.chunks == produced == [b"a", b"b"]


async def test_streaming_response_is_not_buffered(app: Callable[..., Any], probe: Probe) -> None:
    async with client_for(app) as client, client.stream("GET", "/stream") as response:
        chunks = response.aiter_bytes()
        with trio.fail_after(2):
            # The app is blocked before producing the second chunk, yet the first is here.
            assert await chunks.__anext__() == b"one"
        assert not probe.release.is_set()
        probe.release.set()
        assert [chunk async for chunk in chunks] == [b"two"]
        assert probe.ended.is_set()


async def test_a_fast_app_is_backpressured() -> None:
    sent: list[int] = []

    async def raw(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for i in range(100):
            await send({"type": "http.response.body", "body": b"x" * 10, "more_body": True})
            sent.append(i)
        await send({"type": "http.response.body"})

    async with (
        trioclient.Client(transport=ASGITransport(raw)) as client,
        client.stream("GET", "http://app.test/") as response,
    ):
        await trio.testing.wait_all_tasks_blocked()
        assert len(sent) <= 3  # the channel's buffer, not the whole body
        assert await response.aread() == b"x" * 1000
        assert len(sent) == 100


async def test_background_task_finishes_before_the_body_ends(
    app: Callable[..., Any], probe: Probe
) -> None:
    async with client_for(app) as client:
        response = await client.get("/background")
        assert response.text == "queued"
        assert probe.background == ["done"]


# -- disconnects and cancellation ----------------------------------------------------------


async def test_early_close_delivers_disconnect_and_ends_the_app(
    app: Callable[..., Any], probe: Probe
) -> None:
    async with client_for(app) as client:
        async with client.stream("GET", "/stream") as response:
            async for chunk in response.aiter_bytes():
                assert chunk == b"one"
                break
        with trio.fail_after(2):
            await probe.ended.wait()
        await wait_for_no_app_task(client)
        assert "http.disconnect" in probe.received
        assert not probe.release.is_set()


@pytest.mark.parametrize("path", ["/hang", "/stream"])
async def test_caller_cancelled_leaves_no_task(
    app: Callable[..., Any], probe: Probe, path: str
) -> None:
    """Cancelled while waiting for the head (/hang) or in the middle of the body (/stream)."""
    async with client_for(app) as client:
        chunks: list[bytes] = []
        with trio.CancelScope() as cs:
            if path == "/hang":
                cs.deadline = trio.current_time() + 0.05
            async with client.stream("GET", path) as response:
                async for chunk in response.aiter_bytes():
                    chunks.append(chunk)
                    cs.cancel()  # the next read is cancelled, with the app mid-body
        assert chunks == ([b"one"] if path == "/stream" else [])
        assert cs.cancelled_caught  # Cancelled came out of the request unchanged
        with trio.fail_after(2):
            await probe.ended.wait()
        await wait_for_no_app_task(client)
        # /stream listens for the disconnect; /hang never calls receive(): the grace ends it.
        assert ("http.disconnect" in probe.received) == (path == "/stream")
        # The client is intact: its nursery was not torn down.
        assert (await client.get("/items")).status_code == 200


async def test_an_already_cancelled_request_never_reaches_the_app() -> None:
    started: list[bool] = []

    async def raw(scope: Scope, receive: Receive, send: Send) -> None:  # pragma: no cover
        started.append(True)

    async with trioclient.Client(transport=ASGITransport(raw)) as client:
        with trio.CancelScope() as cs:
            cs.cancel()
            await client.get("http://app.test/")
        assert cs.cancelled_caught
        await trio.testing.wait_all_tasks_blocked()
        assert app_tasks(client) == []
    assert started == []


async def test_disconnect_grace_then_cancel(autojump_clock: trio.abc.Clock) -> None:
    events: list[tuple[str, float]] = []

    async def raw(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"x", "more_body": True})
        assert (await receive())["type"] == "http.request"
        events.append(((await receive())["type"], trio.current_time()))
        try:
            await trio.sleep_forever()  # ignores the disconnect
        finally:
            events.append(("cancelled", trio.current_time()))

    transport = ASGITransport(raw, disconnect_grace=5)
    async with trioclient.Client(transport=transport) as client:
        async with client.stream("GET", "http://app.test/") as response:
            assert await response.aiter_bytes().__anext__() == b"x"
            await trio.sleep(1)
            closed_at = trio.current_time()
        await trio.sleep(10)
        assert app_tasks(client) == []
    assert events == [("http.disconnect", closed_at), ("cancelled", closed_at + 5)]


async def test_an_app_that_finished_its_response_is_not_cut_short(
    autojump_clock: trio.abc.Clock,
) -> None:
    done: list[float] = []

    async def raw(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"x"})
        assert (await receive())["type"] == "http.request"
        assert (await receive())["type"] == "http.disconnect"
        await trio.sleep(3)  # background work after the response
        done.append(trio.current_time())

    async with trioclient.Client(transport=ASGITransport(raw, disconnect_grace=1)) as client:
        start = trio.current_time()
        async with client.stream("GET", "http://app.test/") as response:
            await trio.testing.wait_all_tasks_blocked()
        await trio.sleep(5)
    assert response.is_closed
    assert done == [start + 3]


# -- errors --------------------------------------------------------------------------------


async def test_app_exception_before_the_response_is_raised() -> None:
    async def raw(scope: Scope, receive: Receive, send: Send) -> None:
        raise ValueError("app failed")

    async with trioclient.Client(transport=ASGITransport(raw)) as client:
        with pytest.raises(ValueError, match="app failed"):
            await client.get("http://app.test/")
        assert app_tasks(client) == []


async def test_app_exception_after_the_start_is_raised_from_the_body(
    app: Callable[..., Any],
) -> None:
    async with client_for(app) as client:
        # Starlette's error middleware sends a 500, then re-raises.
        with pytest.raises(RuntimeError, match="endpoint failed"):
            await client.get("/fail")
        async with client.stream("GET", "/fail-mid-body") as response:
            assert response.status_code == 200
            chunks = response.aiter_bytes()
            assert await chunks.__anext__() == b"partial"
            with pytest.raises(RuntimeError, match="stream failed"):
                await chunks.__anext__()
        assert (await client.get("/items")).status_code == 200


async def test_app_exceptions_not_raised(app: Callable[..., Any]) -> None:
    async def raw(scope: Scope, receive: Receive, send: Send) -> None:
        raise ValueError("app failed")

    async with trioclient.Client(
        transport=ASGITransport(raw, raise_app_exceptions=False),
        mounts={"http://app.test": ASGITransport(app, raise_app_exceptions=False)},
    ) as client:
        response = await client.get("http://raw.test/")
        assert response.status_code == 500
        assert response.content == b""
        response = await client.get("http://app.test/fail")
        assert response.status_code == 500
        assert response.text == "Internal Server Error"
        response = await client.get("http://app.test/fail-mid-body")
        assert response.status_code == 200
        assert response.content == b"partial"


class AppExit(BaseException):
    pass


async def test_a_base_exception_is_always_raised() -> None:
    async def raw(scope: Scope, receive: Receive, send: Send) -> None:
        raise AppExit

    async with trioclient.Client(
        transport=ASGITransport(raw, raise_app_exceptions=False)
    ) as client:
        with pytest.raises(AppExit):
            await client.get("http://app.test/")


async def test_request_body_error_is_the_callers(app: Callable[..., Any], probe: Probe) -> None:
    async def body() -> AsyncIterator[bytes]:
        yield b"a"
        raise OSError("upload source failed")

    async with client_for(app, raise_app_exceptions=False) as client:
        with pytest.raises(OSError, match="upload source failed"):
            await client.post("/upload", content=body())
        await wait_for_no_app_task(client)
        assert probe.chunks == [b"a"]
        assert probe.received[-1] == "http.disconnect"


@pytest.mark.parametrize(
    ("messages", "error"),
    [
        pytest.param([], "returned without starting a response", id="no-response"),
        pytest.param(
            [{"type": "http.response.start", "status": 200}],
            "returned before finishing its response body",
            id="unfinished-body",
        ),
        pytest.param(
            [{"type": "http.response.body", "body": b"x"}],
            "'http.response.body' before 'http.response.start'",
            id="body-before-start",
        ),
        pytest.param(
            [{"type": "http.response.start", "status": 200}] * 2,
            "'http.response.start' twice",
            id="start-twice",
        ),
        pytest.param(
            [{"type": "http.response.start", "status": 200}] + [{"type": "http.response.body"}] * 2,
            "'http.response.body' after its end",
            id="body-after-end",
        ),
        pytest.param([{"type": "websocket.send"}], "unexpected message type", id="unknown"),
    ],
)
async def test_asgi_protocol_errors(messages: list[dict[str, Any]], error: str) -> None:
    async def raw(scope: Scope, receive: Receive, send: Send) -> None:
        for message in messages:
            await send(message)

    async with trioclient.Client(transport=ASGITransport(raw)) as client:
        with pytest.raises(RuntimeError, match=error):
            await client.get("http://app.test/")


# -- lifecycle -----------------------------------------------------------------------------


async def test_needs_a_client() -> None:
    async def raw(scope: Scope, receive: Receive, send: Send) -> None:  # pragma: no cover
        pass

    transport = ASGITransport(raw)
    with pytest.raises(trioclient.ClientStateError, match="async with"):
        await transport.handle_request(Request("GET", "http://app.test/"))
    async with trioclient.Client(transport=transport), trio.open_nursery() as nursery:
        with pytest.raises(trioclient.ClientStateError, match="already belongs"):
            transport.bind(nursery)
    with pytest.raises(ValueError, match="disconnect_grace"):
        ASGITransport(raw, disconnect_grace=-1)


async def test_aclose_cancels_apps_and_closes_responses(
    app: Callable[..., Any], probe: Probe
) -> None:
    errors: list[BaseException] = []
    transport = ASGITransport(app)
    client = trioclient.Client(transport=transport, base_url="http://app.test")
    async with client:
        held = await client.send(client.build_request("GET", "/stream"), stream=True)

        async def blocked_read() -> None:
            try:
                await client.get("/hang")
            except trioclient.ClientStateError as exc:
                errors.append(exc)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(blocked_read)
            await trio.testing.wait_all_tasks_blocked()
            await client.aclose()
        assert transport.is_closed
        await trio.testing.wait_all_tasks_blocked()
        assert app_tasks(client) == []
        with pytest.raises(trioclient.StreamClosed, match="client was closed"):
            await held.aread()
        with pytest.raises(trioclient.ClientStateError, match="client was closed"):
            await transport.handle_request(Request("GET", "http://app.test/items"))
    assert len(errors) == 1
    assert "client was closed" in str(errors[0])


async def test_a_reader_blocked_when_the_client_closes() -> None:
    async def raw(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await trio.sleep_forever()

    errors: list[BaseException] = []
    async with trioclient.Client(transport=ASGITransport(raw)) as client:
        response = await client.send(client.build_request("GET", "http://app.test/"), stream=True)

        async def read() -> None:
            try:
                await response.aread()
            except trioclient.ClientStateError as exc:
                errors.append(exc)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(read)
            await trio.testing.wait_all_tasks_blocked()
            await client.aclose()
    assert len(errors) == 1
    assert "client was closed" in str(errors[0])


async def test_closing_a_backpressured_response() -> None:
    """The app is blocked sending when the caller leaves: its sends become no-ops."""
    sent: list[int] = []
    ended = trio.Event()

    async def raw(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for i in range(10):
            await send({"type": "http.response.body", "body": b"x", "more_body": True})
            sent.append(i)
        await send({"type": "http.response.body"})
        ended.set()

    async with trioclient.Client(transport=ASGITransport(raw)) as client:
        async with client.stream("GET", "http://app.test/") as response:
            await trio.testing.wait_all_tasks_blocked()
            assert len(sent) < 10
        await ended.wait()  # returned on its own, well within the grace
        assert sent == list(range(10))
        assert response.trailers == trioclient.Headers()


async def test_app_errors_after_the_caller_left_are_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An app failing in its cleanup, inside its own nursery, while it is cancelled: the
    error is logged, the Cancelled part ends the task, the client is untouched."""

    async def child() -> None:
        try:
            await trio.sleep_forever()
        finally:
            raise ValueError("cleanup failed")

    async def raw(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        async with trio.open_nursery() as nursery:
            nursery.start_soon(child)
            await trio.sleep_forever()

    caplog.set_level("DEBUG", logger="trioclient")
    async with trioclient.Client(transport=ASGITransport(raw, disconnect_grace=0)) as client:
        async with client.stream("GET", "http://app.test/"):
            await trio.testing.wait_all_tasks_blocked()
        await wait_for_no_app_task(client)
    [record] = [r for r in caplog.records if "after its caller left" in r.getMessage()]
    assert record.exc_info is not None
    assert "cleanup failed" in repr(record.exc_info[1])
