"""`trioclient [METHOD] URL [ITEM ...]` run in-process against the hypercorn test server.

`_cli.main()` calls `trio.run` itself, so these tests are synchronous. Standard output is a
pytest capture, not a terminal: the body alone unless -i/-v (tests/cli/test_terminal.py runs
the command in a pseudo-terminal).
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest
from servers.asgi_app import CHARSET_TEXT, pattern_bytes

from trioclient._cli import main


def run_cli(capsysbinary: pytest.CaptureFixture[bytes], *argv: str) -> tuple[int, bytes, str]:
    code = main(list(argv))
    captured = capsysbinary.readouterr()
    return code, captured.out, captured.err.decode("utf-8")


def split_response(out: bytes) -> tuple[str, list[str], bytes]:
    head, sep, body = out.partition(b"\n\n")
    assert sep, out
    status, *headers = head.decode("latin-1").split("\n")
    return status, headers, body


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_get_prints_status_headers_and_body(
    http_url: str, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    code, out, err = run_cli(capsysbinary, "-i", f"{http_url}/")
    assert code == 0
    assert err == ""
    status, headers, body = split_response(out)
    assert status == "HTTP/1.1 200 OK"
    assert "content-type: text/plain; charset=utf-8" in headers
    assert "content-length: 13" in headers
    assert body == b"Hello, world!"


def test_non_success_status_still_exits_zero(
    http_url: str, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    code, out, _ = run_cli(capsysbinary, "-i", f"{http_url}/status/404")
    assert code == 0
    assert split_response(out)[0] == "HTTP/1.1 404 Not Found"


def test_body_only(http_url: str, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    code, out, _ = run_cli(capsysbinary, "--body-only", f"{http_url}/bytes/70000")
    assert code == 0
    assert out == pattern_bytes(70000)


def test_body_is_decoded(http_url: str, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    code, out, _ = run_cli(capsysbinary, "--body-only", f"{http_url}/charset/latin-1")
    assert code == 0
    assert out == CHARSET_TEXT.encode("latin-1")
    code, out, _ = run_cli(capsysbinary, "--body-only", f"{http_url}/gzip")
    assert json.loads(out)["compressed"] is True


def test_post_with_data_and_header(
    http_url: str, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    code, out, _ = run_cli(
        capsysbinary,
        "-X",
        "POST",
        "-d",
        "héllo",
        "-H",
        "X-Test: yes",
        "-H",
        "X-Other:  spaced  ",
        "--body-only",
        f"{http_url}/echo",
    )
    assert code == 0
    echoed = json.loads(out)
    assert echoed["method"] == "POST"
    assert echoed["body"].encode("latin-1") == "héllo".encode()
    assert ["x-test", "yes"] in echoed["headers"]
    assert ["x-other", "spaced"] in echoed["headers"]


def test_data_implies_post_and_method_overrides(
    http_url: str, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    _, out, _ = run_cli(capsysbinary, "-d", "x", "--body-only", f"{http_url}/echo")
    assert json.loads(out)["method"] == "POST"
    _, out, _ = run_cli(capsysbinary, "-X", "PUT", "-d", "x", "--body-only", f"{http_url}/echo")
    assert json.loads(out)["method"] == "PUT"
    _, out, _ = run_cli(capsysbinary, "-X", "DELETE", "--body-only", f"{http_url}/echo")
    assert json.loads(out)["method"] == "DELETE"


def test_json_body(http_url: str, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    code, out, _ = run_cli(
        capsysbinary, "--json", '{"a": [1, 2]}', "--body-only", f"{http_url}/echo"
    )
    assert code == 0
    echoed = json.loads(out)
    assert echoed["method"] == "POST"
    assert json.loads(echoed["body"]) == {"a": [1, 2]}
    assert ["content-type", "application/json"] in echoed["headers"]


def test_invalid_json_is_a_usage_error(
    http_url: str, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    code, out, err = run_cli(capsysbinary, "--json", "{not json", f"{http_url}/echo")
    assert code == 2
    assert out == b""
    assert err.startswith("error: --json: not valid JSON")
    assert err.count("\n") == 1


def test_data_and_json_together_is_a_usage_error(
    http_url: str, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    code, _, err = run_cli(capsysbinary, "-d", "x", "--json", "1", f"{http_url}/echo")
    assert code == 2
    assert "not allowed with" in err
    assert err.count("\n") == 1


def test_malformed_header_argument(
    http_url: str, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    code, out, err = run_cli(capsysbinary, "-H", "no-colon", f"{http_url}/")
    assert code == 2
    assert out == b""
    assert err == "error: -H 'no-colon': a header must look like 'Name: value'\n"


def test_follow_redirects(http_url: str, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    _, out, _ = run_cli(capsysbinary, "-i", f"{http_url}/redirect/2")
    status, headers, _ = split_response(out)
    assert status == "HTTP/1.1 302 Found"
    assert "location: /redirect/1" in headers
    _, out, _ = run_cli(capsysbinary, "-L", "--body-only", f"{http_url}/redirect/2")
    assert out == b"done"


def test_https_needs_verification_or_no_verify(
    https_url: str, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    code, out, err = run_cli(capsysbinary, f"{https_url}/")
    assert code == 1
    assert out == b""
    assert err.startswith("error: ConnectError:")
    code, out, err = run_cli(capsysbinary, "-k", "--timeout", "5", "--body-only", f"{https_url}/")
    assert code == 0
    assert out == b"Hello, world!"


def test_connection_refused_exits_1(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    code, out, err = run_cli(capsysbinary, f"http://127.0.0.1:{closed_port()}/")
    assert code == 1
    assert out == b""
    assert err.startswith("error: ConnectError:")
    assert err.endswith("\n")


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("http://[::1/", "InvalidURL"),
        ("http://exa mple.org/", "InvalidURL"),
        ("http://127.0.0.1:99999/", "InvalidURL"),
        ("ftp://127.0.0.1/", "UnsupportedProtocol"),
    ],
)
def test_invalid_url_exits_1(
    url: str, error: str, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    code, out, err = run_cli(capsysbinary, url)
    assert code == 1
    assert out == b""
    assert err.startswith(f"error: {error}:")
    assert "Traceback" not in err


def test_python_dash_m_trioclient(http_url: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "trioclient", "-i", f"{http_url}/json"],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == b""
    head, _, body = result.stdout.partition(b"\n\n")
    assert head.startswith(b"HTTP/1.1 200 OK\n")
    assert b"content-type: application/json" in head
    assert json.loads(body) == {"hello": "world", "n": 1}
