"""Fault injection at the socket level: count a scenario's socket operations, then break one.

Theory of operation
-------------------
:class:`FaultInjector` is a Trio socket factory. Installed with
``trio.socket.set_custom_socket_factory`` (chained in front of the previous factory, normally
the suite's socket-leak checker, which therefore still records every socket), it hands out
:class:`FaultSocket` objects: a ``trio.socket.SocketType`` that delegates everything to the real
Trio socket and numbers every awaited operation (``connect``, ``send``, ``recv``, ...) of the
run, across all the sockets it made. ``trio.SocketStream`` and ``trio.SSLStream`` sit on top
unchanged, so TLS handshakes count too. Accepted server-side sockets never pass through the
factory, so only the client's operations are counted.

A scenario is run once without a plan to count its operations, then once per position k and
kind of fault with an :class:`Injection` that fires at operation k (a run may also carry a
second injection, e.g. to break the retry that a first fault caused):

* ``cancel-before``: the caller's scope is cancelled as operation k starts (the operation
  raises ``Cancelled`` at its own checkpoint, before any I/O);
* ``cancel-after``: operation k completes, then the caller's scope is cancelled, so the
  ``Cancelled`` lands at whatever checkpoint comes next (between two operations, possibly in
  trioclient's pure checkpoints or in the caller's code);
* ``timeout``: operation k never completes; the injector jumps the ``MockClock`` to the
  effective deadline of the operation, which must be one of trioclient's own timeouts (an
  operation without a deadline is reported as a failure: a dead peer would hang it forever);
* ``stall``: like ``timeout`` but the clock is left alone (tests move it themselves);
* ``ki-before`` / ``ki-after``: ``KeyboardInterrupt`` is raised instead of / right after
  operation k;
* ``reset`` / ``eof`` / ``broken``: from operation k on, the socket behaves as if the peer had
  reset it (``ConnectionResetError``), closed it (reads return ``b""``, writes vanish) or as
  if the pipe were broken (``BrokenPipeError``); an operation another task has blocked on
  that socket at that moment (HTTP/2: the reader's ``recv`` while the writer's ``send``
  fails) is woken and fails the same way, as a real FIN or RST would wake it;
* ``cancel-at-step``: k counts *task steps* instead of socket operations. A Trio task runs in
  steps that each end at a schedule point; :class:`StepCanceller` (a Trio instrument) counts
  the steps of the scenario's tasks and cancels the caller's scope right after step k, so the
  cancellation lands on every checkpoint the scenario passes, not only on socket I/O: pool
  waits, ``checkpoint()`` calls in body iterators and context-manager exits, the caller's own
  awaits.

"The caller's scope" is the scope registered for the task doing operation k (or for its
nearest registered ancestor: Trio's Happy Eyeballs connects run in child tasks), defaulting
to the scope the runner puts around the whole scenario.

Every operation records the phase it belongs to, found by looking up the stack for
trioclient's frames (``open_stream``: connecting; ``HTTP11Connection._write`` / ``_read``:
writing / reading the head or body; ``HTTP2Connection._read_loop`` / ``_write_loop``:
``h2-read`` / ``h2-write``), together with what the documented retry rule needs:
whether the connection was reused, whether any response byte arrived, whether the request is
idempotent with a bytes body. The expected outcome of each injection is derived from that.

Rejected alternatives: wrapping ``trio.abc.Stream`` objects would need a hook inside
trioclient's connect code and would miss the TLS handshake's operations. Counting
checkpoints by patching ``trio.lowlevel.checkpoint`` would miss the checkpoints inside Trio's
own I/O; the instrument sees every step of every task without touching any code.

Fragile on purpose: the phase lookup reads trioclient's private frames (function names and the
``self``/``request``/``head`` locals). A rename there breaks these tests loudly, never
silently: a missing local or attribute raises a RuntimeError naming it, and a renamed
function leaves the operation's phase "other", which every counting run rejects
(``harness.require_phases``: each sweep must classify the phases it expects, none as
"other").
"""

from __future__ import annotations

import enum
import errno
import math
import os
import socket as stdlib_socket
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import trio
import trio.testing

import trioclient

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup

__all__ = [
    "CANCEL_KINDS",
    "IDEMPOTENT",
    "KI_KINDS",
    "PEER_KINDS",
    "SWEPT_KINDS",
    "FaultInjector",
    "FaultSocket",
    "Injection",
    "Kind",
    "Op",
    "StepCanceller",
    "flatten",
    "only_cancelled",
]

IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})


class Kind(enum.Enum):
    """What happens at the chosen operation."""

    CANCEL_BEFORE = "cancel-before"
    CANCEL_AFTER = "cancel-after"
    TIMEOUT = "timeout"
    KI_BEFORE = "ki-before"
    KI_AFTER = "ki-after"
    CANCEL_AT_STEP = "cancel-at-step"  # index counts task steps (checkpoints), not operations
    STALL = "stall"  # the operation never completes and the clock is left alone (not swept)
    RESET = "reset"
    EOF = "eof"
    BROKEN = "broken"


CANCEL_KINDS = frozenset({Kind.CANCEL_BEFORE, Kind.CANCEL_AFTER, Kind.CANCEL_AT_STEP})
SWEPT_KINDS = [kind for kind in Kind if kind is not Kind.STALL]
KI_KINDS = frozenset({Kind.KI_BEFORE, Kind.KI_AFTER})
PEER_KINDS = frozenset({Kind.RESET, Kind.EOF, Kind.BROKEN})


@dataclass(frozen=True)
class Injection:
    """Fire `kind` at operation number `index` (0-based, counted over the whole run).

    With `phase` set instead, fire at the first operation of that phase ("tcp-connect",
    "tls-handshake", "write", "read-head", "read-body").
    """

    kind: Kind
    index: int = -1
    phase: str | None = None


@dataclass
class Op:
    """One awaited socket operation, as the client performed it."""

    index: int
    socket: int  # 0 for the first socket the run opened
    name: str  # connect, send, recv, ...
    phase: str  # tcp-connect, tls-handshake, write, read-head, read-body, other
    reused: bool = False  # the HTTP connection had served a request before
    bytes_in: int = 0  # response bytes received in this request/response cycle
    method: str | None = None
    bytes_body: bool = False

    @property
    def retryable(self) -> bool:
        """The documented retry rule: idempotent, bytes body, reused, no response byte yet."""
        return (
            self.phase in ("write", "read-head")
            and self.reused
            and self.bytes_in == 0
            and self.method in IDEMPOTENT
            and self.bytes_body
        )

    def __str__(self) -> str:
        extra = " reused" if self.reused else ""
        return f"op {self.index} ({self.name} on socket {self.socket}, {self.phase}{extra})"


def _phase_of_stack(name: str, op: Op) -> None:
    """Fill in `op.phase` (and the retry facts) from trioclient's frames on the stack."""
    if name in ("connect", "bind"):
        op.phase = "tcp-connect"
        return
    frame = sys._getframe(2)
    while frame is not None:
        if frame.f_globals.get("__name__", "").startswith("trioclient."):
            code = frame.f_code.co_name
            if code == "open_stream":
                op.phase = "tls-handshake"
                return
            if code == "open_via_proxy":  # the CONNECT or SOCKS5 handshake, TLS inside
                op.phase = "proxy-handshake"
                return
            if code in ("_read_loop", "_write_loop"):  # an HTTP/2 connection's own tasks
                op.phase = "h2-read" if code == "_read_loop" else "h2-write"
                return
            if code in ("_write", "_read"):
                _retry_facts(frame, code, op)
                return
        frame = frame.f_back
    op.phase = "other"


def _retry_facts(frame: Any, code: str, op: Op) -> None:
    """The phase and retry facts from HTTP11Connection._read / _write's frame (its ``self``,
    ``request`` and ``head`` locals, the connection's ``reused`` and private ``_bytes_in``);
    one of them gone is a RuntimeError naming it, never a guess."""
    local = frame.f_locals
    try:
        http, request = local["self"], local["request"]
        op.phase = "write" if code == "_write" else "read-head"
        if code == "_read" and not local["head"]:
            op.phase = "read-body"
        op.reused = bool(http.reused)
        op.bytes_in = int(http._bytes_in)
        op.method = request.method
        op.bytes_body = isinstance(request.stream, bytes)
    except (KeyError, AttributeError) as exc:
        raise RuntimeError(
            f"faults.py reads {getattr(frame.f_code, 'co_qualname', code)}'s locals and "
            f"connection state, and {exc!r} is gone (trioclient {trioclient.__version__}): "
            "update _phase_of_stack"
        ) from exc


class FaultInjector(trio.abc.SocketFactory):
    """Makes :class:`FaultSocket` s through the previous factory and fires one injection."""

    def __init__(self, *plans: Injection, direct: bool = False) -> None:
        # `direct`: hand out the real Trio sockets (recorded, not wrapped), so trioclient takes
        # its direct-syscall path for plain sockets; only step injections work then.
        self.direct = direct
        self.plans = sorted(plans, key=lambda plan: plan.index)  # not fired yet
        self.fired: Op | None = None  # the operation (or step) of the last fault fired
        self.fired_plan: Injection | None = None
        self.interrupt: KeyboardInterrupt | None = None  # the very instance raised
        self.cancelled_scope: trio.CancelScope | None = None
        self.caller: trio.CancelScope | None = None
        self.task_scopes: dict[trio.lowlevel.Task, trio.CancelScope] = {}
        self.sockets: list[FaultSocket] = []
        self.ops: list[Op] = []
        self.fail_next_close: BaseException | None = None  # raised by the next close()
        self._previous: trio.abc.SocketFactory | None = None

    # -- the factory --------------------------------------------------------------------

    def socket(
        self,
        family: stdlib_socket.AddressFamily | int = stdlib_socket.AF_INET,
        type: stdlib_socket.SocketKind | int = stdlib_socket.SOCK_STREAM,
        proto: int = 0,
    ) -> trio.socket.SocketType:
        if self._previous is not None:
            inner = self._previous.socket(family, type, proto)
        else:
            inner = trio.socket.from_stdlib_socket(stdlib_socket.socket(family, type, proto))
        if self.direct:
            self.sockets.append(DirectSocket(inner))  # type: ignore[arg-type]
            return inner
        sock = FaultSocket(self, inner, len(self.sockets))
        self.sockets.append(sock)
        return sock

    @contextmanager
    def installed(self) -> Iterator[FaultInjector]:
        """Put this factory in front of the current one for the duration of the block."""
        self._previous = trio.socket.set_custom_socket_factory(self)
        try:
            yield self
        finally:
            trio.socket.set_custom_socket_factory(self._previous)

    # -- scopes -------------------------------------------------------------------------

    @contextmanager
    def request_scope(self) -> Iterator[trio.CancelScope]:
        """A cancel scope for the current task: cancel-kind injections in it cancel only it."""
        task = trio.lowlevel.current_task()
        with trio.CancelScope() as scope:
            self.task_scopes[task] = scope
            try:
                yield scope
            finally:
                del self.task_scopes[task]

    def scope_for(self, task: trio.lowlevel.Task | None) -> trio.CancelScope:
        """The registered scope of `task` or of its nearest ancestor; else the caller's."""
        while task is not None:
            scope = self.task_scopes.get(task)
            if scope is not None:
                return scope
            nursery = task.parent_nursery
            task = None if nursery is None else nursery.parent_task
        assert self.caller is not None, "the runner sets the caller's scope"
        return self.caller

    # -- what the sockets call ----------------------------------------------------------

    def due(self, index: int, *, step: bool, op: Op | None = None) -> Injection | None:
        """The plan for operation (or step) `index`, removed from the pending plans."""
        for plan in self.plans:
            if (plan.kind is Kind.CANCEL_AT_STEP) != step:
                continue
            if plan.index == index or (op is not None and plan.phase == op.phase):
                self.plans.remove(plan)
                self.fired_plan = plan
                return plan
        return None

    def disarm(self) -> None:
        """Fire nothing more (the harness's own checks need a healthy network)."""
        self.plans.clear()

    def _record(self, sock: FaultSocket, name: str) -> Op:
        op = Op(index=len(self.ops), socket=sock.number, name=name, phase="other")
        _phase_of_stack(name, op)
        self.ops.append(op)
        return op

    def _cancel_callers_scope(self, task: trio.lowlevel.Task | None = None) -> None:
        scope = self.scope_for(task or trio.lowlevel.current_task())
        self.cancelled_scope = scope
        scope.cancel()

    def _raise_interrupt(self) -> None:
        self.interrupt = KeyboardInterrupt()
        raise self.interrupt


class FaultSocket(trio.socket.SocketType):
    """A Trio socket that delegates to a real one and lets the injector break it."""

    def __init__(self, injector: FaultInjector, inner: trio.socket.SocketType, number: int) -> None:
        super().__init__()
        self._injector = injector
        self._inner = inner
        self.number = number
        self.dead: Kind | None = None  # set once a peer fault fired on this socket
        self._closed = trio.Event()
        self._waiting: set[trio.CancelScope] = set()  # operations blocked in the real socket

    # -- the awaited operations: counted ------------------------------------------------

    async def _op(self, name: str, call: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        injector = self._injector
        op = injector._record(self, name)
        if self.dead is not None:
            return await self._dead_op(name, args)
        plan = injector.due(op.index, step=False, op=op)
        if plan is None:
            return await self._live(name, call, args)
        injector.fired = op
        kind = plan.kind
        if kind is Kind.CANCEL_BEFORE:
            injector._cancel_callers_scope()
            return await call(*args)
        if kind is Kind.CANCEL_AFTER:
            result = await call(*args)
            injector._cancel_callers_scope()
            return result
        if kind is Kind.TIMEOUT:
            await self._hang(op, jump=True)
        if kind is Kind.STALL:
            await self._hang(op, jump=False)
        if kind is Kind.KI_BEFORE:
            injector._raise_interrupt()
        if kind is Kind.KI_AFTER:
            await call(*args)
            injector._raise_interrupt()
        self._die(kind)
        if name == "connect" and kind is Kind.EOF:
            return await call(*args)  # connected; the peer closes right after
        return await self._dead_op(name, args)

    async def _live(self, name: str, call: Callable[..., Awaitable[Any]], args: Any) -> Any:
        with trio.CancelScope() as scope:
            self._waiting.add(scope)
            try:
                return await call(*args)
            finally:
                self._waiting.discard(scope)
        # Another task's operation killed the socket while this one waited (HTTP/2: the
        # writer's send fails while the reader waits in recv). A real peer's FIN or RST
        # wakes a blocked recv too: fail it the same way.
        return await self._dead_op(name, args)

    def _die(self, kind: Kind) -> None:
        self.dead = kind
        for scope in self._waiting:
            scope.cancel()

    async def _dead_op(self, name: str, args: tuple[Any, ...]) -> Any:
        # Like a real trio socket operation that fails at once: a cancel point first.
        await trio.lowlevel.checkpoint_if_cancelled()
        if self.dead is Kind.RESET:
            raise ConnectionResetError(errno.ECONNRESET, os.strerror(errno.ECONNRESET))
        if self.dead is Kind.BROKEN:
            raise BrokenPipeError(errno.EPIPE, os.strerror(errno.EPIPE))
        await trio.lowlevel.cancel_shielded_checkpoint()
        if name == "recv":
            return b""
        if name == "recv_into":
            return 0
        if name == "send":
            return memoryview(args[0]).nbytes  # the closed peer's kernel drops it
        return None

    async def _hang(self, op: Op, *, jump: bool) -> None:
        if jump:
            deadline = trio.current_effective_deadline()
            if deadline == math.inf:
                raise AssertionError(f"{op} runs without any deadline: a silent peer hangs it")
            clock = trio.lowlevel.current_clock()
            assert isinstance(clock, trio.testing.MockClock), "timeout injection needs MockClock"
            clock.jump(max(0.0, deadline - trio.current_time()))
        await self._closed.wait()
        raise trio.ClosedResourceError("another task closed this socket")

    async def connect(self, address: Any) -> None:
        await self._op("connect", self._inner.connect, address)

    async def bind(self, address: Any) -> None:
        await self._op("bind", self._inner.bind, address)

    async def recv(self, buflen: int, flags: int = 0, /) -> bytes:  # type: ignore[override]
        data: bytes = await self._op("recv", self._inner.recv, buflen, flags)
        return data

    async def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:  # type: ignore[override]
        count: int = await self._op("recv_into", self._inner.recv_into, buffer, nbytes, flags)
        return count

    async def send(self, data: Any, flags: int = 0, /) -> int:  # type: ignore[override]
        count: int = await self._op("send", self._inner.send, data, flags)
        return count

    async def wait_writable(self) -> None:
        await self._op("wait_writable", self._inner.wait_writable)

    async def accept(self) -> Any:
        return await self._inner.accept()

    # -- everything else: plain delegation ----------------------------------------------

    def close(self) -> None:
        self._closed.set()
        self._inner.close()
        error, self._injector.fail_next_close = self._injector.fail_next_close, None
        if error is not None:
            raise error  # like socket.close() when close(2) fails: the fd is gone anyway

    @property
    def is_closed(self) -> bool:
        return self._inner.fileno() == -1

    def detach(self) -> int:
        return self._inner.detach()

    def fileno(self) -> int:
        return self._inner.fileno()

    def getpeername(self) -> Any:
        return self._inner.getpeername()

    def getsockname(self) -> Any:
        return self._inner.getsockname()

    def getsockopt(self, *args: Any) -> Any:
        return self._inner.getsockopt(*args)

    def setsockopt(self, *args: Any) -> None:
        self._inner.setsockopt(*args)

    def listen(self, *args: Any) -> None:
        self._inner.listen(*args)

    def get_inheritable(self) -> bool:
        return self._inner.get_inheritable()

    def set_inheritable(self, inheritable: bool) -> None:
        self._inner.set_inheritable(inheritable)

    def shutdown(self, flag: int) -> None:
        self._inner.shutdown(flag)

    def is_readable(self) -> bool:
        return self._inner.is_readable()

    def dup(self) -> trio.socket.SocketType:
        return self._inner.dup()

    @property
    def family(self) -> Any:
        return self._inner.family

    @property
    def type(self) -> Any:
        return self._inner.type

    @property
    def proto(self) -> int:
        return self._inner.proto

    @property
    def did_shutdown_SHUT_WR(self) -> bool:
        return self._inner.did_shutdown_SHUT_WR

    def __repr__(self) -> str:
        return f"<FaultSocket #{self.number} dead={self.dead} {self._inner!r}>"


def _innermost_trioclient_function(task: trio.lowlevel.Task) -> str:
    """Where a suspended task waits, by the innermost trioclient function on its await chain."""
    found = "caller's code"
    awaitable: Any = task.coro
    while awaitable is not None:
        frame = getattr(awaitable, "cr_frame", None) or getattr(awaitable, "gi_frame", None)
        if frame is not None and frame.f_globals.get("__name__", "").startswith("trioclient."):
            found = frame.f_code.co_name
        awaitable = getattr(awaitable, "cr_await", None) or getattr(awaitable, "gi_yieldfrom", None)
    return found


class StepCanceller(trio.abc.Instrument):
    """Counts the steps of the scenario's tasks; cancels the caller's scope after step k.

    A task step ends at a schedule point. If the task is now blocked at a cancel point
    (I/O, a pool wait, ``checkpoint()``), the cancellation is delivered right there;
    otherwise (a schedule-only point) at its next cancel point. The scenario's tasks are the
    task running it and every task started below it while it runs (``active``), except the
    tasks of ``excluded`` nurseries (the client's housekeeping is not the scenario's work).
    """

    def __init__(self, injector: FaultInjector, root: trio.lowlevel.Task) -> None:
        self.injector = injector
        self.root = root
        self.active = False
        self.excluded: set[trio.Nursery] = set()  # e.g. the client's own nursery
        self.steps = 0
        self.fired_step: int | None = None

    def _in_scenario(self, task: trio.lowlevel.Task) -> bool:
        current: trio.lowlevel.Task | None = task
        while current is not None:
            if current is self.root:
                return True
            nursery = current.parent_nursery
            if nursery is not None and nursery in self.excluded:
                return False
            current = None if nursery is None else nursery.parent_task
        return False

    def after_task_step(self, task: trio.lowlevel.Task) -> None:
        if not self.active or not self._in_scenario(task):
            return
        step = self.steps
        self.steps += 1
        if self.injector.due(step, step=True) is not None:
            self.fired_step = step
            where = _innermost_trioclient_function(task)
            self.injector.fired = Op(index=step, socket=-1, name="step", phase=f"at {where}")
            self.injector._cancel_callers_scope(task)


def flatten(exc: BaseException | None) -> list[BaseException]:
    """The leaves of an exception group (or [exc])."""
    if exc is None:
        return []
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for sub in exc.exceptions for leaf in flatten(sub)]
    return [exc]


def only_cancelled(exc: BaseException) -> bool:
    """True for trio.Cancelled, or a group of nothing but Cancelled."""
    leaves = flatten(exc)
    return bool(leaves) and all(isinstance(leaf, trio.Cancelled) for leaf in leaves)


class DirectSocket:
    """The record of a real socket handed out by a `direct` injector (no faults, no ops)."""

    dead: Kind | None = None

    def __init__(self, inner: trio.socket.SocketType) -> None:
        self._inner = inner

    @property
    def is_closed(self) -> bool:
        return self._inner.fileno() == -1

    def __eq__(self, other: object) -> bool:
        return other is self._inner or other is self

    def __hash__(self) -> int:
        return hash(self._inner)

    def __repr__(self) -> str:
        return f"<DirectSocket {self._inner!r}>"
