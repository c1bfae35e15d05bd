"""The proxy handshakes interrupted at every socket operation: CONNECT and SOCKS5.

A request goes through a raw Trio proxy (`servers.raw_proxy`: a CONNECT relay, a SOCKS5
relay, a forwarding proxy) to the harness's raw server. A counting run numbers the client's
socket operations (`faults.FaultInjector`); then the request is re-run once per operation
and kind of fault: cancelled before or after it, timed out (the MockClock jumps to the
deadline), KeyboardInterrupt before it, the proxy resetting or closing the connection. The
operations of the proxy handshake are classified "proxy-handshake" (`faults._phase_of_stack`
finds `open_via_proxy` on the stack); every scenario must have some, so a rename cannot
empty the sweep.

After each run, inside the client: what escaped is exactly what the fault should produce
(nothing for a cancellation caught by the caller's scope; the very KeyboardInterrupt; a
ConnectTimeout naming the proxy for a stalled handshake; a ConnectError or ProxyError for a
broken one); the books are quiet; every socket is closed but the pooled connection's; one
more request through the proxy succeeds. Leaving the client closes every socket.
"""

from __future__ import annotations

import pytest
import trio
import trio.testing
from faults import CANCEL_KINDS, FaultInjector, Injection, Kind
from h1_driver import Servers
from harness import HARNESS_TIMEOUT, SUMMARY, HarnessFailure, assert_quiet
from servers.raw import serve_raw
from servers.raw_proxy import RelayProxy, socks_relay

import trioclient

KINDS = [
    Kind.CANCEL_BEFORE,
    Kind.CANCEL_AFTER,
    Kind.TIMEOUT,
    Kind.KI_BEFORE,
    Kind.RESET,
    Kind.EOF,
]
CONNECTING = ("tcp-connect", "proxy-handshake")


async def _proxy_url(nursery: trio.Nursery, kind: str) -> str:
    if kind == "socks":
        return (await serve_raw(nursery, socks_relay())).replace("http://", "socks5h://")
    return await serve_raw(nursery, RelayProxy())


SCENARIOS = [
    ("connect-tls", "http", True),
    ("forward-plain", "http", False),
    ("socks-tls", "socks", True),
    ("socks-plain", "socks", False),
]


def _make_client(proxy: str, servers: Servers) -> trioclient.Client:
    limits = trioclient.Limits(max_connections=2, keepalive_expiry=1000.0)
    return trioclient.Client(
        proxy=proxy, timeout=HARNESS_TIMEOUT, limits=limits, verify=servers.client_ssl
    )


async def _run(
    proxy: str, servers: Servers, url: str, plan: Injection | None, where: str
) -> tuple[FaultInjector, str]:
    """One request with `plan`; checks the invariants; returns the injector and an outcome."""
    with FaultInjector(*([plan] if plan else [])).installed() as injector:
        error: BaseException | None = None
        async with _make_client(proxy, servers) as client:
            with trio.CancelScope() as caller:
                injector.caller = caller
                try:
                    response = await client.get(f"{url}/ok")
                    if response.text != "ok":
                        raise HarnessFailure(f"{where}: wrong answer {response.text!r}")
                except trioclient.HTTPError as exc:
                    error = exc
                except KeyboardInterrupt as exc:
                    error = exc
            injector.disarm()
            outcome = _judge(injector, error, caller, proxy, where)
            assert_quiet(client)
            pooled = client.pool_statistics().idle
            still_open = [s for s in injector.sockets if not s.is_closed]
            if len(still_open) > pooled:
                raise HarnessFailure(f"{where}: {len(still_open)} sockets open, {pooled} pooled")
            fired = injector.fired
            if (
                fired is not None
                and fired.phase in CONNECTING
                and plan is not None
                and plan.kind is not Kind.CANCEL_AFTER  # may complete: a pooled connection
                and any(s.number == fired.socket for s in still_open)
            ):
                raise HarnessFailure(f"{where}: the interrupted proxy connection is open")
            again = await client.get(f"{url}/ok")
            if again.text != "ok":
                raise HarnessFailure(f"{where}: the next request failed: {again!r}")
            assert_quiet(client)
    leaked = [s for s in injector.sockets if not s.is_closed]
    if leaked:
        raise HarnessFailure(f"{where}: {len(leaked)} sockets open after the client closed")
    return injector, outcome


def _judge(
    injector: FaultInjector,
    error: BaseException | None,
    caller: trio.CancelScope,
    proxy: str,
    where: str,
) -> str:
    fired, plan = injector.fired, injector.fired_plan
    if fired is None or plan is None:
        if error is not None:
            raise HarnessFailure(f"{where}: failed without a fault: {error!r}")
        return "clean"
    at = f"{where} at {fired}"
    connecting = fired.phase in CONNECTING
    if plan.kind in CANCEL_KINDS:
        if error is not None:
            raise HarnessFailure(f"{at}: cancellation came out as {error!r}")
        return "Cancelled" if caller.cancelled_caught else "completed"
    if plan.kind is Kind.KI_BEFORE:
        if error is not injector.interrupt:
            raise HarnessFailure(f"{at}: KeyboardInterrupt came out as {error!r}")
        return "KeyboardInterrupt"
    if plan.kind is Kind.TIMEOUT:
        expected = trioclient.ConnectTimeout if connecting else trioclient.TimeoutException
        if not isinstance(error, expected):
            raise HarnessFailure(f"{at}: expected {expected.__name__}, got {error!r}")
        if connecting and proxy.split("@")[-1] not in str(error):
            raise HarnessFailure(f"{at}: the timeout does not name the proxy: {error}")
        return type(error).__name__
    if not isinstance(error, trioclient.TransportError):
        raise HarnessFailure(f"{at}: expected a TransportError, got {error!r}")
    # With EOF our writes still "succeed" (the TLS 1.3 client's last handshake message, as in
    # h1_driver.judge): the connect completes and the first read reports it.
    strict = connecting and plan.kind is not Kind.EOF
    if strict and not isinstance(error, (trioclient.ConnectError, trioclient.ProxyError)):
        raise HarnessFailure(f"{at}: expected ConnectError or ProxyError, got {error!r}")
    if connecting and proxy not in str(error):
        raise HarnessFailure(f"{at}: the error does not name the proxy: {error}")
    return type(error).__name__


@pytest.mark.parametrize(("name", "kind", "tls"), SCENARIOS)
async def test_proxy_handshake_sweep(
    name: str,
    kind: str,
    tls: bool,
    servers: Servers,
    nursery: trio.Nursery,
    mock_clock: trio.testing.MockClock,
) -> None:
    proxy = await _proxy_url(nursery, kind)
    url = servers.tls_url if tls else servers.url
    counted, _ = await _run(proxy, servers, url, None, f"{name} counting")
    # The operations of the first request only (the checks' requests come after the write
    # and read of the first exchange and reuse its connection).
    ops = counted.ops
    handshake = [op for op in ops if op.phase == "proxy-handshake"]
    if (kind == "socks" or tls) and not handshake:
        raise HarnessFailure(f"{name}: no proxy-handshake operation was classified")
    first_exchange_end = next(
        (i for i, op in enumerate(ops) if op.phase == "read-head"), len(ops) - 1
    )
    outcomes: dict[str, int] = {}
    runs = 0
    for index in range(first_exchange_end + 1):
        for fault in KINDS:
            where = f"{name}: {fault.value} @{index}"
            _, outcome = await _run(proxy, servers, url, Injection(fault, index), where)
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
            runs += 1
    phases = sorted({op.phase for op in ops[: first_exchange_end + 1]})
    SUMMARY.append(f"proxy {name}: {runs} runs over {phases}: {outcomes}")
    assert "ConnectTimeout" in outcomes
