"""The send pipeline around the transport: auth rounds, redirect hops, retries, one request.

Theory of operation
-------------------
`Client.send` computes the request's deadlines once (the total timeout spans every hop,
round and retry) and runs nested loops, each a plain method here so that the order is
visible:

    auth flow  ->  redirect hops  ->  retries  ->  one request through its transport

Auth wraps redirects (not the reverse) so that credentials an auth flow adds are never
re-added to a redirect that leaves the origin. Retries wrap the single-request step, so
that whatever observes that step (event hooks, logs) sees every attempt; without retries
the redirect loop calls the step directly. The retry policy's decisions are pure
(`_retry.py`); the loop here only sends, waits, drains and closes. One `RetryBudget` per
send is shared by its hops and rounds. Cookies and event hooks join this pipeline too, not
the transport: they are about requests, not connections.

Every response that a loop does not hand back is closed synchronously before the loop goes
on or raises, so no connection is ever held by a response nobody can reach.
"""

from __future__ import annotations

import datetime
import random
import sys
import time
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING

import trio

from ._auth import Auth, AuthTypes
from ._config import USE_CLIENT_DEFAULT, Deadlines, UseClientDefault
from ._content import is_replayable
from ._cookies import Cookies, apply_cookies, extract_into, has_cookies
from ._exceptions import (
    RemoteProtocolError,
    RequestError,
    StreamConsumed,
    TooManyRedirects,
    UnsupportedProtocol,
)
from ._hooks import EventHooks, run_hooks
from ._logs import INFO, log_request, logger, redact_url
from ._redirects import redirect_request
from ._request import Request
from ._response import Response
from ._retry import Retry, RetryAttempt
from ._transport._base import Transport
from ._transport._mounts import Mounts

if TYPE_CHECKING:
    from ._client import Client

__all__ = ["RetryBudget", "SendPipeline", "StreamContext"]


# A retried response's body is read (so its HTTP/1.1 connection can be reused) while the
# retry waits, up to this many bytes and for at least DRAIN_GRACE seconds; then it is closed.
# So is the body of a response an auth flow answers with another round (a 401 challenge).
DRAIN_LIMIT = 65536
DRAIN_GRACE = 0.5


class RetryBudget:
    """The retries one send may still make: `Retry` is immutable, and each retry replaces
    it with the next policy. One per send, so redirect hops and auth rounds share it."""

    __slots__ = ("retry",)

    def __init__(self, retry: Retry) -> None:
        self.retry = retry


class SendPipeline:
    """The loops of `Client.send`; `Client` inherits them (and sets these attributes)."""

    _transport: Transport
    _mounts: Mounts
    _cookies: Cookies
    _event_hooks: EventHooks
    max_redirects: int
    default_encoding: str | Callable[[bytes], str | None]

    async def _send_handling_auth(
        self,
        request: Request,
        auth: Auth,
        follow: bool,
        deadlines: Deadlines,
        budget: RetryBudget | None,
    ) -> Response:
        """Run the auth flow; each request it yields is sent with redirect handling.

        Auth wraps the redirect loop (not the reverse) so that credentials an auth flow adds
        are never re-added to a redirect that leaves the origin.
        """
        if auth.requires_request_body:
            # The flow reads `request.content` (to sign it, say), and each round may send
            # the body again: a streamed body is read into memory first. Unbounded by
            # design: the caller chose both the stream and an auth that needs it whole.
            await request.aread()
        flow = auth.auth_flow(request)
        try:
            request = next(flow)
            history: list[Response] = []
            sent: list[object] = []  # the one-shot bodies earlier rounds sent
            while True:
                _check_resendable(request, sent, auth)
                response = await self._send_handling_redirects(request, follow, deadlines, budget)
                try:
                    if auth.requires_response_body:
                        await response._read_all(checkpoint=False)
                    try:
                        request = flow.send(response)
                    except StopIteration:
                        response.history = history + response.history
                        return response
                except BaseException:
                    await response._finalize()
                    raise
                # Read the rest of the small body a 401 challenge has, so the next round
                # reuses the connection (bounded like a retried response's drain).
                await _drain(response, trio.current_time() + DRAIN_GRACE)
                history.append(response)
        finally:
            flow.close()

    async def _send_handling_redirects(
        self, request: Request, follow: bool, deadlines: Deadlines, budget: RetryBudget | None
    ) -> Response:
        # Made at the first redirect: until then, one object less for each request that
        # waits in this frame (thousands queued in the pool are walked by the collector).
        history: list[Response] | None = None
        while True:
            # No _check_open() here: send() did it, and a closed transport refuses a closed
            # client's redirect hops itself.
            if budget is None:
                response = await self._send_single_request(request, deadlines)
            else:
                response = await self._send_retrying(request, deadlines, budget)
            if history:
                response.history = list(history)
            if not response.has_redirect_location:
                return response
            if not follow:
                try:
                    response.next_request = redirect_request(request, response)
                except (UnsupportedProtocol, RemoteProtocolError):
                    response.next_request = None  # a redirect we could not follow anyway
                except BaseException:
                    await response._finalize()  # nobody else holds it: give the connection back
                    raise
                return response
            try:
                next_request = redirect_request(request, response)
                if history is None:
                    history = []
                if len(history) >= self.max_redirects:
                    raise TooManyRedirects(
                        f"Exceeded the maximum of {self.max_redirects} redirects.",
                        request=request,
                    )
                await _read_if_small(response)
            finally:
                await response._finalize()
            history.append(response)
            request = next_request

    async def _send_retrying(
        self, request: Request, deadlines: Deadlines, budget: RetryBudget
    ) -> Response:
        """The single-request step, again after each failure that `budget.retry` says a new
        attempt may cure; the policy's decisions are `Retry.plan`'s, the I/O is here."""
        attempts: list[RetryAttempt] = []
        replayable = is_replayable(request._body)
        while True:
            retry = budget.retry
            try:
                response = await self._send_single_request(request, deadlines)
            except RequestError as error:
                decision = retry.plan(
                    request.method,
                    replayable=replayable,
                    error=error,
                    remaining=deadlines.total - trio.current_time(),
                    random=random.random(),
                )
                if decision.retry is None:
                    _give_up(request, error, attempts, decision.reason)
                    raise
                failed: Response | None = None
                failure: RequestError | None = error
                what = f"{type(error).__name__}: {error}"
            else:
                decision = retry.plan(
                    request.method,
                    replayable=replayable,
                    status_code=response.status_code,
                    retry_after=response.headers.get("retry-after"),
                    remaining=deadlines.total - trio.current_time(),
                    now=time.time(),
                    random=random.random(),
                )
                if decision.retry is None:
                    if attempts:
                        response.attempts = tuple(attempts)
                    if decision.reason:
                        logger.info(
                            "Not retrying %s %s (%d): %s",
                            request.method,
                            redact_url(request.url),
                            response.status_code,
                            decision.reason,
                        )
                    return response
                failed, failure = response, None
                what = f"{response.status_code} {response.reason_phrase}"
            assert decision.kind is not None
            if failure is not None:
                # Kept, its traceback is not: it would hold this frame, and the frame the
                # attempts list, in a cycle (urllib3 drops it for the same reason).
                failure.with_traceback(None)
            attempts.append(RetryAttempt(request, failed, failure, decision.kind, decision.delay))
            budget.retry = decision.retry
            logger.info(
                "Retrying %s %s in %.3g s after %s (retry %d of at most %d)",
                request.method,
                redact_url(request.url),
                decision.delay,
                what,
                decision.retry.retries_made,
                decision.retry.retries_made + decision.retry.total,
            )
            wake = trio.current_time() + decision.delay
            if failed is not None:
                await _drain(failed, max(wake, trio.current_time() + DRAIN_GRACE))
            await trio.sleep_until(wake)

    async def _send_single_request(self, request: Request, deadlines: Deadlines) -> Response:
        """One request through the transport its URL is mounted on: one attempt.

        What must see every attempt (event hooks, the request's log line) belongs here: the
        retry loop calls this once per attempt, the redirect loop once per hop.
        """
        request.extensions["deadlines"] = deadlines
        cookies = self._cookies
        if request._cookies is not None or has_cookies(cookies):
            apply_cookies(cookies, request)
        hooks = self._event_hooks
        if hooks["request"]:
            await run_hooks(hooks["request"], request)
        transport = self._transport
        if self._mounts._routes:
            transport = self._mounts.lookup(request.url, transport)
        started = time.perf_counter()
        response = await transport.handle_request(request)
        # httpx's `elapsed`: from sending the request until the response is closed.
        response._started = started
        if response._elapsed is not None and response._stream is None:
            response._elapsed = datetime.timedelta(seconds=time.perf_counter() - started)
        if response._request is None:
            response._request = request
        response.default_encoding = self.default_encoding
        try:
            extract_into(cookies, response)
            if logger.isEnabledFor(INFO):
                log_request(request, response)
            if hooks["response"]:
                await run_hooks(hooks["response"], response)
        except BaseException:
            await response._finalize()  # nobody else holds it: give the connection back
            raise
        return response


def _give_up(
    request: Request, error: RequestError, attempts: list[RetryAttempt], reason: str
) -> None:
    """The error ends the retries: it carries the attempts before it, and says why."""
    if attempts:
        error.attempts = tuple(attempts)
    if reason:
        logger.info("Not retrying %s %s: %s", request.method, redact_url(request.url), reason)
    if attempts or reason:
        count = len(attempts) + 1
        note = f"trioclient: gave up after {count} attempt{'s' if count > 1 else ''}"
        if reason:
            note += f": {reason}"
        if sys.version_info >= (3, 11):
            error.add_note(note)
        else:  # PEP 678's attribute, which exceptiongroup's traceback printing shows
            error.__notes__ = [*getattr(error, "__notes__", ()), note]  # type: ignore[attr-defined]


async def _read_if_small(response: Response) -> None:
    """Read a redirect's body into `content` if it is at most DRAIN_LIMIT bytes decoded (so
    its connection is reused and `history` keeps it); stop reading a longer one, whose
    connection is then closed, rather than buffer what a hostile server may never end."""
    parts: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > DRAIN_LIMIT:
            return
        parts.append(chunk)
    response._content = b"".join(parts)


async def _drain(response: Response, until: float) -> None:
    """Close a retried response (or one an auth round answered), reading its body first (at
    most DRAIN_LIMIT bytes, until `until`) so that an HTTP/1.1 connection can be reused. An
    error reading it does not matter: the request is being sent again anyway."""
    try:
        length = response.headers.get("content-length", "")
        if response.is_stream_consumed or response.is_closed:
            pass  # in memory already (a mock transport's response), or closed
        elif not length or (
            len(length) <= 6
            and length.isascii()
            and length.isdigit()
            and int(length) <= DRAIN_LIMIT
        ):
            with trio.move_on_at(until):
                read = 0
                async for chunk in response.aiter_raw():
                    read += len(chunk)
                    if read > DRAIN_LIMIT:
                        break
    except RequestError:
        pass
    finally:
        await response._finalize()


def _check_resendable(request: Request, sent: list[object], auth: Auth) -> None:
    """Refuse to send a one-shot body (an async iterable, an upload of a non-seekable file)
    that an earlier auth round already sent: it would go out empty or cut."""
    body = request._body
    if is_replayable(body):
        return
    if any(body is earlier for earlier in sent):
        raise StreamConsumed(
            f"{type(auth).__name__} sends the request again (another auth round), but its "
            "body is a stream that the previous round already sent. Pass the body as "
            "bytes, read it first (`await request.aread()`), or set "
            "`requires_request_body = True` on the Auth."
        )
    sent.append(body)


class StreamContext:
    """The async context manager returned by `Client.stream`."""

    __slots__ = ("_auth", "_client", "_follow", "_request", "_response", "_retries")

    def __init__(
        self,
        client: Client,
        request: Request,
        auth: AuthTypes | UseClientDefault | None,
        follow_redirects: bool | UseClientDefault,
        retries: int | Retry | UseClientDefault | None = USE_CLIENT_DEFAULT,
    ) -> None:
        self._client = client
        self._retries = retries
        self._request = request
        self._auth = auth
        self._follow = follow_redirects
        self._response: Response | None = None

    async def __aenter__(self) -> Response:
        self._response = await self._client.send(
            self._request,
            stream=True,
            auth=self._auth,
            follow_redirects=self._follow,
            retries=self._retries,
        )
        return self._response

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._response is not None:
            # Closes even under cancellation (synchronous, then a shielded finalize).
            await self._response._finalize()
        if exc_type is None:
            await trio.lowlevel.checkpoint()
