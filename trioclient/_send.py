"""The send pipeline around the transport: auth rounds, then redirect hops, then one request.

Theory of operation
-------------------
`Client.send` computes the request's deadlines once (the total timeout spans every hop and
round) and runs three nested loops, each a plain method here so that the order is visible:

    auth flow  ->  redirect hops  ->  one request through the transport its URL is mounted on

Auth wraps redirects (not the reverse) so that credentials an auth flow adds are never
re-added to a redirect that leaves the origin. Cookies, event hooks and retries join this
pipeline, not the transport: they are about requests, not connections.

Every response that a loop does not hand back is closed synchronously before the loop goes
on or raises, so no connection is ever held by a response nobody can reach.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING

import trio

from ._auth import Auth, AuthTypes
from ._config import Deadlines, UseClientDefault
from ._exceptions import RemoteProtocolError, TooManyRedirects, UnsupportedProtocol
from ._redirects import redirect_request
from ._request import Request
from ._response import Response
from ._transport._base import Transport
from ._transport._mounts import Mounts

if TYPE_CHECKING:
    from ._client import Client

__all__ = ["SendPipeline", "StreamContext"]


class SendPipeline:
    """The loops of `Client.send`; `Client` inherits them (and sets these attributes)."""

    _transport: Transport
    _mounts: Mounts
    max_redirects: int
    default_encoding: str | Callable[[bytes], str | None]

    async def _send_handling_auth(
        self, request: Request, auth: Auth, follow: bool, deadlines: Deadlines
    ) -> Response:
        """Run the auth flow; each request it yields is sent with redirect handling.

        Auth wraps the redirect loop (not the reverse) so that credentials an auth flow adds
        are never re-added to a redirect that leaves the origin.
        """
        flow = auth.auth_flow(request)
        try:
            request = next(flow)
            history: list[Response] = []
            while True:
                response = await self._send_handling_redirects(request, follow, deadlines)
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
                await response._finalize()
                history.append(response)
        finally:
            flow.close()

    async def _send_handling_redirects(
        self, request: Request, follow: bool, deadlines: Deadlines
    ) -> Response:
        history: list[Response] = []
        while True:
            # No _check_open() here: send() did it, and a closed transport refuses a closed
            # client's redirect hops itself.
            # One request through the transport its URL is mounted on (inline: this is the
            # hot path, and a method of its own would cost a coroutine frame per request).
            request.extensions["deadlines"] = deadlines
            transport = self._transport
            if self._mounts._entries:
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
                if len(history) >= self.max_redirects:
                    raise TooManyRedirects(
                        f"Exceeded the maximum of {self.max_redirects} redirects.",
                        request=request,
                    )
                await response._read_all(checkpoint=False)
            finally:
                await response._finalize()
            history.append(response)
            request = next_request


class StreamContext:
    """The async context manager returned by `Client.stream`."""

    __slots__ = ("_auth", "_client", "_follow", "_request", "_response")

    def __init__(
        self,
        client: Client,
        request: Request,
        auth: AuthTypes | UseClientDefault | None,
        follow_redirects: bool | UseClientDefault,
    ) -> None:
        self._client = client
        self._request = request
        self._auth = auth
        self._follow = follow_redirects
        self._response: Response | None = None

    async def __aenter__(self) -> Response:
        self._response = await self._client.send(
            self._request, stream=True, auth=self._auth, follow_redirects=self._follow
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
