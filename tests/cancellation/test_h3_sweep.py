"""HTTP/3 scenarios interrupted at every step and every datagram (see h3_driver.py)."""

from __future__ import annotations

import pytest
import trustme

pytest.importorskip("aioquic", reason="the http3 extra (aioquic) is not installed")

from h3_driver import KINDS, SCENARIOS, H3Scenario, sweep


@pytest.fixture(scope="session")
def quic_server_cert(tls_ca: trustme.CA) -> trustme.LeafCert:
    """The raw QUIC peer's certificate (127.0.0.1), from the CA ``ca_pem_path`` holds."""
    return tls_ca.issue_cert("127.0.0.1", "localhost")


@pytest.mark.slow
@pytest.mark.parametrize("scenario", SCENARIOS, ids=str)
async def test_interrupted_at_every_step_and_datagram(
    scenario: H3Scenario, quic_server_cert: trustme.LeafCert, ca_pem_path: str
) -> None:
    result = await sweep(scenario, KINDS, quic_server_cert, ca_pem_path)
    assert not result.failures, f"{len(result.failures)} of {result.runs} runs failed:\n" + (
        "\n".join(result.failures)
    )
    # The sweep is not vacuous: both kinds of interruption landed inside the scenario.
    assert result.outcomes["cancel:Cancelled"], result.outcomes
    assert result.outcomes["ki:KeyboardInterrupt"], result.outcomes
