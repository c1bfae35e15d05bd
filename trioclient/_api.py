"""Module-level `trioclient.get(...)` and friends: each call opens a one-shot Client.

Convenient for scripts; anything making more than one request should keep a `Client` open
so connections are reused.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

from ._auth import AuthTypes
from ._client import Client
from ._config import DEFAULT_TIMEOUT
from ._response import Response
from ._types import CertTypes, TimeoutTypes, URLTypes, VerifyTypes

__all__ = ["delete", "get", "head", "options", "patch", "post", "put", "request", "stream"]


async def request(
    method: str,
    url: URLTypes,
    *,
    verify: VerifyTypes = True,
    cert: CertTypes | None = None,
    trust_env: bool = True,
    timeout: TimeoutTypes = DEFAULT_TIMEOUT,
    follow_redirects: bool = False,
    **kwargs: Any,
) -> Response:
    """Send one request with a fresh client, read the body, close everything."""
    async with Client(verify=verify, cert=cert, trust_env=trust_env, timeout=timeout) as client:
        return await client.request(method, url, follow_redirects=follow_redirects, **kwargs)


class stream:
    """`async with trioclient.stream("GET", url) as response:` with a one-shot client."""

    def __init__(
        self,
        method: str,
        url: URLTypes,
        *,
        verify: VerifyTypes = True,
        cert: CertTypes | None = None,
        trust_env: bool = True,
        timeout: TimeoutTypes = DEFAULT_TIMEOUT,
        follow_redirects: bool = False,
        auth: AuthTypes | None = None,
        **kwargs: Any,
    ) -> None:
        self._client = Client(verify=verify, cert=cert, trust_env=trust_env, timeout=timeout)
        self._request = (method, url, kwargs)
        self._auth = auth
        self._follow_redirects = follow_redirects

    async def __aenter__(self) -> Response:
        await self._client.__aenter__()
        method, url, kwargs = self._request
        try:
            request = self._client.build_request(method, url, **kwargs)
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


async def get(url: URLTypes, **kwargs: Any) -> Response:
    """GET with a one-shot client."""
    return await request("GET", url, **kwargs)


async def head(url: URLTypes, **kwargs: Any) -> Response:
    """HEAD with a one-shot client."""
    return await request("HEAD", url, **kwargs)


async def options(url: URLTypes, **kwargs: Any) -> Response:
    """OPTIONS with a one-shot client."""
    return await request("OPTIONS", url, **kwargs)


async def post(url: URLTypes, **kwargs: Any) -> Response:
    """POST with a one-shot client."""
    return await request("POST", url, **kwargs)


async def put(url: URLTypes, **kwargs: Any) -> Response:
    """PUT with a one-shot client."""
    return await request("PUT", url, **kwargs)


async def patch(url: URLTypes, **kwargs: Any) -> Response:
    """PATCH with a one-shot client."""
    return await request("PATCH", url, **kwargs)


async def delete(url: URLTypes, **kwargs: Any) -> Response:
    """DELETE with a one-shot client."""
    return await request("DELETE", url, **kwargs)
