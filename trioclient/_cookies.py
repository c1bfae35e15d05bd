"""`Cookies`: httpx's cookie mapping over a stdlib `http.cookiejar.CookieJar`, and the two
steps of the send pipeline that use it.

Theory of operation
-------------------
The jar owns every rule: how a `Set-Cookie` header is parsed, its default domain and path,
`Secure`, `Expires`/`Max-Age`, and which cookies go with which request. trioclient only
adapts its own `Request`/`Response` to the two small interfaces the jar reads
(`_JarRequest`, `_JarResponse`) and decides *when* the jar is asked:

* after every response from a transport (every redirect hop and auth round),
  `extract_into(jar, response)` stores its `Set-Cookie` fields in the client's jar;
* before every request goes to a transport, `apply_cookies(client_cookies, request)` sets
  its `Cookie` header from the jar for that request's URL, so a hop that follows a
  `Set-Cookie` carries it, and a redirect to another host carries only what the jar says
  that host may have.

A `Cookie` header the caller wrote into the request's headers is left alone on the request
it was written on (the jar never overrides it, as in urllib and httpx); redirects drop it
(`_redirects.py`) and the jar decides for the next hop. Per-request `cookies=` ride on the
request (`Request._cookies`) and are merged over the client's for that request and for
redirect hops to the same origin only: they were given for one URL, like credentials.

One rule differs from the stdlib's default policy: a cookie set without a `Domain`
attribute is host-only (RFC 6265 5.3 step 6), so `a.example.org`'s cookie is not sent to
`b.a.example.org`. The stdlib's Netscape rules would send it. Cookies set by hand without a
domain (`cookies={"k": "v"}`, `Cookies.set("k", "v")`) have the domain "" and go with every
request, as in httpx; give a domain to pin one to a host. A jar passed in keeps its own
policy.

Cost when no cookies are in play: one dict truth test per hop (`has_cookies`) and one
header lookup per response; nothing is built unless a jar holds cookies or a response sets
one.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, MutableMapping, Sequence
from http.cookiejar import Cookie, CookieJar, DefaultCookiePolicy
from typing import TYPE_CHECKING, Any, Union

from ._config import describe
from ._exceptions import CookieConflict

if TYPE_CHECKING:
    from ._request import Request
    from ._response import Response

__all__ = ["CookieTypes", "Cookies", "apply_cookies", "extract_into", "has_cookies"]

CookieTypes = Union["Cookies", CookieJar, dict[str, str], Sequence[tuple[str, str]]]

# RFC 6265 4.1.1: a cookie name is a token; a value has no CTLs, whitespace, DQUOTE, comma,
# semicolon or backslash. We refuse only what could break the header or the pairing
# (control bytes, ";", and "=" or whitespace in a name), since servers send looser values
# and the jar hands them back verbatim.
_BAD_NAME = re.compile(r"[\x00-\x20\x7f;=,]")
_BAD_VALUE = re.compile(r"[\x00-\x1f\x7f;]")


class _HostOnlyPolicy(DefaultCookiePolicy):
    """The stdlib's policy, plus RFC 6265's host-only rule for cookies set without Domain.

    `DomainStrictNonDomain` makes a cookie whose domain was not specified match only the
    host that set it. A cookie with the empty domain (set by hand, no domain given) is
    exempt: it matches every host, which is what `cookies={...}` means in httpx.
    """

    def __init__(self) -> None:
        super().__init__(strict_ns_domain=DefaultCookiePolicy.DomainStrictNonDomain)

    def return_ok_domain(self, cookie: Cookie, request: Any) -> bool:
        """Every host for a hand-set cookie without a domain; the strict rules otherwise."""
        if not cookie.domain:
            return True
        return bool(super().return_ok_domain(cookie, request))


def _new_jar() -> CookieJar:
    return CookieJar(policy=_HostOnlyPolicy())


class Cookies(MutableMapping[str, str]):
    """HTTP cookies as a mutable mapping of name to value, kept in a `CookieJar` (`.jar`).

    Built from None, a dict or a list of (name, value) pairs (each set with no domain, so
    sent to every host), another `Cookies` (its cookies are copied) or a `CookieJar`
    (used as is, with its own policy). Methods follow `httpx.Cookies`.
    """

    jar: CookieJar

    def __init__(self, cookies: CookieTypes | None = None) -> None:
        if isinstance(cookies, CookieJar):
            self.jar = cookies
            return
        self.jar = _new_jar()
        if cookies is None:
            return
        if isinstance(cookies, Cookies):
            for cookie in cookies.jar:
                self.jar.set_cookie(cookie)
        elif isinstance(cookies, dict):
            for name, value in cookies.items():
                self.set(name, value)
        elif isinstance(cookies, (list, tuple)):
            for pair in cookies:
                if not isinstance(pair, tuple) or len(pair) != 2:
                    raise TypeError(
                        f"cookies as a list must hold (name, value) pairs, not {describe(pair)}"
                    )
                self.set(*pair)
        else:
            raise TypeError(
                "cookies must be a dict, a list of (name, value) pairs, a trioclient.Cookies "
                f"or an http.cookiejar.CookieJar, not {describe(cookies)}"
            )

    # -- httpx's methods -------------------------------------------------------------------

    def set(self, name: str, value: str, domain: str = "", path: str = "/") -> None:
        """Set a cookie. Without a domain it is sent to every host; with one, the jar's
        domain rules apply (a leading dot: that domain and its subdomains)."""
        _check_text("cookie name", name, _BAD_NAME)
        _check_text("cookie value", value, _BAD_VALUE)
        _check_text("cookie domain", domain, _BAD_NAME)
        _check_text("cookie path", path, _BAD_VALUE)
        if not name:
            raise ValueError("cookie name is empty")
        cookie = Cookie(
            version=0,
            name=name,
            value=value,
            port=None,
            port_specified=False,
            domain=domain,
            domain_specified=bool(domain),
            domain_initial_dot=domain.startswith("."),
            path=path,
            path_specified=bool(path),
            secure=False,
            expires=None,
            discard=True,
            comment=None,
            comment_url=None,
            rest={"HttpOnly": None},  # type: ignore[dict-item]  # the stdlib stores None
            rfc2109=False,
        )
        self.jar.set_cookie(cookie)

    def get(  # type: ignore[override]
        self,
        name: str,
        default: str | None = None,
        domain: str | None = None,
        path: str | None = None,
    ) -> str | None:
        """The value of the cookie `name` (optionally of that domain and path), or `default`.

        Raises CookieConflict if several cookies match (say, one per domain): name the
        domain and path to choose.
        """
        found: Cookie | None = None
        for cookie in self.jar:
            if cookie.name == name and _matches(cookie, domain, path):
                if found is not None:
                    raise CookieConflict(
                        f"Multiple cookies exist with name={name} (domains "
                        f"{found.domain!r} and {cookie.domain!r}); pass domain= and path="
                    )
                found = cookie
        if found is None or found.value is None:
            return default
        return found.value

    def delete(self, name: str, domain: str | None = None, path: str | None = None) -> None:
        """Delete every cookie `name` (optionally only of that domain and path)."""
        doomed = [c for c in self.jar if c.name == name and _matches(c, domain, path)]
        for cookie in doomed:
            self.jar.clear(cookie.domain, cookie.path, cookie.name)

    def clear(self, domain: str | None = None, path: str | None = None) -> None:
        """Delete all cookies, or those of one domain, or of one domain and path."""
        if domain is None:
            if path is not None:
                raise TypeError("Cookies.clear(path=...) needs a domain as well")
            self.jar.clear()
        elif path is None:
            self.jar.clear(domain)
        else:
            self.jar.clear(domain, path)

    def update(self, cookies: CookieTypes | None = None) -> None:  # type: ignore[override]
        """Copy in every cookie of `cookies` (anything the constructor takes)."""
        for cookie in Cookies(cookies).jar:
            self.jar.set_cookie(cookie)

    def extract_cookies(self, response: Response) -> None:
        """Store the cookies that `response`'s Set-Cookie headers set (the jar's rules)."""
        self.jar.extract_cookies(_JarResponse(response), _JarRequest(response.request))  # type: ignore[arg-type]

    def set_cookie_header(self, request: Request) -> None:
        """Set the request's Cookie header from this jar, unless it has one already."""
        self.jar.add_cookie_header(_JarRequest(request))  # type: ignore[arg-type]

    # -- mapping interface -----------------------------------------------------------------

    def __getitem__(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def __setitem__(self, name: str, value: str) -> None:
        self.set(name, value)

    def __delitem__(self, name: str) -> None:
        if not any(cookie.name == name for cookie in self.jar):
            raise KeyError(name)
        self.delete(name)

    def __len__(self) -> int:
        return len(self.jar)

    def __iter__(self) -> Iterator[str]:
        return (cookie.name for cookie in self.jar)

    def __bool__(self) -> bool:
        return any(True for _ in self.jar)

    def __repr__(self) -> str:
        # Values are secrets often enough (sessions): show names and domains only.
        shown = ", ".join(f"<Cookie {c.name}=... for {c.domain or '*'} />" for c in self.jar)
        return f"<Cookies[{shown}]>"


def _check_text(what: str, value: object, bad: re.Pattern[str]) -> None:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, not {describe(value)}")
    if bad.search(value) is not None:
        raise ValueError(f"{what} contains a control character, ';' or another forbidden byte")


def _matches(cookie: Cookie, domain: str | None, path: str | None) -> bool:
    return (domain is None or cookie.domain == domain) and (path is None or cookie.path == path)


# -- the interfaces http.cookiejar reads --------------------------------------------------


class _JarRequest:
    """What `CookieJar` reads from a request: the `urllib.request.Request` methods listed
    in the http.cookiejar docs, over a trioclient `Request` (its Cookie header is written
    back into the request's own headers)."""

    unverifiable = False  # every request here is one the user asked for

    def __init__(self, request: Request) -> None:
        self._request = request
        url = request.url
        self.type = url.scheme
        # No userinfo and no fragment: the jar parses the host out of this URL.
        netloc = url.netloc.decode("ascii")
        self._full_url = f"{url.scheme}://{netloc}{url.raw_path.decode('ascii')}"
        self.host = netloc
        self.origin_req_host = url.raw_host.decode("ascii")

    def get_full_url(self) -> str:
        return self._full_url

    def has_header(self, name: str) -> bool:
        return name in self._request.headers

    def get_header(self, name: str, default: str | None = None) -> str | None:
        value: str | None = self._request.headers.get(name, default)
        return value

    def header_items(self) -> list[tuple[str, str]]:
        return list(self._request.headers.items())

    def add_unredirected_header(self, name: str, value: str) -> None:
        self._request.headers[name] = value


class _JarResponse:
    """What `CookieJar.extract_cookies` reads from a response: `info().get_all(name)`."""

    def __init__(self, response: Response) -> None:
        self._headers = response.headers

    def info(self) -> _JarResponse:
        return self

    def get_all(self, name: str, default: list[str]) -> list[str]:
        # Each Set-Cookie field on its own: never joined or split at commas (Expires has one).
        return self._headers.get_list(name) or default


# -- the send pipeline's two steps --------------------------------------------------------


def has_cookies(cookies: Cookies) -> bool:
    """Cheap: False only if the jar certainly holds no cookie (then nothing is sent)."""
    store = getattr(cookies.jar, "_cookies", None)  # CookieJar's dict: domain -> path -> name
    return store is None or bool(store)


def apply_cookies(cookies: Cookies, request: Request) -> None:
    """Set `request`'s Cookie header for this hop from the client's cookies and the
    request's own `cookies=` (those win on a name clash).

    A Cookie header that the caller wrote (not one this function set on an earlier hop or
    auth round of the same request) is left as it is.
    """
    headers = request.headers
    current = headers.get("cookie")
    if current is not None:
        if current != request._auto_cookie:
            return  # the caller's own header
        del headers["cookie"]
    extra = request._cookies
    if extra is not None:
        # A jar for this hop under the client jar's own policy (the user's, if they gave a
        # CookieJar): its rules still decide which of the client's cookies go out.
        jar = CookieJar(policy=cookies.jar._policy)  # type: ignore[attr-defined]
        for cookie in cookies.jar:
            jar.set_cookie(cookie)
        merged = Cookies(jar)
        merged.update(extra)
        cookies = merged
    cookies.set_cookie_header(request)
    request._auto_cookie = headers.get("cookie")


def extract_into(cookies: Cookies, response: Response) -> None:
    """Store a transport's response's Set-Cookie fields in the client's jar (if it has any)."""
    if response.headers._has(b"set-cookie"):
        cookies.extract_cookies(response)
