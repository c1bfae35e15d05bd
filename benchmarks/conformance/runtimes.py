"""Trio and asyncio, behind the four operations a scenario needs.

A scenario is written once; what differs between event loops is how to run it, how to
sleep, how to run a request that the caller cancels when a flag is set (a Trio cancel scope;
``Task.cancel()`` on asyncio, each loop's own idiom), and how to run tasks side by side.

:func:`Runtime.request` never raises: it returns a record of what the request did
(``returned``, ``raised`` with the exception described, ``cancelled``) and whether it was
still running after its bound (``hang``: then the suite cancels it itself). The exception
object is kept under ``"_exc"`` for a scenario that must re-raise it.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

if sys.version_info < (3, 11):  # trio depends on the backport there
    from exceptiongroup import BaseExceptionGroup

Request = Callable[[], Awaitable[Any]]
Record = dict[str, Any]

POLL = 0.005  # how often a waiting task looks at a threading.Event


def class_name(cls: type) -> str:
    """``package.Name`` when the package exports the class under that name (what users
    write: ``trioclient.ReadError``, not ``trioclient._exceptions.ReadError``), else
    ``module.QualName``."""
    top = cls.__module__.split(".")[0]
    if getattr(sys.modules.get(top), cls.__qualname__, None) is cls:
        return f"{top}.{cls.__qualname__}"
    return f"{cls.__module__}.{cls.__qualname__}"


def describe(exc: BaseException | None) -> dict[str, Any] | None:
    """An exception as plain data: its class, message, group members and cause."""
    if exc is None:
        return None
    cls = type(exc)
    # A Cancelled's message names our own canceller task and its address: noise.
    message = "" if cls.__name__ == "Cancelled" else str(exc)[:300]
    out: dict[str, Any] = {"type": class_name(cls), "message": message}
    if isinstance(exc, BaseExceptionGroup):
        out["group"] = [describe(e) for e in exc.exceptions]
    cause = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
    if cause is not None and cause is not exc:
        out["cause"] = {"type": class_name(type(cause)), "message": str(cause)[:200]}
    return out


class Runtime:
    """What a scenario needs from its event loop."""

    name: str

    def run(self, main: Callable[[], Awaitable[None]]) -> None:
        raise NotImplementedError

    async def sleep(self, seconds: float) -> None:
        raise NotImplementedError

    async def wait_flag(self, flag: threading.Event, bound: float | None = None) -> bool:
        """Wait until `flag` is set (polled: works for any loop, from any thread's event);
        False if `bound` seconds passed first."""
        deadline = None if bound is None else time.monotonic() + bound
        while not flag.is_set():
            if deadline is not None and time.monotonic() > deadline:
                return False
            await self.sleep(POLL)
        return True

    async def request(
        self,
        fn: Request,
        *,
        bound: float,
        cancel_on: threading.Event | None = None,
        cancel_delay: float = 0.0,
    ) -> Record:
        """Run `fn`; cancel it `cancel_delay` s after `cancel_on` is set; see the module doc."""
        raise NotImplementedError

    async def together(self, fns: list[Callable[[], Awaitable[Any]]]) -> list[Any]:
        """Run `fns` side by side (none may raise); their results in order."""
        raise NotImplementedError


class TrioRuntime(Runtime):
    """Trio: a cancel scope around the request, a nursery for side-by-side tasks."""

    name = "trio"

    def run(self, main: Callable[[], Awaitable[None]]) -> None:
        import trio

        trio.run(main)

    async def sleep(self, seconds: float) -> None:
        import trio

        await trio.sleep(seconds)

    async def request(
        self,
        fn: Request,
        *,
        bound: float,
        cancel_on: threading.Event | None = None,
        cancel_delay: float = 0.0,
    ) -> Record:
        import trio

        rec: Record = {"hang": False}
        start = time.monotonic()

        async def cancel_when_flagged(scope: trio.CancelScope) -> None:
            assert cancel_on is not None
            await self.wait_flag(cancel_on)
            await trio.sleep(cancel_delay)
            rec["interrupted_after"] = round(time.monotonic() - start, 3)
            scope.cancel()

        guard = trio.move_on_after(bound)
        try:
            async with trio.open_nursery() as nursery:
                with guard:
                    with trio.CancelScope() as scope:
                        if cancel_on is not None:
                            nursery.start_soon(cancel_when_flagged, scope)
                        try:
                            rec["value"] = await fn()
                            rec["outcome"] = "returned"
                        except BaseException as exc:
                            rec["outcome"] = "raised"
                            rec["exception"] = describe(exc)
                            rec["_exc"] = exc
                            if isinstance(exc, (trio.Cancelled, BaseExceptionGroup)):
                                raise  # for the scope (or the guard) to catch, as it would
                            # Anything else is kept, not raised: raised from this nursery's
                            # body it would come out wrapped in an ExceptionGroup.
                    rec["caught_by_scope"] = scope.cancelled_caught
                nursery.cancel_scope.cancel()
        except BaseException as exc:
            # Not absorbed by the caller's scope: it would have gone on up to the caller.
            rec["escaped_scope"] = describe(exc)
        rec["hang"] = guard.cancelled_caught
        rec["seconds"] = round(time.monotonic() - start, 3)
        return rec

    async def together(self, fns: list[Callable[[], Awaitable[Any]]]) -> list[Any]:
        import trio

        results: list[Any] = [None] * len(fns)

        async def run_one(i: int) -> None:
            results[i] = await fns[i]()

        async with trio.open_nursery() as nursery:
            for i in range(len(fns)):
                nursery.start_soon(run_one, i)
        return results


class AsyncioRuntime(Runtime):
    """asyncio: the request in its own task, cancelled with ``Task.cancel()``."""

    name = "asyncio"

    def run(self, main: Callable[[], Awaitable[None]]) -> None:
        asyncio.run(main())  # type: ignore[arg-type]

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    async def request(
        self,
        fn: Request,
        *,
        bound: float,
        cancel_on: threading.Event | None = None,
        cancel_delay: float = 0.0,
    ) -> Record:
        rec: Record = {"hang": False}
        start = time.monotonic()
        task = asyncio.ensure_future(fn())

        async def cancel_when_flagged() -> None:
            assert cancel_on is not None
            await self.wait_flag(cancel_on)
            await asyncio.sleep(cancel_delay)
            rec["interrupted_after"] = round(time.monotonic() - start, 3)
            task.cancel()

        canceller = asyncio.ensure_future(cancel_when_flagged()) if cancel_on else None
        done, _ = await asyncio.wait({task}, timeout=bound)
        if not done:
            rec["hang"] = True
            task.cancel()
            done, _ = await asyncio.wait({task}, timeout=bound)
        if canceller is not None:
            canceller.cancel()
            await asyncio.wait({canceller})
        if not done:
            rec["outcome"] = "ignores cancellation"
        elif task.cancelled():
            rec["outcome"] = "cancelled"
            rec["exception"] = {"type": "asyncio.CancelledError", "message": ""}
        elif task.exception() is not None:
            exc = task.exception()
            rec["outcome"] = "raised"
            rec["exception"] = describe(exc)
            rec["_exc"] = exc
        else:
            rec["outcome"] = "returned"
            rec["value"] = task.result()
        rec["seconds"] = round(time.monotonic() - start, 3)
        return rec

    async def together(self, fns: list[Callable[[], Awaitable[Any]]]) -> list[Any]:
        return list(await asyncio.gather(*(fn() for fn in fns)))


RUNTIMES: dict[str, type[Runtime]] = {"trio": TrioRuntime, "asyncio": AsyncioRuntime}
