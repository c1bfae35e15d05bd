"""What the request command sends: items, -d/--json/--form bodies, auth, proxies, HTTP/2.

Checked against two servers: the suite's echo route (the request exactly as received) and
httpbin (an independent multipart parser and Digest implementation).
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest
from cli_types import RunCLI
from servers.proxy_peers import TinyproxyServer


def echo(cli: RunCLI, *argv: str) -> dict[str, Any]:
    code, out, err = cli(*argv)
    assert (code, err) == (0, ""), err
    result: dict[str, Any] = json.loads(out)
    return result


def header(echoed: dict[str, Any], name: str) -> list[str]:
    return [v for k, v in echoed["headers"] if k == name.lower()]


def test_items_make_a_json_body(cli: RunCLI, http_url: str) -> None:
    echoed = echo(
        cli, f"{http_url}/echo", "name=Ada", "age:=36", 'tags:=["x"]', "X-Test:yes", "q==1 2"
    )
    assert echoed["method"] == "POST"
    assert json.loads(echoed["body"]) == {"name": "Ada", "age": 36, "tags": ["x"]}
    assert header(echoed, "content-type") == ["application/json"]
    assert header(echoed, "accept") == ["application/json, */*;q=0.5"]
    assert header(echoed, "x-test") == ["yes"]
    assert echoed["query"] == "q=1+2"


def test_method_word_and_header_only_items(cli: RunCLI, http_url: str) -> None:
    echoed = echo(cli, "put", f"{http_url}/echo", "a=1")
    assert echoed["method"] == "PUT"
    echoed = echo(cli, "GET", f"{http_url}/echo", "X-A:1", "p==v")
    assert (echoed["method"], echoed["body"], echoed["query"]) == ("GET", "", "p=v")
    # A custom method in capitals; a lowercase word that is not a method is the URL.
    echoed = echo(cli, "PURGE", f"{http_url}/echo")
    assert echoed["method"] == "PURGE"


def test_form_items(cli: RunCLI, http_url: str) -> None:
    echoed = echo(cli, "--form", f"{http_url}/echo", "a=1", "a=2", "b=x y")
    assert echoed["body"] == "a=1&a=2&b=x+y"
    assert header(echoed, "content-type") == ["application/x-www-form-urlencoded"]


def test_field_read_from_files(cli: RunCLI, http_url: str, tmp_path: Path) -> None:
    (tmp_path / "bio.txt").write_text("hello\nworld")
    (tmp_path / "cfg.json").write_text('{"deep": [1, {"x": null}]}')
    echoed = echo(
        cli, f"{http_url}/echo", f"bio=@{tmp_path / 'bio.txt'}", f"cfg:=@{tmp_path / 'cfg.json'}"
    )
    assert json.loads(echoed["body"]) == {"bio": "hello\nworld", "cfg": {"deep": [1, {"x": None}]}}


def test_data_like_curl(cli: RunCLI, http_url: str, tmp_path: Path) -> None:
    echoed = echo(cli, "-d", "a=1", "-d", "b=2", f"{http_url}/echo")
    assert echoed["body"] == "a=1&b=2"
    assert header(echoed, "content-type") == ["application/x-www-form-urlencoded"]
    body = tmp_path / "body.bin"
    body.write_bytes(b"\x00\xff raw\n")
    echoed = echo(
        cli, "-d", f"@{body}", "-H", "Content-Type: application/octet-stream", f"{http_url}/echo"
    )
    assert echoed["body"].encode("latin-1") == b"\x00\xff raw\n"
    assert header(echoed, "content-type") == ["application/octet-stream"]


def test_json_option_reads_files(cli: RunCLI, http_url: str, tmp_path: Path) -> None:
    doc = tmp_path / "doc.json"
    doc.write_text('{"z": 1,\n "a": 2}\n')
    echoed = echo(cli, "--json", f"@{doc}", f"{http_url}/echo")
    assert echoed["body"] == '{"z": 1,\n "a": 2}\n'  # sent as written
    assert header(echoed, "accept") == ["application/json"]


def test_multipart_upload_against_httpbin(cli: RunCLI, httpbin_url: str, tmp_path: Path) -> None:
    photo = tmp_path / "photo.png"
    photo.write_bytes(b"PNG fake")
    notes = tmp_path / "notes.txt"
    notes.write_text("some notes")
    code, out, err = cli(
        f"{httpbin_url}/post", "title=Holiday", f"photo@{photo}", f"notes@{notes};type=text/x-notes"
    )
    assert (code, err) == (0, "")
    result = json.loads(out)
    assert result["form"] == {"title": "Holiday"}
    assert result["files"] == {"photo": "PNG fake", "notes": "some notes"}
    assert result["headers"]["Content-Type"].startswith("multipart/form-data; boundary=")


def test_basic_and_digest_auth(cli: RunCLI, http_url: str, httpbin_url: str) -> None:
    code, out, _ = cli("--auth", "user:pass", "-i", f"{http_url}/basic-auth/user/pass")
    assert out.startswith(b"HTTP/1.1 200")
    code, out, _ = cli("--auth", "user:wrong", "-i", f"{http_url}/basic-auth/user/pass")
    assert out.startswith(b"HTTP/1.1 401")
    url = f"{httpbin_url}/digest-auth/auth/user/pass/SHA-256"
    code, out, err = cli("--auth", "user:pass", "--auth-type", "digest", url)
    assert (code, err) == (0, "")
    assert json.loads(out) == {"authenticated": True, "user": "user"}


def test_http2_prior_knowledge(cli: RunCLI, http_url: str) -> None:
    echoed = echo(cli, "--http2-prior-knowledge", f"{http_url}/echo")
    assert echoed["http_version"] == "2"
    echoed = echo(cli, "--http2", f"{http_url}/echo")  # no TLS, so no ALPN: HTTP/1.1
    assert echoed["http_version"] == "1.1"


def test_http2_over_tls_with_a_ca_bundle(cli: RunCLI, https_url: str, ca_pem_path: str) -> None:
    echoed = echo(cli, "--http2", "--verify", ca_pem_path, f"{https_url}/echo")
    assert (echoed["http_version"], echoed["scheme"]) == ("2", "https")
    code, _, err = cli("--verify", "no", f"{https_url}/")
    assert (code, err) == (0, "")


def test_proxy_option(cli: RunCLI, http_url: str, tinyproxy: TinyproxyServer) -> None:
    echoed = echo(cli, "--proxy", tinyproxy.url, f"{http_url}/echo")
    assert echoed["path"] == "/echo"
    # And a proxy that is not there is what fails, not the origin.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    code, _, err = cli("--proxy", f"http://127.0.0.1:{port}", f"{http_url}/echo")
    assert code == 1
    assert err.startswith("error: ")
    assert f"127.0.0.1:{port}" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["-d", "x", "a=1"], "cannot be combined with -d/--data or --json"),
        (["--json", "{}", "f@x"], "cannot be combined with -d/--data or --json"),
        (["n:=1", "f@/dev/null"], "raw JSON fields (name:=json) cannot be sent in a form: n"),
        (["--form", "n:=1"], "raw JSON fields (name:=json) cannot be sent in a form: n"),
        (["n:=nope"], "n:=: not valid JSON"),
        (["f@/no/such/file"], "f@/no/such/file: cannot read: No such file or directory"),
        (["-d", "@/no/such/file"], "-d: cannot read '/no/such/file': No such file"),
        (["b=@/no/such/file"], "b: cannot read '/no/such/file'"),
        (["--auth", "nocolon"], "--auth must look like USER:PASSWORD"),
        (["--verify", "/no/such/ca.pem"], "--verify '/no/such/ca.pem': no such CA bundle file"),
        (["--timeout", "0"], "--timeout: must be more than 0"),
        (["--timeout", "soon"], "--timeout: not a number"),
        (["--max-redirects", "-1"], "--max-redirects: must be 0 or more"),
        (["--max-redirects", "x"], "--max-redirects: not a whole number"),
        (["-o", "f", "--download"], "-o/--output and --download cannot be combined"),
        (["-X", "PUT", "POST"], "the method is given twice: POST and -X PUT"),
        (["nonsense"], "'nonsense' is not a request item"),
        (["--no-such-option"], "unrecognized arguments: --no-such-option"),
    ],
)
def test_usage_errors(cli: RunCLI, http_url: str, argv: list[str], message: str) -> None:
    url = f"{http_url}/echo"
    # The method word goes before the URL.
    argv = [*argv, url] if argv[-1] == "POST" else [url, *argv]
    code, out, err = cli(*argv)
    assert code == 2
    assert out == b""
    assert err.startswith("error: ")
    assert message in err
    assert err.count("\n") == 1
