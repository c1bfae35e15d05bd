"""Fixtures for the HTTP/2 tests: real h2 peers (nginx, nghttpd) and a client TLS context.

The peers are session-scoped child processes, started the first time a test asks for them;
their certificates come from the session ``tls_ca`` (tests/conftest.py), so ``ssl_context``
and ``h2_ssl_context`` trust them. A missing binary skips the test locally and fails it in CI
(see :func:`servers.peers.unavailable`). Raw h2 servers need no fixture: call
:func:`servers.h2_raw.serve_h2` in the test with ``server_ssl_context`` for TLS.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator

import pytest
import trustme
from servers.peers import NghttpdServer, NginxServer, unavailable


@pytest.fixture
def h2_ssl_context(tls_ca: trustme.CA) -> ssl.SSLContext:
    """A fresh client context trusting only the test CA, offering ALPN h2 and http/1.1."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    tls_ca.configure_trust(context)
    context.set_alpn_protocols(["h2", "http/1.1"])
    return context


@pytest.fixture(scope="session")
def nginx_server(tls_ca: trustme.CA) -> Iterator[NginxServer]:
    """nginx for the session: ``https_url`` (h2 + http/1.1), ``http_url`` (HTTP/1.1) and
    ``h2c_url`` (h2 prior knowledge); see :class:`servers.peers.NginxServer` for content."""
    if not NginxServer.available():
        unavailable("nginx is not installed")
    with NginxServer(tls_ca) as server:
        yield server


@pytest.fixture(scope="session")
def nghttpd_server(tls_ca: trustme.CA) -> Iterator[NghttpdServer]:
    """nghttpd over TLS (ALPN h2) for the session; ``url`` is https."""
    if not NghttpdServer.available():
        unavailable("nghttpd is not installed")
    with NghttpdServer(tls_ca, tls=True) as server:
        yield server


@pytest.fixture(scope="session")
def nghttpd_h2c_server(tls_ca: trustme.CA) -> Iterator[NghttpdServer]:
    """nghttpd speaking h2c with prior knowledge for the session; ``url`` is http."""
    if not NghttpdServer.available():
        unavailable("nghttpd is not installed")
    with NghttpdServer(tls_ca, tls=False) as server:
        yield server
