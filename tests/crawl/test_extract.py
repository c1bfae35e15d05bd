"""Link extraction (selectolax/lexbor): resolution, filtering, de-duplication, robustness."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trioclient.crawl import extract_links
from trioclient.crawl._demo_site import DemoSite
from trioclient.crawl._extract import decode_html

PAGE = "http://example.test/dir/page.html"


def test_resolves_and_normalises_in_order() -> None:
    html = """<html><body>
      <a href="b.html">1</a>
      <a href=" /x/./y#frag ">2</a>
      <a href="HTTP://EXAMPLE.test:80/x/y">dup of 2</a>
      <a href="//other.test/z?">3</a>
      <a href="https://sec.test/%7Ea">4</a>
      <map><area href="area.html"></map>
      <a href="ja\tva/script.html">tab removed</a>
    </body></html>"""
    assert extract_links(html, PAGE) == [
        "http://example.test/dir/b.html",
        "http://example.test/x/y",
        "http://other.test/z",
        "https://sec.test/~a",
        "http://example.test/dir/area.html",
        "http://example.test/dir/java/script.html",
    ]


def test_drops_what_cannot_be_crawled() -> None:
    html = """<a href="mailto:a@b">m</a><a href="javascript:void(0)">j</a><a href="">e</a>
    <a href>none</a><a href="#top">f</a><a href="data:text/html,x">d</a><a href="ftp://h/">f</a>
    <a href="http://[bad/">bad</a><a name="x">no href</a><a href="http://h:99999/">port</a>"""
    assert extract_links(html, PAGE) == []


def test_base_href() -> None:
    html = '<head><base href="/other/"><base href="/ignored/"></head><a href="x">x</a>'
    assert extract_links(html, PAGE) == ["http://example.test/other/x"]
    broken = '<head><base href="mailto:x"></head><a href="x">x</a>'
    assert extract_links(broken, PAGE) == ["http://example.test/dir/x"]


def test_nofollow() -> None:
    html = '<a href="a" rel="NoFollow noopener">a</a><a href="b">b</a>'
    assert extract_links(html, PAGE) == ["http://example.test/dir/b"]
    assert extract_links(html, PAGE, follow_nofollow=True) == [
        "http://example.test/dir/a",
        "http://example.test/dir/b",
    ]
    meta = '<meta name="Robots" content="noindex, NOFOLLOW"><a href="b">b</a>'
    assert extract_links(meta, PAGE) == []
    assert extract_links(meta, PAGE, follow_nofollow=True) == ["http://example.test/dir/b"]
    none = '<meta name="robots" content="none"><a href="b">b</a>'
    assert extract_links(none, PAGE) == []


def test_canonical_optional() -> None:
    html = '<link rel="canonical" href="/c"><link rel="stylesheet" href="/s.css"><a href="a">a</a>'
    assert extract_links(html, PAGE) == ["http://example.test/dir/a"]
    assert extract_links(html, PAGE, canonical=True) == [
        "http://example.test/dir/a",
        "http://example.test/c",
    ]


def test_sort_query_and_max_links() -> None:
    html = '<a href="?b=1&a=2">q</a>' + "".join(f'<a href="/{i}">{i}</a>' for i in range(50))
    links = extract_links(html, PAGE, sort_query=True, max_links=3)
    assert links == [
        "http://example.test/dir/page.html?a=2&b=1",
        "http://example.test/0",
        "http://example.test/1",
    ]
    assert extract_links(html, PAGE, max_links=0) == []
    with pytest.raises(ValueError, match="max_links"):
        extract_links(html, PAGE, max_links=-1)


def test_broken_html() -> None:
    html = '<div><a href="a">unclosed <p><a href=b>b<table><a href="c"></td></tr>'
    assert extract_links(html, PAGE) == [
        "http://example.test/dir/a",
        "http://example.test/dir/b",
        "http://example.test/dir/c",
    ]


def test_bytes_and_charset() -> None:
    body = '<a href="/caf\u00e9">x</a>'
    assert extract_links(
        body.encode("latin-1"), PAGE, content_type="text/html; charset=latin-1"
    ) == ["http://example.test/caf%C3%A9"]
    assert extract_links(body.encode(), PAGE) == ["http://example.test/caf%C3%A9"]
    assert decode_html(b"\xff", "text/html; charset=no-such-codec") == "\ufffd"


def test_demo_site_pages() -> None:
    site = DemoSite(500)
    for i in range(1, 500, 7):
        page_url = f"http://127.0.0.1:8000/page/{i}"
        links = extract_links(site.render_page(i, "127.0.0.1:8000"), page_url)
        pages = {link for link in links if "/page/" in link and "127.0.0.1" in link}
        assert pages == {f"http://127.0.0.1:8000{path}" for path in site.page_links(i)}
    home = extract_links(site.render_page(0, "127.0.0.1:8000"), "http://127.0.0.1:8000/")
    assert "http://127.0.0.1:8000/page/1" in home
    assert "http://127.0.0.1:8000/about.txt" in home


@given(st.text(max_size=40), st.sampled_from(["a", "area", "base", "link"]))
def test_any_href_is_a_url_or_dropped(href: str, tag: str) -> None:
    html = f'<{tag} rel="canonical" href="{href.replace(chr(34), "&quot;")}">x</{tag}><a href=y>'
    for link in extract_links(html, PAGE, canonical=True):
        assert link.startswith(("http://", "https://"))
