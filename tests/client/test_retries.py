"""Retries against real servers: raw Trio servers in the test's own run that fail the way
real ones do (drop the connection, stall, 503 with Retry-After, a closed port), on
pytest-trio's ``autojump_clock``, so every wait happens in virtual time and is asserted
exactly.

Real sockets and the autojump clock coexist here because every server runs in the test's
own Trio run and answers at once: the clock only jumps when every task waits, and then to
the next deadline, which is the retry's own wait (or a timeout a test provokes on purpose).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from email.utils import format_datetime
from typing import Any

import pytest
import trio
import trio.testing
from helpers import assert_quiet
from servers.raw import BufferedStream, read_request, response_bytes, serve_raw

import trioclient
from trioclient import Retry, Timeout

EXACT = {"backoff_jitter": 0.0}  # no jitter: every wait is known exactly

DROP = "drop"  # read the request, close without answering
STALL = "stall"  # read the request, answer nothing until the client closes
CLOSE = "close"  # (response, CLOSE): send the response, then close the connection


class Script:
    """A raw server that answers the n-th request it reads with ``steps[n]`` (the last one
    again once the list runs out), counting requests and connections."""

    def __init__(self, *steps: bytes | str | tuple[bytes, str]) -> None:
        self.steps = list(steps)
        self.requests: list[bytes] = []
        self.connections = 0

    async def __call__(self, stream: BufferedStream) -> None:
        self.connections += 1
        while True:
            try:
                head, body = await read_request(stream)
            except trio.BrokenResourceError:
                return  # the client closed an idle connection
            index = min(len(self.requests), len(self.steps) - 1)
            self.requests.append(head + body)
            step = self.steps[index]
            if step == DROP:
                return
            if step == STALL:
                try:
                    while await stream.receive_some():
                        pass
                except trio.BrokenResourceError:
                    pass
                return
            if isinstance(step, tuple):  # (response, CLOSE): send it, then close
                await stream.send_all(step[0])
                return
            await stream.send_all(step)


OK = response_bytes(200, [("Content-Type", "text/plain")], b"ok")


def unavailable(retry_after: str | None = None, body: bytes = b"busy") -> bytes:
    headers = [] if retry_after is None else [("Retry-After", retry_after)]
    return response_bytes(503, headers, body)


async def serve(nursery: trio.Nursery, script: Script) -> str:
    return await serve_raw(nursery, script)


@pytest.fixture
def closed_port_url() -> str:
    """A URL whose port nobody listens on: connecting is refused at once."""
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}"


# --- what is retried -----------------------------------------------------------------------


async def test_dropped_connections_then_success(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    script = Script(DROP, DROP, OK)
    url = await serve(nursery, script)
    async with trioclient.Client(retries=Retry(3, **EXACT)) as client:
        start = trio.current_time()
        response = await client.get(f"{url}/x")
        assert trio.current_time() - start == 0.5 + 1.0  # backoff 0.5, then 1.0
        assert response.status_code == 200
        assert response.text == "ok"
        assert [a.kind for a in response.attempts] == ["read", "read"]
        assert all(isinstance(a.error, trioclient.RemoteProtocolError) for a in response.attempts)
        # Kept without their tracebacks (which would hold the pipeline's frames in a cycle).
        assert all(a.error is not None and a.error.__traceback__ is None for a in response.attempts)
        assert [a.delay for a in response.attempts] == [0.5, 1.0]
        assert all(a.response is None and a.request is response.request for a in response.attempts)
        assert len(script.requests) == 3
        assert_quiet(client)


async def test_a_read_timeout_is_retried(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    script = Script(STALL, OK)
    url = await serve(nursery, script)
    async with trioclient.Client(retries=Retry(1, **EXACT), timeout=Timeout(read=5)) as client:
        start = trio.current_time()
        response = await client.get(url)
        assert trio.current_time() - start == 5 + 0.5
        assert response.status_code == 200
        assert isinstance(response.attempts[0].error, trioclient.ReadTimeout)


async def test_503_with_retry_after_seconds_is_waited_for_and_drained(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    script = Script(unavailable("3"), OK)
    url = await serve(nursery, script)
    async with trioclient.Client(retries=2) as client:
        start = trio.current_time()
        response = await client.get(url)
        assert trio.current_time() - start == 3
        assert response.status_code == 200
        (attempt,) = response.attempts
        assert attempt.kind == "status"
        assert attempt.delay == 3
        assert attempt.error is None
        assert attempt.response is not None
        assert attempt.response.status_code == 503
        assert attempt.response.is_closed
        assert script.connections == 1  # the 503's body was drained: its connection reused
        assert_quiet(client)


async def test_retry_after_as_an_http_date(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    import time

    # Whole seconds: the date is rounded down, so the wait is between 29 and 30 s.
    date = format_datetime(datetime.fromtimestamp(time.time() + 30, timezone.utc), usegmt=True)
    script = Script(unavailable(date), OK)
    url = await serve(nursery, script)
    async with trioclient.Client(retries=1) as client:
        start = trio.current_time()
        response = await client.get(url)
        assert 28 < trio.current_time() - start <= 30
        assert response.status_code == 200


async def test_statuses_run_out_and_the_last_response_is_returned(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    script = Script(unavailable())
    url = await serve(nursery, script)
    async with trioclient.Client(retries=Retry(2, **EXACT)) as client:
        response = await client.get(url)
        assert response.status_code == 503
        assert response.text == "busy"  # the final response keeps its body
        assert [a.response.status_code for a in response.attempts if a.response] == [503, 503]
        assert len(script.requests) == 3
        with pytest.raises(trioclient.HTTPStatusError):
            response.raise_for_status()
        assert_quiet(client)


async def test_a_large_retried_body_is_closed_not_drained(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    script = Script(unavailable(body=b"x" * 200_000), OK)
    url = await serve(nursery, script)
    async with trioclient.Client(retries=Retry(1, **EXACT)) as client:
        response = await client.get(url)
        assert response.status_code == 200
        assert script.connections == 2  # too big to read: that connection was closed
        assert_quiet(client)


async def test_a_large_chunked_retried_body_is_read_up_to_the_limit_then_closed(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    chunk = b"x" * 40_000
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(3)) + b"0\r\n\r\n"
    head = response_bytes(503, [("Transfer-Encoding", "chunked"), ("Content-Length", "")])
    head = head.replace(b"Content-Length: \r\n", b"")
    script = Script(head + chunked, OK)
    url = await serve(nursery, script)
    async with trioclient.Client(retries=Retry(1, **EXACT)) as client:
        response = await client.get(url)
        assert response.status_code == 200
        assert script.connections == 2  # more than 64 KiB: closed part-way
        assert_quiet(client)


async def test_a_retried_body_that_breaks_while_drained_is_just_closed(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    broken = response_bytes(503, [("Content-Length", "100")], b"0123456789")
    script = Script((broken, CLOSE), DROP, OK)  # the 503 ends after 10 of its 100 bytes
    url = await serve(nursery, script)
    async with trioclient.Client(retries=Retry(2, **EXACT)) as client:
        response = await client.get(url)
        assert response.status_code == 200
        assert [a.kind for a in response.attempts] == ["status", "read"]
        assert_quiet(client)


async def test_connect_errors_are_retried_then_raised_with_the_attempts(
    closed_port_url: str, autojump_clock: trio.testing.MockClock
) -> None:
    async with trioclient.Client(retries=Retry(2, **EXACT)) as client:
        start = trio.current_time()
        with pytest.raises(trioclient.ConnectError) as caught:
            await client.post(closed_port_url, content=b"body")  # nothing sent: any method
        assert trio.current_time() - start == 0.5 + 1.0
        assert [a.kind for a in caught.value.attempts] == ["connect", "connect"]
        assert caught.value.__notes__ == [
            "trioclient: gave up after 3 attempts: retries exhausted (the total count ran out "
            "after 2 retries)"
        ]
        assert_quiet(client)


async def test_post_is_not_retried_after_the_request_was_sent(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    script = Script(DROP, OK)
    url = await serve(nursery, script)
    async with trioclient.Client(retries=3) as client:
        with pytest.raises(trioclient.RemoteProtocolError) as caught:
            await client.post(url, content=b"once")
        assert caught.value.attempts == ()
        assert "POST is not in allowed_methods" in caught.value.__notes__[0]
        assert len(script.requests) == 1
        # Unless allowed_methods says so.
        retry = Retry(3, allowed_methods=None, **EXACT)
        script.requests.clear()
        response = await client.post(url, content=b"again", retries=retry)
        assert response.status_code == 200
        assert [request.endswith(b"again") for request in script.requests] == [True, True]


async def test_a_streamed_body_is_never_retried(closed_port_url: str) -> None:
    sent = []

    async def body() -> AsyncIterator[bytes]:
        sent.append(b"part")
        yield b"part"

    async with trioclient.Client(retries=3) as client:
        with pytest.raises(trioclient.ConnectError) as caught:
            await client.put(closed_port_url, content=body())
        assert caught.value.attempts == ()
        assert "stream, which cannot be sent again" in caught.value.__notes__[0]


@pytest.mark.parametrize("kind", ["too-large", "decoding"])
async def test_errors_no_retry_cures_are_raised_at_once(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock, kind: str
) -> None:
    if kind == "too-large":
        script = Script(response_bytes(200, [], b"x" * 100))
        expected: type[Exception] = trioclient.ResponseTooLarge
    else:
        script = Script(response_bytes(200, [("Content-Encoding", "gzip")], b"not gzip"))
        expected = trioclient.DecodingError
    url = await serve(nursery, script)
    async with trioclient.Client(retries=3, max_response_size=10) as client:
        with pytest.raises(expected):
            await client.get(url)
        assert len(script.requests) == 1
        assert_quiet(client)


# --- deadlines and limits --------------------------------------------------------------------


async def test_a_retry_after_past_the_total_deadline_returns_at_once(
    nursery: trio.Nursery,
    autojump_clock: trio.testing.MockClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    script = Script(unavailable("60"), OK)
    url = await serve(nursery, script)
    async with trioclient.Client(retries=3, timeout=Timeout(total=30)) as client:
        start = trio.current_time()
        with caplog.at_level(logging.INFO, logger="trioclient"):
            response = await client.get(url)
        assert trio.current_time() == start  # no wait at all
        assert response.status_code == 503
        assert response.attempts == ()
        assert "waiting 60 s would pass the total timeout (30 s left)" in caplog.text
        assert len(script.requests) == 1


async def test_a_retry_after_beyond_the_maximum_returns_at_once(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    script = Script(unavailable("3600"), OK)
    url = await serve(nursery, script)
    async with trioclient.Client(retries=Retry(3, retry_after_max=600)) as client:
        start = trio.current_time()
        response = await client.get(url)
        assert trio.current_time() == start
        assert response.status_code == 503


async def test_the_backoff_stops_at_the_total_deadline(
    closed_port_url: str, autojump_clock: trio.testing.MockClock
) -> None:
    retry = Retry(10, backoff_factor=1.0, **EXACT)  # waits 1, 2, 4, 8...
    async with trioclient.Client(retries=retry, timeout=Timeout(total=5)) as client:
        start = trio.current_time()
        with pytest.raises(trioclient.ConnectError) as caught:
            await client.get(closed_port_url)
        assert trio.current_time() - start == 1 + 2  # the 4 s wait would pass the 5 s
        assert len(caught.value.attempts) == 2
        assert "would pass the total timeout" in caught.value.__notes__[0]


# --- configuration ---------------------------------------------------------------------------


async def test_the_pools_stale_connection_resend_is_not_an_attempt(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    """A keep-alive connection the server dropped is resent by the pool, once, unseen:
    that is about the connection, not the request, and costs no retry."""
    script = Script(OK, DROP, OK)
    url = await serve(nursery, script)
    async with trioclient.Client(retries=Retry(1, **EXACT)) as client:
        assert (await client.get(url)).status_code == 200
        start = trio.current_time()
        response = await client.get(url)
        assert trio.current_time() == start
        assert response.status_code == 200
        assert response.attempts == ()
        assert len(script.requests) == 3
        assert script.connections == 2


async def test_per_request_retries_override_the_client(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    script = Script(unavailable(), OK)
    url = await serve(nursery, script)
    async with trioclient.Client(retries=3) as client:
        assert client.retries == Retry(3)
        assert (await client.get(url, retries=0)).status_code == 503
        assert (await client.get(url, retries=None)).status_code == 200  # the 2nd step, OK
    script = Script(unavailable(), OK)
    url = await serve(nursery, script)
    async with trioclient.Client() as client:
        assert client.retries is None
        assert (await client.get(url)).status_code == 503
        response = await client.request("GET", url, retries=Retry(1, **EXACT))
        assert response.status_code == 200
        client.retries = 2
        assert client.retries == Retry(2)
        with pytest.raises(TypeError, match="retries must be None"):
            client.retries = "3"  # type: ignore[assignment]


async def test_stream_send_and_the_module_api_take_retries(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    script = Script(unavailable("0"), OK)
    url = await serve(nursery, script)
    async with trioclient.Client() as client:
        async with client.stream("GET", url, retries=1) as response:
            assert await response.aread() == b"ok"
            assert len(response.attempts) == 1
        script.requests.clear()
        request = client.build_request("GET", url)
        response = await client.send(request, retries=1)
        assert len(response.attempts) == 1
    script.requests.clear()
    response = await trioclient.get(url, retries=1)
    assert len(response.attempts) == 1
    script.requests.clear()
    async with trioclient.stream("GET", url, retries=1) as response:
        assert await response.aread() == b"ok"


async def test_redirect_hops_share_one_budget(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    redirect = response_bytes(302, [("Location", "/next")])
    script = Script(unavailable(), redirect, unavailable(), unavailable(), OK)
    url = await serve(nursery, script)
    async with trioclient.Client(retries=Retry(2, **EXACT), follow_redirects=True) as client:
        response = await client.get(url)
        # One retry on the first hop, one on the second: the budget of 2 is spent.
        assert response.status_code == 503
        assert len(response.attempts) == 1
        assert len(response.history[0].attempts) == 1
        assert len(script.requests) == 4
    script = Script(unavailable(), redirect, unavailable(), OK)
    url = await serve(nursery, script)
    async with trioclient.Client(retries=Retry(2, **EXACT), follow_redirects=True) as client:
        response = await client.get(url)
        assert response.status_code == 200
        assert len(response.history) == 1
        assert len(response.history[0].attempts) == 1
        assert len(response.attempts) == 1


async def test_each_attempt_is_logged(
    nursery: trio.Nursery,
    autojump_clock: trio.testing.MockClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    script = Script(unavailable("2"), OK)
    url = await serve(nursery, script)
    async with trioclient.Client(retries=3) as client:
        with caplog.at_level(logging.INFO, logger="trioclient"):
            await client.get(f"{url}/page")
    retries = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Retrying")]
    assert retries == [
        f"Retrying GET {url}/page in 2 s after 503 Service Unavailable (retry 1 of at most 3)"
    ]


async def test_any_transport_is_retried() -> None:
    calls = []

    def handler(request: trioclient.Request) -> trioclient.Response:
        calls.append(request)
        if len(calls) < 3:
            return trioclient.Response(429, headers={"Retry-After": "0"})
        return trioclient.Response(200, text="done")

    transport = trioclient.MockTransport(handler)
    async with trioclient.Client(transport=transport, retries=5) as client:
        response = await client.get("http://mock.test/")
    assert response.text == "done"
    assert [a.delay for a in response.attempts] == [0.0, 0.0]
    assert len(calls) == 3


@pytest.mark.parametrize("error", [KeyboardInterrupt, ValueError])
async def test_errors_outside_the_request_error_tree_pass_untouched(
    error: type[BaseException],
) -> None:
    calls = []

    def handler(request: trioclient.Request) -> trioclient.Response:
        calls.append(request)
        raise error("from the handler")

    transport = trioclient.MockTransport(handler)
    async with trioclient.Client(transport=transport, retries=5) as client:
        with pytest.raises(error) as caught:
            await client.get("http://mock.test/")
    assert len(calls) == 1
    assert not hasattr(caught.value, "attempts")
    assert not getattr(caught.value, "__notes__", None)


async def test_a_cancelled_attempt_is_not_retried() -> None:
    calls = []
    scope = trio.CancelScope()

    async def handler(request: trioclient.Request) -> trioclient.Response:
        calls.append(request)
        # Cancelled once the attempt is under way (a wall-clock deadline could fire before
        # the handler is reached on a loaded machine).
        scope.cancel()
        await trio.sleep_forever()
        raise AssertionError("unreachable")

    transport = trioclient.MockTransport(handler)
    async with trioclient.Client(transport=transport, retries=5) as client:
        with scope:
            await client.get("http://mock.test/")
    assert scope.cancelled_caught
    assert len(calls) == 1


async def test_status_retries_over_every_transport(any_client: Any) -> None:
    """HTTP/1.1, h2c, h2 over TLS and ASGITransport: the same attempts, the books balanced
    (over HTTP/2 the drained 503s' streams end, over HTTP/1.1 their connection is reused)."""
    retry = Retry(2, backoff_factor=0.0, backoff_jitter=0.0)
    response = await any_client.client.get(any_client.url("/status/503"), retries=retry)
    assert response.status_code == 503
    assert [a.kind for a in response.attempts] == ["status", "status"]
    assert all(a.response is not None and a.response.is_closed for a in response.attempts)
    assert response.http_version == any_client.http_version
    if any_client.is_network:
        assert_quiet(any_client.client)
        assert any_client.client.pool_statistics().connections == 1


async def test_a_retried_response_with_a_non_ascii_digit_length_is_drained_safely() -> None:
    # str.isdigit() accepts "\u00b2" (superscript two); int() raises ValueError. A mock
    # transport passes the header through unchecked, as a custom transport could.
    calls = 0

    async def body() -> AsyncIterator[bytes]:
        yield b"busy"

    def handler(request: trioclient.Request) -> trioclient.Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            return trioclient.Response(503, headers={"content-length": "\u00b2"}, stream=body())
        return trioclient.Response(200, content=b"ok")

    retry = Retry(total=1, status_forcelist={503}, backoff_factor=0, **EXACT)
    async with trioclient.Client(
        transport=trioclient.MockTransport(handler), retries=retry
    ) as client:
        response = await client.get("http://a.test/")
    assert response.status_code == 200
    assert calls == 2
