"""Fixtures for the HTTP/3 tests: hypercorn with QUIC in a child process (servers.h3_peer).

Every fixture here skips when aioquic is missing (`pytest.importorskip`): CI runs this
directory a second time without the ``http3`` extra, where the tests that need a QUIC peer
skip and the ones that check the missing-extra ImportError run. Test modules that import
aioquic themselves also start with ``pytest.importorskip("aioquic")``.

The servers are session-scoped child processes (about a second to start each), started the
first time a test asks and killed at the end of the session (their sockets go with them).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import trustme
from servers.h3_peer import H3Peer


def _require_aioquic() -> None:
    pytest.importorskip("aioquic", reason="the http3 extra (aioquic) is not installed")


@pytest.fixture(scope="session")
def h3_server(tls_ca: trustme.CA) -> Iterator[H3Peer]:
    """hypercorn serving servers.h3_app on one port: TLS over TCP (h2, http/1.1) and QUIC
    over UDP (h3), with ``alt-svc: h3=":PORT"; ma=3600`` on every response.

    ``.url`` (``https://127.0.0.1:PORT``), ``.port``, ``.ca`` (the session's trustme CA),
    ``.ca_path`` (its PEM file) and ``.verify`` (that path, for ``verify=``).
    """
    _require_aioquic()
    with H3Peer(tls_ca) as server:
        yield server


@pytest.fixture(scope="session")
def h3_server_wrong_host(tls_ca: trustme.CA) -> Iterator[H3Peer]:
    """Like :func:`h3_server`, with a certificate for ``wrong.example`` only (trusted CA,
    wrong name): a client checking the host name refuses it over TCP and QUIC."""
    _require_aioquic()
    with H3Peer(tls_ca, hostnames=("wrong.example",)) as server:
        yield server


@pytest.fixture(scope="session")
def h3_server_untrusted() -> Iterator[H3Peer]:
    """Like :func:`h3_server`, signed by a throwaway CA that no fixture trusts."""
    _require_aioquic()
    with H3Peer(trustme.CA()) as server:
        yield server


@pytest.fixture(scope="session")
def quic_certificate(tls_ca: trustme.CA) -> trustme.LeafCert:
    """The raw QUIC peers' certificate (servers.quic_raw), for 127.0.0.1 and localhost,
    signed by the session's CA (trust it with ``ca_pem_path``)."""
    return tls_ca.issue_cert("127.0.0.1", "localhost")
