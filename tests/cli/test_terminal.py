"""The command as a person runs it: in a pseudo-terminal (pexpect), reading what the screen shows.

Each test spawns `python -m trioclient` (this checkout, see `child_env`) or a shell pipeline
in an 40x120 pty and waits for text to appear; no test depends on how long anything takes
(the timeouts are outer bounds for a loaded machine, not expectations).
"""

from __future__ import annotations

import re
import shlex
import shutil
import sys
from pathlib import Path

import pexpect
import pytest

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# The crawl display's line: "crawling " (bold cyan), then the numbers.
LIVE = r"crawling (\x1b\[[0-9;]*m)*"
# Outer bound for anything to appear: generous, as CI machines are busy.
PATIENCE = 60


def spawn(argv: list[str], env: dict[str, str], cwd: Path | None = None) -> pexpect.spawn:
    return pexpect.spawn(
        argv[0],
        argv[1:],
        env=env,
        cwd=str(cwd) if cwd else None,
        dimensions=(40, 120),
        timeout=PATIENCE,
        encoding="utf-8",
        codec_errors="replace",
    )


def trioclient(*argv: str) -> list[str]:
    return [sys.executable, "-m", "trioclient", *argv]


def shell(command: str) -> list[str]:
    return ["/bin/bash", "--norc", "--noprofile", "-c", command]


def finish(child: pexpect.spawn) -> tuple[int, str]:
    """Read to the end; (exit status, the screen's text without escape sequences)."""
    child.expect(pexpect.EOF)
    child.close()
    screen = ANSI.sub("", child.before or "")
    assert child.exitstatus is not None, f"killed by signal {child.signalstatus}: {screen}"
    return child.exitstatus, screen


def test_pretty_json_and_coloured_headers(http_url: str, child_env: dict[str, str]) -> None:
    child = spawn(trioclient(f"{http_url}/json"), child_env)
    child.expect(pexpect.EOF)
    raw = child.before
    child.close()
    assert child.exitstatus == 0
    assert "\x1b[" in raw  # colours
    screen = ANSI.sub("", raw).replace("\r\n", "\n")
    assert screen.startswith("HTTP/1.1 200 OK\n")
    assert "content-type: application/json\n" in screen
    assert screen.endswith('\n\n{\n  "hello": "world",\n  "n": 1\n}\n')


def test_download_progress_bar(http_url: str, child_env: dict[str, str], tmp_path: Path) -> None:
    # 30 chunks of 100 kB, 0.05 s apart: the bar is drawn while the body arrives.
    url = f"{http_url}/drip?chunks=30&size=100000&delay=0.05"
    child = spawn(trioclient("-o", "big.bin", url), child_env, cwd=tmp_path)
    child.expect(r"big\.bin")  # the bar's label, before the download is over
    status, screen = finish(child)
    assert status == 0
    assert re.search(r"3\.0(/3\.0)? MB", screen)  # size
    assert re.search(r"\d+(\.\d+)? [kM]B/s", screen)  # speed
    assert re.search(r"ETA \S*\d:\d\d", screen)  # time left
    assert re.search(r"Saved big\.bin: 3\.0 MB in [\d.]+ s", screen)
    assert (tmp_path / "big.bin").stat().st_size == 3_000_000


def test_ctrl_c_exits_130_without_traceback(http_url: str, child_env: dict[str, str]) -> None:
    # --timeout 600: on a loaded machine nothing but the Ctrl-C may end this request.
    child = spawn(trioclient("-v", "--timeout", "600", f"{http_url}/hold"), child_env)
    # The request head (its last header) is on the screen: the request is on its way, and
    # the server never answers.
    child.expect("User-Agent")
    child.sendintr()
    status, screen = finish(child)
    assert status == 130
    assert "Traceback" not in screen
    assert "KeyboardInterrupt" not in screen


def test_closed_pipe_exits_quietly(http_url: str, child_env: dict[str, str]) -> None:
    command = " ".join(shlex.quote(a) for a in trioclient(f"{http_url}/bytes/5000000"))
    child = spawn(
        shell(f"{command} | head -c 100 | wc -c; echo status=${{PIPESTATUS[0]}}"), child_env
    )
    status, screen = finish(child)
    assert status == 0
    assert screen.split() == ["100", "status=141"]  # nothing else: no traceback, no warning


@pytest.mark.parametrize(
    ("argv", "expected", "line"),
    [
        (["/status/404"], 0, None),
        (["--fail", "/status/404"], 4, "error: HTTP 404 Not Found (--fail)"),
        (["--fail", "/status/500"], 5, "error: HTTP 500 Internal Server Error (--fail)"),
        (["--fail", "/status/200"], 0, None),
    ],
)
def test_fail_exit_codes(
    http_url: str, child_env: dict[str, str], argv: list[str], expected: int, line: str | None
) -> None:
    child = spawn(trioclient(*argv[:-1], http_url + argv[-1]), child_env)
    status, screen = finish(child)
    assert status == expected
    assert screen.startswith(f"HTTP/1.1 {argv[-1][-3:]}")
    if line is None:
        assert "error:" not in screen
    else:
        assert screen.rstrip().endswith(line)


def test_error_is_one_line(child_env: dict[str, str]) -> None:
    child = spawn(trioclient("http://127.0.0.1:1/"), child_env)
    status, screen = finish(child)
    assert status == 1
    assert screen.strip().splitlines() == [
        "error: ConnectError: Failed while connecting to 127.0.0.1:1: "
        "Connection refused (ECONNREFUSED)"
    ]


def test_installed_command_names_itself(child_env: dict[str, str]) -> None:
    script = Path(sys.executable).with_name("trioclient")
    if not script.exists():
        found = shutil.which("trioclient")
        if found is None:
            pytest.skip("the trioclient script is not installed (pip install -e .)")
        script = Path(found)
    child = spawn([str(script), "--help"], child_env)
    status, screen = finish(child)
    assert status == 0
    assert screen.startswith("usage: trioclient [options] [METHOD] URL [ITEM ...]")
    assert "python -m trioclient" in screen


def test_demo_live_display_and_summary(child_env: dict[str, str]) -> None:
    child = spawn(trioclient("demo", "--pages", "400"), child_env)
    child.expect(r"Serving a demo site of 400 pages on http://127\.0\.0\.1:\d+/")
    child.expect(LIVE + "http://127")  # the live line, drawn from the start
    status, screen = finish(child)
    assert status == 0
    assert "Crawl summary: http://127.0.0.1:" in screen
    pages = re.search(r"│ pages\s+│ ([\d,]+) \(([\d,]+) ok\)", screen)
    assert pages is not None
    assert int(pages[2].replace(",", "")) >= 400
    assert re.search(r"│ statuses\s+│ 200: [\d,]+, 404: \d+, 500: \d+", screen)
    assert re.search(r"│ errors\s+│ \d+ \(.*RobotsDisallowed: \d+", screen)
    assert "busiest hosts" in screen
    assert "Traceback" not in screen


def test_ctrl_c_during_a_crawl_prints_the_summary(child_env: dict[str, str]) -> None:
    child = spawn(trioclient("demo", "--pages", "5000"), child_env)
    child.expect(LIVE + r"http://127\.0\.0\.1:\d+/  pages [1-9]")  # under way
    child.sendintr()
    status, screen = finish(child)
    assert status == 130
    assert "(interrupted)" in screen
    assert re.search(r"│ pages\s+│ [\d,]+ \(", screen)
    assert "Traceback" not in screen
