"""Fixtures for the command-line tests: running `main()` in-process, and a child environment
that imports this checkout's trioclient (for the pseudo-terminal and pipe tests)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_types import RunCLI
from servers.peers import unavailable
from servers.proxy_peers import PROXY_APT_PACKAGES, TinyproxyServer

from trioclient._cli import main

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def cli(capsysbinary: pytest.CaptureFixture[bytes]) -> RunCLI:
    """`cli(*argv)` runs the command in-process: (exit code, stdout bytes, stderr text)."""

    def run(*argv: str) -> tuple[int, bytes, str]:
        code = main(list(argv))
        captured = capsysbinary.readouterr()
        return code, captured.out, captured.err.decode("utf-8")

    return run


@pytest.fixture
def child_env() -> dict[str, str]:
    """The environment of a child `python -m trioclient`: this checkout first on the path,
    a known terminal type, no NO_COLOR from the developer's shell."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    env["TERM"] = "xterm-256color"
    env.pop("NO_COLOR", None)
    env.pop("FORCE_COLOR", None)
    env.pop("COLUMNS", None)
    env.pop("LINES", None)
    return env


@pytest.fixture(scope="session")
def tinyproxy() -> Iterator[TinyproxyServer]:
    """tinyproxy (a Debian peer) for --proxy."""
    if not TinyproxyServer.available():
        unavailable("tinyproxy is not installed", PROXY_APT_PACKAGES)
    with TinyproxyServer() as server:
        yield server
