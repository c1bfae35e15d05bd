"""The harness fails loudly when what it relies on is gone: a private Trio/h2 internal, or a
trioclient function name that faults.py classifies socket operations by."""

from __future__ import annotations

import pytest
import trio
import trio.testing
from faults import Op
from h1_driver import Scenario, Servers, run_scenario
from harness import HarnessFailure, _seed_scheduler, internal, require_phases

import trioclient
from trioclient._transport._http11 import HTTP11Connection


def test_a_missing_internal_is_a_runtime_error_naming_it() -> None:
    class Task:  # as if a Trio release dropped it
        pass

    with pytest.raises(RuntimeError, match=r"Task\._abort_func \(Trio's.*trio \d"):
        internal(Task(), "_abort_func", "Trio's KeyboardInterrupt delivery")
    assert internal(trio.lowlevel.Task, "_attempt_abort", "it exists") is not None


def test_the_scheduler_seed_is_never_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    import trio._core._run as run_module

    monkeypatch.delattr(run_module, "_r")
    with pytest.raises(RuntimeError, match=r"_r .*scheduler random generator.*trio \d"):
        _seed_scheduler(0)


def test_require_phases_rejects_other_and_missing_phases() -> None:
    ops = [Op(0, 0, "connect", "tcp-connect"), Op(1, 0, "send", "other")]
    with pytest.raises(HarnessFailure, match="missing \\['write'\\], some as other"):
        require_phases(ops, {"tcp-connect", "write"}, "here")
    require_phases(ops[:1], {"tcp-connect"}, "here")


async def test_a_renamed_trioclient_function_fails_the_sweep(
    servers: Servers, mock_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As if HTTP11Connection._read were renamed: its reads are no longer classified, and
    the counting run of a sweep must say so instead of sweeping "other" phases."""

    async def get(client: trioclient.Client, env: object) -> None:
        assert (await client.get(f"{servers.url}/ok")).text == "ok"

    scenario = Scenario("plain-get", get)
    counting = await run_scenario(scenario, servers)
    require_phases(counting.ops, scenario.expected_phases, scenario.name)
    code = HTTP11Connection._read.__code__
    monkeypatch.setattr(HTTP11Connection._read, "__code__", code.replace(co_name="_recv"))
    counting = await run_scenario(scenario, servers)
    with pytest.raises(HarnessFailure, match="missing \\['read-head'\\], some as other"):
        require_phases(counting.ops, scenario.expected_phases, scenario.name)
