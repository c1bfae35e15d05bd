"""The `trioclient_mock` pytest fixture: canned responses for the code under test.

Theory of operation
-------------------
Installing trioclient registers this module as a pytest plugin (entry point `pytest11`).
A test that asks for `trioclient_mock` gets a `TrioclientMock`, a router: the test registers
responses (`add_response`), callbacks (`add_callback`) or exceptions (`add_exception`), each
with matchers (method, URL, query params, headers, body, JSON), and every request the code
under test sends is answered by the first registered entry that matches it and is not used
up. An entry answers once unless registered with `is_reusable=True`.

Requests reach the router in two ways:

- For the duration of the test, `HTTPTransport.handle_request` is replaced (with pytest's
  `monkeypatch`), so every `Client` built without `transport=`, including the one behind
  module-level `trioclient.get()`, is answered by the router. Nothing is connected. Hosts
  listed in the marker's `non_mocked_hosts` (or requests for which its `should_mock`
  returns False) still go to the network.
- `trioclient_mock.transport` is a fresh `MockTransport` over the router each time it is
  read, for `Client(transport=...)` or `mounts=`.

Failures, and why: a request nothing matches raises `UnexpectedRequest`, whose message
names the request and lists every registered entry. It is a `TransportError`, so the code
under test sees what a real network failure would show it and its error handling runs as
in production. Because such code may catch it and carry on, the test also fails at teardown
when a request was unexpected, and when a registered entry was never requested (the mock
was meant for a request that did not happen). Both checks are skipped when the test itself
failed, and can be turned off:

    @pytest.mark.trioclient_mock(assert_all_responses_were_requested=False)

Marker options: `assert_all_responses_were_requested` (default True),
`assert_all_requests_were_expected` (True), `non_mocked_hosts` (host names),
`should_mock` (a function of the `Request`).

Rejected alternatives: patching `Client.__init__` (misses subclasses and clients made
before the test) and only offering a transport (misses clients built inside the code under
test). An AssertionError for unexpected requests would escape the code's error handling,
which then goes untested; the teardown check keeps the test honest instead.
"""

from __future__ import annotations

import inspect
import json as jsonlib
import re
from collections.abc import Awaitable, Callable, Collection, Generator, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypedDict

import pytest
import trio

from ._exceptions import ClientStateError, HTTPError, TransportError
from ._headers import Headers
from ._request import Request
from ._response import Response
from ._transport._http import HTTPTransport
from ._transport._mock import MockTransport
from ._types import HeaderTypes, QueryParamTypes
from ._urls import URL

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["Matchers", "TrioclientMock", "UnexpectedRequest"]


class UnexpectedRequest(TransportError):
    """`trioclient_mock` has no response registered for this request (see the message)."""


class Matchers(TypedDict, total=False):
    """What a registered response (or `get_requests`) matches; each one left out matches all.

    `method` (any case); `url` (a str or URL: scheme, host, port, path and query must equal,
    query order aside; or a compiled regex, `re.match`ed against the URL text); `params`
    (query parameters merged into `url`); `match_headers` (each must be present with that
    value); `match_content` (the body, as bytes); `match_json` (the body parsed as JSON).
    """

    method: str | None
    url: str | URL | re.Pattern[str] | None
    params: QueryParamTypes | None
    match_headers: Mapping[str, str] | None
    match_content: bytes | None
    match_json: Any


class _Matcher:
    __slots__ = ("content", "headers", "json", "method", "url")

    def __init__(self, matchers: Mapping[str, Any]) -> None:
        unknown = set(matchers) - set(Matchers.__annotations__)
        if unknown:
            raise TypeError(
                f"Unknown matcher(s) {sorted(unknown)}; see TrioclientMock.add_response."
            )
        method, url, params = (matchers.get(k) for k in ("method", "url", "params"))
        self.method: str | None = None if method is None else method.upper()
        if params is not None:
            if not isinstance(url, (str, URL)):
                raise ValueError("params= needs url= given as a str or URL, not a regex.")
            url = URL(url).copy_merge_params(params)
        self.url: URL | re.Pattern[str] | None = URL(url) if isinstance(url, str) else url
        headers = matchers.get("match_headers")
        self.headers = None if headers is None else dict(headers)
        self.content: bytes | None = matchers.get("match_content")
        self.json: Any = matchers.get("match_json")

    def matches(self, request: Request) -> bool:
        if self.method is not None and request.method != self.method:
            return False
        if isinstance(self.url, URL) and not _same_url(self.url, request.url):
            return False
        if isinstance(self.url, re.Pattern) and not self.url.match(str(request.url)):
            return False
        if self.headers is not None:
            for name, value in self.headers.items():
                if request.headers.get(name) != value:
                    return False
        if self.content is not None and request.content != self.content:
            return False
        if self.json is not None:
            try:
                return bool(jsonlib.loads(request.content) == self.json)
            except ValueError:
                return False
        return True

    def __str__(self) -> str:
        url = self.url.pattern if isinstance(self.url, re.Pattern) else self.url
        text = f"{self.method or 'any method'} {url or 'any URL'}"
        if self.headers is not None:
            text += f" with headers {self.headers}"
        if self.content is not None:
            text += f" with content {self.content!r}"
        if self.json is not None:
            text += f" with json {self.json!r}"
        return text


def _same_url(expected: URL, actual: URL) -> bool:
    return (
        (expected.scheme, expected.host, expected.port, expected.path)
        == (actual.scheme, actual.host, actual.port, actual.path)
    ) and sorted(expected.params.multi_items()) == sorted(actual.params.multi_items())


def _describe_request(request: Request) -> str:
    text = f"{request.method} request to {request.url}"
    body = request.stream
    if isinstance(body, bytes) and body:
        text += f" with body {body[:200]!r}"
        if len(body) > 200:
            text += f" (200 of {len(body)} bytes)"
    return text


class _Entry:
    __slots__ = ("answer", "calls", "kind", "matcher", "optional", "reusable")

    def __init__(
        self,
        kind: str,
        answer: Callable[[Request], Awaitable[Response]],
        matcher: _Matcher,
        reusable: bool,
        optional: bool,
    ) -> None:
        self.kind, self.answer, self.matcher = kind, answer, matcher
        self.reusable, self.optional = reusable, optional
        self.calls = 0

    @property
    def available(self) -> bool:
        return self.reusable or self.calls == 0

    def __str__(self) -> str:
        state = ""
        if self.reusable:
            state = f" (reusable, used {self.calls}x)"
        elif self.calls:
            state = " (already used)"
        return f"{self.kind} for {self.matcher}{state}"


class _Chunks:
    """A response body sent as the given chunks, a checkpoint before each."""

    __slots__ = ("_chunks",)

    def __init__(self, chunks: list[bytes]) -> None:
        self._chunks = iter(chunks)

    def __aiter__(self) -> _Chunks:
        return self

    async def __anext__(self) -> bytes:
        await trio.lowlevel.checkpoint()
        try:
            return next(self._chunks)
        except StopIteration:
            raise StopAsyncIteration from None


@dataclass(frozen=True)
class _Options:
    assert_all_responses_were_requested: bool = True
    assert_all_requests_were_expected: bool = True
    non_mocked_hosts: Collection[str] = ()
    should_mock: Callable[[Request], bool] | None = None

    def mocks(self, request: Request) -> bool:
        hosts = self.non_mocked_hosts
        if isinstance(hosts, str):  # one host given as a plain string
            hosts = [hosts]
        if request.url.host.lower() in {host.lower() for host in hosts}:
            return False
        return self.should_mock is None or self.should_mock(request)


class TrioclientMock:
    """The `trioclient_mock` fixture: register responses, then inspect the requests sent.

    Register with `add_response`, `add_callback` and `add_exception`, each taking the
    `Matchers` keywords plus `is_reusable` (answer any number of requests, not one) and
    `is_optional` (no teardown failure if never requested). Entries are tried in the order
    registered. Read back with `get_requests` / `get_request`; hand `transport` to a client.
    """

    def __init__(self, options: _Options | None = None) -> None:
        self._options = options or _Options()
        self._entries: list[_Entry] = []
        self._requests: list[Request] = []
        self._unexpected: list[Request] = []

    def add_response(
        self,
        *,
        status_code: int = 200,
        headers: HeaderTypes | None = None,
        content: bytes | None = None,
        text: str | None = None,
        json: Any = None,
        stream: Iterable[bytes] | None = None,
        http_version: str = "HTTP/1.1",
        is_reusable: bool = False,
        is_optional: bool = False,
        **matchers: Unpack[Matchers],
    ) -> None:
        """Answer a matching request with this response (`stream=`: a list of chunks)."""
        if sum(body is not None for body in (content, text, json, stream)) > 1:
            raise ValueError("Give at most one of content=, text=, json= and stream=.")
        chunks = None if stream is None else [bytes(chunk) for chunk in stream]
        saved_headers = Headers(headers)

        async def answer(request: Request) -> Response:
            return Response(
                status_code,
                headers=Headers(saved_headers),
                content=content,
                text=text,
                json=json,
                stream=None if chunks is None else _Chunks(chunks),
                request=request,
                extensions={"http_version": http_version},
            )

        self._add("response", answer, matchers, is_reusable, is_optional)

    def add_callback(
        self,
        callback: Callable[[Request], Response | Awaitable[Response]],
        *,
        is_reusable: bool = False,
        is_optional: bool = False,
        **matchers: Unpack[Matchers],
    ) -> None:
        """Answer a matching request with `callback(request)` (sync or async; body read)."""

        async def answer(request: Request) -> Response:
            result = callback(request)
            if inspect.isawaitable(result):
                result = await result
            if not isinstance(result, Response):
                raise TypeError(
                    f"The trioclient_mock callback {callback!r} must return a Response, not"
                    f" {type(result).__name__}."
                )
            return result

        self._add(
            f"callback {getattr(callback, '__name__', callback)!r}",
            answer,
            matchers,
            is_reusable,
            is_optional,
        )

    def add_exception(
        self,
        exception: BaseException,
        *,
        is_reusable: bool = False,
        is_optional: bool = False,
        **matchers: Unpack[Matchers],
    ) -> None:
        """Raise `exception` for a matching request (its `.request` is set if unset)."""

        async def answer(request: Request) -> Response:
            if isinstance(exception, HTTPError) and exception._request is None:
                exception.request = request
            raise exception

        self._add(f"exception {exception!r}", answer, matchers, is_reusable, is_optional)

    def _add(
        self,
        kind: str,
        answer: Callable[[Request], Awaitable[Response]],
        matchers: Mapping[str, Any],
        reusable: bool,
        optional: bool,
    ) -> None:
        self._entries.append(_Entry(kind, answer, _Matcher(matchers), reusable, optional))

    def get_requests(self, **matchers: Unpack[Matchers]) -> list[Request]:
        """The requests answered by the mock (or unexpected) that match, in order sent."""
        matcher = _Matcher(matchers)
        return [request for request in self._requests if matcher.matches(request)]

    def get_request(self, **matchers: Unpack[Matchers]) -> Request | None:
        """The one matching request, None if none; AssertionError if several match."""
        requests = self.get_requests(**matchers)
        if len(requests) > 1:
            raise AssertionError(
                f"{len(requests)} requests match {_Matcher(matchers)}; use get_requests():\n"
                + "\n".join(f"- {_describe_request(request)}" for request in requests)
            )
        return requests[0] if requests else None

    @property
    def transport(self) -> MockTransport:
        """A new `MockTransport` answering from this mock (one per client: clients close it)."""
        return MockTransport(self.handle_request)

    async def handle_request(self, request: Request) -> Response:
        """Answer `request` from the registered entries; UnexpectedRequest if none matches."""
        await request.aread()
        self._requests.append(request)
        for entry in self._entries:
            if entry.available and entry.matcher.matches(request):
                entry.calls += 1
                response = await entry.answer(request)
                if response._request is None:
                    response.request = request
                return response
        self._unexpected.append(request)
        raise UnexpectedRequest(self._explain(request), request=request)

    def _explain(self, request: Request) -> str:
        listing = "\n".join(f"- {entry}" for entry in self._entries) or "- (nothing)"
        hint = ""
        if any(e.matcher.matches(request) for e in self._entries):
            hint = "\nEntries matching it were used up; register it again or with is_reusable=True."
        return (
            f"trioclient_mock has no response for the {_describe_request(request)}."
            f" Registered:\n{listing}{hint}"
        )

    def _teardown_failures(self) -> list[str]:
        failures = []
        options = self._options
        unused = [entry for entry in self._entries if entry.calls == 0 and not entry.optional]
        if options.assert_all_responses_were_requested and unused:
            failures.append(
                "trioclient_mock: these were registered but never requested (register them"
                " with is_optional=True, or mark the test with @pytest.mark.trioclient_mock("
                "assert_all_responses_were_requested=False)):\n"
                + "\n".join(f"- {entry}" for entry in unused)
            )
        if options.assert_all_requests_were_expected and self._unexpected:
            failures.append(
                "trioclient_mock: these requests had no registered response (the code under"
                " test received UnexpectedRequest, a TransportError, and went on):\n"
                + "\n".join(f"- {_describe_request(request)}" for request in self._unexpected)
            )
        return failures

    def __repr__(self) -> str:
        return f"<TrioclientMock {len(self._entries)} entries, {len(self._requests)} requests>"


_TEST_FAILED = pytest.StashKey[bool]()


@pytest.fixture
def trioclient_mock(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Generator[TrioclientMock, None, None]:
    """Answer every trioclient request of the test from registered responses, no network."""
    marker = request.node.get_closest_marker("trioclient_mock")
    options = _Options(**marker.kwargs) if marker is not None else _Options()
    mock = TrioclientMock(options)
    real_handle_request = HTTPTransport.handle_request

    async def handle_request(self: HTTPTransport, sent: Request) -> Response:
        if not options.mocks(sent):
            return await real_handle_request(self, sent)
        await trio.lowlevel.checkpoint()
        if self.is_closed:
            raise ClientStateError("Cannot send a request: the transport is closed.")
        return await mock.handle_request(sent)

    monkeypatch.setattr(HTTPTransport, "handle_request", handle_request)
    yield mock
    if request.node.stash.get(_TEST_FAILED, False):
        return
    failures = mock._teardown_failures()
    if failures:
        pytest.fail("\n\n".join(failures), pytrace=False)


def pytest_configure(config: pytest.Config) -> None:
    """Register the `trioclient_mock` marker (for --strict-markers)."""
    config.addinivalue_line(
        "markers",
        "trioclient_mock(assert_all_responses_were_requested=True,"
        " assert_all_requests_were_expected=True, non_mocked_hosts=(), should_mock=None):"
        " options of the trioclient_mock fixture",
    )


# Old-style hookwrapper on purpose: this module loads (entry point) in every pytest session
# of an environment where trioclient is installed, including old pytest/pluggy versions
# that do not know `wrapper=True`.
@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, Any, None]:
    """Remember a test that failed or was skipped, so the teardown checks do not pile on."""
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if report.when != "teardown" and not report.passed:
        item.stash[_TEST_FAILED] = True
