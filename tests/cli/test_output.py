"""What the request command prints and saves, in-process: terminal vs pipe, -v, --fail, exit
codes, downloads, and the same command without `rich` installed.

"A terminal" here is the captured stdout with `isatty()` patched to say yes; the real thing is
tests/cli/test_terminal.py (pexpect). These tests are the ones coverage counts.
"""

from __future__ import annotations

import io
import json
import os
import re
import sys
from pathlib import Path

import pytest
import trio
from cli_types import RunCLI
from servers.asgi_app import JSON_BODY, pattern_bytes

import trioclient._cli
from trioclient._cli import main
from trioclient._cli._exit import ExitCode
from trioclient._cli._progress import DownloadProgress, format_size

ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture
def tty(monkeypatch: pytest.MonkeyPatch) -> None:
    """Standard output claims to be a terminal (with 256 colours)."""
    monkeypatch.setattr(trioclient._cli, "stdout_isatty", lambda: True)
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.delenv("NO_COLOR", raising=False)


@pytest.fixture
def no_rich(monkeypatch: pytest.MonkeyPatch) -> None:
    """`import rich` fails, as without the `cli` extra."""
    for name in [m for m in sys.modules if m == "rich" or m.startswith("rich.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "rich", None)


def plain(out: bytes) -> str:
    return ANSI.sub("", out.decode("utf-8"))


@pytest.mark.usefixtures("tty")
def test_terminal_gets_coloured_head_and_pretty_json(cli: RunCLI, http_url: str) -> None:
    code, out, err = cli(f"{http_url}/json")
    assert (code, err) == (0, "")
    assert ANSI.search(out.decode())
    text = plain(out)
    head, _, body = text.partition("\n\n")
    assert head.startswith("HTTP/1.1 200 OK\n")
    assert "content-type: application/json" in head
    assert json.loads(body) == JSON_BODY
    assert body == json.dumps(JSON_BODY, indent=2) + "\n"


@pytest.mark.usefixtures("tty")
def test_terminal_text_and_binary_bodies(cli: RunCLI, http_url: str) -> None:
    _, out, _ = cli("-b", f"{http_url}/charset/latin-1")
    # Re-encoded for the terminal, newline added.
    from servers.asgi_app import CHARSET_TEXT

    assert out == CHARSET_TEXT.encode("utf-8") + b"\n"
    _, out, _ = cli("-b", f"{http_url}/bytes/1000")
    assert b"binary body not shown" in out
    assert b"\x00" not in out
    _, out, _ = cli("-b", "--pretty=none", f"{http_url}/")
    assert out == b"Hello, world!\n"


def test_piped_json_is_untouched_unless_asked(
    cli: RunCLI, http_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, out, _ = cli(f"{http_url}/json")
    assert out == b'{"hello": "world", "n": 1}'  # as the server sent it
    _, out, _ = cli("--pretty=format", f"{http_url}/json")
    assert out.decode() == json.dumps(JSON_BODY, indent=2) + "\n"
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.delenv("NO_COLOR", raising=False)
    _, out, _ = cli("--pretty=all", f"{http_url}/json")
    assert ANSI.search(out.decode())
    assert json.loads(plain(out)) == JSON_BODY
    # Not JSON after all: written as received.
    _, out, _ = cli("--pretty=format", f"{http_url}/response-headers?content-type=application/json")
    assert json.loads(out)["headers"] == [["content-type", "application/json"]]


def test_pretty_json_falls_back_to_raw(cli: RunCLI, http_url: str) -> None:
    url = f"{http_url}/response-headers?Content-Type=application/problem%2Bjson"
    code, out, _ = cli("--pretty=format", url)
    assert code == 0
    assert json.loads(out)  # valid JSON, re-indented
    assert b"\n  " in out


def test_verbose_prints_every_hop(cli: RunCLI, http_url: str) -> None:
    code, out, _ = cli("-v", "-L", f"{http_url}/redirect/1", "X-Trace:1", "q==a")
    assert code == 0
    text = out.decode()
    assert re.findall(r"^GET (\S+) HTTP/1.1$", text, re.M) == ["/redirect/1?q=a", "/redirect/0"]
    assert text.count("\nX-Trace: 1\n") == 2
    assert re.findall(r"^HTTP/1.1 (\d+)", text, re.M) == ["302", "200"]
    assert text.endswith("done")


def test_verbose_shows_request_bodies(
    cli: RunCLI, http_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, out, _ = cli("-v", f"{http_url}/echo", "a=1")
    assert '\n\n{"a": "1"}\n\n' in out.decode()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"from stdin")))
    _, out, _ = cli("-v", "-d", "@-", f"{http_url}/echo")
    assert "\n\nfrom stdin\n\n" in out.decode()
    assert json.loads(out.decode().rpartition("\n\n")[2])["body"] == "from stdin"
    _, out, _ = cli("-v", "--http2", f"{http_url}/echo", "-H", "Content-Type: x/y", "-d", "\x00")
    text = out.decode()
    assert re.search(r"^POST /echo$", text, re.M)  # version unknown before ALPN
    assert "[1 bytes of binary data]" in text


@pytest.mark.parametrize(
    ("path", "fail", "code"),
    [
        ("/status/200", True, ExitCode.OK),
        ("/status/302", True, ExitCode.OK),
        ("/status/404", False, ExitCode.OK),
        ("/status/404", True, ExitCode.HTTP_4XX),
        ("/status/503", True, ExitCode.HTTP_5XX),
    ],
)
def test_fail(cli: RunCLI, http_url: str, path: str, fail: bool, code: ExitCode) -> None:
    argv = ["--fail"] if fail else []
    got, out, err = cli(*argv, "-i", f"{http_url}{path}")
    assert got == code
    assert out.startswith(f"HTTP/1.1 {path[-3:]}".encode())  # printed either way
    if code is ExitCode.OK:
        assert err == ""
    else:
        assert re.fullmatch(r"error: HTTP \d{3} [\w ]+ \(--fail\)\n", err)


def test_timeout_and_redirect_exit_codes(cli: RunCLI, http_url: str) -> None:
    code, out, err = cli("--timeout", "0.5", f"{http_url}/hold")
    assert (code, out) == (ExitCode.TIMEOUT, b"")
    assert err.startswith("error: ReadTimeout:")
    code, _, err = cli("-L", "--max-redirects", "1", f"{http_url}/redirect/3")
    assert code == ExitCode.TOO_MANY_REDIRECTS
    assert err.startswith("error: TooManyRedirects:")


def test_output_file(cli: RunCLI, http_url: str, tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    target.write_bytes(b"old, longer content" * 10000)
    code, out, err = cli("-o", str(target), f"{http_url}/bytes/70000")
    assert (code, out, err) == (0, b"", "")
    assert target.read_bytes() == pattern_bytes(70000)  # overwritten, like curl -o
    code, out, _ = cli("-i", "-o", str(target), f"{http_url}/")
    assert out.startswith(b"HTTP/1.1 200 OK\n")
    assert out.endswith(b"\n\n")  # the head only: the body went to the file
    assert target.read_bytes() == b"Hello, world!"


def test_output_file_errors(cli: RunCLI, http_url: str, tmp_path: Path) -> None:
    code, _, err = cli("-o", str(tmp_path / "no" / "dir"), f"{http_url}/")
    assert code == ExitCode.OUTPUT_FAILED
    assert err.startswith(f"error: cannot write {tmp_path / 'no' / 'dir'}: ")
    code, _, err = cli("--fail", "-o", str(tmp_path / "x"), f"{http_url}/status/404")
    assert code == ExitCode.HTTP_4XX
    assert not (tmp_path / "x").exists()
    # A body cut short: no half file left behind.
    code, _, err = cli("-o", str(tmp_path / "cut"), f"{http_url}/close")
    assert code == 0
    code, _, err = cli(
        "--timeout", "1", "-o", str(tmp_path / "cut"), f"{http_url}/drip?chunks=3&delay=5"
    )
    assert code == ExitCode.TIMEOUT
    assert not (tmp_path / "cut").exists()


def test_download_names(
    cli: RunCLI, http_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for _ in range(2):
        code, _, err = cli("--download", f"{http_url}/bytes/5000")
        assert (code, err) == (0, "")
    assert sorted(os.listdir(tmp_path)) == ["5000", "5000-1"]
    disposition = 'attachment; filename="../../etc/.passwd.txt"'
    code, _, _ = cli(
        "--download", f"{http_url}/response-headers", f"Content-Disposition=={disposition}"
    )
    assert (tmp_path / "passwd.txt").exists()
    code, _, _ = cli("--download", f"{http_url}/")
    assert (tmp_path / "index.txt").read_bytes() == b"Hello, world!"


def test_help_and_version(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    text = capsysbinary.readouterr().out.decode()
    assert text.startswith("usage: trioclient [options] [METHOD] URL [ITEM ...]")
    assert "exit codes:" in text
    assert "trioclient demo" in text
    for command in ("crawl", "demo"):
        with pytest.raises(SystemExit) as info:
            main([command, "--help"])
        assert info.value.code == 0
        text = capsysbinary.readouterr().out.decode()
        assert text.startswith(f"usage: trioclient {command} [options]")
        assert "--concurrency N" in text
    with pytest.raises(SystemExit):
        main(["--version"])
    assert re.fullmatch(r"trioclient \d+\.\d+\.\d+\S*\n", capsysbinary.readouterr().out.decode())


@pytest.mark.usefixtures("no_rich", "tty")
def test_without_rich_output_is_plain(cli: RunCLI, http_url: str, tmp_path: Path) -> None:
    code, out, err = cli(f"{http_url}/json")
    assert (code, err) == (0, "")
    assert not ANSI.search(out.decode())
    head, _, body = out.decode().partition("\n\n")
    assert head.startswith("HTTP/1.1 200 OK")
    assert body == json.dumps(JSON_BODY, indent=2) + "\n"
    _, out, _ = cli("-b", f"{http_url}/bytes/10")
    assert out.startswith(b"[binary body not shown")


def test_closed_stdout_and_interrupt_in_process(
    http_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    class Closed(io.BytesIO):
        def write(self, data: bytes) -> int:  # type: ignore[override]
            raise BrokenPipeError(32, "Broken pipe")

    class Stdout(io.StringIO):
        buffer = Closed()

    monkeypatch.setattr(sys, "stdout", Stdout())
    assert main([f"{http_url}/bytes/100000"]) == ExitCode.CLOSED_PIPE

    def interrupted(*args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(trio, "run", interrupted)
    assert main([f"{http_url}/"]) == ExitCode.INTERRUPTED
    assert capsys.readouterr().err == ""


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("with_rich", [True, False])
def test_progress_bar(with_rich: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    if not with_rich:
        monkeypatch.setitem(sys.modules, "rich", None)
    monkeypatch.setenv("TERM", "xterm-256color")
    stream = FakeTerminal()
    with DownloadProgress("file.bin", 4_000_000, stream=stream) as progress:
        for _ in range(4):
            progress.advance(1_000_000)
            progress._last_draw = 0  # draw every step
    text = ANSI.sub("", stream.getvalue())
    assert "file.bin" in text
    assert "4.0 MB" in text
    assert "ETA" in text
    assert "/s" in text
    assert progress.summary().startswith("Saved file.bin: 4.0 MB in ")
    quiet = io.StringIO()
    with DownloadProgress("x", None, stream=quiet) as progress:
        progress.advance(10)
    assert quiet.getvalue() == ""


def test_format_size() -> None:
    assert [format_size(n) for n in (0, 999, 1000, 1536, 2.5e6, 3e15)] == [
        "0 bytes",
        "999 bytes",
        "1.0 kB",
        "1.5 kB",
        "2.5 MB",
        "3000.0 TB",
    ]
