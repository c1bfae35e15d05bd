"""The Alt-Svc parser and the pool's bounded memory of HTTP/3 alternatives (no network)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from trioclient._transport._altsvc import (
    BROKEN_FOR,
    DEFAULT_MAX_AGE,
    MAX_AGE_CAP,
    MAX_VALUE,
    AltService,
    AltSvcCache,
    parse_alt_svc,
)

ORIGIN = ("https", b"example.org", 443)


def test_parse_examples() -> None:
    assert parse_alt_svc('h3=":443"') == [AltService("h3", "", 443, DEFAULT_MAX_AGE)]
    assert parse_alt_svc('h3-29=":8443"; ma=60, h3="alt.example:443"; ma=7; persist=1') == [
        AltService("h3-29", "", 8443, 60),
        AltService("h3", "alt.example", 443, 7),
    ]
    assert parse_alt_svc(" clear ") is None
    assert parse_alt_svc('h3="[::1]:8443"') == [AltService("h3", "::1", 8443, DEFAULT_MAX_AGE)]
    assert parse_alt_svc('w%3Dx%3Ay=":80"') == [AltService("w=x:y", "", 80, DEFAULT_MAX_AGE)]
    assert parse_alt_svc('h3=":443";ma="120"') == [AltService("h3", "", 443, 120)]


def test_parse_skips_malformed_entries() -> None:
    assert parse_alt_svc('h3=":0", h3=":99999", h3=":x", h3, =":1", h3="a:1') == []
    assert parse_alt_svc('h3=":443"; ma=soon, h2=":443"') == [AltService("h2", "", 443, 86400)]
    assert parse_alt_svc('h%zz=":1", h3=":1"; ma=1') == [AltService("h3", "", 1, 1)]
    assert parse_alt_svc('h3="a\\"b:1"') == [AltService("h3", 'a"b', 1, DEFAULT_MAX_AGE)]
    assert parse_alt_svc('h3="x:1\\"') == []
    assert parse_alt_svc("") == []


_protocol = st.sampled_from(["h3", "h3-29", "h2", "http%2F1.1"])
_host = st.sampled_from(["", "example.org", "[::1]", "alt.example.com"])
_port = st.integers(1, 65535)
_ma = st.one_of(st.none(), st.integers(0, 10**9))


@st.composite
def _entries(draw: st.DrawFn) -> tuple[str, AltService]:
    protocol, host, port, ma = draw(_protocol), draw(_host), draw(_port), draw(_ma)
    text = f'{protocol}="{host}:{port}"'
    if ma is not None:
        text += draw(st.sampled_from([f"; ma={ma}", f";ma={ma}", f'; ma="{ma}"']))
    text += draw(st.sampled_from(["", "; persist=1", "; x=y"]))
    decoded = protocol.replace("%2F", "/")
    return text, AltService(decoded, host.strip("[]"), port, DEFAULT_MAX_AGE if ma is None else ma)


@given(st.lists(_entries(), max_size=6), st.sampled_from([",", ", ", " ,  "]))
def test_parse_round_trip(entries: list[tuple[str, AltService]], separator: str) -> None:
    value = separator.join(text for text, _ in entries)
    assert parse_alt_svc(value) == [service for _, service in entries]


@given(st.text(max_size=200))
def test_parse_never_raises(value: str) -> None:
    result = parse_alt_svc(value)
    assert result is None or all(0 < s.port < 65536 and s.max_age >= 0 for s in result)


def test_cache_max_age_with_a_fake_clock() -> None:
    cache = AltSvcCache()
    assert cache.lookup(ORIGIN, 0.0) is None
    assert cache.learn(ORIGIN, "example.org", ['h3=":8443"; ma=60'], now=100.0)
    assert cache.lookup(ORIGIN, 159.9) == 8443
    assert cache.lookup(ORIGIN, 160.0) is None
    assert len(cache) == 0
    # default max-age, and the cap of a week
    cache.learn(ORIGIN, "example.org", ['h3=":1"'], now=0.0)
    assert cache.lookup(ORIGIN, DEFAULT_MAX_AGE - 1) == 1
    assert cache.lookup(ORIGIN, DEFAULT_MAX_AGE) is None
    cache.learn(ORIGIN, "example.org", ['h3=":1"; ma=999999999'], now=0.0)
    assert cache.lookup(ORIGIN, MAX_AGE_CAP - 1) == 1
    assert cache.lookup(ORIGIN, MAX_AGE_CAP) is None
    # ma=0 forgets
    cache.learn(ORIGIN, "example.org", ['h3=":1"'], now=0.0)
    assert not cache.learn(ORIGIN, "example.org", ['h3=":1"; ma=0'], now=1.0)
    assert cache.lookup(ORIGIN, 1.0) is None


def test_cache_first_h3_wins_and_others_are_ignored() -> None:
    cache = AltSvcCache()
    header = 'h2=":1", h3-29=":2", h3="other.example:3", h3=":4", h3=":5"'
    assert cache.learn(ORIGIN, "example.org", [header], now=0.0)
    assert cache.lookup(ORIGIN, 1.0) == 4
    assert cache.learn(ORIGIN, "EXAMPLE.org", ['h3="example.org:6"'], now=0.0)
    assert cache.lookup(ORIGIN, 1.0) == 6
    assert not cache.learn(ORIGIN, "example.org", ['h2=":1"'], now=0.0)
    assert cache.lookup(ORIGIN, 1.0) == 6  # no h3 advertised: nothing changes


def test_cache_clear_and_multiple_values() -> None:
    cache = AltSvcCache()
    assert cache.learn(ORIGIN, "example.org", ['h2=":1"', 'h3=":2"'], now=0.0)
    assert cache.lookup(ORIGIN, 0.0) == 2
    assert not cache.learn(ORIGIN, "example.org", ["clear"], now=0.0)
    assert cache.lookup(ORIGIN, 0.0) is None
    cache.learn(ORIGIN, "example.org", ['h3=":2"'], now=0.0)
    cache.clear()
    assert cache.lookup(ORIGIN, 0.0) is None


def test_cache_ignores_an_overlong_value() -> None:
    cache = AltSvcCache()
    padding = ", ".join(f'x{i}=":1"' for i in range(MAX_VALUE // 8))
    assert not cache.learn(ORIGIN, "example.org", [padding + ', h3=":443"'], now=0.0)
    assert cache.lookup(ORIGIN, 0.0) is None


def test_cache_broken_alternative_is_not_revived_until_it_expires() -> None:
    cache = AltSvcCache()
    cache.learn(ORIGIN, "example.org", ['h3=":443"'], now=0.0)
    cache.mark_broken(ORIGIN, now=10.0)
    assert cache.is_broken(ORIGIN, 10.0)
    assert cache.lookup(ORIGIN, 10.0) is None
    assert not cache.learn(ORIGIN, "example.org", ['h3=":443"'], now=10.0 + BROKEN_FOR - 1)
    assert cache.lookup(ORIGIN, 10.0 + BROKEN_FOR - 1) is None
    assert cache.learn(ORIGIN, "example.org", ['h3=":443"'], now=10.0 + BROKEN_FOR)
    assert not cache.is_broken(ORIGIN, 10.0 + BROKEN_FOR)
    assert cache.lookup(ORIGIN, 10.0 + BROKEN_FOR) == 443


def test_cache_is_bounded_lru() -> None:
    cache = AltSvcCache(max_origins=3)
    origins = [("https", f"h{i}".encode(), 443) for i in range(5)]
    for i, origin in enumerate(origins[:3]):
        cache.learn(origin, f"h{i}", ['h3=":443"'], now=0.0)
    assert cache.lookup(origins[0], 1.0) == 443  # most recently used now
    cache.learn(origins[3], "h3", ['h3=":443"'], now=0.0)
    assert len(cache) == 3
    assert cache.lookup(origins[1], 1.0) is None  # least recently used: dropped
    assert cache.lookup(origins[0], 1.0) == 443
    for origin in origins:
        cache.mark_broken(origin, now=0.0)
    assert not cache.is_broken(origins[0], 1.0)  # the broken table is bounded too
    assert cache.is_broken(origins[4], 1.0)
