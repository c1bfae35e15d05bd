"""TLS: verification sources, hostname checks, client certificates, SNI, ALPN, bad peers.

Every failed handshake must be a `ConnectError` (or `ConnectTimeout`) naming the peer and
saying what failed; the same client then still works and its books balance.
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
from functools import partial
from pathlib import Path

import pytest
import trio
import trustme
from helpers import assert_quiet
from servers.peers import unavailable
from servers.raw import BufferedStream, read_request, respond, response_bytes, serve_raw

import trioclient
from trioclient import Timeout
from trioclient._transport._tls import create_ssl_context

# --- helpers ---------------------------------------------------------------------------------


async def assert_still_works(client: trioclient.Client, url: str) -> None:
    assert_quiet(client)
    response = await client.get(url)
    assert response.status_code == 200
    assert_quiet(client)


def authority(url: str) -> str:
    return url.split("://", 1)[1].rstrip("/")


def server_context(tls_ca: trustme.CA, *hostnames: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls_ca.issue_cert(*hostnames).configure_cert(context)
    return context


async def wait_for_close(stream: BufferedStream) -> None:
    try:
        while await stream.receive_some(65536):
            pass
    except trio.BrokenResourceError:
        pass


async def serve_tls_with_alerts(nursery: trio.Nursery, context: ssl.SSLContext) -> str:
    """A TLS server that, unlike `trio.SSLStream`, sends OpenSSL's alert when its side of
    the handshake fails (e.g. a missing client certificate), as real servers do. After a
    successful handshake it answers one request with 200 ``ok``."""

    async def flush(tcp: trio.SocketStream, outgoing: ssl.MemoryBIO) -> None:
        data = outgoing.read()
        if data:
            await tcp.send_all(data)

    async def handle(tcp: trio.SocketStream) -> None:
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = context.wrap_bio(incoming, outgoing, server_side=True)
        try:
            async with tcp:
                try:
                    while True:
                        try:
                            tls.do_handshake()
                            break
                        except ssl.SSLWantReadError:
                            await flush(tcp, outgoing)
                            data = await tcp.receive_some(65536)
                            if not data:
                                return
                            incoming.write(data)
                    await flush(tcp, outgoing)
                    request = b""
                    while b"\r\n\r\n" not in request:
                        try:
                            request += tls.read(65536)
                        except ssl.SSLWantReadError:
                            await flush(tcp, outgoing)
                            data = await tcp.receive_some(65536)
                            if not data:
                                return
                            incoming.write(data)
                    tls.write(response_bytes(200, [("Connection", "close")], b"ok"))
                    await flush(tcp, outgoing)
                except ssl.SSLError:
                    await flush(tcp, outgoing)  # the alert
                # Drain until the client closes, so no RST can destroy the alert in flight.
                while await tcp.receive_some(65536):
                    pass
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass

    listeners = await nursery.start(partial(trio.serve_tcp, handle, 0, host="127.0.0.1"))
    return f"https://127.0.0.1:{listeners[0].socket.getsockname()[1]}"


# --- where trust comes from ------------------------------------------------------------------


async def test_default_verify_rejects_an_unknown_ca(https_url: str, http_url: str) -> None:
    async with trioclient.Client() as client:  # certifi's bundle does not know the test CA
        with pytest.raises(trioclient.ConnectError) as info:
            await client.get(https_url)
        message = str(info.value)
        assert f"TLS handshake with {authority(https_url)}" in message
        assert "certificate verify failed" in message
        assert "unable to get local issuer certificate" in message
        assert client.pool_statistics().connections == 0
        await assert_still_works(client, http_url)


async def test_verify_with_a_ca_file(https_url: str, ca_pem_path: str, socket_leak_checker) -> None:
    async with trioclient.Client(verify=ca_pem_path) as client:
        response = await client.get(https_url)
        assert response.status_code == 200
        assert response.http_version == "HTTP/1.1"  # hypercorn offers h2 too; we do not
        assert response.url.scheme == "https"
        await assert_still_works(client, https_url)
    assert socket_leak_checker.created == 1  # TLS connections are kept alive too


async def test_verify_with_an_ssl_context(https_url: str, ssl_context: ssl.SSLContext) -> None:
    async with trioclient.Client(verify=ssl_context) as client:
        assert (await client.get(f"{https_url}/json")).json() == {"hello": "world", "n": 1}
        await assert_still_works(client, https_url)


async def test_verify_false_accepts_anything(
    nursery: trio.Nursery, https_url: str, tls_ca: trustme.CA
) -> None:
    url = await serve_raw(nursery, respond(), tls=server_context(tls_ca, "other.example"))
    async with trioclient.Client(verify=False) as client:
        assert (await client.get(https_url)).status_code == 200
        assert (await client.get(url)).text == "ok"  # wrong name, unknown CA: no checks
        await assert_still_works(client, https_url)


async def test_ssl_cert_file_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, https_url: str, ca_pem_path: str
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", ca_pem_path)
    async with trioclient.Client() as client:
        assert (await client.get(https_url)).status_code == 200
        await assert_still_works(client, https_url)


async def test_ssl_cert_file_is_ignored_without_trust_env(
    monkeypatch: pytest.MonkeyPatch, https_url: str, http_url: str, ca_pem_path: str
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", ca_pem_path)
    async with trioclient.Client(trust_env=False) as client:
        with pytest.raises(trioclient.ConnectError, match="certificate verify failed"):
            await client.get(https_url)
        await assert_still_works(client, http_url)


async def test_ssl_cert_file_pointing_nowhere_falls_back_to_certifi(
    monkeypatch: pytest.MonkeyPatch, https_url: str, tmp_path: Path
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "missing.pem"))
    async with trioclient.Client() as client:
        with pytest.raises(trioclient.ConnectError, match="certificate verify failed"):
            await client.get(https_url)
        assert_quiet(client)


@pytest.fixture
def ca_dir(ca_pem_path: str, tmp_path: Path) -> str:
    """A CA directory in OpenSSL's hashed layout (`<subject hash>.0`) holding the test CA."""
    openssl = shutil.which("openssl")
    if openssl is None:  # pragma: no cover - depends on the machine
        unavailable("the openssl command is needed to hash a CA directory", "openssl")
    result = subprocess.run(
        [openssl, "x509", "-hash", "-noout", "-in", ca_pem_path],
        check=True,
        capture_output=True,
        text=True,
    )
    directory = tmp_path / "cas"
    directory.mkdir()
    shutil.copy(ca_pem_path, directory / f"{result.stdout.strip()}.0")
    return str(directory)


async def test_verify_with_a_ca_directory(https_url: str, ca_dir: str) -> None:
    async with trioclient.Client(verify=ca_dir) as client:
        assert (await client.get(https_url)).status_code == 200
        await assert_still_works(client, https_url)


async def test_ssl_cert_dir_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, https_url: str, ca_dir: str
) -> None:
    monkeypatch.setenv("SSL_CERT_DIR", ca_dir)
    async with trioclient.Client() as client:
        assert (await client.get(https_url)).status_code == 200
    async with trioclient.Client(trust_env=False) as client:
        with pytest.raises(trioclient.ConnectError, match="certificate verify failed"):
            await client.get(https_url)


@pytest.mark.parametrize(("http1", "http2"), [(True, False), (True, True), (False, True)])
async def test_alpn_list_of_the_context_builder(
    nursery: trio.Nursery, tls_ca: trustme.CA, ca_pem_path: str, http1: bool, http2: bool
) -> None:
    """Client refuses http2=True for now; the context builder already knows the list.
    A server offering one protocol selects it only if the client offered it too."""
    offered = []
    for protocol in ("http/1.1", "h2"):
        server = server_context(tls_ca, "127.0.0.1")
        server.set_alpn_protocols([protocol])
        url = await serve_raw(nursery, wait_for_close, tls=server)
        context = create_ssl_context(ca_pem_path, http1=http1, http2=http2)
        tcp = await trio.open_tcp_stream("127.0.0.1", int(url.rsplit(":", 1)[1]))
        tls = trio.SSLStream(tcp, context, server_hostname="127.0.0.1")
        try:
            await tls.do_handshake()
            if tls.selected_alpn_protocol() == protocol:
                offered.append(protocol)
        finally:
            await tls.aclose()
    assert offered == [name for name, on in (("http/1.1", http1), ("h2", http2)) if on]


def test_verify_path_that_does_not_exist(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="neither a CA bundle file nor a directory"):
        trioclient.Client(verify=str(tmp_path / "nope.pem"))


def test_verify_of_the_wrong_type() -> None:
    with pytest.raises(TypeError, match="verify must be"):
        trioclient.Client(verify=42)  # type: ignore[arg-type]


def test_cert_tuple_of_the_wrong_length(client_cert: tuple[str, str]) -> None:
    bad = (*client_cert, "password", "extra")
    with pytest.raises(TypeError, match="cert must be"):
        trioclient.Client(cert=bad)  # type: ignore[arg-type]


def test_keylog_only_with_trust_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    keylog = str(tmp_path / "keys.log")
    monkeypatch.setenv("SSLKEYLOGFILE", keylog)
    # The trusting context is created (and cached) first: it must not leak into the other.
    assert create_ssl_context(trust_env=True).keylog_filename == keylog
    assert create_ssl_context(trust_env=False).keylog_filename is None
    assert create_ssl_context(False, trust_env=False).keylog_filename is None
    monkeypatch.delenv("SSLKEYLOGFILE")
    assert create_ssl_context(trust_env=True).keylog_filename is None


async def test_keylog_file_is_written(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, https_url: str, ca_pem_path: str
) -> None:
    keylog = tmp_path / "keys.log"
    monkeypatch.setenv("SSLKEYLOGFILE", str(keylog))
    async with trioclient.Client(verify=ca_pem_path) as client:
        assert (await client.get(https_url)).status_code == 200
    assert "CLIENT_" in keylog.read_text()


# --- what the certificate must match ---------------------------------------------------------


async def test_certificate_for_another_name(
    nursery: trio.Nursery, tls_ca: trustme.CA, ca_pem_path: str, https_url: str
) -> None:
    url = await serve_raw(nursery, respond(), tls=server_context(tls_ca, "other.example"))
    async with trioclient.Client(verify=ca_pem_path) as client:
        with pytest.raises(trioclient.ConnectError) as info:
            await client.get(url)
        message = str(info.value)
        assert f"TLS handshake with {authority(url)}" in message
        assert "certificate verify failed" in message
        assert "mismatch, certificate is not valid for '127.0.0.1'" in message

        by_name = url.replace("127.0.0.1", "localhost")
        with pytest.raises(trioclient.ConnectError) as info:
            await client.get(by_name)
        assert "Hostname mismatch, certificate is not valid for 'localhost'" in str(info.value)
        assert f"localhost:{by_name.rsplit(':', 1)[1]}" in str(info.value)
        await assert_still_works(client, https_url)


async def test_certificate_from_another_ca(
    nursery: trio.Nursery, ca_pem_path: str, https_url: str
) -> None:
    url = await serve_raw(nursery, respond(), tls=server_context(trustme.CA(), "127.0.0.1"))
    async with trioclient.Client(verify=ca_pem_path) as client:
        with pytest.raises(trioclient.ConnectError, match="certificate verify failed"):
            await client.get(url)
        await assert_still_works(client, https_url)


# --- client certificates ---------------------------------------------------------------------


def requiring_client_cert(context: ssl.SSLContext, tls_ca: trustme.CA) -> ssl.SSLContext:
    context.verify_mode = ssl.CERT_REQUIRED
    tls_ca.configure_trust(context)
    return context


async def test_client_certificate_is_presented(
    nursery: trio.Nursery,
    server_ssl_context: ssl.SSLContext,
    tls_ca: trustme.CA,
    ca_pem_path: str,
    client_cert: tuple[str, str],
) -> None:
    peers: list[object] = []

    async def handler(stream: BufferedStream) -> None:
        tls = stream.stream
        assert isinstance(tls, trio.SSLStream)
        peers.append(tls.getpeercert())
        await respond()(stream)

    url = await serve_raw(nursery, handler, tls=requiring_client_cert(server_ssl_context, tls_ca))
    async with trioclient.Client(verify=ca_pem_path, cert=client_cert) as client:
        assert (await client.get(url)).text == "ok"
        await assert_still_works(client, url)
    assert len(peers) == 1
    subject = dict(item for rdn in peers[0]["subject"] for item in rdn)  # type: ignore[index]
    assert subject["commonName"] == "trioclient test client"


@pytest.fixture
def client_cert_single_file(client_cert: tuple[str, str], tmp_path: Path) -> str:
    """The client certificate's key and chain in one PEM file."""
    combined = tmp_path / "client.pem"
    combined.write_bytes(Path(client_cert[1]).read_bytes() + Path(client_cert[0]).read_bytes())
    return str(combined)


async def test_client_certificate_single_pem_file(
    nursery: trio.Nursery,
    server_ssl_context: ssl.SSLContext,
    tls_ca: trustme.CA,
    ca_pem_path: str,
    client_cert_single_file: str,
) -> None:
    url = await serve_raw(nursery, respond(), tls=requiring_client_cert(server_ssl_context, tls_ca))
    async with trioclient.Client(verify=ca_pem_path, cert=client_cert_single_file) as client:
        assert (await client.get(url)).text == "ok"


async def test_client_certificate_with_a_password_tuple(
    nursery: trio.Nursery,
    server_ssl_context: ssl.SSLContext,
    tls_ca: trustme.CA,
    ca_pem_path: str,
    client_cert: tuple[str, str],
) -> None:
    url = await serve_raw(nursery, respond(), tls=requiring_client_cert(server_ssl_context, tls_ca))
    cert = (client_cert[0], client_cert[1], "unused: the key is not encrypted")
    async with trioclient.Client(verify=ca_pem_path, cert=cert) as client:
        assert (await client.get(url)).text == "ok"


async def test_missing_client_certificate_tls12(
    nursery: trio.Nursery, tls_ca: trustme.CA, ca_pem_path: str, https_url: str
) -> None:
    """TLS 1.2: the server refuses during the handshake, so this is a ConnectError."""
    context = requiring_client_cert(server_context(tls_ca, "127.0.0.1"), tls_ca)
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    url = await serve_tls_with_alerts(nursery, context)
    async with trioclient.Client(verify=ca_pem_path) as client:
        with pytest.raises(trioclient.ConnectError) as info:
            await client.get(url)
        message = str(info.value)
        assert f"TLS handshake with {authority(url)}" in message
        assert "SSLV3_ALERT_HANDSHAKE_FAILURE" in message
        await assert_still_works(client, https_url)


async def test_missing_client_certificate_tls12_silent_close(
    nursery: trio.Nursery,
    server_ssl_context: ssl.SSLContext,
    tls_ca: trustme.CA,
    ca_pem_path: str,
    https_url: str,
) -> None:
    """A server that drops the connection without an alert (trio's SSLStream does)."""
    context = requiring_client_cert(server_ssl_context, tls_ca)
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    url = await serve_raw(nursery, respond(), tls=context)
    async with trioclient.Client(verify=ca_pem_path) as client:
        with pytest.raises(
            trioclient.ConnectError,
            match=f"TLS handshake with {authority(url)}: the server closed the connection",
        ):
            await client.get(url)
        await assert_still_works(client, https_url)


async def test_missing_client_certificate_tls13(
    nursery: trio.Nursery, tls_ca: trustme.CA, ca_pem_path: str, https_url: str
) -> None:
    """TLS 1.3: the client's handshake completes before the server checks the client
    certificate, so the refusal can only arrive as the answer to the request: a ReadError
    that says what the server wants, not a ConnectError (no client can know earlier)."""
    context = requiring_client_cert(server_context(tls_ca, "127.0.0.1"), tls_ca)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    url = await serve_tls_with_alerts(nursery, context)
    async with trioclient.Client(verify=ca_pem_path) as client:
        with pytest.raises(trioclient.TransportError) as info:
            await client.get(url)
        assert isinstance(info.value, trioclient.ReadError)
        message = str(info.value)
        assert authority(url) in message
        assert "the server requires a client certificate" in message
        assert "TLSV13_ALERT_CERTIFICATE_REQUIRED" in message
        await assert_still_works(client, https_url)


async def test_alert_server_accepts_a_client_certificate(
    nursery: trio.Nursery, tls_ca: trustme.CA, ca_pem_path: str, client_cert: tuple[str, str]
) -> None:
    context = requiring_client_cert(server_context(tls_ca, "127.0.0.1"), tls_ca)
    url = await serve_tls_with_alerts(nursery, context)
    async with trioclient.Client(verify=ca_pem_path, cert=client_cert) as client:
        assert (await client.get(url)).text == "ok"
        assert_quiet(client)


# --- SNI and ALPN ----------------------------------------------------------------------------


async def test_sni_carries_the_host_name(
    nursery: trio.Nursery, server_ssl_context: ssl.SSLContext, ca_pem_path: str
) -> None:
    names: list[str | None] = []

    def sni(sock: ssl.SSLObject, name: str | None, context: ssl.SSLContext) -> None:
        names.append(name)

    server_ssl_context.sni_callback = sni  # type: ignore[assignment]
    url = await serve_raw(nursery, respond(), tls=server_ssl_context)
    async with trioclient.Client(verify=ca_pem_path) as client:
        assert (await client.get(url.replace("127.0.0.1", "localhost"))).text == "ok"
        assert (await client.get(url)).text == "ok"
    async with trioclient.Client(verify=ca_pem_path) as client:
        assert (await client.get(url.replace("127.0.0.1", "LocalHost"))).text == "ok"
    # An IP address is never sent as SNI; a name goes lowercase, as in the URL's host.
    assert names == ["localhost", None, "localhost"]


async def test_alpn_offers_http11_only(
    nursery: trio.Nursery, tls_ca: trustme.CA, ca_pem_path: str
) -> None:
    selected: list[str | None] = []

    async def handler(stream: BufferedStream) -> None:
        tls = stream.stream
        assert isinstance(tls, trio.SSLStream)
        selected.append(tls.selected_alpn_protocol())
        await read_request(stream)
        await stream.send_all(response_bytes(200, [("Connection", "close")], b"ok"))

    both = server_context(tls_ca, "127.0.0.1")
    both.set_alpn_protocols(["h2", "http/1.1"])
    h2_only = server_context(tls_ca, "127.0.0.1")
    h2_only.set_alpn_protocols(["h2"])
    url_both = await serve_raw(nursery, handler, tls=both)
    url_h2 = await serve_raw(nursery, handler, tls=h2_only)
    async with trioclient.Client(verify=ca_pem_path) as client:
        assert (await client.get(url_both)).text == "ok"
        assert (await client.get(url_h2)).text == "ok"  # no common protocol: no ALPN at all
    assert selected == ["http/1.1", None]


async def test_alpn_is_set_on_a_caller_context(
    nursery: trio.Nursery, tls_ca: trustme.CA, ssl_context: ssl.SSLContext
) -> None:
    selected: list[str | None] = []

    async def handler(stream: BufferedStream) -> None:
        tls = stream.stream
        assert isinstance(tls, trio.SSLStream)
        selected.append(tls.selected_alpn_protocol())
        await respond()(stream)

    server = server_context(tls_ca, "127.0.0.1")
    server.set_alpn_protocols(["h2", "http/1.1"])
    url = await serve_raw(nursery, handler, tls=server)
    async with trioclient.Client(verify=ssl_context) as client:
        assert (await client.get(url)).text == "ok"
    assert selected == ["http/1.1"]


# --- peers that do not speak TLS -------------------------------------------------------------


async def test_handshake_with_a_silent_peer_times_out(nursery: trio.Nursery, http_url: str) -> None:
    url = await serve_raw(nursery, wait_for_close)  # plain TCP: never answers the ClientHello
    tls_url = url.replace("http://", "https://")
    async with trioclient.Client(timeout=Timeout(10, connect=0.2)) as client:
        with pytest.raises(trioclient.ConnectTimeout) as info:
            await client.get(tls_url)
        assert authority(tls_url) in str(info.value)
        assert "0.2 s" in str(info.value)
        assert client.pool_statistics().connections == 0
        await assert_still_works(client, http_url)


async def test_peer_answering_garbage_instead_of_tls(nursery: trio.Nursery, http_url: str) -> None:
    async def handler(stream: BufferedStream) -> None:
        await stream.receive_some(65536)
        await stream.send_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        await wait_for_close(stream)

    url = (await serve_raw(nursery, handler)).replace("http://", "https://")
    async with trioclient.Client() as client:
        with pytest.raises(trioclient.ConnectError) as info:
            await client.get(url)
        message = str(info.value)
        assert f"TLS handshake with {authority(url)}" in message
        assert "did not answer with TLS" in message
        assert "WRONG_VERSION_NUMBER" in message
        await assert_still_works(client, http_url)


async def test_peer_closing_during_the_handshake(nursery: trio.Nursery, http_url: str) -> None:
    async def handler(stream: BufferedStream) -> None:
        await stream.receive_some(65536)

    url = (await serve_raw(nursery, handler)).replace("http://", "https://")
    async with trioclient.Client() as client:
        with pytest.raises(
            trioclient.ConnectError,
            match=f"TLS handshake with {authority(url)}: the server closed the connection",
        ):
            await client.get(url)
        await assert_still_works(client, http_url)


async def test_https_to_a_plain_http_port(http_url: str) -> None:
    url = http_url.replace("http://", "https://")
    async with trioclient.Client() as client:
        with pytest.raises(trioclient.ConnectError, match=authority(url)):
            await client.get(url)
        await assert_still_works(client, http_url)


async def test_plain_http_to_a_tls_port(https_url: str, http_url: str) -> None:
    url = https_url.replace("https://", "http://")
    async with trioclient.Client(timeout=Timeout(2)) as client:
        with pytest.raises(trioclient.TransportError) as info:
            await client.get(url)
        assert isinstance(info.value, (trioclient.RemoteProtocolError, trioclient.ReadError))
        assert authority(url) in str(info.value)
        await assert_still_works(client, http_url)


# --- keep-alive over TLS ---------------------------------------------------------------------


async def test_idle_tls_connection_closed_by_server_is_not_reused(
    nursery: trio.Nursery, server_ssl_context: ssl.SSLContext, ca_pem_path: str
) -> None:
    closed = trio.Event()
    connections = 0

    async def handler(stream: BufferedStream) -> None:
        nonlocal connections
        connections += 1
        await read_request(stream)
        await stream.send_all(response_bytes(200, body=b"ok"))
        await stream.aclose()  # close_notify, then FIN, while the client holds it idle
        closed.set()

    url = await serve_raw(nursery, handler, tls=server_ssl_context)
    async with trioclient.Client(verify=ca_pem_path) as client:
        assert (await client.get(url)).text == "ok"
        with trio.fail_after(5):
            await closed.wait()
        assert (await client.get(url)).text == "ok"
        assert connections == 2
        assert_quiet(client)


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_reused_tls_connection_dropped_without_response(
    nursery: trio.Nursery, server_ssl_context: ssl.SSLContext, ca_pem_path: str, method: str
) -> None:
    """GET is retried once on a fresh connection; POST is not and fails precisely."""
    connections = 0

    async def handler(stream: BufferedStream) -> None:
        nonlocal connections
        connections += 1
        if connections == 1:
            await read_request(stream)
            await stream.send_all(response_bytes(200, body=b"first"))
            await read_request(stream)
            return  # close_notify without a response
        await respond(body=b"fresh")(stream)

    url = await serve_raw(nursery, handler, tls=server_ssl_context)
    async with trioclient.Client(verify=ca_pem_path) as client:
        assert (await client.get(url)).text == "first"
        if method == "GET":
            assert (await client.get(url)).text == "fresh"
            assert connections == 2
        else:
            with pytest.raises(
                trioclient.RemoteProtocolError,
                match=f"Server {authority(url)} disconnected without sending a response",
            ):
                await client.post(url, content=b"not retried")
            assert connections == 1
            assert (await client.post(url, content=b"again")).text == "fresh"
        assert_quiet(client)
