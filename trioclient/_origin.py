"""`Origin`: what a pooled connection can be reused for.

One small immutable value, shared by the URL model (which computes it once per URL) and the
transport (which keys its pool on it). A tuple underneath, so hashing and comparing it on
every request costs what a plain tuple costs.

`via` is the proxy a connection goes through (its `scheme://host:port`), None for a direct
one: a transport with a proxy keys its pool on (origin, via), so a tunnel is never reused
for another origin and a direct connection never for a proxied request. (The TLS settings
need no field: one pool has one `ssl.SSLContext`; see `_transport/_tls.py`.)
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["Origin"]


class Origin(NamedTuple):
    """(scheme, host, port) of a URL; `host` is ASCII (IDNA-encoded), IPv6 without brackets.

    `via`: the proxy's `scheme://host:port` for a proxied connection, else None.
    """

    scheme: str
    host: bytes
    port: int
    via: str | None = None
