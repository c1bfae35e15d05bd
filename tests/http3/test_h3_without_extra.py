"""Without the http3 extra (aioquic not installed: .ci/run's second run), ``http3=True``
is an ImportError that names the extra, and everything else works.

With aioquic installed this is skipped: test_h3_units.py checks the same in a child process
with aioquic's import blocked. This file imports nothing of aioquic's, so it runs (and
proves the message) where aioquic is really missing."""

from __future__ import annotations

import importlib.util

import pytest

import trioclient

MESSAGE = r"pip install 'trioclient\[http3\]'"


@pytest.fixture
def without_aioquic() -> None:
    if importlib.util.find_spec("aioquic") is not None:
        pytest.skip("aioquic is installed (test_h3_units.py blocks its import in a child)")


@pytest.mark.usefixtures("without_aioquic")
async def test_http3_asks_for_the_extra() -> None:
    with pytest.raises(ImportError, match=MESSAGE):
        trioclient.Client(http3=True)
    with pytest.raises(ImportError, match=MESSAGE):
        trioclient.HTTPTransport(http3=True, http1=False, http2=False)
    async with trioclient.Client() as client:  # the default needs no aioquic
        assert client.pool_statistics().connections == 0
