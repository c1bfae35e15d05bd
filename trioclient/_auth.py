"""Authentication as generator flows: the flow yields requests, the client sends them.

An auth flow does no I/O itself. `auth_flow(request)` is a generator: each `yield` hands a
request to the client, which sends it and `send()`s the response back in. This keeps
multi-step schemes (a challenge, then the answer) free of network code and testable with
plain `next()`/`send()` calls, and the client's one send loop applies the same cancellation
rules to every step.
"""

from __future__ import annotations

import base64
import netrc
import os
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Union

from ._config import describe

if TYPE_CHECKING:
    from ._request import Request
    from ._response import Response

__all__ = ["Auth", "AuthTypes", "BasicAuth", "FunctionAuth", "NetRCAuth", "NoAuth", "build_auth"]


class Auth:
    """Base class: override `auth_flow`.

    Set `requires_response_body` if the flow reads responses (each is read before it is
    sent into the flow), and `requires_request_body` if it reads `request.content` (a
    streamed body is then read into memory first, unbounded; docs/auth.md).
    """

    requires_request_body = False
    requires_response_body = False

    def auth_flow(self, request: Request) -> Generator[Request, Response, None]:
        """Yield requests to send; receive each response back. Default: send as is."""
        yield request


class NoAuth(Auth):
    """Send requests unchanged."""


class FunctionAuth(Auth):
    """Wraps a callable that takes a request, modifies or replaces it, and returns it."""

    def __init__(self, func: Callable[[Request], Request]) -> None:
        self._func = func

    def auth_flow(self, request: Request) -> Generator[Request, Response, None]:
        """Apply the function, send the result."""
        yield self._func(request)


class BasicAuth(Auth):
    """HTTP Basic authentication (RFC 7617) with a username and password."""

    def __init__(self, username: str | bytes, password: str | bytes) -> None:
        user = username.encode("utf-8") if isinstance(username, str) else username
        secret = password.encode("utf-8") if isinstance(password, str) else password
        if not isinstance(user, bytes) or not isinstance(secret, bytes):
            raise TypeError(
                "BasicAuth username and password must be str or bytes, not "
                f"{describe(username)} and {describe(password)}"
            )
        self._header = "Basic " + base64.b64encode(user + b":" + secret).decode("ascii")

    def auth_flow(self, request: Request) -> Generator[Request, Response, None]:
        """Add the Authorization header and send."""
        request.headers["Authorization"] = self._header
        yield request


class NetRCAuth(Auth):
    """Basic credentials for each request's host from a netrc file (`~/.netrc` by default).

    The file is read once, here: a missing one raises FileNotFoundError and a malformed
    one `netrc.NetrcParseError`. A host with no entry (and no `default`), or an entry
    without a password, gets no credentials.
    """

    def __init__(self, file: str | os.PathLike[str] | None = None) -> None:
        if file is not None and not isinstance(file, (str, os.PathLike)):
            raise TypeError(f"NetRCAuth file must be a path or None, not {describe(file)}")
        self._netrc = netrc.netrc(None if file is None else os.fspath(file))

    def auth_flow(self, request: Request) -> Generator[Request, Response, None]:
        """Add Basic credentials for the request's host, if the file has a password."""
        entry = self._netrc.authenticators(request.url.host)
        if entry is not None and entry[2]:
            yield from BasicAuth(entry[0], entry[2]).auth_flow(request)
        else:
            yield request


AuthTypes = Union[
    tuple[Union[str, bytes], Union[str, bytes]], Callable[["Request"], "Request"], Auth
]


def build_auth(auth: AuthTypes | None) -> Auth | None:
    """Normalise the `auth=` argument: a (user, password) tuple, a callable or an Auth."""
    if auth is None:
        return None
    if isinstance(auth, Auth):
        return auth
    if isinstance(auth, tuple):
        if len(auth) != 2:
            raise TypeError(f"auth as a tuple must be (username, password), not {len(auth)} items")
        username, password = auth
        if not isinstance(username, (str, bytes)) or not isinstance(password, (str, bytes)):
            raise TypeError(
                "auth as a tuple must be (username, password), each a str or bytes, not "
                f"({describe(username)}, {describe(password)})"
            )
        return BasicAuth(username, password)
    if callable(auth):
        return FunctionAuth(auth)
    raise TypeError(
        "auth must be a (username, password) tuple, a callable taking and returning a "
        f"Request, a trioclient.Auth or None, not {describe(auth)}"
    )
