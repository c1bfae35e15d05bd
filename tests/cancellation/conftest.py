"""Fixtures of the cancellation harness: the in-run raw servers (plain and TLS); and a
terminal-summary line counting what the sweeps exercised (``--harness-summary``, an option
of tests/conftest.py, lists every sweep instead).

``TRIOCLIENT_HARNESS_FULL=1`` selects the denser sweeps (see ``test_injection.py``); the
hypothesis profile is chosen as for the rest of the suite (``TRIOCLIENT_HYPOTHESIS_PROFILE``).
"""

from __future__ import annotations

import re
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


# Each sweep's line says "<n> runs" (test_injection, test_h2_injection, the transport and
# proxy sweeps).
_RUNS = re.compile(r"(\d+) runs")


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    """What the sweeps exercised: one line by default, every sweep with --harness-summary."""
    if not SUMMARY:
        return
    if config.getoption("harness_summary"):
        terminalreporter.section("cancellation harness")
        for line in SUMMARY:
            terminalreporter.write_line(line)
        return
    # A sweep that failed has already failed its test: the count is all that is left to say.
    runs = sum(int(found.group(1)) for line in SUMMARY if (found := _RUNS.search(line)))
    terminalreporter.write_line(
        f"cancellation harness: {len(SUMMARY)} sweeps, {runs:,} interrupted runs"
        " (--harness-summary lists each sweep)"
    )
