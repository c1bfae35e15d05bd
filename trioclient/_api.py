"""Module-level `trioclient.get(...)` and friends: each call opens a one-shot Client.

Convenient for scripts; anything making more than one request should keep a `Client` open
so connections are reused.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import Any

from ._auth import AuthTypes
from ._client import Client
from ._config import DEFAULT_LIMITS, DEFAULT_TIMEOUT, Limits
from ._cookies import CookieTypes
from ._proxy import ProxyTypes
from ._response import Response
from ._retry import Retry
from ._transport._base import Transport
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

__all__ = ["delete", "get", "head", "options", "patch", "post", "put", "request", "stream"]


async def request(
    method: str,
    url: URLTypes,
    *,
    params: QueryParamTypes | None = None,
    content: RequestContent | None = None,
    data: RequestData | None = None,
    files: RequestFiles | None = None,
    json: Any = None,
    headers: HeaderTypes | None = None,
    cookies: CookieTypes | None = None,
    auth: AuthTypes | None = None,
    follow_redirects: bool = False,
    timeout: TimeoutTypes = DEFAULT_TIMEOUT,
    verify: VerifyTypes = True,
    cert: CertTypes | None = None,
    trust_env: bool = True,
    proxy: ProxyTypes | None = None,
    http2: bool = False,
    limits: Limits = DEFAULT_LIMITS,
    transport: Transport | None = None,
    max_response_size: int | None = None,
    extensions: Mapping[str, Any] | None = None,
    retries: int | Retry | None = None,
) -> Response:
    """Send one request with a fresh client, read the body, close everything.

    The client options that make sense for one call (`timeout`, `verify`, `cert`,
    `trust_env`, `proxy`, `http2`, `limits`, `transport`, `max_response_size`, `retries`)
    configure that client.
    `cookies` are the request's own: sent to its URL and to same-origin redirects only.
    """
    async with Client(
        verify=verify,
        cert=cert,
        trust_env=trust_env,
        proxy=proxy,
        timeout=timeout,
        http2=http2,
        limits=limits,
        transport=transport,
        max_response_size=max_response_size,
        retries=retries,
    ) as client:
        return await client.request(
            method,
            url,
            params=params,
            content=content,
            data=data,
            files=files,
            json=json,
            headers=headers,
            cookies=cookies,
            auth=auth,
            follow_redirects=follow_redirects,
            extensions=extensions,
        )


class stream:
    """`async with trioclient.stream("GET", url) as response:` with a one-shot client."""

    def __init__(
        self,
        method: str,
        url: URLTypes,
        *,
        params: QueryParamTypes | None = None,
        content: RequestContent | None = None,
        data: RequestData | None = None,
        files: RequestFiles | None = None,
        json: Any = None,
        headers: HeaderTypes | None = None,
        cookies: CookieTypes | None = None,
        auth: AuthTypes | None = None,
        follow_redirects: bool = False,
        timeout: TimeoutTypes = DEFAULT_TIMEOUT,
        verify: VerifyTypes = True,
        cert: CertTypes | None = None,
        trust_env: bool = True,
        proxy: ProxyTypes | None = None,
        http2: bool = False,
        limits: Limits = DEFAULT_LIMITS,
        transport: Transport | None = None,
        max_response_size: int | None = None,
        extensions: Mapping[str, Any] | None = None,
        retries: int | Retry | None = None,
    ) -> None:
        self._client = Client(
            verify=verify,
            cert=cert,
            trust_env=trust_env,
            proxy=proxy,
            timeout=timeout,
            http2=http2,
            limits=limits,
            transport=transport,
            max_response_size=max_response_size,
            retries=retries,
        )
        self._request = (method, url)
        self._options: dict[str, Any] = {
            "params": params,
            "content": content,
            "data": data,
            "files": files,
            "json": json,
            "headers": headers,
            "cookies": cookies,
            "extensions": extensions,
        }
        self._auth = auth
        self._follow_redirects = follow_redirects

    async def __aenter__(self) -> Response:
        await self._client.__aenter__()
        method, url = self._request
        try:
            request = self._client.build_request(method, url, **self._options)
            return await self._client.send(
                request, stream=True, auth=self._auth, follow_redirects=self._follow_redirects
            )
        except BaseException as exc:
            await self._client.__aexit__(type(exc), exc, exc.__traceback__)
            raise

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._client.__aexit__(exc_type, exc, tb)


async def get(
    url: URLTypes,
    *,
    params: QueryParamTypes | None = None,
    headers: HeaderTypes | None = None,
    cookies: CookieTypes | None = None,
    auth: AuthTypes | None = None,
    follow_redirects: bool = False,
    timeout: TimeoutTypes = DEFAULT_TIMEOUT,
    verify: VerifyTypes = True,
    cert: CertTypes | None = None,
    trust_env: bool = True,
    proxy: ProxyTypes | None = None,
    http2: bool = False,
    limits: Limits = DEFAULT_LIMITS,
    transport: Transport | None = None,
    max_response_size: int | None = None,
    extensions: Mapping[str, Any] | None = None,
    retries: int | Retry | None = None,
) -> Response:
    """GET with a one-shot client (see `request`)."""
    return await request(
        "GET",
        url,
        params=params,
        headers=headers,
        cookies=cookies,
        auth=auth,
        follow_redirects=follow_redirects,
        timeout=timeout,
        verify=verify,
        cert=cert,
        trust_env=trust_env,
        proxy=proxy,
        http2=http2,
        limits=limits,
        transport=transport,
        max_response_size=max_response_size,
        extensions=extensions,
        retries=retries,
    )


async def head(
    url: URLTypes,
    *,
    params: QueryParamTypes | None = None,
    headers: HeaderTypes | None = None,
    cookies: CookieTypes | None = None,
    auth: AuthTypes | None = None,
    follow_redirects: bool = False,
    timeout: TimeoutTypes = DEFAULT_TIMEOUT,
    verify: VerifyTypes = True,
    cert: CertTypes | None = None,
    trust_env: bool = True,
    proxy: ProxyTypes | None = None,
    http2: bool = False,
    limits: Limits = DEFAULT_LIMITS,
    transport: Transport | None = None,
    max_response_size: int | None = None,
    extensions: Mapping[str, Any] | None = None,
    retries: int | Retry | None = None,
) -> Response:
    """HEAD with a one-shot client (see `request`)."""
    return await request(
        "HEAD",
        url,
        params=params,
        headers=headers,
        cookies=cookies,
        auth=auth,
        follow_redirects=follow_redirects,
        timeout=timeout,
        verify=verify,
        cert=cert,
        trust_env=trust_env,
        proxy=proxy,
        http2=http2,
        limits=limits,
        transport=transport,
        max_response_size=max_response_size,
        extensions=extensions,
        retries=retries,
    )


async def options(
    url: URLTypes,
    *,
    params: QueryParamTypes | None = None,
    headers: HeaderTypes | None = None,
    cookies: CookieTypes | None = None,
    auth: AuthTypes | None = None,
    follow_redirects: bool = False,
    timeout: TimeoutTypes = DEFAULT_TIMEOUT,
    verify: VerifyTypes = True,
    cert: CertTypes | None = None,
    trust_env: bool = True,
    proxy: ProxyTypes | None = None,
    http2: bool = False,
    limits: Limits = DEFAULT_LIMITS,
    transport: Transport | None = None,
    max_response_size: int | None = None,
    extensions: Mapping[str, Any] | None = None,
    retries: int | Retry | None = None,
) -> Response:
    """OPTIONS with a one-shot client (see `request`)."""
    return await request(
        "OPTIONS",
        url,
        params=params,
        headers=headers,
        cookies=cookies,
        auth=auth,
        follow_redirects=follow_redirects,
        timeout=timeout,
        verify=verify,
        cert=cert,
        trust_env=trust_env,
        proxy=proxy,
        http2=http2,
        limits=limits,
        transport=transport,
        max_response_size=max_response_size,
        extensions=extensions,
        retries=retries,
    )


async def post(
    url: URLTypes,
    *,
    params: QueryParamTypes | None = None,
    content: RequestContent | None = None,
    data: RequestData | None = None,
    files: RequestFiles | None = None,
    json: Any = None,
    headers: HeaderTypes | None = None,
    cookies: CookieTypes | None = None,
    auth: AuthTypes | None = None,
    follow_redirects: bool = False,
    timeout: TimeoutTypes = DEFAULT_TIMEOUT,
    verify: VerifyTypes = True,
    cert: CertTypes | None = None,
    trust_env: bool = True,
    proxy: ProxyTypes | None = None,
    http2: bool = False,
    limits: Limits = DEFAULT_LIMITS,
    transport: Transport | None = None,
    max_response_size: int | None = None,
    extensions: Mapping[str, Any] | None = None,
    retries: int | Retry | None = None,
) -> Response:
    """POST with a one-shot client (see `request`)."""
    return await request(
        "POST",
        url,
        params=params,
        content=content,
        data=data,
        files=files,
        json=json,
        headers=headers,
        cookies=cookies,
        auth=auth,
        follow_redirects=follow_redirects,
        timeout=timeout,
        verify=verify,
        cert=cert,
        trust_env=trust_env,
        proxy=proxy,
        http2=http2,
        limits=limits,
        transport=transport,
        max_response_size=max_response_size,
        extensions=extensions,
        retries=retries,
    )


async def put(
    url: URLTypes,
    *,
    params: QueryParamTypes | None = None,
    content: RequestContent | None = None,
    data: RequestData | None = None,
    files: RequestFiles | None = None,
    json: Any = None,
    headers: HeaderTypes | None = None,
    cookies: CookieTypes | None = None,
    auth: AuthTypes | None = None,
    follow_redirects: bool = False,
    timeout: TimeoutTypes = DEFAULT_TIMEOUT,
    verify: VerifyTypes = True,
    cert: CertTypes | None = None,
    trust_env: bool = True,
    proxy: ProxyTypes | None = None,
    http2: bool = False,
    limits: Limits = DEFAULT_LIMITS,
    transport: Transport | None = None,
    max_response_size: int | None = None,
    extensions: Mapping[str, Any] | None = None,
    retries: int | Retry | None = None,
) -> Response:
    """PUT with a one-shot client (see `request`)."""
    return await request(
        "PUT",
        url,
        params=params,
        content=content,
        data=data,
        files=files,
        json=json,
        headers=headers,
        cookies=cookies,
        auth=auth,
        follow_redirects=follow_redirects,
        timeout=timeout,
        verify=verify,
        cert=cert,
        trust_env=trust_env,
        proxy=proxy,
        http2=http2,
        limits=limits,
        transport=transport,
        max_response_size=max_response_size,
        extensions=extensions,
        retries=retries,
    )


async def patch(
    url: URLTypes,
    *,
    params: QueryParamTypes | None = None,
    content: RequestContent | None = None,
    data: RequestData | None = None,
    files: RequestFiles | None = None,
    json: Any = None,
    headers: HeaderTypes | None = None,
    cookies: CookieTypes | None = None,
    auth: AuthTypes | None = None,
    follow_redirects: bool = False,
    timeout: TimeoutTypes = DEFAULT_TIMEOUT,
    verify: VerifyTypes = True,
    cert: CertTypes | None = None,
    trust_env: bool = True,
    proxy: ProxyTypes | None = None,
    http2: bool = False,
    limits: Limits = DEFAULT_LIMITS,
    transport: Transport | None = None,
    max_response_size: int | None = None,
    extensions: Mapping[str, Any] | None = None,
    retries: int | Retry | None = None,
) -> Response:
    """PATCH with a one-shot client (see `request`)."""
    return await request(
        "PATCH",
        url,
        params=params,
        content=content,
        data=data,
        files=files,
        json=json,
        headers=headers,
        cookies=cookies,
        auth=auth,
        follow_redirects=follow_redirects,
        timeout=timeout,
        verify=verify,
        cert=cert,
        trust_env=trust_env,
        proxy=proxy,
        http2=http2,
        limits=limits,
        transport=transport,
        max_response_size=max_response_size,
        extensions=extensions,
        retries=retries,
    )


async def delete(
    url: URLTypes,
    *,
    params: QueryParamTypes | None = None,
    headers: HeaderTypes | None = None,
    cookies: CookieTypes | None = None,
    auth: AuthTypes | None = None,
    follow_redirects: bool = False,
    timeout: TimeoutTypes = DEFAULT_TIMEOUT,
    verify: VerifyTypes = True,
    cert: CertTypes | None = None,
    trust_env: bool = True,
    proxy: ProxyTypes | None = None,
    http2: bool = False,
    limits: Limits = DEFAULT_LIMITS,
    transport: Transport | None = None,
    max_response_size: int | None = None,
    extensions: Mapping[str, Any] | None = None,
    retries: int | Retry | None = None,
) -> Response:
    """DELETE with a one-shot client (see `request`)."""
    return await request(
        "DELETE",
        url,
        params=params,
        headers=headers,
        cookies=cookies,
        auth=auth,
        follow_redirects=follow_redirects,
        timeout=timeout,
        verify=verify,
        cert=cert,
        trust_env=trust_env,
        proxy=proxy,
        http2=http2,
        limits=limits,
        transport=transport,
        max_response_size=max_response_size,
        extensions=extensions,
        retries=retries,
    )
