"""Merging client-wide settings (base URL, params, headers) into each request."""

from __future__ import annotations

from typing import Any

from ._config import describe
from ._exceptions import UnsupportedProtocol
from ._headers import Headers, check_header_safety
from ._request import Request
from ._types import (
    HeaderTypes,
    QueryParamTypes,
    RequestContent,
    RequestData,
    RequestFiles,
    URLTypes,
)
from ._urls import URL, QueryParams

__all__ = ["RequestBuilder"]

_SCHEMES = ("http", "https")
_URL_CACHE_SIZE = 1024


class RequestBuilder:
    """Holds a client's defaults and builds requests from them."""

    __slots__ = ("_urls", "base_url", "headers", "params")

    def __init__(
        self, base_url: URLTypes, params: QueryParamTypes | None, headers: Headers
    ) -> None:
        if not isinstance(base_url, (str, URL)):
            raise TypeError(f"base_url must be a str or trioclient.URL, not {describe(base_url)}")
        base = URL(base_url)
        if base.raw_path and not base.raw_path.endswith(b"/"):
            base = base.copy_with(raw_path=base.raw_path + b"/")
        self.base_url = base
        self.params = QueryParams(params)
        check_header_safety(headers.raw)
        self.headers = headers
        # URLs are immutable and clients tend to repeat them: parse each string once.
        self._urls: dict[str, URL] = {}

    def merge_url(self, url: URLTypes) -> URL:
        """Resolve `url` against the base URL (appending to its path, like httpx)."""
        if isinstance(url, str):
            merged = self._urls.get(url)
            if merged is None:
                merged = URL(url)
                if len(self._urls) >= _URL_CACHE_SIZE:
                    self._urls.clear()
                self._urls[url] = merged
        elif isinstance(url, URL):
            merged = url
        else:
            raise TypeError(f"url must be a str or trioclient.URL, not {describe(url)}")
        origin = merged._origin_key
        if origin.scheme in _SCHEMES and origin.host:
            return merged  # the common case: an absolute http(s) URL
        if merged.is_relative_url and self.base_url.is_absolute_url:
            path = merged.raw_path.lstrip(b"/")
            merged = self.base_url.copy_with(raw_path=self.base_url.raw_path + path)
        if merged.scheme not in _SCHEMES:
            if not merged.scheme:
                raise UnsupportedProtocol(
                    f"Request URL {str(merged)!r} is missing an 'http://' or 'https://' scheme."
                )
            raise UnsupportedProtocol(
                f"Request URL {str(merged)!r} has an unsupported scheme {merged.scheme!r}."
            )
        if not merged.raw_host:
            raise UnsupportedProtocol(f"Request URL {str(merged)!r} has no host.")
        return merged

    def build(
        self,
        method: str,
        url: URLTypes,
        *,
        content: RequestContent | None,
        data: RequestData | None,
        json: Any,
        params: QueryParamTypes | None,
        headers: HeaderTypes | None,
        files: RequestFiles | None = None,
    ) -> Request:
        """A new Request with the defaults merged in (request values win)."""
        merged_url = self.merge_url(url)
        if self.params:
            merged_url = merged_url.copy_merge_params(self.params)
        if params is not None:
            merged_url = merged_url.copy_merge_params(params)
        merged_headers = self.headers.copy()
        if headers is not None:
            extra = headers if isinstance(headers, Headers) else Headers(headers)
            # The client's own headers were checked when they were set; only these are new.
            check_header_safety(extra.raw)
            merged_headers.update(extra)
        return Request._build(method, merged_url, merged_headers, content, data, json, {}, files)
