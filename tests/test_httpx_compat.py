"""httpx's public API, walked name by name against trioclient and docs/httpx-compat.md.

httpx (installed by the `test` extra as the reference) is introspected: its `__all__`, and
the attributes, methods and arguments of its classes. Every name must be in one row of the
"Name by name" tables of docs/httpx-compat.md, and each row must be true: "same" and
"different" names exist in trioclient (an argument: every trioclient counterpart of an
httpx callable that takes it accepts it), "not provided" and "not yet" names do not. So a
name httpx adds, or one trioclient gains while the page says it is missing, fails here.

NOT_PROVIDED and PENDING below repeat the page's "not provided" and "not yet" rows, so the
deliberate gaps are visible in code review too; the last tests check they match the page.
"""

from __future__ import annotations

import hashlib
import inspect
import re
import warnings
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import trioclient

DOC = Path(__file__).parent.parent / "docs" / "httpx-compat.md"

# Deliberate differences: absent from trioclient, each for the reason the page gives.
NOT_PROVIDED: dict[str, set[str]] = {
    "httpx": {
        "AsyncHTTPTransport",  # HTTPTransport: an alias would hide the interface change
        "AsyncBaseTransport",  # trioclient.Transport
        "BaseTransport",
        "AsyncByteStream",  # bodies are bytes or async iterables
        "SyncByteStream",
        "ByteStream",
        "WSGITransport",  # sync apps would block the loop
        "main",  # python -m trioclient
    },
    "httpx.Response": {"close", "iter_bytes", "iter_lines", "iter_raw", "iter_text", "stream"},
    "httpx.URL": {"raw"},  # deprecated in httpx
    "httpx.Auth, httpx.BasicAuth, httpx.FunctionAuth": {"async_auth_flow", "sync_auth_flow"},
    "httpx.MockTransport": {"handle_async_request", "close"},
    "httpx.ASGITransport": {"handle_async_request"},
    # retries=: the client's (Client(retries=...)), see docs/retries.md.
    "httpx.AsyncHTTPTransport": {"handle_async_request", "socket_options=", "retries="},
}

# Work in progress elsewhere; the lead removes each entry (and its row) when it lands.
PENDING: dict[str, dict[str, str]] = {}

STATUSES = ("same", "different", "not provided", "not yet")


# -- reading the page ---------------------------------------------------------------------


def _read_tables() -> dict[str, dict[str, str]]:
    """Section heading -> {name: status} from the "Name by name" part of the page."""
    text = DOC.read_text(encoding="utf-8")
    part = text.split("\n## Name by name\n", 1)[1]
    sections: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for line in part.splitlines():
        if line.startswith("## "):
            break
        if line.startswith("### "):
            heading = line[4:].split(" (")[0]
            current = sections.setdefault(heading.replace("`", ""), {})
            continue
        if current is None or not line.startswith("| `"):
            continue
        names_cell, status_cell = line.strip("|").split("|", 1)
        status = next(s for s in STATUSES if status_cell.strip().startswith(s))
        for name in re.findall(r"`([^`]+)`", names_cell):
            assert name not in current, f"{name} is listed twice under {heading}"
            current[name] = status
    return {heading: rows for heading, rows in sections.items() if rows}  # codes: prose


TABLES = _read_tables()


# -- what httpx has -----------------------------------------------------------------------

_REQUEST = httpx.Request("GET", "http://example.com/")
_T_REQUEST = trioclient.Request("GET", "http://example.com/")


def _sections() -> dict[str, tuple[list[Any], list[Any]]]:
    """Section heading -> (httpx objects, their trioclient counterparts, instance or class)."""
    return {
        "httpx.AsyncClient": ([httpx.AsyncClient()], [trioclient.Client()]),
        "httpx.Response": (
            [httpx.Response(200, request=_REQUEST)],
            [trioclient.Response(200, request=_T_REQUEST)],
        ),
        "httpx.Request": ([_REQUEST], [_T_REQUEST]),
        "httpx.Headers": ([httpx.Headers()], [trioclient.Headers()]),
        "httpx.Cookies": ([httpx.Cookies()], [trioclient.Cookies()]),
        "httpx.Proxy": (
            [httpx.Proxy("http://u:p@proxy/")],
            [trioclient.Proxy("http://u:p@proxy/")],
        ),
        "httpx.URL": ([httpx.URL("http://a/")], [trioclient.URL("http://a/")]),
        "httpx.QueryParams": ([httpx.QueryParams()], [trioclient.QueryParams()]),
        "httpx.Timeout": ([httpx.Timeout(1.0)], [trioclient.Timeout(1.0)]),
        "httpx.Limits": ([httpx.Limits()], [trioclient.Limits()]),
        "httpx.Auth, httpx.BasicAuth, httpx.FunctionAuth": (
            [httpx.Auth, httpx.BasicAuth, httpx.FunctionAuth],
            [trioclient.Auth, trioclient.BasicAuth, trioclient.FunctionAuth],
        ),
        "httpx.MockTransport": ([httpx.MockTransport], [trioclient.MockTransport]),
        "httpx.ASGITransport": ([httpx.ASGITransport], [trioclient.ASGITransport]),
        "httpx.AsyncHTTPTransport": ([httpx.AsyncHTTPTransport], [trioclient.HTTPTransport]),
    }


def _attributes(obj: Any) -> set[str]:
    return {name for name in dir(obj) if not name.startswith("_")}


def _callables(obj: Any) -> Iterator[tuple[str, Callable[..., Any]]]:
    """("__init__", the class) and each public method of a class or instance."""
    cls = obj if isinstance(obj, type) else type(obj)
    yield "__init__", cls
    for name in _attributes(cls):
        value = inspect.getattr_static(cls, name)
        if inspect.isfunction(value) or isinstance(value, (classmethod, staticmethod)):
            yield name, getattr(cls, name)


def _parameters(func: Callable[..., Any]) -> tuple[set[str], bool]:
    """The named parameters of `func` (no self, *args, **kwargs), and whether it has **kwargs."""
    try:
        signature = inspect.signature(func)
    except ValueError:  # a class that keeps Exception's own __init__: positional only
        return set(), False
    named = {
        p.name
        for p in signature.parameters.values()
        if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    }
    return named, any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())


def _counterparts(
    httpx_objects: list[Any], ours: list[Any]
) -> Iterator[tuple[str, Callable[..., Any], Callable[..., Any] | None]]:
    """Each httpx callable of the section, with trioclient's callable of the same name."""
    for theirs, mine in zip(httpx_objects, ours, strict=True):
        for name, func in _callables(theirs):
            if name == "__init__":
                yield name, func, mine if isinstance(mine, type) else type(mine)
            else:
                yield name, func, getattr(mine, name, None)


def _module_callables() -> Iterator[tuple[str, Callable[..., Any], Callable[..., Any] | None]]:
    for name in httpx.__all__:
        func = getattr(httpx, name)
        if inspect.isfunction(func):
            yield name, func, getattr(trioclient, name, None)


def _expected(section: str) -> set[str]:
    """Every httpx name the page must list under `section`."""
    if section == "httpx":
        names = set(httpx.__all__)
        callables = list(_module_callables())
    elif section == "Exceptions":
        base = _attributes(Exception("x"))
        names = set().union(*(_attributes(error) - base for error in _exceptions(httpx)))
        callables = [("__init__", cls, None) for cls in _exception_classes()]
    else:
        objects, ours = _sections()[section]
        names = set().union(*(_attributes(obj) for obj in objects))
        callables = list(_counterparts(objects, ours))
    # The arguments of a method trioclient does not have are covered by that method's row.
    missing = {name for name, status in TABLES.get(section, {}).items() if status.startswith("not")}
    for name, func, _ in callables:
        if name not in missing:
            names |= {f"{param}=" for param in _parameters(func)[0]}
    return names


def _exception_classes() -> list[type[BaseException]]:
    return [
        value
        for name in httpx.__all__
        if isinstance(value := getattr(httpx, name), type)
        and issubclass(value, Exception)
        and hasattr(trioclient, name)
    ]


def _exceptions(library: Any) -> list[BaseException]:
    """An instance of each exception class, built with httpx's arguments (so that attributes
    set in `__init__`, such as `response`, are seen)."""
    request = library.Request("GET", "http://example.com/")
    values = {"message": "x", "request": request, "response": library.Response(500)}
    errors = []
    for cls in _exception_classes():
        mine = getattr(library, cls.__name__)
        named = _parameters(cls)[0]
        errors.append(mine(**{key: value for key, value in values.items() if key in named}))
    return errors


def _exists(section: str, name: str) -> bool:
    """Whether trioclient has `name` (an attribute, or an argument `x=`) in `section`."""
    if section == "httpx":
        ours: list[Any] = [trioclient]
        callables = list(_module_callables())
    elif section == "Exceptions":
        ours = _exceptions(trioclient)
        callables = [
            ("__init__", cls, getattr(trioclient, cls.__name__)) for cls in _exception_classes()
        ]
    else:
        objects, ours = _sections()[section]
        callables = list(_counterparts(objects, ours))
    if not name.endswith("="):
        return any(name in dir(obj) for obj in ours)  # no property is evaluated
    param = name[:-1]
    found = []
    for _, theirs, mine in callables:
        if mine is None or param not in _parameters(theirs)[0]:
            continue
        named, has_kwargs = _parameters(mine)
        found.append(param in named or (has_kwargs and section != "httpx"))
    assert found, f"{name} is not an argument of anything under {section}"
    return all(found) if any(found) else False


# -- the checks ---------------------------------------------------------------------------

SECTIONS = ["httpx", *_sections(), "Exceptions"]


def test_the_page_has_a_table_for_every_section() -> None:
    assert set(TABLES) == set(SECTIONS)


@pytest.mark.parametrize("section", SECTIONS)
def test_every_httpx_name_is_listed(section: str) -> None:
    expected = _expected(section)
    listed = set(TABLES[section])
    assert not expected - listed, f"httpx names missing under {section}: {expected - listed}"
    assert not listed - expected, f"not httpx names, under {section}: {listed - expected}"


@pytest.mark.parametrize("section", SECTIONS)
def test_every_row_is_true(section: str) -> None:
    for name, status in TABLES[section].items():
        if status in ("same", "different"):
            assert _exists(section, name), f"trioclient lacks {name} ({section}: {status})"
        else:
            assert not _exists(section, name), (
                f"trioclient now has {name} ({section}): change its row in "
                f"docs/httpx-compat.md from '{status}' and drop it from this file's tables"
            )


def test_the_deliberate_gaps_match_the_page() -> None:
    page = {
        section: {name for name, status in rows.items() if status == "not provided"}
        for section, rows in TABLES.items()
    }
    assert {k: v for k, v in page.items() if v} == NOT_PROVIDED


def test_the_pending_work_matches_the_page() -> None:
    text = DOC.read_text(encoding="utf-8")
    page = {
        section: {name for name, status in rows.items() if status == "not yet"}
        for section, rows in TABLES.items()
    }
    assert {k: v for k, v in page.items() if v} == {k: set(v) for k, v in PENDING.items()}
    for rows in PENDING.values():
        for work in set(rows.values()):
            assert f"not yet: added by the {work} work" in text


def test_the_exception_tree_is_httpxs() -> None:
    for cls in _exception_classes():
        ours = getattr(trioclient, cls.__name__)
        for base in cls.__mro__[1:]:
            if base.__module__.startswith("httpx"):
                assert issubclass(ours, getattr(trioclient, base.__name__)), (cls, base)


def test_every_status_code_name_and_method() -> None:
    for name in dir(httpx.codes):
        if name.startswith("_") or hasattr(int, name):
            continue
        assert hasattr(trioclient.codes, name), name
        value = getattr(httpx.codes, name)
        if isinstance(value, int):
            assert getattr(trioclient.codes, name) == value, name


# -- the names this walk added --------------------------------------------------------------


def test_module_metadata() -> None:
    assert trioclient.__title__ == "trioclient"
    assert trioclient.__description__


def test_response_html_history_and_read() -> None:
    earlier = trioclient.Response(301)
    response = trioclient.Response(200, html="<p>hi</p>", history=[earlier])
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.read() == b"<p>hi</p>"
    assert response.history == [earlier]


async def _stream() -> AsyncIterator[bytes]:
    yield b"streamed"


async def test_response_read_of_an_unread_stream_says_aread() -> None:
    response = trioclient.Response(200, stream=_stream())
    with pytest.raises(trioclient.ResponseNotRead, match="aread"):
        response.read()
    assert await response.aread() == b"streamed"
    assert response.read() == b"streamed"


async def test_request_read() -> None:
    assert trioclient.Request("POST", "http://a/", content=b"x").read() == b"x"
    request = trioclient.Request("POST", "http://a/", content=_stream())
    with pytest.raises(trioclient.RequestNotRead, match="aread"):
        request.read()
    await request.aread()
    assert request.read() == b"streamed"


def test_query_params_keywords_and_update() -> None:
    assert trioclient.QueryParams(a=1, b=["x", "y"]) == trioclient.QueryParams("a=1&b=x&b=y")
    with pytest.raises(TypeError, match="not both"):
        trioclient.QueryParams({"a": 1}, b=2)
    with pytest.raises(RuntimeError, match="immutable"):
        trioclient.QueryParams().update({"a": 1})


def test_url_raw_scheme() -> None:
    assert trioclient.URL("HTTPS://example.com/").raw_scheme == b"https"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert httpx.URL("HTTPS://example.com/").raw_scheme == b"https"


class BodySigningAuth(trioclient.Auth):
    """Signs the request body: needs it in memory, even when it was given as a stream."""

    requires_request_body = True

    def auth_flow(
        self, request: trioclient.Request
    ) -> Generator[trioclient.Request, trioclient.Response, None]:
        request.headers["X-Body-SHA256"] = hashlib.sha256(request.content).hexdigest()
        yield request


async def test_requires_request_body_reads_a_streamed_body_first(http_url: str) -> None:
    async with trioclient.Client(auth=BodySigningAuth()) as client:
        response = await client.post(f"{http_url}/echo", content=_stream())
    echoed = response.json()
    signature = [value for key, value in echoed["headers"] if key == "x-body-sha256"]
    assert signature == [hashlib.sha256(b"streamed").hexdigest()]
