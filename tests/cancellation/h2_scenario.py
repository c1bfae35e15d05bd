"""The HTTP/2 harness's scenarios and its server: what is asked, and a raw h2 server that
answers each request as its query string says (sizes, pieces, stalls). See h2_driver.py."""

from __future__ import annotations

import hashlib
import itertools
import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import trio
import trio.testing
from h2.settings import SettingCodes
from harness import HARNESS_TIMEOUT, internal
from hyperframe.frame import WindowUpdateFrame
from servers.asgi_app import pattern_bytes
from servers.h2_raw import H2Handler, H2ServerConnection, Request

import trioclient

# The siblings' timeouts: distinct values, far above anything a correct run needs.
H2_TIMEOUT = HARNESS_TIMEOUT
DRIP_PIECES = 4  # a dripping response comes in this many pieces...
DRIP_DELAY = 0.1  # ...this many (mock) seconds apart
FIRST_PIECE = 1000  # a response stalled mid-body sends this many bytes first
STEP_KINDS = ("cancel-at-step", "ki-at-step", "cancel-at-any-step", "ki-at-any-step")
CALLER_KINDS = (*STEP_KINDS, "timeout")
SEQUENCE = itertools.count()  # orders the server finishing a stream and the victim giving up
_TIMEOUT_CLASS = {
    "head": trioclient.ReadTimeout,
    "body": trioclient.ReadTimeout,
    "upload": trioclient.WriteTimeout,
}


# --- requests and scenarios ---------------------------------------------------------------


@dataclass(frozen=True)
class Req:
    """One request: ``GET /bytes/SIZE/SEED`` answers ``pattern_bytes(SIZE, SEED)``;
    ``POST /echo/SIZE/SEED`` uploads that and gets it echoed back. ``stall``: the server
    stalls this stream ("head": never answers; "body": sends FIRST_PIECE bytes, then nothing;
    "upload": never gives the stream flow-control credit for its body, only the connection).
    ``drip``: the response comes in DRIP_PIECES pieces, DRIP_DELAY apart."""

    method: str
    size: int
    seed: int
    stall: str | None = None
    drip: bool = False
    streamed: bool = False  # the upload comes from an async generator, in 10 KB chunks

    @property
    def path(self) -> str:
        kind = "echo" if self.method == "POST" else "bytes"
        query = [f"stall={self.stall}"] if self.stall else []
        if self.drip:
            query.append("drip=1")
        return f"/{kind}/{self.size}/{self.seed}" + ("?" + "&".join(query) if query else "")

    @property
    def expected(self) -> bytes:
        return pattern_bytes(self.size, self.seed)

    @property
    def content(self) -> bytes | None:
        return self.expected if self.method == "POST" else None

    def but(self, **changes: Any) -> Req:
        return Req(**{**self.__dict__, **changes})


@dataclass(frozen=True)
class H2Scenario:
    """A victim and its siblings, started together on one HTTP/2 connection."""

    name: str
    victim: Req
    siblings: tuple[Req, ...]
    tls: bool = False
    window: int | None = None  # the server's SETTINGS_INITIAL_WINDOW_SIZE (uploads wait)
    goaway_after: int | None = None  # the first connection answers n streams, then GOAWAY
    stalls: tuple[str, ...] = ()  # where the server may stall the victim (timeout sweep)

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class H2Plan:
    """What to inject: a peer fault at socket operation ``index`` (``kind`` a peer
    ``faults.Kind`` value), a cancellation or KeyboardInterrupt after step ``index``
    (``STEP_KINDS``, see :class:`VictimSteps`), or a timeout of the victim stalled at
    ``stall`` after ``after`` seconds."""

    kind: str | None = None  # None: a run without faults
    index: int = -1  # -1: a counting run (the kind's setup, no fault)
    victim_first: bool = True
    stall: str | None = None
    after: float = 0.0

    def __str__(self) -> str:
        order = "victim first" if self.victim_first else "victim late"
        if self.kind == "timeout":
            return f"timeout ({self.stall} stalled, {self.after:g} s), {order}"
        return f"{self.kind} @{self.index}, {order}"


@dataclass
class Tls:
    """TLS contexts for the raw server and the client."""

    server: ssl.SSLContext
    client: ssl.SSLContext


@dataclass
class H2Outcome:
    """What one run did."""

    fired: str | None  # where the fault fired (phase of the operation, or victim's step)
    result: str  # the label of the outcome, for the summary
    ops: list[str]  # the phase of each socket operation of the scenario (not of the checks)
    steps: list[str]  # where the victim's task was after each of its steps (counting run)
    all_steps: int  # steps of every task while the victim's request ran
    sockets: int  # sockets the scenario opened


# --- the server ---------------------------------------------------------------------------


@dataclass
class ServerRecord:
    """Shared by the handlers of one run's connections."""

    goaway_after: int | None
    goaway_conn: H2ServerConnection | None = None  # the connection that sends GOAWAY


def _spec(request: Request) -> tuple[str, int, int, dict[str, list[str]]]:
    parts = urlsplit(request.path or "")
    kind, size, seed = parts.path.strip("/").split("/")
    return kind, int(size), int(seed), parse_qs(parts.query)


class Mux(H2Handler):
    """Serves :class:`Req` paths; remembers when it finished each stream (END_STREAM).

    With ``window``, SETTINGS_INITIAL_WINDOW_SIZE is that small and the server gives credit
    back itself (``_ack_forever``); a stream with ``stall=upload`` gets none (its data still
    frees the connection window). With
    ``goaway_after`` = n (``record``), the first connection to receive a request answers its
    first n streams only and, once each of them is finished or reset, sends GOAWAY with the
    nth as last_stream_id: later streams on it are never processed.
    """

    def __init__(self, record: ServerRecord, window: int | None) -> None:
        self.record = record
        self.finished: dict[int, int] = {}  # stream id: when (SEQUENCE) END_STREAM went out
        if window is not None:
            self.settings = {SettingCodes.INITIAL_WINDOW_SIZE: window}
            self.ack_data = False

    async def on_connect(self) -> None:
        if not self.ack_data:
            await self._ack_forever()

    async def _ack_forever(self) -> None:
        conn = self.conn
        acked: dict[int, int] = {}

        def due() -> dict[int, int]:
            owed = {}
            for stream_id, request in conn.requests.items():
                size = len(request.body) - acked.get(stream_id, 0)
                if size > 0:
                    owed[stream_id] = size
            return owed

        while True:
            await conn.wait_for(due, timeout=None)
            for stream_id, size in due().items():
                acked[stream_id] = acked.get(stream_id, 0) + size
                if "stall=upload" not in (conn.requests[stream_id].path or ""):
                    await conn.acknowledge(stream_id, size)
                    continue
                # A server whose application does not read this stream still frees the
                # connection window (as nginx does, buffering): only this stream stalls.
                # h2 has no public call for "acknowledge the connection window only".
                window = internal(conn.h2, "_inbound_flow_control_window_manager", "h2 window")
                increment = window.process_bytes(size)
                if increment:
                    update = WindowUpdateFrame(0, window_increment=increment)
                    await conn.send_raw(update.serialize())

    def _first(self) -> list[int]:
        assert self.record.goaway_after is not None
        return sorted(self.conn.requests)[: self.record.goaway_after]

    async def on_request(self, request: Request) -> None:
        conn, stream_id = self.conn, request.stream_id
        record = self.record
        if record.goaway_after is not None:
            if record.goaway_conn is None:
                record.goaway_conn = conn
            if record.goaway_conn is conn and stream_id not in self._first():
                return  # above the coming GOAWAY's last_stream_id: never processed
        kind, size, seed, query = _spec(request)
        stall = query.get("stall", [None])[0]
        if stall in ("head", "upload"):
            return
        body = bytes(request.body) if kind == "echo" else pattern_bytes(size, seed)
        headers = [("content-length", str(len(body)))]
        await conn.send_response(stream_id, 200, headers, end_stream=False)
        if stall == "body":
            await conn.send_data(stream_id, body[:FIRST_PIECE])
            return
        pieces = DRIP_PIECES if "drip" in query else 1
        step = -(-len(body) // pieces)
        for index in range(pieces):
            if index:
                await trio.sleep(DRIP_DELAY)
            last = index == pieces - 1
            if last:  # noted first: a client that gives up from now on may or may not reset
                self.finished[stream_id] = next(SEQUENCE)
            await conn.send_data(
                stream_id, body[index * step : (index + 1) * step], end_stream=last
            )
        await self._maybe_goaway()

    async def on_reset(self, stream_id: int, error_code: int) -> None:
        await self._maybe_goaway()

    async def _maybe_goaway(self) -> None:
        record, conn = self.record, self.conn
        if record.goaway_after is None or record.goaway_conn is not conn or conn.goaway_sent:
            return
        first = self._first()
        if len(first) == record.goaway_after and all(
            stream_id in self.finished or conn.requests[stream_id].reset_code is not None
            for stream_id in first
        ):
            await conn.send_goaway(first[-1])


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:12]


def _describe(result: bytes | BaseException | None, expected: bytes) -> str:
    if result is None:
        return "no result"
    if isinstance(result, BaseException):
        return repr(result)
    wanted = f"{len(expected)} bytes {_sha(expected)}"
    return f"{len(result)} bytes sha256 {_sha(result)} (expected {wanted})"
