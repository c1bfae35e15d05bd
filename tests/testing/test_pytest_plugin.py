"""The `trioclient_mock` pytest plugin, run the way users run it: small test files in a
pytester directory, with the plugin loaded from its `pytest11` entry point.

The inner test files cannot reach the network: their conftest replaces
`trio.open_tcp_stream` and `socket.getaddrinfo` with functions that fail the test, so a
request the plugin let through shows up as a failure, never as traffic.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from importlib.metadata import entry_points

import pytest
from servers.hypercorn_server import HypercornServer

import trioclient
from trioclient._pytest_plugin import TrioclientMock, UnexpectedRequest

Run = Callable[..., pytest.RunResult]

INNER_CONFTEST = """
import socket

import pytest
import trio


def _no_network(*args, **kwargs):
    raise AssertionError(f"the test tried to reach the network: {args!r}")


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setattr(trio, "open_tcp_stream", _no_network)
    monkeypatch.setattr(socket, "getaddrinfo", _no_network)
"""


@pytest.fixture
def run(pytester: pytest.Pytester) -> Run:
    """Write `source` as a test module (imports added) and run pytest on it in-process."""
    pytester.makeini(
        """
        [pytest]
        trio_mode = true
        filterwarnings = error
        addopts = --strict-markers -p no:cacheprovider
        """
    )
    pytester.makeconftest(INNER_CONFTEST)

    def run(source: str, *args: str) -> pytest.RunResult:
        header = "import pytest\nimport trio\n\nimport trioclient\n\n"
        pytester.makepyfile(header + textwrap.dedent(source))
        return pytester.runpytest(*args)

    return run


def test_the_plugin_is_registered_by_entry_point() -> None:
    (entry,) = [ep for ep in entry_points(group="pytest11") if ep.name == "trioclient"]
    assert entry.value == "trioclient._pytest_plugin"


def test_matched_response_through_a_client_and_module_level_get(run: Run) -> None:
    result = run(
        """
        async def test_it(trioclient_mock):
            trioclient_mock.add_response(
                method="GET", url="https://api.example.test/users", json=[{"id": 1}]
            )
            trioclient_mock.add_response(url="https://api.example.test/ping", text="pong")
            async with trioclient.Client() as client:
                response = await client.get("https://api.example.test/users")
            assert response.status_code == 200
            assert response.json() == [{"id": 1}]
            assert response.request.url == "https://api.example.test/users"
            assert (await trioclient.get("https://api.example.test/ping")).text == "pong"
        """
    )
    result.assert_outcomes(passed=1)


def test_matchers_pick_the_right_response(run: Run) -> None:
    result = run(
        """
        URL = "https://api.example.test/items"

        async def test_it(trioclient_mock):
            trioclient_mock.add_response(url=URL, params={"page": "2"}, text="page 2")
            trioclient_mock.add_response(url=URL + "?page=1&sort=asc", text="page 1")
            trioclient_mock.add_response(url=URL, match_json={"name": "x"}, text="json")
            trioclient_mock.add_response(url=URL, match_content=b"raw", text="content")
            trioclient_mock.add_response(
                url=URL, match_headers={"X-Token": "secret"}, text="header"
            )
            trioclient_mock.add_response(method="delete", text="any delete")
            async with trioclient.Client() as client:
                assert (await client.get(URL, params={"page": 2})).text == "page 2"
                assert (await client.get(URL + "?sort=asc&page=1")).text == "page 1"
                assert (await client.post(URL, content=b"raw")).text == "content"
                assert (await client.post(URL, json={"name": "x"})).text == "json"
                response = await client.get(URL, headers={"x-token": "secret"})
                assert response.text == "header"
                assert (await client.delete("https://other.test/")).text == "any delete"
        """
    )
    result.assert_outcomes(passed=1)


def test_unexpected_request_fails_the_test_and_lists_what_was_registered(run: Run) -> None:
    result = run(
        """
        async def test_it(trioclient_mock):
            trioclient_mock.add_response(method="POST", url="https://api.example.test/a")
            trioclient_mock.add_response(url="https://api.example.test/b", is_optional=True)
            async with trioclient.Client() as client:
                await client.get("https://api.example.test/c?x=1")
        """
    )
    result.assert_outcomes(failed=1)  # and no teardown error piled on top
    result.stdout.fnmatch_lines(
        [
            "*UnexpectedRequest: trioclient_mock has no response for the GET request to"
            " https://api.example.test/c?x=1. Registered:",
            "*- response for POST https://api.example.test/a",
            "*- response for any method https://api.example.test/b",
        ]
    )


def test_unexpected_request_swallowed_by_the_code_fails_at_teardown(run: Run) -> None:
    result = run(
        """
        async def test_it(trioclient_mock):
            try:
                await trioclient.post("https://api.example.test/", content=b"hi")
            except trioclient.TransportError as exc:
                assert exc.request.url == "https://api.example.test/"

        @pytest.mark.trioclient_mock(assert_all_requests_were_expected=False)
        async def test_opted_out(trioclient_mock):
            with pytest.raises(trioclient.TransportError):
                await trioclient.get("https://api.example.test/")
        """
    )
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_it*",
            "trioclient_mock: these requests had no registered response*",
            "- POST request to https://api.example.test/ with body b'hi'",
        ]
    )


def test_unrequested_response_fails_at_teardown_unless_opted_out(run: Run) -> None:
    result = run(
        """
        async def test_unrequested(trioclient_mock):
            trioclient_mock.add_response(url="https://api.example.test/never", status_code=204)
            trioclient_mock.add_response(url="https://api.example.test/optional", is_optional=True)

        @pytest.mark.trioclient_mock(assert_all_responses_were_requested=False)
        async def test_opted_out(trioclient_mock):
            trioclient_mock.add_response(url="https://api.example.test/never")

        async def test_failed_test_gets_no_second_report(trioclient_mock):
            trioclient_mock.add_response(url="https://api.example.test/never")
            assert False, "the real failure"

        async def test_skipped_test_gets_no_teardown_error(trioclient_mock):
            trioclient_mock.add_response(url="https://api.example.test/never")
            pytest.skip("not today")
        """
    )
    result.assert_outcomes(passed=2, failed=1, errors=1, skipped=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_unrequested*",
            "trioclient_mock: these were registered but never requested*",
            "- response for any method https://api.example.test/never",
        ]
    )
    assert "example.test/optional" not in result.stdout.str()


def test_responses_are_used_once_unless_reusable(run: Run) -> None:
    result = run(
        """
        URL = "https://api.example.test/"

        async def test_it(trioclient_mock):
            trioclient_mock.add_response(url=URL, text="first")
            trioclient_mock.add_response(url=URL, text="second")
            trioclient_mock.add_response(url=URL + "r", text="again", is_reusable=True)
            async with trioclient.Client() as client:
                assert (await client.get(URL)).text == "first"
                assert (await client.get(URL)).text == "second"
                for _ in range(3):
                    assert (await client.get(URL + "r")).text == "again"
                with pytest.raises(trioclient.TransportError, match="used up"):
                    await client.get(URL)
        """
    )
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["- GET request to https://api.example.test/"])


def test_callbacks_exceptions_streams_and_get_requests(run: Run) -> None:
    result = run(
        """
        URL = "https://api.example.test"

        def echo(request):
            return trioclient.Response(200, content=request.content)

        async def slow(request):
            await trio.sleep(0.01)
            return trioclient.Response(202, headers={"X-Seen": request.method})

        async def test_it(trioclient_mock):
            trioclient_mock.add_callback(echo, method="PUT")
            trioclient_mock.add_callback(slow, url=URL + "/slow")
            error = trioclient.ConnectError("refused")
            trioclient_mock.add_exception(error, url=URL + "/down")
            preset = trioclient.ReadError("reset", request=trioclient.Request("GET", URL))
            trioclient_mock.add_exception(preset, url=URL + "/reset")
            trioclient_mock.add_response(url=URL + "/s", stream=[b"a", b"b"], headers={"X": "1"})
            async with trioclient.Client() as client:
                assert (await client.put(URL + "/e", content=b"body")).content == b"body"
                assert (await client.get(URL + "/slow")).headers["x-seen"] == "GET"
                with pytest.raises(trioclient.ConnectError) as caught:
                    await client.get(URL + "/down")
                assert caught.value is error
                assert error.request.url == URL + "/down"
                with pytest.raises(trioclient.ReadError):
                    await client.get(URL + "/reset")
                assert preset.request.url == URL
                async with client.stream("GET", URL + "/s") as response:
                    assert [c async for c in response.aiter_raw()] == [b"a", b"b"]
                    assert response.headers["x"] == "1"
            assert len(trioclient_mock.get_requests()) == 5
            assert trioclient_mock.get_request(method="PUT").content == b"body"
            assert trioclient_mock.get_request(url=URL + "/nowhere") is None
            assert [r.url.path for r in trioclient_mock.get_requests(method="GET")] == [
                "/slow", "/down", "/reset", "/s"
            ]
            with pytest.raises(AssertionError, match="4 requests match GET any URL"):
                trioclient_mock.get_request(method="GET")
        """
    )
    result.assert_outcomes(passed=1)


def test_transport_property_and_mounts(run: Run) -> None:
    result = run(
        """
        async def test_it(trioclient_mock):
            trioclient_mock.add_response(url="https://a.test/", text="a", is_reusable=True)
            async with trioclient.Client(transport=trioclient_mock.transport) as client:
                assert (await client.get("https://a.test/")).text == "a"
            mounts = {"https://a.test": trioclient_mock.transport}
            async with trioclient.Client(mounts=mounts) as client:
                assert (await client.get("https://a.test/")).text == "a"
            assert trioclient_mock.transport is not trioclient_mock.transport
        """
    )
    result.assert_outcomes(passed=1)


def test_misuse_is_reported_clearly(run: Run) -> None:
    result = run(
        """
        def test_unknown_matcher(trioclient_mock):
            with pytest.raises(TypeError, match="Unknown matcher"):
                trioclient_mock.add_response(match_header={"a": "b"})

        def test_two_bodies(trioclient_mock):
            with pytest.raises(ValueError, match="at most one of"):
                trioclient_mock.add_response(text="a", json={})

        def test_params_need_a_url(trioclient_mock):
            with pytest.raises(ValueError, match="params= needs url="):
                trioclient_mock.add_response(params={"a": "b"})

        @pytest.mark.trioclient_mock(no_such_option=True)
        def test_unknown_option(trioclient_mock):
            pass
        """
    )
    result.assert_outcomes(passed=3, errors=1)
    result.stdout.fnmatch_lines(["*unexpected keyword argument 'no_such_option'*"])


def test_listing_names_every_matcher(run: Run) -> None:
    result = run(
        """
        import re

        async def test_it(trioclient_mock):
            trioclient_mock.add_response(url=re.compile(r"https://api\\.example\\.test/v\\d+/"))
            trioclient_mock.add_response(match_headers={"X-Key": "k"})
            trioclient_mock.add_response(match_content=b"abc")
            trioclient_mock.add_response(match_json={"a": 1})
            trioclient_mock.add_callback(lambda request: "not a response", url="https://cb.test/")
            async with trioclient.Client() as client:
                assert (await client.get("https://api.example.test/v2/x")).status_code == 200
                await client.post("https://api.example.test/v/", content=b"x" * 300)

        def test_callback_must_return_a_response(trioclient_mock):
            trioclient_mock.add_callback(lambda request: "text", url="https://cb.test/")
            with pytest.raises(TypeError, match="must return a Response, not str"):
                trio.run(trioclient.get, "https://cb.test/")

        async def test_closed_default_transport_refuses(trioclient_mock):
            from trioclient._transport._http import HTTPTransport

            transport = HTTPTransport()
            await transport.aclose()
            with pytest.raises(trioclient.ClientStateError, match="transport is closed"):
                await transport.handle_request(trioclient.Request("GET", "https://a.test/"))
        """
    )
    result.assert_outcomes(failed=1, passed=2)
    result.stdout.fnmatch_lines(
        [
            "*UnexpectedRequest: trioclient_mock has no response for the POST request to"
            f" https://api.example.test/v/ with body {b'x' * 200!r} (200 of 300 bytes)."
            " Registered:",
            r"*- response for any method https://api\.example\.test/v\d+/ (already used)",
            "*- response for any method any URL with headers {'X-Key': 'k'}",
            "*- response for any method any URL with content b'abc'",
            "*- response for any method any URL with json {'a': 1}",
            "*- callback '<lambda>' for any method https://cb.test/",
        ]
    )


def test_router_without_pytest_fixture() -> None:
    # The router is usable on its own (e.g. in another test framework) through .transport.
    mock = TrioclientMock()
    assert "0 entries" in repr(mock)
    assert mock._teardown_failures() == []
    mock.add_response(url="https://a.test/")
    assert "never requested" in mock._teardown_failures()[0]
    assert issubclass(UnexpectedRequest, trioclient.TransportError)


@pytest.mark.trioclient_mock(non_mocked_hosts="127.0.0.1")
async def test_non_mocked_hosts_reach_the_network(
    trioclient_mock: TrioclientMock, hypercorn_server: HypercornServer
) -> None:
    trioclient_mock.add_response(url="https://api.example.test/", text="mocked")
    async with trioclient.Client() as client:
        real = await client.get(f"{hypercorn_server.http_url}/echo")
        mocked = await client.get("https://api.example.test/")
    assert real.json()["method"] == "GET"
    assert mocked.text == "mocked"
    assert [r.url.host for r in trioclient_mock.get_requests()] == ["api.example.test"]


@pytest.mark.trioclient_mock(should_mock=lambda request: request.url.path != "/echo")
async def test_should_mock_decides_per_request(
    trioclient_mock: TrioclientMock, http_url: str
) -> None:
    trioclient_mock.add_response(url=f"{http_url}/mocked", text="mocked")
    async with trioclient.Client() as client:
        assert (await client.get(f"{http_url}/echo")).json()["method"] == "GET"
        assert (await client.get(f"{http_url}/mocked")).text == "mocked"
