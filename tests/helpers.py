"""Small assertions shared by the client tests."""

from __future__ import annotations

import trioclient


def assert_quiet(client: trioclient.Client) -> None:
    """Nothing in flight: the books show no request, no waiter, nothing connecting, and
    every connection they count is idle."""
    stats = client.pool_statistics()
    assert stats.requests_active == 0
    assert stats.in_use == 0
    assert stats.waiting == 0
    assert stats.connecting == 0
    assert stats.connections == stats.idle
