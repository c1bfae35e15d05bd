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
]


@pytest.mark.parametrize(
    ("argument", "value", "error", "message"),
    CONSTRUCTOR_CASES,
    ids=[f"{case[0]}={case[1]!r}" for case in CONSTRUCTOR_CASES],
)
def test_constructor_argument_errors_name_the_argument(
    argument: str, value: Any, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        trioclient.Client(transport=MockTransport(_Recorder()), **{argument: value})


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
