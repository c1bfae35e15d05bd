"""Log records, captured with caplog: httpx's INFO line, DEBUG connection events, redaction,
and nothing formatted when the level is off."""

from __future__ import annotations

import logging
import ssl

import pytest
import trio

import trioclient
import trioclient._send


def records(caplog: pytest.LogCaptureFixture, name: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == name]


def every_message(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("trioclient"))


async def test_one_info_line_per_request_and_hop(
    http_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="trioclient")
    async with trioclient.Client(follow_redirects=True) as client:
        await client.get(f"{http_url}/json")
        await client.get(f"{http_url}/redirect/1")
        await client.post(f"{http_url}/status/404")
    assert records(caplog, "trioclient") == [
        f'HTTP Request: GET {http_url}/json "HTTP/1.1 200 OK"',
        f'HTTP Request: GET {http_url}/redirect/1 "HTTP/1.1 302 Found"',
        f'HTTP Request: GET {http_url}/redirect/0 "HTTP/1.1 200 OK"',
        f'HTTP Request: POST {http_url}/status/404 "HTTP/1.1 404 Not Found"',
    ]
    assert all(r.levelno == logging.INFO for r in caplog.records if r.name == "trioclient")
    assert not [r for r in caplog.records if r.name == "trioclient.pool"]  # DEBUG is off


async def test_credentials_never_appear(
    http_url: str, https_url: str, ssl_context: ssl.SSLContext, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="trioclient")
    secret_url = http_url.replace("http://", "http://alice:hunter2@")
    async with trioclient.Client(
        verify=ssl_context, http2=True, cookies={"session": "cookie-secret"}
    ) as client:
        await client.get(
            f"{secret_url}/cookies/set?token=in-the-url",
            headers={"Authorization": "Bearer auth-secret", "Proxy-Authorization": "pa-secret"},
        )
        await client.get(f"{secret_url}/basic-auth/u/p", auth=("u", "basic-secret"))
        tls_url = https_url.replace("https://", "https://bob:pw-secret@")
        await client.get(f"{tls_url}/cookies", retries=1)
    text = every_message(caplog)
    assert "[secure]@127.0.0.1" in text
    for secret in (
        "alice",
        "hunter2",
        "bob",
        "pw-secret",
        "cookie-secret",
        "auth-secret",
        "pa-secret",
        "basic-secret",
        "dTpiYXNpYy1zZWNyZXQ",  # base64 of u:basic-secret
    ):
        assert secret not in text, secret


async def test_debug_lines_for_http11_connections(
    http_url: str, https_url: str, ssl_context: ssl.SSLContext, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="trioclient")
    where = http_url.removeprefix("http://")
    tls_where = https_url.removeprefix("https://")
    async with trioclient.Client(verify=ssl_context) as client:
        await client.get(f"{http_url}/")
        await client.get(f"{http_url}/")  # reuses the connection
        await client.get(f"{http_url}/close")  # the server closes it
        await client.get(f"{https_url}/")
    lines = records(caplog, "trioclient.pool")
    assert lines[0].startswith(f"connected to {where} over TCP from ('127.0.0.1', ")
    assert lines[1] == f"speaking HTTP/1.1 with {where}"
    assert lines[2] == f"reusing the connection to {where}"
    assert lines[3] == f"reusing the connection to {where}"
    assert lines[4] == f"closing the connection to {where}"
    assert lines[5].startswith(f"connected to {tls_where} over TCP")
    assert lines[6].startswith(f"TLS handshake with {tls_where} complete: TLSv1.3, ")
    assert lines[6].endswith("ALPN http/1.1")
    assert lines[7] == f"speaking HTTP/1.1 with {tls_where}"
    assert lines[8] == f"closing the connection to {tls_where} (the client was closed)"
    assert len(lines) == 9


async def test_debug_lines_for_http2_streams(
    https_url: str, ssl_context: ssl.SSLContext, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="trioclient")
    where = https_url.removeprefix("https://")
    async with trioclient.Client(verify=ssl_context, http2=True) as client:
        await client.get(f"{https_url}/json")
        async with client.stream("GET", f"{https_url}/bytes/1000000") as response:
            await response.aiter_bytes().__anext__()  # then leave: the stream is reset
    pool = records(caplog, "trioclient.pool")
    assert "ALPN h2" in pool[1]
    assert pool[2] == f"speaking HTTP/2 with {where}"
    assert records(caplog, "trioclient.http2") == [
        f"stream 1 to {where}: GET {https_url}/json",
        f"stream 3 to {where}: GET {https_url}/bytes/1000000",
        f"stream 3 to {where} reset: CANCEL",
    ]
    assert records(caplog, "trioclient") == [
        f'HTTP Request: GET {https_url}/json "HTTP/2 200 OK"',
        f'HTTP Request: GET {https_url}/bytes/1000000 "HTTP/2 200 OK"',
    ]


async def test_retries_log_each_attempt(http_url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="trioclient")
    retry = trioclient.Retry(total=1, backoff_factor=0, backoff_jitter=0)
    secret_url = http_url.replace("http://", "http://u:retry-secret@")
    async with trioclient.Client(retries=retry) as client:
        await client.get(f"{secret_url}/status/503")
    lines = records(caplog, "trioclient")
    assert [line for line in lines if line.startswith("HTTP Request")] == [
        f"HTTP Request: GET {http_url.replace('http://', 'http://[secure]@')}/status/503 "
        '"HTTP/1.1 503 Service Unavailable"'
    ] * 2
    assert "retry-secret" not in "\n".join(lines)


async def test_nothing_is_formatted_when_logging_is_off(
    http_url: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.WARNING, logger="trioclient")

    def never(*args: object) -> str:
        raise AssertionError("formatted a log line nobody listens to")

    monkeypatch.setattr(trioclient._send, "log_request", never)
    monkeypatch.setattr(trioclient._transport._http2, "redact_url", never)
    async with trioclient.Client() as client:
        for _ in range(3):
            await client.get(f"{http_url}/")
    assert not [r for r in caplog.records if r.name.startswith("trioclient")]


async def test_a_cancelled_request_still_logs_its_connection_close(
    http_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="trioclient.pool")
    where = http_url.removeprefix("http://")
    async with trioclient.Client() as client:
        with trio.move_on_after(0.05):
            await client.get(f"{http_url}/hold")
    assert records(caplog, "trioclient.pool")[-1] == f"closing the connection to {where}"


async def test_debug_lines_for_server_resets_and_goaway(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    from h2.errors import ErrorCodes
    from servers import h2_handlers
    from servers.h2_raw import serve_h2

    caplog.set_level(logging.DEBUG, logger="trioclient")
    resetting = h2_handlers.reset_stream(ErrorCodes.INTERNAL_ERROR, on="request")
    url = await serve_h2(nursery, resetting)
    where = url.removeprefix("http://")
    async with trioclient.Client(http1=False, http2=True) as client:
        with pytest.raises(trioclient.RemoteProtocolError):
            await client.get(f"{url}/x")
    assert f"stream 1 reset by {where}: INTERNAL_ERROR" in records(caplog, "trioclient.http2")

    caplog.clear()
    url = await serve_h2(nursery, h2_handlers.goaway_after(1, error_code=ErrorCodes.INTERNAL_ERROR))
    where = url.removeprefix("http://")
    async with trioclient.Client(http1=False, http2=True) as client:
        await client.get(f"{url}/first")
        await client.get(f"{url}/second")
    lines = records(caplog, "trioclient.http2")
    assert any(line.startswith(f"GOAWAY from {where}: INTERNAL_ERROR") for line in lines), lines
