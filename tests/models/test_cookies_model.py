"""`Cookies`: the httpx surface, input checks, and property tests of parsing and round trips."""

from __future__ import annotations

from http.cookiejar import CookieJar

import pytest
from hypothesis import given
from hypothesis import strategies as st

import trioclient
from trioclient import Cookies, Request, Response

# RFC 6265 4.1.1: a name is a token; a value is cookie-octets. Names starting with "$" are
# RFC 2965 attributes to the stdlib parser, so they are left out.
TOKEN = "!#%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
OCTETS = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in '",;\\')
names = st.text(TOKEN, min_size=1, max_size=20)
values = st.text(OCTETS, max_size=40)


def parse_cookie_header(header: str) -> dict[str, str]:
    pairs = (part.split("=", 1) for part in header.split("; "))
    return {name: value for name, value in pairs}


def response_setting(url: str, *set_cookies: str) -> Response:
    headers = [("Set-Cookie", value) for value in set_cookies]
    return Response(200, headers=headers, request=Request("GET", url))


# --- the mapping and httpx's methods --------------------------------------------------------------


def test_constructors() -> None:
    assert dict(Cookies({"a": "1"})) == {"a": "1"}
    assert dict(Cookies([("a", "1"), ("b", "2")])) == {"a": "1", "b": "2"}
    original = Cookies({"a": "1"})
    copy = Cookies(original)
    copy["b"] = "2"
    assert dict(original) == {"a": "1"}  # a copy, not a view
    jar = CookieJar()
    wrapped = Cookies(jar)
    wrapped["c"] = "3"
    assert wrapped.jar is jar
    assert len(jar) == 1
    assert not Cookies()
    assert len(Cookies()) == 0
    with pytest.raises(TypeError, match="cookies must be a dict"):
        Cookies(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"\(name, value\) pairs, not str"):
        Cookies(["ab"])  # type: ignore[list-item]


def test_set_get_delete_clear_update() -> None:
    cookies = Cookies()
    cookies.set("name", "a", domain="a.example", path="/")
    cookies.set("name", "b", domain="b.example", path="/x")
    with pytest.raises(trioclient.CookieConflict, match="Multiple cookies exist with name=name"):
        cookies.get("name")
    with pytest.raises(trioclient.CookieConflict):
        cookies["name"]
    assert cookies.get("name", domain="a.example") == "a"
    assert cookies.get("name", path="/x") == "b"
    assert cookies.get("missing") is None
    assert cookies.get("missing", "default") == "default"
    with pytest.raises(KeyError):
        cookies["missing"]
    cookies.delete("name", domain="b.example")
    assert cookies["name"] == "a"
    cookies.update({"x": "1", "y": "2"})
    cookies.update(Cookies({"z": "3"}))
    cookies.update(None)
    assert sorted(cookies) == ["name", "x", "y", "z"]
    del cookies["x"]
    with pytest.raises(KeyError):
        del cookies["x"]
    cookies.clear("a.example")
    assert sorted(cookies) == ["y", "z"]
    cookies.set("p", "1", domain="d.example", path="/p")
    cookies.set("q", "1", domain="d.example", path="/q")
    cookies.clear("d.example", "/p")
    assert sorted(cookies) == ["q", "y", "z"]
    with pytest.raises(TypeError, match="needs a domain"):
        cookies.clear(path="/")
    cookies.clear()
    assert not cookies


def test_repr_hides_values() -> None:
    cookies = Cookies()
    cookies.set("session", "s3cr3t", domain="example.org")
    cookies.set("any", "v")
    text = repr(cookies)
    assert "s3cr3t" not in text
    assert text.startswith("<Cookies[")
    assert "<Cookie session=... for example.org />" in text
    assert "<Cookie any=... for * />" in text


@pytest.mark.parametrize(
    ("args", "error", "match"),
    [
        (("a b", "v"), ValueError, "cookie name contains"),
        (("a=b", "v"), ValueError, "cookie name contains"),
        (("", "v"), ValueError, "cookie name is empty"),
        (("a", "v\r\nX: y"), ValueError, "cookie value contains"),
        (("a", "v;b=c"), ValueError, "cookie value contains"),
        ((1, "v"), TypeError, "cookie name must be a str, not int"),
        (("a", b"v"), TypeError, "cookie value must be a str, not bytes"),
    ],
)
def test_bad_names_and_values_are_refused(
    args: tuple[object, object], error: type[Exception], match: str | None
) -> None:
    with pytest.raises(error, match=match):
        Cookies().set(*args)  # type: ignore[arg-type]
    with pytest.raises(error):
        Cookies({args[0]: args[1]})  # type: ignore[dict-item]


def test_extract_and_set_cookie_header() -> None:
    response = response_setting(
        "https://example.org/account/login", "a=1; Path=/", "b=2; Secure; HttpOnly", "c=3"
    )
    cookies = Cookies()
    cookies.extract_cookies(response)
    assert dict(cookies) == {"a": "1", "b": "2", "c": "3"}
    assert dict(response.cookies) == dict(cookies)
    request = Request("GET", "https://example.org/account/x")
    cookies.set_cookie_header(request)
    assert parse_cookie_header(request.headers["cookie"]) == {"a": "1", "b": "2", "c": "3"}
    # The caller's Cookie header wins, as in the stdlib and httpx.
    request = Request("GET", "https://example.org/", headers={"Cookie": "mine=1"})
    cookies.set_cookie_header(request)
    assert request.headers["cookie"] == "mine=1"
    # Plain http: the Secure cookie stays home.
    request = Request("GET", "http://example.org/account/x")
    cookies.set_cookie_header(request)
    assert parse_cookie_header(request.headers["cookie"]) == {"a": "1", "c": "3"}


def test_userinfo_does_not_confuse_the_host() -> None:
    response = response_setting("http://user:pw@example.org/", "a=1")
    assert response.cookies.jar is not None
    [cookie] = list(response.cookies.jar)
    assert cookie.domain == "example.org"


# --- properties ------------------------------------------------------------------------------


@given(st.dictionaries(names, values, max_size=8))
def test_round_trip_through_the_cookie_header(pairs: dict[str, str]) -> None:
    request = Request("GET", "http://example.org/", cookies=pairs)
    if not pairs:
        assert "cookie" not in request.headers
        return
    assert parse_cookie_header(request.headers["cookie"]) == pairs


@given(names, values, st.sampled_from(["/", "/a", "/a/b"]), st.integers(1, 10**8))
def test_round_trip_through_set_cookie(name: str, value: str, path: str, max_age: int) -> None:
    response = response_setting(
        "https://example.org/a/b/c", f"{name}={value}; Path={path}; Max-Age={max_age}; Secure"
    )
    cookies = response.cookies
    # Surrounding whitespace is not part of a value (RFC 6265 5.2).
    assert cookies.get(name, path=path) == value.strip()
    request = Request("GET", f"https://example.org{path}/next")
    cookies.set_cookie_header(request)
    assert parse_cookie_header(request.headers["cookie"]) == {name: value.strip()}


@given(st.lists(st.text(st.characters(codec="latin-1", exclude_characters="\r\n\x00"))))
def test_any_set_cookie_text_is_parsed_or_ignored(headers: list[str]) -> None:
    """Whatever a server sends, extraction never raises, and any cookie it keeps can be
    sent back in a well-formed header."""
    response = response_setting("http://example.org/p/q", *headers)
    cookies = response.cookies
    request = Request("GET", "http://example.org/p/q")
    cookies.set_cookie_header(request)
    header = request.headers.get("cookie")
    assert header is None or ("\r" not in header and "\n" not in header)


def test_the_request_interface_the_jar_reads() -> None:
    from trioclient._cookies import _JarRequest

    request = Request("GET", "https://user:pw@example.org:8443/a?b=c#frag", headers={"X": "1"})
    adapter = _JarRequest(request)
    assert adapter.get_full_url() == "https://example.org:8443/a?b=c"
    assert adapter.type == "https"
    assert adapter.has_header("X")
    assert adapter.get_header("x") == "1"
    assert adapter.get_header("missing", "d") == "d"
    assert ("x", "1") in adapter.header_items()


def test_per_request_cookies_keep_the_client_jars_policy() -> None:
    """The user's CookieJar policy (here: example.com blocked) still decides what the client's
    cookies send when a request adds cookies of its own."""
    from http.cookiejar import CookieJar, DefaultCookiePolicy

    from trioclient._cookies import apply_cookies

    jar = CookieJar(policy=DefaultCookiePolicy(blocked_domains=["example.com"]))
    client_cookies = trioclient.Cookies(jar)
    client_cookies.set("sess", "abc", domain="example.com")
    plain = trioclient.Request("GET", "https://example.com/")
    apply_cookies(client_cookies, plain)
    assert "cookie" not in plain.headers
    own = trioclient.Request("GET", "https://example.com/", cookies={"a": "1"})
    apply_cookies(client_cookies, own)
    assert "sess" not in own.headers.get("cookie", "")
