"""The interruption scenarios, written once for every client.

Each scenario enters the client with ``async with``, interrupts one request at one point
(the server, or the client's own loop, sets a flag at the point of interest and the
interruption is delivered right after it), then records:

* ``interrupted``: what the interrupted request did (``runtimes.Runtime.request``);
* ``settled``: the client's sockets to the servers and its pool statistics once the
  interruption is over and nothing should be in flight;
* ``next``: a plain ``GET /ok`` with the same client (is it still usable?);
* ``escaped_client``: what left ``async with`` (nothing, or the exception on its way);
* ``after_exit``: the sockets and the pool once the client is closed.

``child.py`` adds what escaped the event loop's runner and the sockets still open after it.
Names and wording follow docs/cancellation.md's phases (and its S-numbered scenarios).
"""

from __future__ import annotations

import os
import signal
import ssl
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from .clients import Adaptor
from .runtimes import Record, describe
from .server import Servers, client_sockets, connecting_to

BOUND = 10.0  # seconds a request may take after its start before it counts as a hang
DELAY = 0.05  # after the flag, so the request is back to waiting in its phase
UPLOAD = bytes(32 * 1024 * 1024)  # more than loopback's socket buffers hold
TIMEOUT = 2.0  # the read timeout of the timeout scenario

Body = Callable[[Any], Awaitable[None]]


def step(name: str) -> None:
    """Tell the runner how far the scenario got (what a hard timeout then reports)."""
    print(f"STEP {name}", flush=True)


@dataclass(frozen=True)
class Scenario:
    """One interruption: its id, its wording in the report, and how to run it."""

    id: str
    title: str  # the row's wording
    how: str  # what the suite does, one sentence
    run: Callable[[Adaptor, Servers, ssl.SSLContext, Record], Awaitable[None]]


async def _snapshot(lib: Adaptor, client: Any, servers: Servers) -> Record:
    # asyncio closes a transport's socket one loop iteration after close(): let it.
    await lib.runtime.sleep(0.1)
    pool = lib.pool(client)
    return {"sockets": client_sockets(servers), "pool": pool}


async def _next_request(lib: Adaptor, client: Any, servers: Servers, rec: Record) -> None:
    step("next-request")
    rec["next"] = await lib.runtime.request(
        lambda: lib.get(client, servers.url("plain")), bound=BOUND
    )


async def _in_client(
    lib: Adaptor,
    servers: Servers,
    ctx: ssl.SSLContext,
    rec: Record,
    body: Body,
    *,
    pool: int = 1,
    read_timeout: float | None = None,
    reraise: bool = False,
) -> None:
    """``async with`` the client around `body`; record what escaped it and what is left."""
    step("enter")
    client = None
    try:
        async with lib.client(ctx, pool=pool, read_timeout=read_timeout) as client:
            await body(client)
            step("exit")
    except BaseException as exc:
        rec["escaped_client"] = describe(exc)
        rec["escaped_client_is_original"] = exc is rec.get("_raised")
        if reraise:
            raise
    else:
        rec["escaped_client"] = None
    finally:
        if client is not None:
            rec["after_exit"] = {"sockets": client_sockets(servers), "pool": lib.pool(client)}
        step("left-client")


def _interrupt_once(
    target: str,
    url: Callable[[Servers], str],
    *,
    cancel_on: Callable[[Servers, threading.Event], threading.Event] | None,
    upload: bool = False,
    stream: bool = False,
) -> Callable[[Adaptor, Servers, ssl.SSLContext, Record], Awaitable[None]]:
    """A scenario with one interrupted request, then a check of the pool and a next
    request. `cancel_on` gives the flag that cancels it (None: the suite does not cancel it,
    the interruption comes from the peer); `stream` streams the body and sets the
    client-side ``got`` flag at the first chunk."""

    async def run(lib: Adaptor, servers: Servers, ctx: ssl.SSLContext, rec: Record) -> None:
        got = threading.Event()
        flag = None if cancel_on is None else cancel_on(servers, got)
        rec["chunks"] = 0

        def on_chunk(_: bytes) -> None:
            rec["chunks"] += 1
            got.set()
            servers.flags["got"].set()

        async def body(client: Any) -> None:
            if upload:
                request = lambda: lib.post(client, url(servers), UPLOAD)  # noqa: E731
            elif stream:
                request = lambda: lib.stream(client, url(servers), on_chunk)  # noqa: E731
            else:
                request = lambda: lib.get(client, url(servers))  # noqa: E731
            step(f"request ({target})")
            rec["interrupted"] = await lib.runtime.request(
                request,
                bound=BOUND,
                cancel_on=flag,
                cancel_delay=DELAY,
            )
            servers.flags["release"].set()
            step("settle")
            rec["settled"] = await _snapshot(lib, client, servers)
            await _next_request(lib, client, servers, rec)

        await _in_client(lib, servers, ctx, rec, body)

    return run


def _syn_sent_flag(servers: Servers, _: threading.Event) -> threading.Event:
    """Set once a client socket sits in SYN_SENT towards the blackhole (a watcher thread)."""
    flag = threading.Event()

    def watch() -> None:
        while not flag.is_set() and not servers.shutdown.is_set():
            if connecting_to(servers, "blackhole"):
                flag.set()
            time.sleep(0.01)

    threading.Thread(target=watch, daemon=True).start()
    return flag


async def _timeout_mid_body(
    lib: Adaptor, servers: Servers, ctx: ssl.SSLContext, rec: Record
) -> None:
    rec["chunks"] = 0

    def on_chunk(_: bytes) -> None:
        rec["chunks"] += 1

    async def body(client: Any) -> None:
        step("request (read timeout mid-body)")
        rec["interrupted"] = await lib.runtime.request(
            lambda: lib.stream(client, servers.url("plain", "/drip"), on_chunk), bound=BOUND
        )
        step("settle")
        rec["settled"] = await _snapshot(lib, client, servers)
        await _next_request(lib, client, servers, rec)

    await _in_client(lib, servers, ctx, rec, body, read_timeout=TIMEOUT)


async def _keyboard_interrupt(
    lib: Adaptor, servers: Servers, ctx: ssl.SSLContext, rec: Record
) -> None:
    """SIGINT to this process (what Ctrl-C sends) once the first chunk is in; the request
    runs in the main task, as a script's would, and nothing catches the interrupt but the
    scenario, which records it, tries a next request, and lets it go on."""
    got = threading.Event()
    rec["chunks"] = 0

    def on_chunk(_: bytes) -> None:
        rec["chunks"] += 1
        got.set()

    def interrupt() -> None:
        if got.wait(BOUND):
            time.sleep(DELAY)
            rec["sigint_sent"] = True
            os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=interrupt, daemon=True).start()

    async def body(client: Any) -> None:
        step("request (Ctrl-C mid-body)")
        start = time.monotonic()
        try:
            rec["interrupted"] = {"outcome": "returned"}
            await lib.stream(client, servers.url("plain", "/drip"), on_chunk)
        except BaseException as exc:
            rec["interrupted"] = {"outcome": "raised", "exception": describe(exc)}
            rec["_raised"] = exc
            rec["interrupted"]["seconds"] = round(time.monotonic() - start, 3)
            step("settle")
            rec["settled"] = await _snapshot(lib, client, servers)
            await _next_request(lib, client, servers, rec)
            raise

    await _in_client(lib, servers, ctx, rec, body, reraise=True)


async def _close_in_flight(
    lib: Adaptor, servers: Servers, ctx: ssl.SSLContext, rec: Record
) -> None:
    """Two requests in flight (one waiting for its response head, one mid-body) when
    another task closes the client with its documented close method."""
    got = threading.Event()
    rt = lib.runtime

    async def body(client: Any) -> None:
        async def closer() -> None:
            head = await rt.wait_flag(servers.flags["head"], BOUND)
            chunk = await rt.wait_flag(got, BOUND)
            await rt.sleep(DELAY)
            rec["both_in_flight"] = head and chunk
            step("close")
            rec["close"] = await rt.request(lambda: lib.close(client), bound=BOUND)

        step("requests")
        waiting, reading, _ = await rt.together(
            [
                lambda: rt.request(
                    lambda: lib.get(client, servers.url("plain", "/stall-head?flag=head")),
                    bound=BOUND,
                ),
                lambda: rt.request(
                    lambda: lib.stream(client, servers.url("plain", "/drip"), lambda _: got.set()),
                    bound=BOUND,
                ),
                closer,
            ]
        )
        rec["requests"] = {"waiting for the head": waiting, "reading the body": reading}
        step("settle")
        rec["settled"] = await _snapshot(lib, client, servers)

    await _in_client(lib, servers, ctx, rec, body, pool=2)


async def _cancel_siblings(
    lib: Adaptor, servers: Servers, ctx: ssl.SSLContext, rec: Record
) -> None:
    """S2: three requests side by side, one answered at once and two whose server never
    answers; as soon as the first returns, the other two are cancelled (on Trio, each in
    its own cancel scope, as a nursery's cancellation reaches each task; on asyncio,
    ``Task.cancel()`` on each, as ``asyncio.gather``'s cancellation does)."""
    rt = lib.runtime
    first = threading.Event()

    async def answered(client: Any) -> int:
        for name in ("stall-1", "stall-2"):  # the others are in flight before it is sent
            await rt.wait_flag(servers.flags[name], BOUND)
        status = await lib.get(client, servers.url("plain"))
        first.set()
        return status

    def stalled(client: Any, name: str) -> Callable[[], Awaitable[Record]]:
        url = servers.url("plain", f"/stall-head?flag={name}")
        return lambda: rt.request(lambda: lib.get(client, url), bound=BOUND, cancel_on=first)

    async def body(client: Any) -> None:
        step("requests")
        results = await rt.together(
            [
                lambda: rt.request(lambda: answered(client), bound=BOUND),
                stalled(client, "stall-1"),
                stalled(client, "stall-2"),
            ]
        )
        rec["requests"] = dict(
            zip(("answered", "cancelled 1", "cancelled 2"), results, strict=True)
        )
        step("settle")
        rec["settled"] = await _snapshot(lib, client, servers)
        await _next_request(lib, client, servers, rec)

    await _in_client(lib, servers, ctx, rec, body, pool=3)


async def _abandoned_stream(
    lib: Adaptor, servers: Servers, ctx: ssl.SSLContext, rec: Record
) -> None:
    """A streamed response opened and never closed (still referenced, so the garbage
    collector cannot close it either), a next request, then the client is left."""
    held: list[Any] = []

    async def body(client: Any) -> None:
        step("open stream")
        rec["interrupted"] = await lib.runtime.request(
            lambda: lib.open_stream(client, servers.url("plain", "/drip")), bound=BOUND
        )
        held.append(rec["interrupted"].pop("value", None))
        await _next_request(lib, client, servers, rec)

    await _in_client(lib, servers, ctx, rec, body, pool=2)
    rec["held_response"] = type(held[0]).__qualname__ if held else None


SCENARIOS: dict[str, Scenario] = {
    s.id: s
    for s in (
        Scenario(
            "cancel-connect",
            "cancelled during TCP connect",
            "cancel once the client's socket is in SYN_SENT to a listener whose accept "
            "queue is full",
            _interrupt_once(
                "TCP connect",
                lambda s: s.url("blackhole"),
                cancel_on=_syn_sent_flag,
            ),
        ),
        Scenario(
            "cancel-tls",
            "cancelled during the TLS handshake",
            "cancel once the server has the ClientHello (it never answers)",
            _interrupt_once(
                "TLS handshake",
                lambda s: s.url("tls_stall"),
                cancel_on=lambda s, _: s.flags["tls"],
            ),
        ),
        Scenario(
            "cancel-upload",
            "cancelled while sending the request body",
            "POST 32 MiB; cancel once the server has read 64 KiB of it and stopped reading",
            _interrupt_once(
                "sending a body",
                lambda s: s.url("plain", "/upload?flag=upload"),
                cancel_on=lambda s, _: s.flags["upload"],
                upload=True,
            ),
        ),
        Scenario(
            "cancel-head",
            "cancelled while waiting for the response head",
            "cancel once the server has read the request (it never answers)",
            _interrupt_once(
                "waiting for the head",
                lambda s: s.url("plain", "/stall-head?flag=head"),
                cancel_on=lambda s, _: s.flags["head"],
            ),
        ),
        Scenario(
            "cancel-body",
            "cancelled while reading the body",
            "stream a 1 MiB body of which 16 KiB come; cancel after the first chunk",
            _interrupt_once(
                "reading the body",
                lambda s: s.url("plain", "/drip"),
                cancel_on=lambda s, got: got,
                stream=True,
            ),
        ),
        Scenario(
            "cancel-siblings",
            "cancelled with its siblings after the first response",
            "three requests side by side; the two whose server never answers are cancelled "
            "as soon as the third returns (S2)",
            _cancel_siblings,
        ),
        Scenario(
            "timeout-body",
            "read timeout while reading the body",
            f"the library's own read timeout ({TIMEOUT:g} s) on a body that stops after 16 KiB",
            _timeout_mid_body,
        ),
        Scenario(
            "keyboard-interrupt",
            "KeyboardInterrupt while reading the body",
            "SIGINT to the process after the first chunk, the request in the main task",
            _keyboard_interrupt,
        ),
        Scenario(
            "peer-reset",
            "peer reset (RST) while reading the body",
            "the server aborts the connection (SO_LINGER 0) after the first chunk arrived",
            _interrupt_once(
                "reading the body (RST)",
                lambda s: s.url("plain", "/reset?flag=got"),
                cancel_on=None,
                stream=True,
            ),
        ),
        Scenario(
            "close-in-flight",
            "client closed with requests in flight",
            "another task closes the client while one request waits for its head and one "
            "reads its body",
            _close_in_flight,
        ),
        Scenario(
            "abandoned-stream",
            "streamed response never closed, then the client is left",
            "open a streamed response, never read or close it, send a next request, leave "
            "the client",
            _abandoned_stream,
        ),
    )
}
