"""Caller input is checked before any byte is sent (issue 10, "Caller input").

Every public argument of `Client(...)` and of the request methods that has the wrong type
(or an impossible value) raises `TypeError` (or `ValueError`) with a message that names
the argument and what it accepts, and the transport never sees a request.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import trioclient
from trioclient import MockTransport, Response


class _Recorder:
    """A MockTransport handler that counts the requests that reached the transport."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, request: trioclient.Request) -> Response:
        self.calls += 1
        return Response(200)


# --- the request methods ---------------------------------------------------------------------

_TIMEOUT = (
    r"timeout must be a number of seconds or None, a \(connect, read, write, pool\) tuple"
    r" or a trioclient\.Timeout"
)
_CERT = (
    r"cert must be a path \(str\), a \(cert, key\) or a \(cert, key, password\) tuple"
    r" of str, or None"
)
_PING = r"http2_ping_interval must be a number of seconds > 0 or None"
_CONTENT = r"content must be bytes, str or an async iterable of bytes"

# (argument, bad value, exception type, regex the message must match)
REQUEST_CASES: list[tuple[str, Any, type[Exception], str]] = [
    ("url", 12345, TypeError, r"url must be a str or trioclient\.URL, not int \(12345\)"),
    ("url", None, TypeError, r"url must be a str or trioclient\.URL, not NoneType"),
    ("url", b"http://x/", TypeError, r"url must be a str or trioclient\.URL, not bytes"),
    ("method", 5, TypeError, r"method must be a str or bytes, not int \(5\)"),
    ("method", None, TypeError, r"method must be a str or bytes, not NoneType"),
    ("method", "GE T", ValueError, r"method must be an HTTP token"),
    ("method", "", ValueError, r"method must be an HTTP token"),
    ("method", "GET\r\n", ValueError, r"method must be an HTTP token"),
    ("auth", (1, 2), TypeError, r"auth .*\(username, password\).* str or bytes.*int"),
    ("auth", ("a",), TypeError, r"auth .*\(username, password\)"),
    ("auth", "user:pass", TypeError, r"auth must be .*not str"),
    ("auth", 5, TypeError, r"auth must be .*not int \(5\)"),
    ("params", {"a": object()}, TypeError, r"params\['a'\] must be str, int, float, bool"),
    ("params", {"a": [object()]}, TypeError, r"params\['a'\] must be str, int, float, bool"),
    ("params", {"a": b"x"}, TypeError, r"params\['a'\] must be str, int, float, bool"),
    ("params", 5, TypeError, r"params must be .*not int \(5\)"),
    ("params", object(), TypeError, r"params must be .*not object"),
    ("params", [("a",)], TypeError, r"params must be .*\(key, value\) pairs"),
    ("follow_redirects", "yes", TypeError, r"follow_redirects must be a bool, not str \('yes'\)"),
    ("follow_redirects", 1, TypeError, r"follow_redirects must be a bool, not int \(1\)"),
    (
        "headers",
        5,
        TypeError,
        r"headers must be a mapping or a list of \(name, value\) pairs, not int",
    ),
    ("headers", "abc", TypeError, r"headers must be a mapping or a list of .*not str \('abc'\)"),
    ("headers", [("a",)], TypeError, r"headers must be .*\(name, value\) pairs, not tuple"),
    ("headers", [1, 2], TypeError, r"headers must be .*\(name, value\) pairs, not int \(1\)"),
    ("headers", {"a": 1}, TypeError, r"Header value must be str or bytes, not int \(1\).*headers"),
    ("headers", {1: "a"}, TypeError, r"Header name must be str or bytes, not int \(1\).*headers"),
    ("headers", {"a": None}, TypeError, r"Header value must be str or bytes, not NoneType"),
    ("timeout", "5", TypeError, _TIMEOUT + r", not str \('5'\)"),
    ("timeout", object(), TypeError, _TIMEOUT + r", not object"),
    ("timeout", [1, 2, 3, 4], TypeError, _TIMEOUT + r", not list"),
    ("timeout", (1, 2), ValueError, r"timeout as a tuple must be \(connect, read, write, pool\)"),
    ("timeout", -1, ValueError, r"must be >= 0 seconds, not -1"),
    ("extensions", 5, TypeError, r"extensions must be a mapping, not int \(5\)"),
    ("extensions", [("a", 1)], TypeError, r"extensions must be a mapping, not list"),
]

BODY_CASES: list[tuple[str, Any, type[Exception], str]] = [
    ("content", 5, TypeError, _CONTENT + r", not int \(5\)"),
    ("content", True, TypeError, _CONTENT + r", not bool \(True\)"),
    ("content", 1.5, TypeError, _CONTENT + r", not float"),
    ("content", object(), TypeError, _CONTENT + r", not object"),
    ("content", [b"a"], TypeError, _CONTENT + r", not list .*async generator"),
    ("data", 5, TypeError, r"data= must be a mapping of form fields.*not int \(5\)"),
    ("data", {"a": object()}, TypeError, r"Form field 'a' must be .* in data=, not object"),
    ("json", object(), TypeError, r"json must be JSON serializable.*object"),
    ("json", {"a": {1, 2}}, TypeError, r"json must be JSON serializable.*set"),
    ("json", {1j: 1}, TypeError, r"json must be JSON serializable.*complex"),
    ("json", float("nan"), ValueError, r"json .*not JSON compliant"),
]


def _request_kwargs(argument: str, value: Any) -> tuple[Any, Any, dict[str, Any]]:
    method: Any = "GET"
    url: Any = "http://example.org/"
    kwargs: dict[str, Any] = {}
    if argument == "method":
        method = value
    elif argument == "url":
        url = value
    else:
        kwargs[argument] = value
    return method, url, kwargs


@pytest.mark.parametrize(
    ("argument", "value", "error", "message"),
    REQUEST_CASES,
    ids=[f"{case[0]}={case[1]!r}" for case in REQUEST_CASES],
)
async def test_request_argument_errors_name_the_argument(
    argument: str, value: Any, error: type[Exception], message: str
) -> None:
    handler = _Recorder()
    method, url, kwargs = _request_kwargs(argument, value)
    async with trioclient.Client(transport=MockTransport(handler)) as client:
        with pytest.raises(error, match=message):
            await client.request(method, url, **kwargs)
        with pytest.raises(error, match=message):
            async with client.stream(method, url, **kwargs):
                pass  # pragma: no cover
        # The client is still usable, and nothing reached the transport.
        assert handler.calls == 0
        assert (await client.get("http://example.org/")).status_code == 200


@pytest.mark.parametrize(
    ("argument", "value", "error", "message"),
    BODY_CASES,
    ids=[f"{case[0]}={case[1]!r}" for case in BODY_CASES],
)
async def test_body_argument_errors_name_the_argument(
    argument: str, value: Any, error: type[Exception], message: str
) -> None:
    handler = _Recorder()
    async with trioclient.Client(transport=MockTransport(handler)) as client:
        with pytest.raises(error, match=message):
            await client.post("http://example.org/", **{argument: value})
        with pytest.raises(error, match=message):
            trioclient.Request("POST", "http://example.org/", **{argument: value})
    assert handler.calls == 0


@pytest.mark.parametrize("value", [b"GET", "get", "PROPFIND", "M-SEARCH"])
async def test_good_methods_still_work(value: Any) -> None:
    async with trioclient.Client(transport=MockTransport(_Recorder())) as client:
        response = await client.request(value, "http://example.org/")
    assert (
        response.request.method == (value.decode() if isinstance(value, bytes) else value).upper()
    )


async def test_good_params_and_auth_still_work() -> None:
    async with trioclient.Client(transport=MockTransport(_Recorder())) as client:
        response = await client.get(
            "http://example.org/",
            params={"a": 1, "b": [True, None, 1.5], "c": ("x", "y")},
            auth=(b"user", "pass"),
        )
    assert response.request.url.query == b"a=1&b=true&b=&b=1.5&c=x&c=y"
    assert response.request.headers["authorization"].startswith("Basic ")


# --- the constructor -------------------------------------------------------------------------

CONSTRUCTOR_CASES: list[tuple[str, Any, type[Exception], str]] = [
    ("auth", (1, 2), TypeError, r"auth .*\(username, password\).* str or bytes.*int"),
    ("params", {"a": object()}, TypeError, r"params\['a'\] must be str, int, float, bool"),
    ("follow_redirects", "yes", TypeError, r"follow_redirects must be a bool, not str"),
    ("follow_redirects", None, TypeError, r"follow_redirects must be a bool, not NoneType"),
    ("max_redirects", -1, ValueError, r"max_redirects must be an int >= 0, not -1"),
    ("max_redirects", "5", TypeError, r"max_redirects must be an int >= 0, not str"),
    ("max_redirects", 1.5, TypeError, r"max_redirects must be an int >= 0, not float"),
    ("max_redirects", True, TypeError, r"max_redirects must be an int >= 0, not bool"),
    ("max_redirects", None, TypeError, r"max_redirects must be an int >= 0, not NoneType"),
    ("timeout", "5", TypeError, _TIMEOUT + r", not str \('5'\)"),
    ("timeout", True, TypeError, _TIMEOUT + r", not bool"),
    ("limits", 5, TypeError, r"limits must be a trioclient\.Limits, not int \(5\)"),
    ("limits", None, TypeError, r"limits must be a trioclient\.Limits, not NoneType"),
    ("limits", {"max_connections": 1}, TypeError, r"limits must be a trioclient\.Limits, not dict"),
    (
        "verify",
        1,
        TypeError,
        r"verify must be a bool, a CA bundle path \(str\) or an ssl\.SSLContext, not int",
    ),
    ("verify", None, TypeError, r"verify must be a bool, .*not NoneType"),
    ("verify", b"/ca.pem", TypeError, r"verify must be a bool, .*not bytes"),
    ("cert", 1, TypeError, _CERT + r", not int \(1\)"),
    ("cert", ("a",), TypeError, _CERT + r", not tuple"),
    ("cert", (1, 2), TypeError, _CERT + r", not tuple \(\(1, 2\)\)"),
    ("cert", ("a", "b", "c", "d"), TypeError, _CERT + r", not tuple"),
    ("http1", "yes", TypeError, r"http1 must be a bool, not str \('yes'\)"),
    ("http1", None, TypeError, r"http1 must be a bool, not NoneType"),
    ("http2", 0, TypeError, r"http2 must be a bool, not int \(0\)"),
    ("trust_env", "no", TypeError, r"trust_env must be a bool, not str"),
    (
        "headers",
        5,
        TypeError,
        r"headers must be a mapping or a list of \(name, value\) pairs, not int",
    ),
    ("headers", {"a": 1}, TypeError, r"Header value must be str or bytes, not int \(1\).*headers"),
    ("params", 5, TypeError, r"params must be .*not int \(5\)"),
    ("base_url", 5, TypeError, r"base_url must be a str or trioclient\.URL, not int \(5\)"),
    ("base_url", None, TypeError, r"base_url must be a str or trioclient\.URL, not NoneType"),
    ("base_url", b"http://x", TypeError, r"base_url must be a str or trioclient\.URL, not bytes"),
    ("auth", "user:pass", TypeError, r"auth must be .*not str"),
    (
        "default_encoding",
        5,
        TypeError,
        r"default_encoding must be a codec name \(str\) or a callable.*not int",
    ),
    ("default_encoding", None, TypeError, r"default_encoding must be .*not NoneType"),
    (
        "default_encoding",
        "no-such-codec",
        ValueError,
        r"default_encoding 'no-such-codec' is not a known codec",
    ),
    ("uds", 5, TypeError, r"uds must be a str \(a socket path\) or None, not int \(5\)"),
    ("uds", b"/x", TypeError, r"uds must be a str \(a socket path\) or None, not bytes"),
    (
        "local_address",
        5,
        TypeError,
        r"local_address must be a str \(an IP address\) or None, not int",
    ),
    ("http2_ping_interval", "5", TypeError, _PING + r", not str \('5'\)"),
    ("http2_ping_interval", True, TypeError, _PING + r", not bool"),
    ("http2_ping_interval", 0, ValueError, _PING + r", not 0"),
    ("http2_ping_interval", -1, ValueError, _PING + r", not -1"),
    ("http2_ping_interval", float("nan"), ValueError, _PING + r", not nan"),
    ("transport", 5, TypeError, r"transport= must be a trioclient\.Transport, not int"),
    (
        "mounts",
        5,
        TypeError,
        r"mounts must be a mapping of URL patterns to transports, not int \(5\)",
    ),
    (
        "mounts",
        ["all://"],
        TypeError,
        r"mounts must be a mapping of URL patterns to transports, not list",
    ),
    ("mounts", {5: None}, TypeError, r"mounts keys must be str URL patterns .*, not int \(5\)"),
    (
        "mounts",
        {"all://": 5},
        TypeError,
        r"mounts\['all://'\] must be a trioclient\.Transport or None",
    ),
]

_NETWORK_ARGUMENTS = frozenset(
    {
        "limits",
        "verify",
        "cert",
        "http1",
        "http2",
        "trust_env",
        "uds",
        "local_address",
        "http2_ping_interval",
        "transport",
    }
)


@pytest.mark.parametrize(
    ("argument", "value", "error", "message"),
    CONSTRUCTOR_CASES,
    ids=[f"{case[0]}={case[1]!r}" for case in CONSTRUCTOR_CASES],
)
def test_constructor_argument_errors_name_the_argument(
    argument: str, value: Any, error: type[Exception], message: str
) -> None:
    kwargs: dict[str, Any] = {argument: value}
    if argument not in _NETWORK_ARGUMENTS:
        kwargs["transport"] = MockTransport(_Recorder())
    with pytest.raises(error, match=message):
        trioclient.Client(**kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"verify": False, "cert": None, "http1": False, "http2": True},
        {"default_encoding": lambda content: "utf-8", "uds": "/tmp/x.sock"},
        {"local_address": "127.0.0.1", "http2_ping_interval": 2.5, "timeout": (1, 2, None, 4)},
        {"limits": trioclient.Limits(max_connections=3), "timeout": trioclient.Timeout(3)},
        {"mounts": {"all://": None}, "base_url": trioclient.URL("http://example.org/a")},
    ],
)
def test_good_constructor_arguments_still_work(kwargs: dict[str, Any]) -> None:
    trioclient.Client(**kwargs)


def test_max_redirects_zero_is_allowed() -> None:
    assert trioclient.Client(max_redirects=0).max_redirects == 0


# --- properties ------------------------------------------------------------------------------

_NOT_A_URL = st.one_of(
    st.integers(),
    st.floats(),
    st.binary(),
    st.none(),
    st.booleans(),
    st.lists(st.text(max_size=3), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=3),
    st.builds(object),
)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=_NOT_A_URL)
def test_any_non_url_object_is_a_type_error_naming_url(value: object) -> None:
    client = trioclient.Client(transport=MockTransport(_Recorder()))
    with pytest.raises(TypeError, match=r"url must be a str or trioclient\.URL, not "):
        client.build_request("GET", value)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"url must be a str or trioclient\.URL, not "):
        trioclient.Request("GET", value)  # type: ignore[arg-type]


@settings(max_examples=50, deadline=None)
@given(
    value=st.one_of(st.integers(), st.floats(), st.none(), st.builds(object), st.lists(st.text()))
)
def test_any_non_str_method_is_a_type_error_naming_method(value: object) -> None:
    client = trioclient.Client(transport=MockTransport(_Recorder()))
    with pytest.raises(TypeError, match=re.escape("method must be a str or bytes, not ")):
        client.build_request(value, "http://example.org/")  # type: ignore[arg-type]


@settings(max_examples=50, deadline=None)
@given(value=st.one_of(st.integers(), st.text(), st.none(), st.floats(), st.builds(object)))
def test_any_non_bool_follow_redirects_is_a_type_error(value: object) -> None:
    with pytest.raises(TypeError, match="follow_redirects must be a bool"):
        trioclient.Client(follow_redirects=value)  # type: ignore[arg-type]
