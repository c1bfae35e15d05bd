"""DigestAuth against httpbin and an independent RFC 7616 server (``servers.digest_app``);
NetRCAuth with a temporary netrc file; the generator flow's `requires_request_body` and
`requires_response_body`; streamed bodies across auth rounds."""

from __future__ import annotations

import io
import netrc
import os
import sys
from collections.abc import AsyncIterator, Generator, Iterator
from pathlib import Path

import pytest
from servers.hypercorn_server import HypercornServer

import trioclient


@pytest.fixture(scope="module")
def digest_server(tls_ca: object) -> Iterator[HypercornServer]:
    from servers.digest_app import app

    with HypercornServer(app=app, ca=tls_ca) as server:  # type: ignore[arg-type]
        yield server


@pytest.fixture
def digest_url(digest_server: HypercornServer) -> str:
    return digest_server.http_url


# --- httpbin -----------------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["MD5", "SHA-256", "SHA-512"])
@pytest.mark.parametrize("qop", ["auth", "auth-int"])
async def test_httpbin_digest(httpbin_url: str, algorithm: str, qop: str) -> None:
    auth = trioclient.DigestAuth("user", "passwd")
    url = f"{httpbin_url}/digest-auth/{qop}/user/passwd/{algorithm}"
    async with trioclient.Client(auth=auth) as client:
        first = await client.get(url)
        second = await client.get(url)  # the remembered challenge: no 401 this time
    assert first.status_code == 200, first.text
    assert first.json() == {"authenticated": True, "user": "user"}
    assert [r.status_code for r in first.history] == [401]
    assert second.status_code == 200
    assert second.history == []
    assert "nc=00000002" in second.request.headers["authorization"]


async def test_httpbin_digest_stale_after_and_cookies(httpbin_url: str) -> None:
    """httpbin marks a nonce stale through cookies: the client's jar carries them across
    rounds. (Its `?require-cookie=1` variant cannot be used: httpbin 0.10 fails with a
    TypeError on any query string in a digest request.)"""
    url = f"{httpbin_url}/digest-auth/auth/user/passwd/MD5/1"
    async with trioclient.Client(auth=trioclient.DigestAuth("user", "passwd")) as client:
        first = await client.get(url)
        second = await client.get(url)
    assert first.status_code == 200, first.text
    assert second.status_code == 200, second.text
    assert [r.status_code for r in second.history] == [401]
    assert "STALE=TRUE" in second.history[0].headers["www-authenticate"].upper()


async def test_httpbin_digest_wrong_password(httpbin_url: str) -> None:
    async with trioclient.Client() as client:
        response = await client.get(
            f"{httpbin_url}/digest-auth/auth/user/passwd/MD5",
            auth=trioclient.DigestAuth("user", "wrong"),
        )
    assert response.status_code == 401
    assert len(response.history) == 1


# --- the RFC 7616 server -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "algorithm",
    ["MD5", "MD5-sess", "SHA-256", "SHA-256-sess", "SHA-512-256", "SHA-512-256-sess"],
)
@pytest.mark.parametrize("qop", ["auth", "auth-int", "none"])
async def test_rfc_7616_algorithms(digest_url: str, algorithm: str, qop: str) -> None:
    auth = trioclient.DigestAuth("Mufasa", "Circle of Life")
    url = f"{digest_url}/digest/{algorithm}/{qop}/Mufasa/Circle of Life?opaque=1"
    async with trioclient.Client(auth=auth) as client:
        responses = [await client.post(url, content=b"a body") for _ in range(3)]
    for response in responses:
        assert response.status_code == 200, response.text
    if qop != "none":
        assert [r.json()["nc"] for r in responses] == ["00000001", "00000002", "00000003"]
        assert len({r.json()["cnonce"] for r in responses}) == 3  # a new cnonce each time
    assert [len(r.history) for r in responses] == [1, 0, 0]


async def test_userhash_and_a_non_ascii_user(digest_url: str) -> None:
    async with trioclient.Client() as client:
        hashed = await client.get(
            f"{digest_url}/digest/SHA-256/auth/user/pw?userhash=1",
            auth=trioclient.DigestAuth("user", "pw"),
        )
        unicode = await client.get(
            f"{digest_url}/digest/SHA-256/auth/J%C3%A4s%C3%B8n/pw",
            auth=trioclient.DigestAuth("Jäsøn", "pw"),
        )
    assert hashed.status_code == 200, hashed.text
    assert unicode.status_code == 200, unicode.text


async def test_a_stale_nonce_is_retried_once_with_the_new_one(digest_url: str) -> None:
    auth = trioclient.DigestAuth("u", "p")
    url = f"{digest_url}/digest/MD5/auth/u/p?stale_after=1"
    async with trioclient.Client(auth=auth) as client:
        first = await client.get(url)
        second = await client.get(url)  # the remembered nonce went stale after one use
    assert first.status_code == second.status_code == 200
    assert [r.status_code for r in second.history] == [401]
    stale = second.history[0]
    assert "stale=true" in stale.headers["www-authenticate"]
    assert second.json()["nonce"] != first.json()["nonce"]
    assert second.json()["nc"] == "00000001"


async def test_a_nonce_stale_at_once_is_answered_once_then_returned(digest_url: str) -> None:
    async with trioclient.Client() as client:
        response = await client.get(
            f"{digest_url}/digest/MD5/auth/u/p?stale_after=0", auth=trioclient.DigestAuth("u", "p")
        )
    assert response.status_code == 401
    assert len(response.history) == 2  # challenge, answer (stale), answer (stale): returned
    assert "stale=true" in response.headers["www-authenticate"]


async def test_a_malformed_challenge_is_a_remote_protocol_error(digest_url: str) -> None:
    async with trioclient.Client() as client:
        with pytest.raises(trioclient.RemoteProtocolError, match="WWW-Authenticate"):
            await client.get(
                f"{digest_url}/challenge",
                params={"value": 'Digest realm="unterminated'},
                auth=trioclient.DigestAuth("u", "p"),
            )
        assert client.pool_statistics().in_use == 0
        assert (await client.get(f"{digest_url}/challenge")).status_code == 401


async def test_digest_with_a_seekable_upload_replays_it(digest_url: str) -> None:
    async with trioclient.Client(auth=trioclient.DigestAuth("u", "p")) as client:
        response = await client.post(
            f"{digest_url}/digest/SHA-256/auth/u/p", files={"f": io.BytesIO(b"x" * 100_000)}
        )
    assert response.status_code == 200
    assert len(response.history) == 1


async def test_a_streamed_body_cannot_be_sent_in_a_second_round(digest_url: str) -> None:
    async def body() -> AsyncIterator[bytes]:
        yield b"streamed"

    async with trioclient.Client(auth=trioclient.DigestAuth("u", "p")) as client:
        with pytest.raises(trioclient.StreamConsumed, match="auth"):
            await client.post(f"{digest_url}/digest/MD5/auth/u/p", content=body())
        assert client.pool_statistics().in_use == 0


class BodySigning(trioclient.Auth):
    """A flow that needs the request body (it signs it) and the response body."""

    requires_request_body = True
    requires_response_body = True

    def __init__(self) -> None:
        self.seen: list[bytes] = []

    def auth_flow(
        self, request: trioclient.Request
    ) -> Generator[trioclient.Request, trioclient.Response, None]:
        request.headers["X-Body-Length"] = str(len(request.content))
        response = yield request
        self.seen.append(response.content)


async def test_requires_request_body_reads_a_stream_first(digest_url: str) -> None:
    async def body() -> AsyncIterator[bytes]:
        yield b"one "
        yield b"two"

    auth = BodySigning()
    async with trioclient.Client() as client:
        response = await client.post(f"{digest_url}/nowhere", content=body(), auth=auth)
    assert response.request.headers["x-body-length"] == "7"
    assert response.request.content == b"one two"
    assert auth.seen == [b"{}"]


async def test_requires_request_body_with_digest_and_a_stream(digest_url: str) -> None:
    """A DigestAuth subclass that reads the body first can resend it."""

    class BufferedDigest(trioclient.DigestAuth):
        requires_request_body = True

    async def body() -> AsyncIterator[bytes]:
        yield b"streamed"

    async with trioclient.Client(auth=BufferedDigest("u", "p")) as client:
        response = await client.post(f"{digest_url}/digest/MD5/auth-int/u/p", content=body())
    assert response.status_code == 200, response.text


# --- NetRCAuth ---------------------------------------------------------------------------------


@pytest.fixture
def netrc_file(tmp_path: Path) -> Path:
    path = tmp_path / "netrc"
    path.write_text("machine 127.0.0.1\n  login netuser\n  password netpass\n")
    path.chmod(0o600)
    return path


async def test_netrc_auth_with_a_file(http_url: str, netrc_file: Path) -> None:
    auth = trioclient.NetRCAuth(netrc_file)
    async with trioclient.Client(auth=auth) as client:
        response = await client.get(f"{http_url}/basic-auth/netuser/netpass")
        other = await client.get(f"{http_url.replace('127.0.0.1', 'localhost')}/echo")
    assert response.status_code == 200
    assert "authorization" not in other.request.headers  # no entry for localhost


def test_netrc_auth_host_lookup(netrc_file: Path) -> None:
    auth = trioclient.NetRCAuth(str(netrc_file))
    for url, expected in [
        ("http://127.0.0.1:8000/", "Basic bmV0dXNlcjpuZXRwYXNz"),
        ("http://unknown.example/", None),
    ]:
        request = next(auth.auth_flow(trioclient.Request("GET", url)))
        assert request.headers.get("authorization") == expected


def test_netrc_entry_without_a_password(tmp_path: Path) -> None:
    path = tmp_path / "netrc"
    path.write_text(
        "machine 127.0.0.1\n  login netuser\n  password netpass\n"
        "machine nopassword.example\n  login someone\n"
    )
    path.chmod(0o600)
    if sys.version_info < (3, 11):
        # Python 3.10's netrc calls such an entry malformed (3.11 accepts it).
        with pytest.raises(netrc.NetrcParseError, match=r"nopassword\.example"):
            trioclient.NetRCAuth(path)
        return
    auth = trioclient.NetRCAuth(path)
    request = next(auth.auth_flow(trioclient.Request("GET", "http://nopassword.example/")))
    assert "authorization" not in request.headers  # a login without a password: nothing sent


def test_netrc_auth_defaults_to_the_home_netrc(
    netrc_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = netrc_file.parent
    (home / ".netrc").write_bytes(netrc_file.read_bytes())
    (home / ".netrc").chmod(0o600)
    monkeypatch.setenv("HOME", str(home))
    request = next(trioclient.NetRCAuth().auth_flow(trioclient.Request("GET", "http://127.0.0.1/")))
    assert request.headers["authorization"] == "Basic bmV0dXNlcjpuZXRwYXNz"


def test_netrc_auth_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        trioclient.NetRCAuth(tmp_path / "missing")
    bad = tmp_path / "bad"
    bad.write_text("machine\n")
    with pytest.raises(netrc.NetrcParseError):
        trioclient.NetRCAuth(bad)
    with pytest.raises(TypeError, match="file"):
        trioclient.NetRCAuth(5)  # type: ignore[arg-type]
    assert os.path.exists(tmp_path)


async def test_an_auth_round_reuses_the_connection(
    digest_url: str, socket_leak_checker: object
) -> None:
    """The 401's small body is drained, so the answer goes on the same connection."""
    async with trioclient.Client(auth=trioclient.DigestAuth("u", "p")) as client:
        response = await client.get(f"{digest_url}/digest/MD5/auth/u/p")
        assert response.status_code == 200
        assert client.pool_statistics().connections == 1
    assert socket_leak_checker.created == 1  # type: ignore[attr-defined]


async def test_requires_request_body_closes_a_body_that_fails(digest_url: str) -> None:
    finished: list[bool] = []

    async def body() -> AsyncIterator[bytes]:
        try:
            yield b"part"
            raise OSError("the source broke")
        finally:
            finished.append(True)

    async with trioclient.Client() as client:
        with pytest.raises(OSError, match="the source broke"):
            await client.post(f"{digest_url}/nowhere", content=body(), auth=BodySigning())
    assert finished == [True]
