"""Timeouts: each phase raises its own exception naming the peer, `total` bounds the whole
exchange, `None` disables, per-request settings override the client's, and an enclosing
cancel scope of the caller always wins over our own timeouts.

No test asserts elapsed time: short timeouts (0.1 to 0.3 s) only trigger the errors.
"""

from __future__ import annotations

import math
import socket
from collections.abc import AsyncIterator, Iterator

import pytest
import trio
import trio.testing
from helpers import assert_quiet
from servers.raw import (
    BufferedStream,
    Handler,
    drip,
    read_request,
    read_request_head,
    respond,
    response_bytes,
    serve_raw,
    stall_after_head,
)

import trioclient
from trioclient import Limits, Timeout

# --- helpers ---------------------------------------------------------------------------------


async def assert_still_works(client: trioclient.Client, url: str) -> None:
    assert_quiet(client)
    response = await client.get(url, timeout=Timeout(10))
    assert response.status_code == 200
    assert_quiet(client)


def authority(url: str) -> str:
    return url.split("://", 1)[1].rstrip("/")


@pytest.fixture
def unresponsive_port() -> Iterator[int]:
    """A listener whose accept queue is full: a TCP connect to it hangs (SYN dropped)."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    fillers: list[socket.socket] = []
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = int(listener.getsockname()[1])
        for _ in range(3):
            filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            fillers.append(filler)
            filler.setblocking(False)
            try:
                filler.connect(("127.0.0.1", port))
            except BlockingIOError:
                pass
        yield port
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


def reads_head_then_sleeps(got_head: trio.Event | None = None) -> Handler:
    """Read the request head, then never read again: the client's writes block."""

    async def handler(stream: BufferedStream) -> None:
        await read_request_head(stream)
        if got_head is not None:
            got_head.set()
        await trio.sleep_forever()  # ends when the test's nursery is cancelled

    return handler


# --- connect ---------------------------------------------------------------------------------


async def test_connect_timeout(unresponsive_port: int, http_url: str) -> None:
    async with trioclient.Client(timeout=Timeout(10, connect=0.2)) as client:
        with pytest.raises(trioclient.ConnectTimeout) as info:
            await client.get(f"http://127.0.0.1:{unresponsive_port}/")
        assert str(info.value) == f"Timed out connecting to 127.0.0.1:{unresponsive_port} (0.2 s)"
        assert info.value.request.url.port == unresponsive_port
        assert client.pool_statistics().connections == 0
        await assert_still_works(client, http_url)


async def test_connect_bounded_by_total(unresponsive_port: int, http_url: str) -> None:
    async with trioclient.Client(timeout=Timeout(10, total=0.2)) as client:
        with pytest.raises(trioclient.ConnectTimeout, match=r"\(total timeout\)"):
            await client.get(f"http://127.0.0.1:{unresponsive_port}/")
        await assert_still_works(client, http_url)


async def test_tls_handshake_timeout(nursery: trio.Nursery, http_url: str) -> None:
    async def silent(stream: BufferedStream) -> None:
        while await stream.receive_some(65536):
            pass

    url = (await serve_raw(nursery, silent)).replace("http://", "https://")
    async with trioclient.Client(timeout=Timeout(10, connect=0.2)) as client:
        with pytest.raises(trioclient.ConnectTimeout, match=authority(url)) as info:
            await client.get(url)
        assert "performing the TLS handshake with" in str(info.value)
        await assert_still_works(client, http_url)


# --- read ------------------------------------------------------------------------------------


async def test_read_timeout_waiting_for_the_head(nursery: trio.Nursery, http_url: str) -> None:
    url = await serve_raw(nursery, stall_after_head())
    async with trioclient.Client(timeout=Timeout(10, read=0.2)) as client:
        with pytest.raises(trioclient.ReadTimeout) as info:
            await client.get(url)
        assert str(info.value) == (
            f"Timed out reading the response from {authority(url)} (no data for 0.2 s)"
        )
        assert client.pool_statistics().connections == 0
        await assert_still_works(client, http_url)


async def test_read_timeout_against_hypercorn_hold(http_url: str) -> None:
    async with trioclient.Client() as client:
        with pytest.raises(trioclient.ReadTimeout, match=authority(http_url)):
            await client.get(f"{http_url}/hold", timeout=Timeout(10, read=0.2))
        await assert_still_works(client, http_url)


async def test_read_timeout_in_the_middle_of_the_body(nursery: trio.Nursery, http_url: str) -> None:
    url = await serve_raw(nursery, drip(chunks=3, delay=60, size=5))
    async with trioclient.Client(timeout=Timeout(10, read=0.2)) as client:
        received = bytearray()
        with pytest.raises(trioclient.ReadTimeout, match=r"no data for 0\.2 s"):
            async with client.stream("GET", url) as response:
                assert response.status_code == 200
                async for chunk in response.aiter_raw():
                    received += chunk
        assert received == b"*****"
        assert client.pool_statistics().connections == 0  # half-read: discarded
        await assert_still_works(client, http_url)


async def test_a_flowing_download_is_not_cut_off_by_read(http_url: str) -> None:
    async with trioclient.Client(timeout=Timeout(10, read=0.2)) as client:
        response = await client.get(f"{http_url}/drip?chunks=6&delay=0.05&size=3")
        assert response.content == b"*" * 18
        assert_quiet(client)


# --- write -----------------------------------------------------------------------------------


async def test_write_timeout(nursery: trio.Nursery, http_url: str) -> None:
    got_head = trio.Event()
    url = await serve_raw(nursery, reads_head_then_sleeps(got_head))
    async with trioclient.Client(timeout=Timeout(10, write=0.2)) as client:
        with pytest.raises(trioclient.WriteTimeout) as info:
            await client.post(url, content=b"x" * (64 * 1024 * 1024))
        assert str(info.value) == (
            f"Timed out sending the request to {authority(url)} (no progress for 0.2 s)"
        )
        assert got_head.is_set()
        assert client.pool_statistics().connections == 0
        await assert_still_works(client, http_url)


async def test_write_timeout_streamed_body(nursery: trio.Nursery, http_url: str) -> None:
    async def endless() -> AsyncIterator[bytes]:
        chunk = b"y" * (1024 * 1024)
        while True:
            yield chunk

    url = await serve_raw(nursery, reads_head_then_sleeps())
    async with trioclient.Client(timeout=Timeout(10, write=0.2)) as client:
        with pytest.raises(trioclient.WriteTimeout, match=authority(url)):
            await client.post(url, content=endless())
        await assert_still_works(client, http_url)


async def test_write_bounded_by_total(nursery: trio.Nursery, http_url: str) -> None:
    url = await serve_raw(nursery, reads_head_then_sleeps())
    async with trioclient.Client(timeout=Timeout(10, write=None, total=0.2)) as client:
        with pytest.raises(trioclient.WriteTimeout, match=r"\(total timeout\)"):
            await client.post(url, content=b"x" * (64 * 1024 * 1024))
        await assert_still_works(client, http_url)


async def test_an_upload_that_keeps_moving_is_not_cut_off(nursery: trio.Nursery) -> None:
    """`write` bounds each silence, like `read`: a slow reader that keeps reading must get
    the whole body even when the upload as a whole takes longer than the write timeout."""
    size = 8 * 1024 * 1024  # >= 128 paced reads: far longer than the write timeout

    async def slow_reader(stream: BufferedStream) -> None:
        await read_request_head(stream)
        received = 0
        while received < size:
            data = await stream.receive_some(64 * 1024)
            if not data:
                return
            received += len(data)
            await trio.sleep(0.003)
        await stream.send_all(response_bytes(200, body=str(received).encode()))

    url = await serve_raw(nursery, slow_reader)
    async with trioclient.Client(timeout=Timeout(10, write=0.1)) as client:
        response = await client.post(url, content=b"z" * size)
        assert response.text == str(size)
        assert_quiet(client)


# --- pool ------------------------------------------------------------------------------------


async def test_pool_timeout(http_url: str) -> None:
    async with trioclient.Client(limits=Limits(max_connections=1)) as client:
        async with client.stream("GET", f"{http_url}/bytes/10") as held:
            with pytest.raises(trioclient.PoolTimeout) as info:
                await client.get(f"{http_url}/", timeout=Timeout(10, pool=0.1))
            assert str(info.value) == (
                f"Timed out waiting for a connection to {authority(http_url)} from the pool (0.1 s)"
            )
            stats = client.pool_statistics()
            assert stats.waiting == 0
            assert stats.in_use == 1
            assert stats.requests_active == 1
            assert len(await held.aread()) == 10
        await assert_still_works(client, http_url)
        assert client.pool_statistics().connections == 1


async def test_pool_wait_bounded_by_total(http_url: str) -> None:
    async with trioclient.Client(limits=Limits(max_connections=1)) as client:
        async with client.stream("GET", f"{http_url}/bytes/10") as held:
            with pytest.raises(trioclient.PoolTimeout, match=r"\(total timeout\)"):
                await client.get(f"{http_url}/", timeout=Timeout(10, total=0.1))
            await held.aread()
        await assert_still_works(client, http_url)


# --- total -----------------------------------------------------------------------------------


async def test_total_bounds_a_dripping_body(nursery: trio.Nursery, http_url: str) -> None:
    """Every chunk arrives well within `read`, but the body as a whole exceeds `total`."""
    url = await serve_raw(nursery, drip(chunks=100, delay=0.05, size=10))  # 5 s of body
    async with trioclient.Client(timeout=Timeout(10, total=0.3)) as client:
        with pytest.raises(trioclient.TimeoutException) as info:
            await client.get(url)
        assert isinstance(info.value, trioclient.ReadTimeout)
        assert str(info.value) == (
            f"Timed out reading the response from {authority(url)} (total timeout)"
        )
        assert client.pool_statistics().connections == 0
        await assert_still_works(client, http_url)


async def test_total_keeps_running_while_streaming(nursery: trio.Nursery, http_url: str) -> None:
    url = await serve_raw(nursery, drip(chunks=100, delay=0.05, size=10))
    async with trioclient.Client() as client:
        with pytest.raises(trioclient.ReadTimeout, match="total timeout"):
            async with client.stream("GET", url, timeout=Timeout(10, total=0.3)) as response:
                async for _chunk in response.aiter_bytes():
                    pass
        await assert_still_works(client, http_url)


async def test_total_is_not_exceeded_by_a_quick_request(http_url: str) -> None:
    async with trioclient.Client(timeout=Timeout(10, total=5)) as client:
        for _ in range(3):
            assert (await client.get(f"{http_url}/bytes/1000")).status_code == 200
        assert client.pool_statistics().idle == 1


# --- None disables, per-request overrides ----------------------------------------------------


async def test_none_disables_per_request(http_url: str) -> None:
    async with trioclient.Client(timeout=Timeout(5, read=0.1)) as client:
        with pytest.raises(trioclient.ReadTimeout):
            await client.get(f"{http_url}/slow-headers?delay=0.3")
        response = await client.get(f"{http_url}/slow-headers?delay=0.3", timeout=None)
        assert response.text == "ok"
        assert response.request.extensions["timeout"] == Timeout(None)
        assert_quiet(client)


async def test_none_read_with_other_phases_set(http_url: str) -> None:
    async with trioclient.Client(timeout=Timeout(0.1, read=None)) as client:
        assert (await client.get(f"{http_url}/slow-headers?delay=0.3")).text == "ok"


async def test_client_wide_none(http_url: str) -> None:
    async with trioclient.Client(timeout=None) as client:
        assert client.timeout == Timeout(None)
        assert (await client.get(f"{http_url}/slow-headers?delay=0.2")).text == "ok"


async def test_per_request_override_of_the_client_default(
    nursery: trio.Nursery, http_url: str
) -> None:
    url = await serve_raw(nursery, stall_after_head())
    async with trioclient.Client() as client:  # defaults: read = 30 s
        with pytest.raises(trioclient.ReadTimeout, match=r"no data for 0\.2 s"):
            await client.get(url, timeout=Timeout(10, read=0.2))
        # A float sets every phase, connect included: on a loaded machine connecting may be
        # what times out, and either way the 0.1 s bound is what the message names.
        with pytest.raises(trioclient.TimeoutException, match=r"0\.1 s"):
            await client.get(url, timeout=0.1)
        with pytest.raises(trioclient.ReadTimeout, match=r"no data for 0\.1 s"):
            await client.get(url, timeout=(5, 0.1, 5, 5))  # (connect, read, write, pool)
        request = client.build_request("GET", url, timeout=Timeout(10, read=0.1))
        with pytest.raises(trioclient.ReadTimeout, match=r"no data for 0\.1 s"):
            await client.send(request)
        with pytest.raises(trioclient.ReadTimeout, match=r"no data for 0\.1 s"):
            async with client.stream("GET", url, timeout=Timeout(10, read=0.1)):
                pass  # pragma: no cover
        assert client.timeout == Timeout()  # the client's default is untouched
        await assert_still_works(client, http_url)


async def test_per_request_override_lengthens_a_short_default(http_url: str) -> None:
    async with trioclient.Client(timeout=Timeout(10, read=0.05)) as client:
        response = await client.get(
            f"{http_url}/slow-headers?delay=0.2", timeout=Timeout(10, read=5)
        )
        assert response.text == "ok"
        with pytest.raises(trioclient.ReadTimeout):
            await client.get(f"{http_url}/slow-headers?delay=0.2")
        await assert_still_works(client, http_url)


# --- the caller's cancel scopes win ----------------------------------------------------------


async def test_outer_move_on_after_wins_over_read_timeout(
    nursery: trio.Nursery, http_url: str
) -> None:
    url = await serve_raw(nursery, stall_after_head())
    async with trioclient.Client() as client:
        with trio.move_on_after(0.1) as scope:
            await client.get(url, timeout=Timeout(10, read=0.1))
        assert scope.cancelled_caught
        assert client.pool_statistics().connections == 0
        await assert_still_works(client, http_url)


async def test_outer_cancel_wins_an_exact_tie(
    nursery: trio.Nursery, mock_clock: trio.testing.MockClock, http_url: str
) -> None:
    """With time frozen, our read deadline and the caller's deadline are *equal*; both fire
    in the same tick, and the caller's scope must catch the cancellation."""
    got_request = trio.Event()

    async def handler(stream: BufferedStream) -> None:
        await read_request(stream)
        got_request.set()
        while await stream.receive_some(65536):
            pass

    url = await serve_raw(nursery, handler)
    results: list[object] = []
    async with trioclient.Client() as client:

        async def request() -> None:
            try:
                with trio.move_on_after(1) as scope:
                    await client.get(url, timeout=Timeout(10, read=1))
                results.append(scope.cancelled_caught)
            except trioclient.ReadTimeout as exc:  # pragma: no cover - the bug we test for
                results.append(exc)

        async with trio.open_nursery() as inner:
            inner.start_soon(request)
            await got_request.wait()
            await trio.testing.wait_all_tasks_blocked()
            mock_clock.jump(1)
        assert results == [True]
        assert_quiet(client)
        assert client.pool_statistics().connections == 0
        assert (await client.get(http_url)).status_code == 200


async def test_outer_cancel_wins_in_every_phase(
    unresponsive_port: int, nursery: trio.Nursery, http_url: str
) -> None:
    url_stall = await serve_raw(nursery, stall_after_head())
    url_sink = await serve_raw(nursery, reads_head_then_sleeps())
    async with trioclient.Client(timeout=Timeout(0.1)) as client:
        with trio.move_on_after(0.1) as scope:
            await client.get(f"http://127.0.0.1:{unresponsive_port}/")
        assert scope.cancelled_caught
        with trio.move_on_after(0.1) as scope:
            await client.post(url_sink, content=b"x" * (64 * 1024 * 1024))
        assert scope.cancelled_caught
        with trio.move_on_after(0.1) as scope:
            await client.get(url_stall)
        assert scope.cancelled_caught
        await assert_still_works(client, http_url)


async def test_a_later_outer_deadline_sees_our_timeout(nursery: trio.Nursery) -> None:
    url = await serve_raw(nursery, stall_after_head())
    async with trioclient.Client() as client:
        with trio.move_on_after(30) as scope:
            with pytest.raises(trioclient.ReadTimeout):
                await client.get(url, timeout=Timeout(10, read=0.1))
        assert not scope.cancelled_caught
        assert_quiet(client)


async def test_good_server_after_timeouts(nursery: trio.Nursery) -> None:
    """A raw keep-alive server works normally with every timeout set short."""
    url = await serve_raw(nursery, respond(body=b"quick"))
    async with trioclient.Client(timeout=Timeout(0.5, total=2)) as client:
        for _ in range(3):
            assert (await client.get(url)).text == "quick"
        assert client.pool_statistics().idle == 1


# --- the Timeout class -----------------------------------------------------------------------


def test_timeout_single_value_sets_every_phase() -> None:
    timeout = Timeout(5)
    assert timeout.as_dict() == {
        "connect": 5.0,
        "read": 5.0,
        "write": 5.0,
        "pool": 5.0,
        "total": None,
    }
    assert isinstance(timeout.connect, float)


def test_timeout_defaults_and_keyword_overrides() -> None:
    assert Timeout().as_dict() == {
        "connect": 10.0,
        "read": 30.0,
        "write": 30.0,
        "pool": 60.0,
        "total": None,
    }
    assert Timeout(connect=1).as_dict() == {
        "connect": 1.0,
        "read": 30.0,
        "write": 30.0,
        "pool": 60.0,
        "total": None,
    }
    assert Timeout(5, read=None, total=20).as_dict() == {
        "connect": 5.0,
        "read": None,
        "write": 5.0,
        "pool": 5.0,
        "total": 20.0,
    }
    assert Timeout(None).as_dict() == dict.fromkeys(
        ("connect", "read", "write", "pool", "total"), None
    )


def test_timeout_tuple_and_copy_forms() -> None:
    assert Timeout((1, 2, None, 4)).as_dict() == {
        "connect": 1.0,
        "read": 2.0,
        "write": None,
        "pool": 4.0,
        "total": None,
    }
    base = Timeout(3, total=9)
    assert Timeout(base) == base
    assert Timeout(base, read=1).as_dict() == {
        "connect": 3.0,
        "read": 1.0,
        "write": 3.0,
        "pool": 3.0,
        "total": 9.0,
    }
    assert Timeout(math.inf).read == math.inf


def test_timeout_repr() -> None:
    assert repr(Timeout(5)) == "Timeout(timeout=5.0)"
    assert repr(Timeout(None)) == "Timeout(timeout=None)"
    assert repr(Timeout(connect=1)) == "Timeout(connect=1.0, read=30.0, write=30.0, pool=60.0)"
    assert repr(Timeout(5, total=10)) == (
        "Timeout(connect=5.0, read=5.0, write=5.0, pool=5.0, total=10.0)"
    )


def test_timeout_equality_and_hash() -> None:
    assert Timeout(5) == Timeout(5.0) == Timeout((5, 5, 5, 5))
    assert Timeout(5) != Timeout(5, total=5)
    assert Timeout(5) != 5
    assert hash(Timeout(5)) == hash(Timeout((5, 5, 5, 5)))
    assert len({Timeout(1), Timeout(1.0), Timeout(2)}) == 2


def test_timeout_is_immutable() -> None:
    timeout = Timeout(5)
    with pytest.raises(AttributeError, match="immutable"):
        timeout.read = 1  # type: ignore[misc]
    with pytest.raises(AttributeError):
        timeout.total = 1  # type: ignore[misc]
    with pytest.raises(AttributeError):
        timeout.extra = 1  # type: ignore[attr-defined]
    assert timeout == Timeout(5)


def test_timeout_attributes_cannot_be_deleted() -> None:
    timeout = Timeout(5)
    with pytest.raises(AttributeError, match="immutable"):
        del timeout.read  # type: ignore[misc]
    assert timeout.read == 5.0


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"timeout": -1}, ValueError, r"connect must be >= 0"),
        ({"timeout": float("nan")}, ValueError, r">= 0 seconds"),
        ({"connect": -0.1}, ValueError, r"connect must be >= 0"),
        ({"total": -1}, ValueError, r"total must be >= 0"),
        ({"timeout": "5"}, TypeError, r"must be a number of seconds or None"),
        ({"timeout": True}, TypeError, r"must be a number of seconds or None"),
        ({"read": "fast"}, TypeError, r"read must be a number"),
        ({"timeout": (1, 2, 3)}, ValueError, r"\(connect, read, write, pool\)"),
        ({"timeout": (1, 2, 3, 4, 5)}, ValueError, r"\(connect, read, write, pool\)"),
        ({"timeout": (1, 2, "3", 4)}, TypeError, r"write must be a number"),
    ],
)
def test_timeout_validation(kwargs: dict[str, object], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        Timeout(**kwargs)  # type: ignore[arg-type]


def test_client_timeout_forms() -> None:
    assert trioclient.Client(timeout=5).timeout == Timeout(5)
    assert trioclient.Client(timeout=(1, 2, 3, 4)).timeout == Timeout((1, 2, 3, 4))
    assert trioclient.Client(timeout=None).timeout == Timeout(None)
    assert trioclient.Client().timeout == Timeout()
    with pytest.raises(ValueError, match=">= 0"):
        trioclient.Client(timeout=-1)
