"""Bounded fan-out: fetch many requests with N workers, results as they complete.

Theory of operation
-------------------
``async with fetch_all(client, requests) as results: async for result in results:``.
Entering opens a nursery holding one runner task; the runner owns a cancel scope (the
*work scope*) around an inner nursery with a feeder and `workers` workers:

    source --feeder--> work channel (capacity 0) --workers--> results channel --> you

The feeder pulls the next request from the source only when a worker is free to take it,
and a worker sends its result into a channel of capacity `buffer`, so memory is bounded
by backpressure: at most `workers` requests in flight, `workers` results waiting to be
sent, `buffer` results waiting to be read, one request pulled and not yet handed over.
A slow consumer slows the fetching; an endless source is fine.

The body of the `async with` is never a generator frame of ours: results come out of a
channel, so Trio's "yield inside a nursery in an async generator" trap cannot happen
here (and a `yield` inside the block is caught: see `_wrong_task_message`).

Every request pulled from the source ends in exactly one place, whatever stops the
fan-out (the source running out, `results.stop()`, leaving the block early, an outer
cancellation, an error in the source):

* delivered by the iteration;
* `results.undelivered` (fetched, but the block was left before it was read);
* `results.unfetched` (pulled, but its fetch never finished: still queued, or cancelled
  part-way). Requests never pulled are still in your source.

Stopping is prompt: `stop()` cancels the work scope (fetches in flight are cancelled,
their connections closed); the results already fetched are still delivered, then the
iteration ends. Leaving the block does the same without the delivery.

Errors: a failed fetch is a result (`FetchResult.error`), never an exception. An
exception from the source itself (or a request of the wrong type) stops the fan-out and
is raised from the iteration, unwrapped, in the consumer's task: the workers never raise
into the nursery, so the block's body is never cancelled by one of ours.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from enum import Enum
from types import TracebackType
from typing import TYPE_CHECKING, Union

import trio

from .._config import describe
from .._exceptions import ClientStateError
from .._request import Request
from .._urls import URL
from ._fetch import FetchLimits, FetchResult
from ._polite import Politeness

if TYPE_CHECKING:
    from .._client import Client

__all__ = ["FetchAllStatistics", "FetchRequest", "FetchResults", "fetch_all"]

#: What a source yields: a URL (str or trioclient.URL) or a built trioclient.Request.
FetchRequest = Union[str, URL, Request]  # noqa: UP007 (a runtime alias)


class _State(Enum):
    OPENED = "opened"  # inside the `async with` block
    CLOSED = "closed"  # the block has ended: unfetched/undelivered are final


class FetchResults:
    """The receive side of `fetch_all`: iterate it inside the block for each
    `FetchResult`, in completion order.

    `stop()` ends the fan-out early (results already fetched are still delivered). After
    the block, `unfetched` lists the requests pulled from the source but never fetched,
    and `undelivered` the results fetched but not read before the block was left.
    """

    def __init__(self, receive: trio.MemoryReceiveChannel[FetchResult], runner: _Runner) -> None:
        self._receive = receive
        self._runner = runner
        self._late: list[FetchResult] = []  # results the runner collected after a stop
        self._state = _State.OPENED  # made by __aenter__, inside the block
        self._unfetched: list[FetchRequest] = []
        self._undelivered: list[FetchResult] = []

    def __aiter__(self) -> FetchResults:
        if self._state is not _State.OPENED:
            raise ClientStateError(_iterate_message())
        return self

    async def __anext__(self) -> FetchResult:
        if self._state is not _State.OPENED:
            raise ClientStateError(_iterate_message())
        try:
            return await self._receive.receive()
        except trio.EndOfChannel:
            pass
        if self._late:
            await trio.lowlevel.checkpoint()
            return self._late.pop(0)
        error = self._runner.error
        if error is not None:
            self._runner.error = None  # raised once
            raise error
        raise StopAsyncIteration

    async def receive(self) -> FetchResult:
        """The next result (like `trio.MemoryReceiveChannel.receive`); raises
        `trio.EndOfChannel` once every result was delivered."""
        try:
            return await self.__anext__()
        except StopAsyncIteration:
            raise trio.EndOfChannel from None

    def stop(self) -> None:
        """Stop fetching now: nothing more is taken from the source, fetches in flight are
        cancelled (listed in `unfetched` after the block); results already fetched are
        still delivered by the iteration, which then ends."""
        self._runner.stop()

    @property
    def unfetched(self) -> list[FetchRequest]:
        """Requests pulled from the source whose fetch never finished (known after the
        block)."""
        if self._state is not _State.CLOSED:
            raise ClientStateError(_not_yet_message("unfetched"))
        return self._unfetched

    @property
    def undelivered(self) -> list[FetchResult]:
        """Results fetched but not read before the block ended (known after the block)."""
        if self._state is not _State.CLOSED:
            raise ClientStateError(_not_yet_message("undelivered"))
        return self._undelivered

    def statistics(self) -> FetchAllStatistics:
        """A snapshot of the fan-out's counts (for a progress display)."""
        runner = self._runner
        return FetchAllStatistics(
            pulled=runner.pulled,
            fetching=len(runner.fetching),
            fetched=runner.fetched,
            buffered=(
                self._receive.statistics().current_buffer_used
                + len(runner.holding)
                + len(self._late)
            ),
        )

    def __repr__(self) -> str:
        stats = self.statistics()
        return (
            f"<FetchResults [{self._state.value}] pulled={stats.pulled} "
            f"fetching={stats.fetching} fetched={stats.fetched}>"
        )


@dataclass(frozen=True, slots=True)
class FetchAllStatistics:
    """Counts of a `fetch_all` so far: requests `pulled` from the source, `fetching` now,
    `fetched` (results produced), of which `buffered` wait to be read (in the channel,
    or held by a worker until the channel has room)."""

    pulled: int
    fetching: int
    fetched: int
    buffered: int


def _iterate_message() -> str:
    return (
        "Cannot iterate fetch_all() results after its `async with` block has ended: "
        "iterate them inside the block; after it, read results.undelivered (fetched "
        "but not read) and results.unfetched (never fetched)."
    )


def _not_yet_message(what: str) -> str:
    return (
        f"Cannot read results.{what} before the `async with fetch_all(...)` block has "
        "ended: it is only known once nothing is fetching any more."
    )


class _Runner:
    """The feeder and the workers, in the work scope; records what each one holds so
    that every pulled request is accounted for when the work stops."""

    def __init__(
        self,
        client: Client,
        source: Iterable[FetchRequest] | AsyncIterable[FetchRequest],
        workers: int,
        politeness: Politeness,
        limits: FetchLimits,
    ) -> None:
        self.client = client
        self.source = source
        self.workers = workers
        self.politeness = politeness
        self.limits = limits
        self.send: trio.MemorySendChannel[FetchResult] | None = None  # set on entry
        self.scope = trio.CancelScope()
        self.error: BaseException | None = None
        self.pulled = 0
        self.fetched = 0
        self.feeding: FetchRequest | None = None  # pulled, not yet handed to a worker
        self.has_feeding = False
        self.fetching: dict[int, FetchRequest] = {}  # worker -> its request in flight
        self.holding: dict[int, FetchResult] = {}  # worker -> its result not yet sent
        self.results: FetchResults | None = None

    def stop(self) -> None:
        self.scope.cancel()

    def fail(self, error: BaseException) -> None:
        if self.error is None:
            self.error = error
        self.scope.cancel()

    async def run(self) -> None:
        work_send, work_receive = trio.open_memory_channel[FetchRequest](0)
        send, results = self.send, self.results
        assert send is not None
        assert results is not None
        try:
            with self.scope:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._feed, work_send)
                    for index in range(self.workers):
                        nursery.start_soon(self._work, index, work_receive.clone(), send.clone())
                    work_receive.close()
        finally:
            # Everything has stopped: results held by a worker cancelled while sending go
            # to the end of the iteration; then the channel ends.
            results._late.extend(self.holding.values())
            self.holding.clear()
            send.close()

    async def _feed(self, work_send: trio.MemorySendChannel[FetchRequest]) -> None:
        async with work_send:
            try:
                if isinstance(self.source, AsyncIterable):
                    iterator = aiter(self.source)
                    try:
                        while True:
                            try:
                                request = await anext(iterator)
                            except StopAsyncIteration:
                                return
                            await self._hand(work_send, request)
                    finally:
                        await _close_abandoned(iterator)
                else:
                    sync_iterator: Iterator[FetchRequest] = iter(self.source)
                    for request in sync_iterator:
                        await self._hand(work_send, request)
            except Exception as exc:  # the source's own error: raised to the consumer
                self.fail(exc)

    async def _hand(self, work_send: trio.MemorySendChannel[FetchRequest], request: object) -> None:
        if not isinstance(request, (str, URL, Request)):
            raise TypeError(
                f"fetch_all() sources must yield URLs (str or trioclient.URL) or "
                f"trioclient.Requests, not {describe(request)}"
            )
        self.pulled += 1
        self.feeding, self.has_feeding = request, True
        await work_send.send(request)  # returns once a worker has it (capacity 0)
        self.feeding, self.has_feeding = None, False

    async def _work(
        self,
        index: int,
        work_receive: trio.MemoryReceiveChannel[FetchRequest],
        send: trio.MemorySendChannel[FetchResult],
    ) -> None:
        async with work_receive, send:
            async for request in work_receive:
                self.fetching[index] = request
                try:
                    result = await self.politeness.fetch(self.client, request, limits=self.limits)
                except Exception as exc:  # not a fetch failure: a closed client, a bug
                    self.fail(exc)
                    return
                del self.fetching[index]
                self.fetched += 1
                self.holding[index] = result
                await send.send(result)
                del self.holding[index]

    def leftovers(self) -> list[FetchRequest]:
        unfetched = list(self.fetching.values())
        if self.has_feeding:
            unfetched.append(self.feeding)  # type: ignore[arg-type]
        return unfetched


async def _close_abandoned(iterator: AsyncIterator[FetchRequest]) -> None:
    """Close a source iterator we stopped reading (an async generator's `finally` runs
    now, under an expired shield so that it cannot block)."""
    aclose = getattr(iterator, "aclose", None)
    if aclose is None:
        return
    with trio.CancelScope(shield=True, deadline=-math.inf):
        await aclose()


class _FetchAll:
    """The async context manager `fetch_all` returns (single use)."""

    def __init__(self, runner: _Runner, buffer: int) -> None:
        self._runner = runner
        self._buffer = buffer
        self._results: FetchResults | None = None
        self._manager: AbstractAsyncContextManager[trio.Nursery] | None = None
        self._nursery: trio.Nursery | None = None
        self._owner: trio.lowlevel.Task | None = None

    async def __aenter__(self) -> FetchResults:
        if self._results is not None:
            raise ClientStateError("A fetch_all() is single use: call fetch_all() again.")
        send, receive = trio.open_memory_channel[FetchResult](self._buffer)
        runner = self._runner
        runner.send = send
        results = self._results = runner.results = FetchResults(receive, runner)
        manager = trio.open_nursery()
        nursery = await manager.__aenter__()
        self._manager, self._nursery = manager, nursery
        self._owner = trio.lowlevel.current_task()
        nursery.start_soon(runner.run)
        return results

    @trio.lowlevel.enable_ki_protection
    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        manager, nursery, results = self._manager, self._nursery, self._results
        if manager is None or nursery is None or results is None:
            raise ClientStateError("This fetch_all() was not entered with `async with`.")
        task = trio.lowlevel.current_task()
        if task is not self._owner:
            self._runner.stop()
            nursery.cancel_scope.cancel()
            raise ClientStateError(_wrong_task_message(self._owner, task))
        self._manager = self._nursery = None
        # Leaving the block stops the fan-out (whether or not the results were all read).
        # Shielded, like Client: an outer cancellation must not turn our own children's
        # Cancelled into an ExceptionGroup leaving this method.
        self._runner.stop()
        nursery.cancel_scope.shield = True
        nursery.cancel_scope.cancel()
        try:
            await manager.__aexit__(None, None, None)
        finally:
            results._state = _State.CLOSED
            results._unfetched = self._runner.leftovers()
            undelivered = results._undelivered
            while True:
                try:
                    undelivered.append(results._receive.receive_nowait())
                except (trio.WouldBlock, trio.EndOfChannel):
                    break
            undelivered.extend(results._late)
            results._late.clear()
            results._receive.close()
        error = self._runner.error
        if error is not None and exc is None:
            self._runner.error = None
            raise error


def _wrong_task_message(owner: trio.lowlevel.Task | None, task: trio.lowlevel.Task) -> str:
    return (
        f"This fetch_all() was entered in task {owner.name if owner else '?'!r} but is being"
        f" exited in task {task.name!r}; its fetches are now cancelled. Its `async with` must"
        " begin and end in the same task: this usually means a `yield` inside the block of"
        " an async generator. Iterate the results where you entered it, or hand them on"
        " through a channel (trio.as_safe_channel) instead of yielding them."
    )


def fetch_all(
    client: Client,
    requests: Iterable[FetchRequest] | AsyncIterable[FetchRequest],
    *,
    workers: int = 10,
    politeness: Politeness | None = None,
    limits: FetchLimits = FetchLimits(),  # noqa: B008 (immutable)
    buffer: int = 0,
) -> _FetchAll:
    """Fetch `requests` with `workers` tasks; `async with` it and iterate the results.

    Args:
        client: an entered `trioclient.Client`.
        requests: URLs (str or `trioclient.URL`) or `trioclient.Request`s, from an
            iterable or an async iterable; pulled only as workers free up, so it may be
            endless.
        workers: fetches at once.
        politeness: per-host rules (a `Politeness`, shared with any other fan-out of the
            same crawl). None: no robots.txt, rate or per-host cap, the client's retries.
        limits: what each fetch may cost (`FetchLimits`).
        buffer: results fetched ahead of the consumer (0: a worker waits for you).

    ```python
    async with fetch_all(client, urls, workers=20) as results:
        async for result in results:
            print(result.status, result.url)
    print("never fetched:", results.unfetched)
    ```
    """
    if isinstance(workers, bool) or not isinstance(workers, int):
        raise TypeError(f"fetch_all() workers must be an int >= 1, not {describe(workers)}")
    if workers < 1:
        raise ValueError(f"fetch_all() workers must be an int >= 1, not {workers}")
    if isinstance(buffer, bool) or not isinstance(buffer, int):
        raise TypeError(f"fetch_all() buffer must be an int >= 0, not {describe(buffer)}")
    if buffer < 0:
        raise ValueError(f"fetch_all() buffer must be an int >= 0, not {buffer}")
    if not isinstance(limits, FetchLimits):
        raise TypeError(f"fetch_all() limits must be a FetchLimits, not {describe(limits)}")
    if isinstance(requests, (str, bytes, URL, Request)) or not isinstance(
        requests, (Iterable, AsyncIterable)
    ):
        raise TypeError(
            "fetch_all() requests must be an iterable or async iterable of URLs or "
            f"Requests, not {describe(requests)}"
        )
    if politeness is None:
        politeness = Politeness(per_host=workers, rate=None, robots=False, retry=client.retries)
    elif not isinstance(politeness, Politeness):
        raise TypeError(
            f"fetch_all() politeness must be a Politeness or None, not {describe(politeness)}"
        )
    runner = _Runner(client, requests, workers, politeness, limits)
    return _FetchAll(runner, buffer)
