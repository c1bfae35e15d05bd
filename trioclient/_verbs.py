"""The httpx verbs (`get`, `head`, `options`, `post`, `put`, `patch`, `delete`) of `Client`.

Each is a thin call of `Client.request` with an explicit keyword signature, not
`**kwargs: Any`, so that a type checker catches an argument a verb does not take (a
`files=` or `content=` on a GET) at the call site. They live apart from the client's
lifecycle and send pipeline only because there are seven of them.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from ._auth import AuthTypes
from ._config import USE_CLIENT_DEFAULT, UseClientDefault
from ._cookies import CookieTypes
from ._response import Response
from ._retry import Retry
from ._types import (
    HeaderTypes,
    QueryParamTypes,
    RequestContent,
    RequestData,
    RequestFiles,
    TimeoutTypes,
    URLTypes,
)

__all__ = ["HTTPVerbs"]


class HTTPVerbs:
    """Mixed into `Client`, which provides `request`."""

    request: Callable[..., Coroutine[Any, Any, Response]]

    async def get(
        self,
        url: URLTypes,
        *,
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
        """Send a GET request (see `request`)."""
        return await self.request(
            "GET",
            url,
            params=params,
            headers=headers,
            cookies=cookies,
            auth=auth,
            follow_redirects=follow_redirects,
            timeout=timeout,
            max_response_size=max_response_size,
            extensions=extensions,
            retries=retries,
        )

    async def head(
        self,
        url: URLTypes,
        *,
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
        """Send a HEAD request (see `request`)."""
        return await self.request(
            "HEAD",
            url,
            params=params,
            headers=headers,
            cookies=cookies,
            auth=auth,
            follow_redirects=follow_redirects,
            timeout=timeout,
            max_response_size=max_response_size,
            extensions=extensions,
            retries=retries,
        )

    async def options(
        self,
        url: URLTypes,
        *,
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
        """Send a OPTIONS request (see `request`)."""
        return await self.request(
            "OPTIONS",
            url,
            params=params,
            headers=headers,
            cookies=cookies,
            auth=auth,
            follow_redirects=follow_redirects,
            timeout=timeout,
            max_response_size=max_response_size,
            extensions=extensions,
            retries=retries,
        )

    async def post(
        self,
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
        """Send a POST request (see `request`)."""
        return await self.request(
            "POST",
            url,
            content=content,
            data=data,
            files=files,
            json=json,
            params=params,
            headers=headers,
            cookies=cookies,
            auth=auth,
            follow_redirects=follow_redirects,
            timeout=timeout,
            max_response_size=max_response_size,
            extensions=extensions,
            retries=retries,
        )

    async def put(
        self,
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
        """Send a PUT request (see `request`)."""
        return await self.request(
            "PUT",
            url,
            content=content,
            data=data,
            files=files,
            json=json,
            params=params,
            headers=headers,
            cookies=cookies,
            auth=auth,
            follow_redirects=follow_redirects,
            timeout=timeout,
            max_response_size=max_response_size,
            extensions=extensions,
            retries=retries,
        )

    async def patch(
        self,
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
        """Send a PATCH request (see `request`)."""
        return await self.request(
            "PATCH",
            url,
            content=content,
            data=data,
            files=files,
            json=json,
            params=params,
            headers=headers,
            cookies=cookies,
            auth=auth,
            follow_redirects=follow_redirects,
            timeout=timeout,
            max_response_size=max_response_size,
            extensions=extensions,
            retries=retries,
        )

    async def delete(
        self,
        url: URLTypes,
        *,
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
        """Send a DELETE request (see `request`)."""
        return await self.request(
            "DELETE",
            url,
            params=params,
            headers=headers,
            cookies=cookies,
            auth=auth,
            follow_redirects=follow_redirects,
            timeout=timeout,
            max_response_size=max_response_size,
            extensions=extensions,
            retries=retries,
        )
