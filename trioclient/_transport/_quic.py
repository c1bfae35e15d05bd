"""QUIC on a Trio UDP socket: aioquic's sans-I/O `QuicConnection`, driven by hand.

Theory of operation
-------------------
aioquic's `QuicConnection` is a state machine: datagrams go in (`receive_datagram`), timers
fire (`handle_timer`), events come out (`next_event`) and so do datagrams to send
(`datagrams_to_send`). `QuicDriver` owns one such connection and its UDP socket:

- `pump(deadline)` waits until the socket is readable or aioquic's timer (or `deadline`) is
  due, reads a bounded batch of datagrams, runs the timer, hands every event to the
  `on_event` callback and sends what aioquic queued. During the handshake the request task
  that opens the connection pumps (under its connect deadline, so a failed handshake
  leaves no task behind); afterwards one task in the client's nursery pumps until the
  connection ends (`run`), KI-protected like HTTP/2's reader and writer.
- Request tasks change QUIC state synchronously (send stream data, reset a stream) and then
  call `transmit()`, which sends at once without waiting: a UDP send is one datagram, and a
  datagram the kernel refuses (EAGAIN) is simply lost, which QUIC recovers from. So no task
  is ever cancelled half-way through a write and nothing can be left half-framed.

Receive flow control: aioquic raises a stream's MAX_STREAM_DATA as data *arrives* (it
doubles the window whenever half of it was received), whether or not anyone read it. That
would let a server fill our memory behind a slow reader, so `_QuicConnection` overrides the
one private method that writes MAX_STREAM_DATA (`_write_stream_limits`, the narrow override
tested in tests/http3/test_h3_flow_control.py) for the streams the HTTP/3 layer registers
in `stream_credit`: their limit is whatever the HTTP/3 layer says (what was consumed plus a
fixed window), so each stream buffers at most that window (see `_http3.py`).

TLS: `quic_configuration` maps the client's `verify`/`cert`/`trust_env` onto aioquic's own
TLS settings (`QuicConfiguration`); aioquic does not use `ssl.SSLContext`.
"""

from __future__ import annotations

import dataclasses
import errno
import logging
import math
import socket
import ssl
from collections.abc import Callable
from typing import Any

import trio
from aioquic._buffer import Buffer
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection, QuicConnectionAdapter
from aioquic.quic.events import QuicEvent
from aioquic.quic.packet import QuicFrameType
from aioquic.quic.packet_builder import QuicPacketBuilder
from aioquic.quic.recovery import QuicPacketSpace
from aioquic.quic.stream import QuicStream

from .._types import CertTypes, VerifyTypes
from ._tls import _ca_locations

__all__ = [
    "DatagramSocket",
    "QuicDriver",
    "open_udp",
    "quic_configuration",
]

DatagramSocket = socket.socket
MAX_DATAGRAM = 65536  # the receive buffer per datagram (QUIC datagrams are ~1.2-1.5 KB)
BATCH = 64  # datagrams read per wake-up before aioquic's events are handled
IDLE_TIMEOUT = 30.0  # our QUIC idle timeout (the smaller of ours and the server's applies)
CONNECTION_WINDOW = 16 * 1024 * 1024
quic_logger = logging.getLogger("trioclient.quic")


async def open_udp(host: str, port: int, local_address: str | None) -> DatagramSocket:
    """A non-blocking UDP socket connected to (host, port): the seam the tests wrap.

    Connected, so the kernel hands us ICMP errors (port unreachable: ECONNREFUSED on the
    next receive), which is what lets a closed UDP port fail over to TCP at once.
    """
    infos = await trio.socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    if not infos:  # pragma: no cover - getaddrinfo raises instead
        raise OSError(errno.EHOSTUNREACH, f"no address for {host}")
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setblocking(False)
        if local_address is not None:
            sock.bind((local_address, 0))
        sock.connect(address)
    except BaseException:
        sock.close()
        raise
    return sock


def quic_configuration(
    verify: VerifyTypes, cert: CertTypes | None, *, trust_env: bool
) -> QuicConfiguration:
    """The client's TLS settings, as aioquic takes them (`server_name` is set per connection).

    `verify` True: certifi's bundle (or SSL_CERT_FILE / SSL_CERT_DIR with `trust_env`), as
    for TCP; a path: that CA file or directory; False: no verification; an `ssl.SSLContext`:
    its CA certificates (those it holds in memory: `get_ca_certs`) and its verify mode. A
    client certificate inside a context cannot be read back: pass it as `cert=`.
    """
    config = QuicConfiguration(
        is_client=True,
        alpn_protocols=["h3"],
        idle_timeout=IDLE_TIMEOUT,
        max_data=CONNECTION_WINDOW,
    )
    if isinstance(verify, ssl.SSLContext):
        config.verify_mode = verify.verify_mode
        cas = verify.get_ca_certs(binary_form=True)
        if cas:
            pem = "".join(ssl.DER_cert_to_PEM_cert(der) for der in cas)
            config.load_verify_locations(cadata=pem.encode("ascii"))
        else:
            config.load_verify_locations(cafile=_ca_locations(True, trust_env)[0])
    elif verify is False:
        config.verify_mode = ssl.CERT_NONE
    elif verify is True or isinstance(verify, str):
        cafile, capath = _ca_locations(verify, trust_env)
        config.verify_mode = ssl.CERT_REQUIRED
        config.load_verify_locations(cafile=cafile, capath=capath)
    else:
        raise TypeError(f"verify must be a bool, a path or an ssl.SSLContext, not {verify!r}")
    if cert is not None:
        if isinstance(cert, str):
            config.load_cert_chain(cert)
        elif len(cert) == 2:
            config.load_cert_chain(cert[0], cert[1])
        elif len(cert) == 3:
            config.load_cert_chain(cert[0], cert[1], cert[2])
        else:
            raise TypeError("cert must be a path, (cert, key) or (cert, key, password)")
    return config


def configuration_for(
    template: QuicConfiguration, server_name: str, window: int
) -> QuicConfiguration:
    """A copy of the pool's template for one connection (SNI and the stream window)."""
    return dataclasses.replace(template, server_name=server_name, max_stream_data=window)


class _QuicConnection(QuicConnection):
    """aioquic's connection, with MAX_STREAM_DATA granted as the consumer reads.

    `stream_credit[stream_id](current)` returns the receive limit (an absolute stream offset) the
    HTTP/3 layer allows for that stream now; streams not registered keep aioquic's rule.
    """

    def __init__(self, *, configuration: QuicConfiguration) -> None:
        super().__init__(configuration=configuration)
        self._logger = _QuicLog(quic_logger, self._logger.extra)
        self.stream_credit: dict[int, Callable[[int], int]] = {}

    def _write_stream_limits(
        self, builder: QuicPacketBuilder, space: QuicPacketSpace, stream: QuicStream
    ) -> None:
        stream_id = stream.stream_id
        credit = None if stream_id is None else self.stream_credit.get(stream_id)
        if credit is None or stream_id is None:
            super()._write_stream_limits(builder, space, stream)
            return
        limit = credit(stream.max_stream_data_local)
        if limit > stream.max_stream_data_local:
            stream.max_stream_data_local = limit  # a limit never shrinks (RFC 9000 4.1)
        if stream.max_stream_data_local_sent != stream.max_stream_data_local:
            # What aioquic's own method writes, minus its growth rule and its qlog line.
            buf: Buffer = builder.start_frame(
                QuicFrameType.MAX_STREAM_DATA,
                capacity=_MAX_STREAM_DATA_FRAME_CAPACITY,
                handler=self._on_max_stream_data_delivery,
                handler_args=(stream,),
            )
            buf.push_uint_var(stream_id)
            buf.push_uint_var(stream.max_stream_data_local)
            stream.max_stream_data_local_sent = stream.max_stream_data_local


class _QuicLog(QuicConnectionAdapter):
    """aioquic's per-connection log lines, under `trioclient.quic` and at DEBUG: what it
    warns about (a handshake failure, a close) reaches the caller as an exception."""

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        super().log(logging.DEBUG, msg, *args, **kwargs)


# 1 byte frame type + two varints of at most 8 bytes (aioquic's own constant).
_MAX_STREAM_DATA_FRAME_CAPACITY = 1 + 8 + 8


class QuicDriver:
    """One QUIC connection and its UDP socket; see the module docstring."""

    def __init__(
        self,
        sock: DatagramSocket,
        configuration: QuicConfiguration,
        on_event: Callable[[QuicEvent], None],
        on_error: Callable[[Exception], None],
    ) -> None:
        self.sock = sock
        self.quic = _QuicConnection(configuration=configuration)
        self._on_event = on_event
        self._on_error = on_error  # a socket error (or an aioquic bug): the connection is lost
        self.closed = False
        self.last_received = trio.current_time()
        self.peer = sock.getpeername()
        self._pump_scope: trio.CancelScope | None = None  # the pumping task's wait
        self.extra_deadline: Callable[[], float] = lambda: math.inf  # PINGs (see _http3.py)
        self.on_extra_deadline: Callable[[float], None] = lambda now: None
        self.on_received: Callable[[], None] = lambda: None  # after a batch of datagrams

    def connect(self) -> None:
        """Start the handshake (queues the first datagrams and sends them)."""
        self.quic.connect(self.peer, now=trio.current_time())
        self.transmit()

    def transmit(self) -> None:
        """Send whatever aioquic queued, without waiting. Synchronous; never raises."""
        if self.closed:
            return
        now = trio.current_time()
        for data, _ in self.quic.datagrams_to_send(now=now):
            try:
                self.sock.send(data)
            except BlockingIOError:
                continue  # a lost datagram: QUIC's loss recovery resends what mattered
            except OSError as exc:
                self._on_error(exc)
                return
        scope = self._pump_scope
        if scope is not None:
            # New packets in flight move aioquic's timer (loss detection) sooner: let the
            # pumping task wake for it. Moving a deadline costs no task switch.
            wake_at = self._wake_at()
            if wake_at < scope.deadline:
                scope.deadline = wake_at

    def _wake_at(self) -> float:
        timer = self.quic.get_timer()
        extra = self.extra_deadline()
        return extra if timer is None or extra < timer else timer

    async def pump(self, deadline: float = math.inf) -> None:
        """Wait for datagrams or a timer (or `deadline`), then process and transmit."""
        quic = self.quic
        with trio.CancelScope(deadline=min(self._wake_at(), deadline)) as scope:
            self._pump_scope = scope
            try:
                await trio.lowlevel.wait_readable(self.sock)
            finally:
                self._pump_scope = None
        if self.closed:
            return
        now = trio.current_time()
        received = False
        for _ in range(BATCH):
            try:
                data = self.sock.recv(MAX_DATAGRAM)
            except BlockingIOError:
                break
            except OSError as exc:
                self._on_error(exc)
                return
            received = True
            quic.receive_datagram(data, self.peer, now=now)
        timer = quic.get_timer()
        if timer is not None and now >= timer:
            quic.handle_timer(now=now)
        if now >= self.extra_deadline():
            self.on_extra_deadline(now)
        self.process_events()
        if received:
            self.last_received = now
            self.on_received()
        self.transmit()

    def process_events(self) -> None:
        """Hand every event aioquic produced to the owner. Synchronous."""
        while (event := self.quic.next_event()) is not None:
            self._on_event(event)
            if self.closed:
                return

    # KI-protected, like HTTP/2's reader and writer: a KeyboardInterrupt is delivered to the
    # user's task at its next checkpoint, not raised in here (where the nursery would wrap it).
    @trio.lowlevel.enable_ki_protection
    async def run(self) -> None:
        """The connection's task in the client's nursery: pump until it is closed."""
        try:
            while not self.closed:
                await self.pump()
        except trio.ClosedResourceError:
            pass  # closed under us (close() notified the socket): nothing to report
        except Exception as exc:  # a socket error, or a bug: must not crash the client
            if not self.closed:
                self._on_error(exc)
        finally:
            self.close()

    def close(self) -> None:
        """Close the socket at once (wakes the pumping task). Synchronous, idempotent."""
        if self.closed:
            return
        self.closed = True
        sock = self.sock
        if sock.fileno() != -1:
            trio.lowlevel.notify_closing(sock)
            try:
                sock.close()
            except OSError:  # pragma: no cover - the descriptor is released all the same
                pass

    def send_close(self, error_code: int, reason: str) -> None:
        """Queue CONNECTION_CLOSE and send it once, best effort (no wait for the peer)."""
        if not self.closed:
            self.quic.close(error_code=error_code, reason_phrase=reason)
            self.transmit()
