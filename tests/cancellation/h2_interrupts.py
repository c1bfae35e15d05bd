"""Interruptions for the HTTP/2 harness: the victim's step counter (cancel or Ctrl-C after
step k) and Ctrl-C delivered the way Trio's SIGINT handler does. See h2_driver.py.

Delivering a KeyboardInterrupt to a blocked task the way Trio does needs Trio's private
``Task._abort_func`` (is it blocked at a cancel point?) and ``Task._attempt_abort`` (the call
Trio makes for a pending KeyboardInterrupt); no public API does it. Both are read through
:func:`harness.internal`: gone, the sweep fails with a RuntimeError naming them."""

from __future__ import annotations

from functools import partial
from typing import Any, NoReturn

import trio
import trio.testing
from faults import FaultInjector
from h2_scenario import H2_TIMEOUT, Mux, Req, ServerRecord, _describe
from harness import HarnessFailure, internal
from servers.h2_raw import HandlerFactory, serve_h2

import trioclient

_ABORT = "Trio's delivery of a pending KeyboardInterrupt"

# --- the victim's steps -------------------------------------------------------------------


def where_is(task: trio.lowlevel.Task) -> str:
    """Where a suspended task waits: its innermost trioclient function (async generators
    included), or "caller's code"."""
    found = "caller's code"
    for frame, _ in task.iter_await_frames():
        if frame.f_globals.get("__name__", "").startswith("trioclient."):
            code = frame.f_code
            found = getattr(code, "co_qualname", code.co_name)
    return found


class VictimSteps(trio.abc.Instrument):
    """Counts steps while the victim's request runs (``active``) and, after step ``index``,
    cancels the victim's scope (``cancel-*``) or delivers a KeyboardInterrupt to the victim
    (``ki-*``) the way Trio delivers a pending one to the main task: at once if it is blocked
    at a cancel point, else at the next cancel point it blocks at.

    ``*-at-step`` counts the victim's own steps (and those of tasks it starts, e.g. Happy
    Eyeballs attempts): every checkpoint of its request. ``*-at-any-step`` counts the steps
    of every task of the run (siblings, the connection's reader and writer, the server):
    the fault reaches the victim wherever it is at that moment of the multiplexed exchange,
    e.g. woken with data buffered but not yet read.
    """

    def __init__(self, kind: str | None, index: int) -> None:
        self.kind = kind
        self.index = index
        self.anywhere = kind is not None and kind.endswith("-at-any-step")
        self.victim: trio.lowlevel.Task | None = None
        self.scope: trio.CancelScope | None = None
        self.excluded: set[trio.Nursery] = set()  # tasks in these are not the victim's
        self.active = False
        self.steps = 0  # the victim's own
        self.all_steps = 0  # every task's, below the victim's task
        self.fired: str | None = None
        self.ki_pending = False
        self.interrupt: KeyboardInterrupt | None = None
        self.labels: list[str] = []  # where the victim was after each own step (counting run)

    def start(self, scope: trio.CancelScope) -> None:
        self.victim = trio.lowlevel.current_task()
        self.scope = scope
        self.active = True

    def _below_victim(self, task: trio.lowlevel.Task, excluded: set[trio.Nursery]) -> bool:
        current: trio.lowlevel.Task | None = task
        while current is not None:
            if current is self.victim:
                return True
            nursery = current.parent_nursery
            if nursery is None or nursery in excluded:
                return False
            current = nursery.parent_task
        return False

    def after_task_step(self, task: trio.lowlevel.Task) -> None:
        # The victim's task is the task of the whole run: the server's, the client's and the
        # siblings' nurseries are below it (and excluded from its own steps).
        if not self.active or not self._below_victim(task, set()):
            return
        target = None
        if self._below_victim(task, self.excluded):
            if self.index < 0:  # a counting run
                assert self.victim is not None
                self.labels.append(where_is(self.victim))
            if not self.anywhere:
                target = self.steps
            self.steps += 1
        if self.anywhere:
            target = self.all_steps
        self.all_steps += 1
        if target == self.index and self.kind is not None and "-at-" in self.kind:
            assert self.victim is not None
            assert self.scope is not None
            self.fired = where_is(self.victim)
            if self.kind.startswith("cancel"):
                self.scope.cancel()
            else:
                self.ki_pending = True
        if self.ki_pending:
            self._deliver_ki()

    def _deliver_ki(self) -> None:
        victim = self.victim
        assert victim is not None
        if internal(victim, "_abort_func", _ABORT) is None:  # runnable: at its next cancel point
            return
        self.ki_pending = False
        interrupt = self.interrupt = KeyboardInterrupt()

        def raise_interrupt() -> NoReturn:
            raise interrupt

        internal(victim, "_attempt_abort", _ABORT)(raise_interrupt)  # what Trio does for main


class SigintAtOp(FaultInjector):
    """Ctrl-C while socket operation ``index`` runs, in whichever task runs it.

    Trio's SIGINT handler raises KeyboardInterrupt in the frame that happens to be running,
    in any task, unless that code is KI-protected; then the interrupt is pending for the
    main task and delivered at its next cancel point. This does the same at operation
    ``index`` (whose task may be a request, or an HTTP/2 connection's reader or writer):
    raise it right there if ``trio.lowlevel.currently_ki_protected()`` is false, else deliver
    it to ``main`` (also an instrument) as Trio would.
    """

    def __init__(self, index: int, main: trio.lowlevel.Task) -> None:
        super().__init__()
        self.index = index
        self.main = main
        self.interrupt: KeyboardInterrupt | None = None
        self.landed: str | None = None  # where it was raised: a task name, or "main task"
        self.pending = False

    def _record(self, sock: Any, name: str) -> Any:
        op = super()._record(sock, name)
        if op.index == self.index:
            self.fired = op
            self.interrupt = KeyboardInterrupt()
            if not trio.lowlevel.currently_ki_protected():
                task = trio.lowlevel.current_task()
                self.landed = "main task" if task is self.main else task.name.rsplit(".", 1)[-1]
                raise self.interrupt
            self.pending = True
            self._deliver()
        return op

    def _deliver(self) -> None:
        if self.pending and internal(self.main, "_abort_func", _ABORT) is not None:
            self.pending = False
            self.landed = "pending, then main task"
            interrupt = self.interrupt

            def raise_interrupt() -> NoReturn:
                assert interrupt is not None
                raise interrupt

            internal(self.main, "_attempt_abort", _ABORT)(raise_interrupt)


class _Deliverer(trio.abc.Instrument):
    def __init__(self, injector: SigintAtOp) -> None:
        self.injector = injector

    def after_task_step(self, task: trio.lowlevel.Task) -> None:
        self.injector._deliver()


async def run_sigint(index: int, req: Req) -> tuple[str | None, str | None]:
    """One request over h2c (the main task waits, the connection's reader and writer work)
    with Ctrl-C at socket operation ``index``. The KeyboardInterrupt must leave
    ``async with Client()`` bare, whichever task it landed in; the sockets must be closed.
    Returns (where it landed, the phase of the operation), or (None, None) if not reached."""
    injector = SigintAtOp(index, trio.lowlevel.current_task())
    deliverer = _Deliverer(injector)
    factory = HandlerFactory(partial(Mux, ServerRecord(goaway_after=None), None))
    escaped: BaseException | None = None
    async with trio.open_nursery() as server_nursery:
        url = await serve_h2(server_nursery, factory)
        trio.lowlevel.add_instrument(deliverer)
        try:
            with injector.installed():
                async with trioclient.Client(http1=False, http2=True, timeout=H2_TIMEOUT) as c:
                    response = await c.request(req.method, url + req.path, content=req.content)
                    if response.content != req.expected:
                        escaped = HarnessFailure(f"body: {_describe(response.content, b'')}")
                    await trio.testing.wait_all_tasks_blocked()  # a late interrupt lands here
        except BaseException as exc:
            escaped = exc
        finally:
            trio.lowlevel.remove_instrument(deliverer)
            server_nursery.cancel_scope.cancel()
    where = f"Ctrl-C at {injector.fired} (landed in {injector.landed})"
    if injector.fired is None:
        if escaped is not None:
            raise HarnessFailure(f"no interrupt, yet the client raised {escaped!r}") from escaped
        return None, None
    if escaped is not injector.interrupt:
        raise HarnessFailure(f"{where}: left the client as {escaped!r}, not bare") from escaped
    still_open = [sock for sock in injector.sockets if not sock.is_closed]
    if still_open:
        raise HarnessFailure(f"{where}: sockets open after the client closed: {still_open}")
    return injector.landed, injector.fired.phase
