"""`Client`: the lifecycle (a nursery opened by `async with`), settings, and the verbs.

Theory of operation
-------------------
`async with Client() as client:` opens one nursery that owns the background work of every
transport the client sends through (`bind`): idle-connection expiry, HTTP/2 reader and
writer tasks, ASGI app tasks. Requests do *not* run in it: each runs in the caller's task,
so a request costs no task and no nursery, and a cancellation of the caller reaches exactly
the request it should. The send pipeline (auth, redirects, the transport) is in `_send.py`.

Exceptions from inside the `async with` block must come out unchanged, never wrapped in an
ExceptionGroup. A nursery entered in `__aenter__` would wrap them if we handed them to its
`__aexit__`, so we do not: on exit we close every transport (each closes everything before
its first checkpoint, in a shielded cancelled scope, so nothing can interrupt it), make the
nursery's own cancel scope shielded and cancelled, and exit the nursery as if its body had
succeeded. Its children are transports' background tasks, which never raise, so the nursery
adds nothing and the original exception (Cancelled, KeyboardInterrupt, anything) continues
on its way. `__aenter__`, `__aexit__` and `aclose` are protected from KeyboardInterrupt so
that it is delivered outside them, never half-way through.

A nursery can only be left by the task that entered it. `__aexit__` from another task (a
client held open across the `yield` of an async generator whose consumer stopped early)
closes every connection and raises `ClientStateError` naming both tasks and the patterns
that work (docs/trio-idioms.md) instead of corrupting Trio's nursery stack.
"""

from __future__ import annotations

import enum
import logging
import os
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Any

import trio

from ._auth import Auth, AuthTypes, build_auth
from ._builder import RequestBuilder
from ._config import (
    DEFAULT_LIMITS,
    DEFAULT_MAX_REDIRECTS,
    DEFAULT_TIMEOUT,
    USE_CLIENT_DEFAULT,
    Deadlines,
    Limits,
    Timeout,
    UseClientDefault,
    check_bool,
    check_client_options,
    check_count,
    describe,
)
from ._cookies import Cookies, CookieTypes, apply_cookies, has_cookies
from ._decoders import ACCEPT_ENCODING
from ._exceptions import (
    ClientStateError,
    InvalidURL,
)
from ._headers import Headers, check_header_safety
from ._hooks import EventHook, EventHooks, build_event_hooks
from ._proxy import Proxy, ProxyTypes, as_proxy
from ._proxy_env import ProxyEnvironment
from ._request import Request
from ._response import Response
from ._retry import Retry, build_retry
from ._send import RetryBudget, SendPipeline, StreamContext
from ._transport._base import Transport
from ._transport._http import HTTPTransport
from ._transport._mounts import EnvironmentProxies, Mounts
from ._transport._pool_state import PoolStatistics
from ._types import (
    CertTypes,
    HeaderTypes,
    QueryParamTypes,
    RequestContent,
    RequestData,
    RequestFiles,
    TimeoutTypes,
    URLTypes,
    VerifyTypes,
)
from ._urls import URL
from ._verbs import HTTPVerbs

__all__ = ["Client"]

logger = logging.getLogger("trioclient")


class _State(enum.Enum):
    UNOPENED = 1  # built, not yet entered with `async with`
    OPENED = 2  # inside `async with`: requests allowed
    CLOSED = 3  # closed by `aclose()` or by leaving `async with`


class Client(SendPipeline, HTTPVerbs):
    """An HTTP client for Trio, used as `async with trioclient.Client() as client:`.

    Arguments follow `httpx.AsyncClient`. Beyond httpx: `uds` (connect to a Unix socket)
    and `local_address` (bind the client end) apply to every connection, and
    `http2_ping_interval` makes HTTP/2 connections PING a peer that has been silent that
    long (and drop it if it stays silent as long again).

    `http2=True` offers HTTP/2 through ALPN on https:// and uses it when the server picks
    it; with `http1=False` as well, plain http:// URLs use HTTP/2 with prior knowledge.

    `http3=True` (beyond httpx; needs the `http3` extra) uses HTTP/3 over QUIC for https
    origins that advertise it with Alt-Svc, falling back to TCP if QUIC fails; with
    `http1=False, http2=False` too, every https request goes over HTTP/3 (docs/http3.md).

    `retries` (also beyond httpx): None (the default) or 0 for no retries, an int n for
    `Retry(total=n)`, or a `Retry`; each request may override it (docs/retries.md).

    `proxy=` (a URL or a `Proxy`) sends every request through that proxy; without it,
    `trust_env=True` honours HTTP_PROXY, HTTPS_PROXY, ALL_PROXY and NO_PROXY
    (docs/proxies.md).
    """

    def __init__(
        self,
        *,
        auth: AuthTypes | None = None,
        params: QueryParamTypes | None = None,
        headers: HeaderTypes | None = None,
        cookies: CookieTypes | None = None,
        verify: VerifyTypes = True,
        cert: CertTypes | None = None,
        trust_env: bool = True,
        http1: bool = True,
        http2: bool = False,
        timeout: TimeoutTypes = DEFAULT_TIMEOUT,
        limits: Limits = DEFAULT_LIMITS,
        follow_redirects: bool = False,
        max_redirects: int = DEFAULT_MAX_REDIRECTS,
        max_response_size: int | None = None,
        retries: int | Retry | None = None,
        event_hooks: Mapping[str, list[EventHook]] | None = None,
        base_url: URLTypes = "",
        default_encoding: str = "utf-8",
        uds: str | None = None,
        local_address: str | None = None,
        http2_ping_interval: float | None = None,
        transport: Transport | None = None,
        mounts: Mapping[str, Transport | None] | None = None,
        proxy: ProxyTypes | None = None,
        http3: bool = False,
    ) -> None:
        default_headers = Headers(
            {
                "Accept": "*/*",
                "Accept-Encoding": ACCEPT_ENCODING.decode("ascii"),
                "User-Agent": _user_agent(),
            }
        )
        check_client_options(
            verify=verify,
            cert=cert,
            trust_env=trust_env,
            http1=http1,
            http2=http2,
            limits=limits,
            default_encoding=default_encoding,
            uds=uds,
            local_address=local_address,
            http2_ping_interval=http2_ping_interval,
            mounts=mounts,
        )
        check_bool("http3", http3)
        default_headers.update(Headers(headers))
        self._builder = RequestBuilder(base_url, params, default_headers)
        self._auth = build_auth(auth)
        self._cookies = Cookies(cookies)
        self._event_hooks = build_event_hooks(event_hooks)
        self.timeout = timeout if isinstance(timeout, Timeout) else Timeout(timeout)
        check_bool("follow_redirects", follow_redirects)
        check_count("max_redirects", max_redirects)
        self.follow_redirects = follow_redirects
        self.max_redirects = max_redirects
        self.max_response_size = max_response_size
        self.retries = retries
        self.default_encoding = default_encoding
        self.trust_env = trust_env
        proxy = None if proxy is None else as_proxy(proxy)

        def http_transport(proxy: Proxy | None) -> HTTPTransport:
            return HTTPTransport(
                verify=verify,
                cert=cert,
                trust_env=trust_env,
                http1=http1,
                http2=http2,
                limits=limits,
                uds=uds,
                local_address=local_address,
                http2_ping_interval=http2_ping_interval,
                write_timeout=self.timeout.write,
                proxy=proxy,
                http3=http3,
            )

        # Proxies, as httpx: `proxy=` sends everything through it (the default transport
        # itself, or an "all://" mount in front of a given `transport=`); otherwise, with
        # trust_env and no `transport=` (nor `uds=`, which says where every connection goes),
        # the environment's proxies (docs/proxies.md).
        environment = None
        if transport is None:
            transport = http_transport(proxy)
            if proxy is None and trust_env and uds is None:
                environment = _environment_proxies(http_transport)
        elif not isinstance(transport, Transport):
            raise TypeError(
                f"transport= must be a trioclient.Transport, not {type(transport).__name__}."
            )
        elif proxy is not None:
            mounts = {"all://": http_transport(proxy), **(mounts or {})}
        self._transport = transport
        self._mounts = Mounts(mounts, environment)
        self._state = _State.UNOPENED
        self._nursery_manager: AbstractAsyncContextManager[trio.Nursery] | None = None
        self._nursery: trio.Nursery | None = None
        self._owner: trio.lowlevel.Task | None = None
        self._bound_transports: list[Transport] | None = None  # set if entering failed

    # -- settings (httpx-compatible properties) ------------------------------------------

    @property
    def headers(self) -> Headers:
        """Headers sent with every request (request headers override them)."""
        return self._builder.headers

    @headers.setter
    def headers(self, value: HeaderTypes) -> None:
        headers = Headers(value)
        check_header_safety(headers.raw)
        self._builder.headers = headers

    @property
    def cookies(self) -> Cookies:
        """The client's cookie jar: sent with requests by its rules, filled by every
        response's Set-Cookie (redirect hops and auth rounds included)."""
        return self._cookies

    @cookies.setter
    def cookies(self, value: CookieTypes) -> None:
        self._cookies = Cookies(value)

    @property
    def event_hooks(self) -> EventHooks:
        """`{"request": [...], "response": [...]}`: async callables run for every request
        sent to a transport and every response received (redirect hops and auth rounds
        included). The lists are live: append to them to add a hook."""
        return self._event_hooks

    @event_hooks.setter
    def event_hooks(self, value: Mapping[str, list[EventHook]]) -> None:
        self._event_hooks = build_event_hooks(value)

    @property
    def base_url(self) -> URL:
        """The URL relative request URLs are merged onto."""
        return self._builder.base_url

    @property
    def params(self) -> Any:
        """Query parameters sent with every request."""
        return self._builder.params

    @property
    def auth(self) -> Auth | None:
        """The default authentication."""
        return self._auth

    @auth.setter
    def auth(self, value: AuthTypes | None) -> None:
        self._auth = build_auth(value)

    @property
    def max_response_size(self) -> int | None:
        """The most bytes a response body may have once decoded; None (the default) for no
        limit. Passing it raises `ResponseTooLarge` (docs/limits.md)."""
        return self._max_response_size

    @max_response_size.setter
    def max_response_size(self, value: int | None) -> None:
        self._max_response_size = _checked_size(value)

    @property
    def retries(self) -> Retry | None:
        """How requests are retried (None: never); set it to None, an int or a `Retry`."""
        return self._retries

    @retries.setter
    def retries(self, value: int | Retry | None) -> None:
        self._retries = build_retry(value)

    @property
    def is_closed(self) -> bool:
        """True once the client was closed."""
        return self._state is _State.CLOSED

    def pool_statistics(self) -> PoolStatistics:
        """A frozen snapshot of the default transport's pool counts (all zero without one)."""
        transport = self._transport
        if isinstance(transport, HTTPTransport):
            return transport.statistics()
        return PoolStatistics(0, 0, 0, 0, 0, 0)

    def _all_transports(self) -> list[Transport]:
        transports = [self._transport]
        for mounted in self._mounts.transports():
            if mounted is not self._transport:
                transports.append(mounted)
        return transports

    # -- lifecycle ------------------------------------------------------------------------

    @trio.lowlevel.enable_ki_protection
    async def __aenter__(self) -> Client:
        if self._state is not _State.UNOPENED:
            what = "closed" if self._state is _State.CLOSED else "already open"
            raise ClientStateError(f"Cannot enter a Client that is {what}; make a new one.")
        manager = trio.open_nursery()
        nursery = await manager.__aenter__()
        self._nursery, self._nursery_manager = nursery, manager
        self._owner = trio.lowlevel.current_task()
        self._state = _State.OPENED
        bound: list[Transport] = []
        try:
            for transport in self._all_transports():
                transport.bind(nursery)
                bound.append(transport)
        except BaseException:
            # Close only what this client took on: a transport that refused to bind (it
            # belongs to another client) is not ours to close.
            self._bound_transports = bound
            await self.__aexit__(None, None, None)
            raise
        return self

    @trio.lowlevel.enable_ki_protection
    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        manager, nursery = self._nursery_manager, self._nursery
        if manager is None or nursery is None:
            raise ClientStateError("This client was not entered with `async with`.")
        task = trio.lowlevel.current_task()
        if task is not self._owner:
            # Exiting a nursery from another task corrupts Trio's state: close everything
            # we can reach, stop our background tasks, and leave the nursery for the owner
            # task's own exit (if it ever comes) to leave properly.
            await self._close()
            nursery.cancel_scope.cancel()
            raise ClientStateError(_wrong_task_message(self._owner, task))
        self._nursery_manager = self._nursery = None
        try:
            await self._close()
        finally:
            # Shield first: an outer cancellation must not turn our own children's
            # Cancelled into an ExceptionGroup leaving this method.
            nursery.cancel_scope.shield = True
            nursery.cancel_scope.cancel()
            await manager.__aexit__(None, None, None)

    @trio.lowlevel.enable_ki_protection
    async def aclose(self) -> None:
        """Close every connection and response now. `async with` does this on exit."""
        await self._close()
        await trio.lowlevel.checkpoint()

    async def _close(self) -> None:
        """Close every transport. Each `aclose()` runs in a shielded, already cancelled
        scope: by the Transport contract it has closed everything before its first
        checkpoint, so nothing here waits, and no outer cancellation can cut it short."""
        self._state = _State.CLOSED
        transports = self._bound_transports
        for transport in self._all_transports() if transports is None else transports:
            with trio.CancelScope(shield=True) as scope:
                scope.cancel()
                await transport.aclose()

    def _check_open(self) -> None:
        if self._state is not _State.OPENED:
            if self._state is _State.UNOPENED:
                raise ClientStateError(
                    "The client was never entered: use `async with trioclient.Client() as "
                    "client:` before sending requests."
                )
            raise ClientStateError("Cannot send a request, as the client has been closed.")

    # -- building requests ----------------------------------------------------------------

    def build_request(
        self,
        method: str,
        url: URLTypes,
        *,
        content: RequestContent | None = None,
        data: RequestData | None = None,
        files: RequestFiles | None = None,
        json: Any = None,
        params: QueryParamTypes | None = None,
        headers: HeaderTypes | None = None,
        cookies: CookieTypes | None = None,
        timeout: TimeoutTypes | UseClientDefault = USE_CLIENT_DEFAULT,
        max_response_size: int | UseClientDefault | None = USE_CLIENT_DEFAULT,
        extensions: Mapping[str, Any] | None = None,
    ) -> Request:
        """Build a `Request` with the client's base URL, params and headers merged in.

        `cookies` are this request's own, merged over the client's; the Cookie header shown
        now is chosen again from the jar when the request is sent.
        """
        request = self._builder.build(
            method,
            url,
            content=content,
            data=data,
            files=files,
            json=json,
            params=params,
            headers=headers,
        )
        if cookies is not None:
            request._cookies = Cookies(cookies)
        if request._cookies is not None or has_cookies(self._cookies):
            apply_cookies(self._cookies, request)
        chosen = self.timeout if timeout is USE_CLIENT_DEFAULT else timeout
        request.extensions["timeout"] = chosen if isinstance(chosen, Timeout) else Timeout(chosen)
        request.extensions["max_response_size"] = (
            self._max_response_size
            if max_response_size is USE_CLIENT_DEFAULT
            else _checked_size(max_response_size)
        )
        if extensions is not None:
            if not isinstance(extensions, Mapping):
                raise TypeError(f"extensions must be a mapping, not {describe(extensions)}")
            request.extensions.update(extensions)
        return request

    # -- sending --------------------------------------------------------------------------

    async def send(
        self,
        request: Request,
        *,
        stream: bool = False,
        auth: AuthTypes | UseClientDefault | None = USE_CLIENT_DEFAULT,
        follow_redirects: bool | UseClientDefault = USE_CLIENT_DEFAULT,
        max_response_size: int | UseClientDefault | None = USE_CLIENT_DEFAULT,
        retries: int | Retry | UseClientDefault | None = USE_CLIENT_DEFAULT,
    ) -> Response:
        """Send a request. With `stream=True` the body is left unread: close the response.

        `max_response_size` overrides the request's own (`build_request` sets it); a request
        built by hand without one gets the client's. `retries` overrides the client's.
        """
        self._check_open()
        if max_response_size is not USE_CLIENT_DEFAULT:
            request.extensions["max_response_size"] = _checked_size(max_response_size)
        elif "max_response_size" not in request.extensions:
            request.extensions["max_response_size"] = self._max_response_size
        timeout = request.extensions.get("timeout")
        if not isinstance(timeout, Timeout):
            timeout = self.timeout if timeout is None else Timeout(timeout)
        deadlines = Deadlines.start(timeout)
        follow = (
            self.follow_redirects if follow_redirects is USE_CLIENT_DEFAULT else follow_redirects
        )
        if follow is not True and follow is not False:
            check_bool("follow_redirects", follow)
        retry = self._retries if retries is USE_CLIENT_DEFAULT else build_retry(retries)
        budget = None if retry is None else RetryBudget(retry)
        flow_auth = self._auth if auth is USE_CLIENT_DEFAULT else build_auth(auth)
        if flow_auth is None:
            response = await self._send_handling_redirects(request, follow, deadlines, budget)
        else:
            response = await self._send_handling_auth(request, flow_auth, follow, deadlines, budget)
        if not stream:
            try:
                await response._read_all(checkpoint=False)
            except BaseException:
                await response._finalize()
                raise
        return response

    # -- the verbs ------------------------------------------------------------------------

    async def request(
        self,
        method: str,
        url: URLTypes,
        *,
        content: RequestContent | None = None,
        data: RequestData | None = None,
        files: RequestFiles | None = None,
        json: Any = None,
        params: QueryParamTypes | None = None,
        headers: HeaderTypes | None = None,
        cookies: CookieTypes | None = None,
        auth: AuthTypes | UseClientDefault | None = USE_CLIENT_DEFAULT,
        follow_redirects: bool | UseClientDefault = USE_CLIENT_DEFAULT,
        timeout: TimeoutTypes | UseClientDefault = USE_CLIENT_DEFAULT,
        max_response_size: int | UseClientDefault | None = USE_CLIENT_DEFAULT,
        extensions: Mapping[str, Any] | None = None,
        retries: int | Retry | UseClientDefault | None = USE_CLIENT_DEFAULT,
    ) -> Response:
        """Build and send a request; the body is read before this returns."""
        request = self.build_request(
            method,
            url,
            content=content,
            data=data,
            files=files,
            json=json,
            params=params,
            headers=headers,
            cookies=cookies,
            timeout=timeout,
            max_response_size=max_response_size,
            extensions=extensions,
        )
        return await self.send(
            request, auth=auth, follow_redirects=follow_redirects, retries=retries
        )

    def stream(
        self,
        method: str,
        url: URLTypes,
        *,
        content: RequestContent | None = None,
        data: RequestData | None = None,
        files: RequestFiles | None = None,
        json: Any = None,
        params: QueryParamTypes | None = None,
        headers: HeaderTypes | None = None,
        cookies: CookieTypes | None = None,
        auth: AuthTypes | UseClientDefault | None = USE_CLIENT_DEFAULT,
        follow_redirects: bool | UseClientDefault = USE_CLIENT_DEFAULT,
        timeout: TimeoutTypes | UseClientDefault = USE_CLIENT_DEFAULT,
        max_response_size: int | UseClientDefault | None = USE_CLIENT_DEFAULT,
        extensions: Mapping[str, Any] | None = None,
        retries: int | Retry | UseClientDefault | None = USE_CLIENT_DEFAULT,
    ) -> StreamContext:
        """`async with client.stream(...) as response:` streams the body; exit closes it."""
        request = self.build_request(
            method,
            url,
            content=content,
            data=data,
            files=files,
            json=json,
            params=params,
            headers=headers,
            cookies=cookies,
            timeout=timeout,
            max_response_size=max_response_size,
            extensions=extensions,
        )
        return StreamContext(self, request, auth, follow_redirects, retries)

    def __repr__(self) -> str:
        return f"<trioclient.Client [{self._state.name.lower()}] {self.pool_statistics()}>"


def _wrong_task_message(owner: trio.lowlevel.Task | None, task: trio.lowlevel.Task) -> str:
    return (
        f"This client was entered in task {owner.name if owner else '?'!r} but is being"
        f" exited in task {task.name!r}; its connections are now closed. A client's"
        " `async with` must begin and end in the same task. This usually means the"
        " client is held open across a `yield` of an async generator: open the client"
        " in an `@asynccontextmanager` instead, close the generator with"
        " `contextlib.aclosing`, hand results out through `trio.as_safe_channel`, or let"
        " one service task own the client (see docs/trio-idioms.md)."
    )


def _checked_size(value: object) -> int | None:
    """`max_response_size` must be None or an int >= 0 (bool excluded)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(
            f"max_response_size must be None or an int >= 0 (bytes), not {type(value).__name__}"
        )
    if value < 0:
        raise ValueError(f"max_response_size must be None or an int >= 0 (bytes), not {value}")
    return value


def _environment_proxies(
    http_transport: Callable[[Proxy | None], HTTPTransport],
) -> EnvironmentProxies | None:
    """HTTP_PROXY, HTTPS_PROXY, ALL_PROXY and NO_PROXY: a transport per proxy, or None."""
    environment = ProxyEnvironment.from_environ(os.environ)
    if environment.is_empty:
        return None
    transports: dict[str, Transport] = {}
    for url in (environment.http, environment.https, environment.all):
        if url is not None and url not in transports:
            try:
                proxy = Proxy(url)
            except (ValueError, InvalidURL):
                # Not the value itself in the message: it may hold credentials.
                name = environment.sources.get(url, "a proxy variable")
                raise ValueError(
                    f"The environment variable {name} is not a proxy URL (http://, https://,"
                    " socks5:// or socks5h://, with a host); fix it or pass trust_env=False."
                ) from None
            transports[url] = http_transport(proxy)
    return EnvironmentProxies(environment, transports)


def _user_agent() -> str:
    from . import __version__

    return f"python-trioclient/{__version__}"
