"""URL normalisation: examples, and properties (idempotent; equivalent spellings collapse)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trioclient import URL, InvalidURL
from trioclient.crawl import normalize_url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("HTTP://Example.COM", "http://example.com/"),
        ("http://example.com:80/a", "http://example.com/a"),
        ("https://example.com:443/a", "https://example.com/a"),
        ("https://example.com:8443/a", "https://example.com:8443/a"),
        ("http://a/b/./c/../d", "http://a/b/d"),
        ("http://a/%7Euser/%2f%41", "http://a/~user/%2FA"),
        ("http://a/x/%2E%2E/y", "http://a/y"),
        ("http://a/p?", "http://a/p"),
        ("http://a/p?q=1#frag", "http://a/p?q=1"),
        ("http://a/p#", "http://a/p"),
        ("http://a/a b?c d", "http://a/a%20b?c%20d"),
        ("http://a/p?b=2&a=1", "http://a/p?b=2&a=1"),
        ("http://a/P/Q?X=Y", "http://a/P/Q?X=Y"),
        ("http://a/p?x=a+b", "http://a/p?x=a+b"),
        ("http://u:p@A/", "http://u:p@a/"),
        ("http://Bücher.example/", "http://xn--bcher-kva.example/"),
        ("http://[::FFFF:1.2.3.4]:80/", "http://[::ffff:1.2.3.4]/"),
    ],
)
def test_examples(url: str, expected: str) -> None:
    assert normalize_url(url) == expected


def test_sort_query() -> None:
    assert normalize_url("http://a/p?b=2&a=1&&a=0", sort_query=True) == "http://a/p?a=0&a=1&b=2"
    assert normalize_url("http://a/p?&", sort_query=True) == "http://a/p"


def test_base() -> None:
    assert normalize_url("../c/./d#x", base="http://A/b/e") == "http://a/c/d"
    assert normalize_url("//B/x", base=URL("https://a/")) == "https://b/x"
    assert normalize_url("http://c/", base="http://a/") == "http://c/"


@pytest.mark.parametrize(
    "url", ["mailto:x@example.com", "ftp://a/", "javascript:void(0)", "/relative", "http:///x"]
)
def test_not_crawlable(url: str) -> None:
    with pytest.raises(InvalidURL, match=r"http and https|host"):
        normalize_url(url)


# --- properties --------------------------------------------------------------------------------

UNRESERVED = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~"
SEGMENT_CHARS = UNRESERVED + "!$&'()*+,;=:@"
segments = st.lists(
    st.text(SEGMENT_CHARS, min_size=1, max_size=6).filter(lambda s: s not in (".", "..")),
    max_size=4,
)
hosts = st.from_regex(r"[a-z][a-z0-9-]{0,10}(\.[a-z][a-z0-9]{0,5}){0,2}", fullmatch=True)
queries = st.lists(st.text(UNRESERVED + "=", min_size=1, max_size=6), max_size=3)


@st.composite
def canonical_urls(draw: st.DrawFn) -> tuple[str, str, int | None, list[str], list[str]]:
    scheme = draw(st.sampled_from(["http", "https"]))
    host = draw(hosts)
    port = draw(st.one_of(st.none(), st.integers(1, 65535)))
    default = 80 if scheme == "http" else 443
    if port == default:
        port = None
    return scheme, host, port, draw(segments), draw(queries)


def build(scheme: str, host: str, port: int | None, path: list[str], query: list[str]) -> str:
    url = f"{scheme}://{host}" + (f":{port}" if port is not None else "")
    url += "/" + "/".join(path)
    if query:
        url += "?" + "&".join(query)
    return url


def respell(draw: st.DrawFn, text: str) -> str:
    """Percent-encode some unreserved characters, with hex digits in either case."""
    out = []
    for char in text:
        if char in UNRESERVED and draw(st.booleans()):
            escape = f"%{ord(char):02X}"
            out.append(escape.lower() if draw(st.booleans()) else escape)
        else:
            out.append(char)
    return "".join(out)


@given(st.data(), canonical_urls())
def test_equivalent_spellings_collapse(
    data: st.DataObject, parts: tuple[str, str, int | None, list[str], list[str]]
) -> None:
    scheme, host, port, path, query = parts
    canonical = normalize_url(build(scheme, host, port, path, query))
    draw = data.draw
    default = 80 if scheme == "http" else 443
    spelled_port = port if port is not None else draw(st.sampled_from([None, default]))
    netloc = host.upper() if draw(st.booleans()) else host
    netloc += f":{spelled_port}" if spelled_port is not None else ""
    spelled_path: list[str] = []
    for segment in path:
        if draw(st.booleans()):
            spelled_path.append(".")
        if draw(st.booleans()):
            spelled_path += ["zz", ".."]
        spelled_path.append(respell(draw, segment))
    url = f"{scheme.upper() if draw(st.booleans()) else scheme}://{netloc}/"
    url += "/".join(spelled_path)
    if query:
        url += "?" + "&".join(respell(draw, part) for part in query)
    elif draw(st.booleans()):
        url += "?"
    if draw(st.booleans()):
        url += "#" + draw(st.text(UNRESERVED, max_size=5))
    assert normalize_url(url) == canonical


printable_urls = st.builds(
    lambda scheme, host, rest: f"{scheme}://{host}/{rest}",
    st.sampled_from(["http", "https", "HTTP"]),
    hosts,
    st.text(
        st.characters(min_codepoint=33, max_codepoint=0x2FF, exclude_characters="#"), max_size=30
    ),
)


@given(printable_urls, st.booleans())
def test_idempotent(url: str, sort_query: bool) -> None:
    try:
        once = normalize_url(url, sort_query=sort_query)
    except InvalidURL:
        return
    assert normalize_url(once, sort_query=sort_query) == once
    assert URL(once).host  # still a URL trioclient can request
