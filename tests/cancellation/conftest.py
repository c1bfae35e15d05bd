"""Fixtures of the cancellation harness: the in-run raw servers (plain and TLS); and a
terminal-summary section listing what the injection sweep exercised.

``TRIOCLIENT_HARNESS_FULL=1`` selects the denser sweeps (see ``test_injection.py``); the
hypothesis profile is chosen as for the rest of the suite (``TRIOCLIENT_HYPOTHESIS_PROFILE``).
"""

from __future__ import annotations

import ssl

import pytest
import trio
from h1_driver import Servers, harness_handler
from harness import SUMMARY
from servers.raw import serve_raw


@pytest.fixture
async def servers(
    nursery: trio.Nursery, server_ssl_context: ssl.SSLContext, ssl_context: ssl.SSLContext
) -> Servers:
    """Plain and TLS raw servers in the test's own run, and a client context trusting them."""
    url = await serve_raw(nursery, harness_handler)
    tls_url = await serve_raw(nursery, harness_handler, tls=server_ssl_context)
    return Servers(url=url, tls_url=tls_url, client_ssl=ssl_context)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Injection points exercised, per scenario and kind of fault (see test_injection.py)."""
    if SUMMARY:
        terminalreporter.section("cancellation harness")
        for line in SUMMARY:
            terminalreporter.write_line(line)
