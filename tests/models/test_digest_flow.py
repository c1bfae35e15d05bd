"""DigestAuth without a network: the WWW-Authenticate parser (Hypothesis), and the flow
driven by hand with next()/send(), checked against RFC 7616's own example.

End-to-end runs against httpbin and an independent RFC 7616 server are in
tests/client/test_auth_schemes.py.
"""

from __future__ import annotations

import re
from collections.abc import Generator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import trioclient
from trioclient._digest import Challenge, ChallengeError, parse_challenges

# --- the challenge parser --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('Basic realm="x"', [Challenge("basic", {"realm": "x"})]),
        (
            'Digest realm="a, b", nonce=abc, qop="auth,auth-int", stale=TRUE',
            [
                Challenge(
                    "digest",
                    {"realm": "a, b", "nonce": "abc", "qop": "auth,auth-int", "stale": "TRUE"},
                )
            ],
        ),
        (
            'Basic realm="simple", Newauth realm="apps", type=1, title="Login to \\"apps\\""',
            [
                Challenge("basic", {"realm": "simple"}),
                Challenge("newauth", {"realm": "apps", "type": "1", "title": 'Login to "apps"'}),
            ],
        ),
        (
            "Negotiate abc+/==, Basic",
            [Challenge("negotiate", {}, "abc+/=="), Challenge("basic", {})],
        ),
        ("Bearer", [Challenge("bearer", {})]),
        (
            '  ,Digest  REALM = "r" ,, NONCE=n  ',
            [Challenge("digest", {"realm": "r", "nonce": "n"})],
        ),
        ("", []),
    ],
)
def test_parse_challenges(value: str, expected: list[Challenge]) -> None:
    assert parse_challenges(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        'Digest realm="unterminated',
        'Digest realm="a" nonce="b"',
        "Digest realm=",
        '"quoted"',
        "Digest realm=,",
        'Digest realm="\\',
    ],
)
def test_malformed_challenges(value: str) -> None:
    with pytest.raises(ChallengeError):
        parse_challenges(value)


@given(st.text(max_size=80))
def test_the_parser_returns_challenges_or_raises_challenge_error(value: str) -> None:
    try:
        challenges = parse_challenges(value)
    except ChallengeError:
        return
    for challenge in challenges:
        assert re.fullmatch(r"[!#$%&'*+\-.^_`|~0-9a-z]+", challenge.scheme)


tokens = st.text(st.sampled_from("abcXYZ019-_.~!#$%&'*+^`|"), min_size=1, max_size=8)
texts = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=12)


def quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


@given(
    st.lists(
        st.tuples(
            tokens,
            st.dictionaries(tokens.map(str.lower), st.tuples(texts, st.booleans()), max_size=4),
        ),
        min_size=1,
        max_size=3,
    )
)
def test_rendered_challenges_parse_back(
    challenges: list[tuple[str, dict[str, tuple[str, bool]]]],
) -> None:
    """Render challenges (values quoted, or bare when they are tokens) and parse them back."""
    rendered = []
    for scheme, params in challenges:
        items = []
        for name, (text, bare) in params.items():
            as_token = bare and re.fullmatch(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+", text)
            items.append(f"{name}={text if as_token else quote(text)}")
        rendered.append(f"{scheme} {', '.join(items)}" if items else scheme)
    parsed = parse_challenges(", ".join(rendered))
    assert parsed == [
        Challenge(scheme.lower(), {name: text for name, (text, _) in params.items()})
        for scheme, params in challenges
    ]


# --- the flow, by hand -----------------------------------------------------------------------


def respond(request: trioclient.Request, status: int, *challenges: str) -> trioclient.Response:
    headers = [("WWW-Authenticate", value) for value in challenges]
    return trioclient.Response(status, headers=headers, request=request)


def fields(authorization: str) -> dict[str, str]:
    assert authorization.startswith("Digest ")
    return {
        name: value.strip('"')
        for name, value in re.findall(r'([\w*]+)=("(?:[^"\\]|\\.)*"|[^,\s]+)', authorization)
    }


def run(
    auth: trioclient.Auth, request: trioclient.Request
) -> Generator[trioclient.Request, trioclient.Response, None]:
    return auth.auth_flow(request)


def test_rfc_7616_example_sha_256() -> None:
    """RFC 7616 3.9.1, with its cnonce: the response must be the RFC's."""
    auth = trioclient.DigestAuth("Mufasa", "Circle of Life")
    request = trioclient.Request("GET", "http://www.example.org/dir/index.html")
    flow = run(auth, request)
    first = next(flow)
    assert "authorization" not in first.headers
    challenge = (
        'Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=SHA-256, '
        'nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", '
        'opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"'
    )
    import trioclient._digest as digest

    original = digest.secrets.token_hex
    digest.secrets.token_hex = lambda n: "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"  # type: ignore[assignment]
    try:
        second = flow.send(respond(request, 401, challenge))
    finally:
        digest.secrets.token_hex = original
    sent = fields(second.headers["authorization"])
    assert sent["response"] == "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
    assert sent["nc"] == "00000001"
    assert sent["qop"] == "auth"
    assert sent["uri"] == "/dir/index.html"
    assert sent["opaque"] == "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"
    with pytest.raises(StopIteration):
        flow.send(respond(second, 200))


def test_the_nonce_count_goes_on_across_requests_and_a_new_nonce_restarts_it() -> None:
    auth = trioclient.DigestAuth("u", "p")
    challenge = 'Digest realm="r", nonce="n1", qop=auth'
    counts = []
    for index in range(3):
        request = trioclient.Request("GET", "http://example.org/a")
        flow = run(auth, request)
        sent = next(flow)
        if index == 0:
            sent = flow.send(respond(sent, 401, challenge))
        counts.append(fields(sent.headers["authorization"])["nc"])
        with pytest.raises(StopIteration):
            flow.send(respond(sent, 200))
    assert counts == ["00000001", "00000002", "00000003"]
    # Another origin starts bare (no credentials sent to a host that did not ask).
    other = next(run(auth, trioclient.Request("GET", "http://example.net/a")))
    assert "authorization" not in other.headers
    # A stale nonce: the new one's count starts at 1.
    request = trioclient.Request("GET", "http://example.org/a")
    flow = run(auth, request)
    sent = next(flow)
    assert fields(sent.headers["authorization"])["nc"] == "00000004"
    sent = flow.send(respond(sent, 401, 'Digest realm="r", nonce="n2", qop=auth, stale=true'))
    assert fields(sent.headers["authorization"])["nonce"] == "n2"
    assert fields(sent.headers["authorization"])["nc"] == "00000001"


def test_wrong_credentials_end_the_flow_and_stale_is_answered_once() -> None:
    auth = trioclient.DigestAuth("u", "p")
    request = trioclient.Request("GET", "http://example.org/")
    flow = run(auth, request)
    sent = flow.send(respond(next(flow), 401, 'Digest realm="r", nonce="a"'))
    with pytest.raises(StopIteration):  # refused without stale: wrong password
        flow.send(respond(sent, 401, 'Digest realm="r", nonce="b"'))

    flow = run(auth, request)
    sent = flow.send(respond(next(flow), 401, 'Digest realm="r", nonce="c"'))
    sent = flow.send(respond(sent, 401, 'Digest realm="r", nonce="d", stale=true'))
    assert fields(sent.headers["authorization"])["nonce"] == "d"
    with pytest.raises(StopIteration):  # a second stale: not answered again
        flow.send(respond(sent, 401, 'Digest realm="r", nonce="e", stale=true'))


def test_rfc_2069_without_qop_userhash_and_non_ascii_user() -> None:
    request = trioclient.Request("GET", "http://example.org/x?y=1")
    flow = run(trioclient.DigestAuth("ü", "p"), request)
    sent = flow.send(respond(next(flow), 401, 'Digest realm="r", nonce="n", algorithm=MD5'))
    answer = fields(sent.headers["authorization"])
    assert answer["username*"] == "UTF-8''%C3%BC"
    assert "qop" not in answer
    assert "nc" not in answer
    assert answer["uri"] == "/x?y=1"

    flow = run(trioclient.DigestAuth("user", "p"), request)
    sent = flow.send(respond(next(flow), 401, 'Digest realm="r", nonce="n", userhash=true'))
    answer = fields(sent.headers["authorization"])
    assert answer["userhash"] == "true"
    assert re.fullmatch("[0-9a-f]{32}", answer["username"])


def test_the_first_supported_digest_challenge_is_answered() -> None:
    request = trioclient.Request("GET", "http://example.org/")
    flow = run(trioclient.DigestAuth("u", "p"), request)
    sent = flow.send(
        respond(
            next(flow),
            401,
            'Basic realm="b", Digest realm="r", nonce="n", algorithm=UNKNOWN-1',
            'Digest realm="r", nonce="n", algorithm=SHA-512-256-sess, qop=auth',
        )
    )
    assert fields(sent.headers["authorization"])["algorithm"] == "SHA-512-256-sess"


@pytest.mark.parametrize(
    ("challenge", "message"),
    [
        ('Digest realm="r"', "has no nonce"),
        ('Digest nonce="n"', "has no realm"),
        ('Digest realm="r", nonce="n", algorithm=MD6', "algorithm 'MD6'"),
        ('Digest realm="r", nonce="n", qop="auth-conf"', "answers auth and auth-int only"),
        ('Digest realm="r, nonce="n"', "Cannot parse"),
    ],
)
def test_a_challenge_that_cannot_be_answered_is_a_remote_protocol_error(
    challenge: str, message: str
) -> None:
    request = trioclient.Request("GET", "http://example.org/")
    flow = run(trioclient.DigestAuth("u", "p"), request)
    with pytest.raises(trioclient.RemoteProtocolError, match=message) as info:
        flow.send(respond(next(flow), 401, challenge))
    assert info.value.request is request


def test_auth_int_needs_a_bytes_body() -> None:
    async def chunks() -> Any:
        yield b"x"

    challenge = 'Digest realm="r", nonce="n", qop=auth-int'
    request = trioclient.Request("POST", "http://example.org/", content=b"body")
    flow = run(trioclient.DigestAuth("u", "p"), request)
    sent = flow.send(respond(next(flow), 401, challenge))
    assert fields(sent.headers["authorization"])["qop"] == "auth-int"

    request = trioclient.Request("POST", "http://example.org/", content=chunks())
    flow = run(trioclient.DigestAuth("u", "p"), request)
    with pytest.raises(trioclient.RemoteProtocolError, match="auth-int"):
        flow.send(respond(next(flow), 401, challenge))


def test_other_schemes_and_statuses_end_the_flow() -> None:
    request = trioclient.Request("GET", "http://example.org/")
    for response in (respond(request, 401, 'Basic realm="x"'), respond(request, 403)):
        flow = run(trioclient.DigestAuth("u", "p"), request)
        next(flow)
        with pytest.raises(StopIteration):
            flow.send(response)


@pytest.mark.parametrize(
    ("args", "error"),
    [((1, "p"), TypeError), (("u", None), TypeError), (("a\r\nb", "p"), ValueError)],
)
def test_digest_auth_arguments(args: tuple[Any, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        trioclient.DigestAuth(*args)


def test_bytes_credentials() -> None:
    request = trioclient.Request("GET", "http://example.org/")
    flow = run(trioclient.DigestAuth(b"u", b"p"), request)
    sent = flow.send(respond(next(flow), 401, 'Digest realm="r", nonce="n"'))
    assert fields(sent.headers["authorization"])["username"] == "u"


def test_remembered_origins_are_bounded() -> None:
    auth = trioclient.DigestAuth("u", "p")
    for index in range(70):
        request = trioclient.Request("GET", f"http://host{index}.example/")
        flow = run(auth, request)
        flow.send(respond(next(flow), 401, 'Digest realm="r", nonce="n"'))
    assert len(auth._remembered) == 64
    first = next(run(auth, trioclient.Request("GET", "http://host0.example/")))
    assert "authorization" not in first.headers  # forgotten: the oldest went first


def test_a_challenge_with_the_same_nonce_keeps_counting() -> None:
    """A server that challenges again with the nonce we used: nc must not repeat."""
    auth = trioclient.DigestAuth("u", "p")
    request = trioclient.Request("GET", "http://example.org/")
    flow = run(auth, request)
    sent = flow.send(respond(next(flow), 401, 'Digest realm="r", nonce="n", qop=auth'))
    assert fields(sent.headers["authorization"])["nc"] == "00000001"
    flow = run(auth, request)
    sent = flow.send(respond(next(flow), 401, 'Digest realm="r", nonce="n", qop=auth'))
    assert fields(sent.headers["authorization"])["nc"] == "00000003"  # 2 went with round 1
