"""`Origin`: what a pooled connection can be reused for.

One small immutable value, shared by the URL model (which computes it once per URL) and the
transport (which keys its pool on it). A tuple underneath, so hashing and comparing it on
every request costs what a plain tuple costs. The proxy and TLS-identity fields that proxies
need join it here, so a connection is never reused across either.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["Origin"]


class Origin(NamedTuple):
    """(scheme, host, port) of a URL; `host` is ASCII (IDNA-encoded), IPv6 without brackets."""

    scheme: str
    host: bytes
    port: int
