"""`Response.links`: the Link header (RFC 8288), against examples, httpx, and generated headers."""

from __future__ import annotations

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

import trioclient
from trioclient._links import links_by_relation, parse_link_header


def links(value: str) -> dict[str, dict[str, str]]:
    return trioclient.Response(200, headers={"Link": value}).links


def test_the_github_pagination_header() -> None:
    value = (
        '<https://api.github.com/repositories/1/issues?page=2>; rel="next", '
        '<https://api.github.com/repositories/1/issues?page=5>; rel="last"'
    )
    assert links(value) == {
        "next": {"url": "https://api.github.com/repositories/1/issues?page=2", "rel": "next"},
        "last": {"url": "https://api.github.com/repositories/1/issues?page=5", "rel": "last"},
    }
    assert links(value) == httpx.Response(200, headers={"Link": value}).links


def test_no_header_and_empty_header() -> None:
    assert trioclient.Response(200).links == {}
    assert links("") == {}
    assert links(" , ,") == {}


def test_relative_urls_are_left_as_sent() -> None:
    # httpx does not resolve them against the request URL either.
    assert links("</items?page=2>; rel=next")["next"]["url"] == "/items?page=2"


def test_quoted_strings_hold_commas_semicolons_and_escapes() -> None:
    value = r'<a>; rel=next; title="one, <two>; three=\"3\"", <b>; rel=prev'
    assert links(value) == {
        "next": {"url": "a", "rel": "next", "title": 'one, <two>; three="3"'},
        "prev": {"url": "b", "rel": "prev"},
    }


def test_several_relation_types_are_several_links() -> None:
    # RFC 8288 section 3.3; httpx would key this one "next last".
    found = links('<a>; rel="next last"')
    assert found == {
        "next": {"url": "a", "rel": "next last"},
        "last": {"url": "a", "rel": "next last"},
    }


def test_parameters_without_a_value_names_in_any_case_and_repeats() -> None:
    assert parse_link_header("<a>; crossorigin; REL=next; rel=prev; Title = x") == [
        {"url": "a", "crossorigin": "", "rel": "next", "title": "x"}
    ]


def test_a_link_without_rel_is_keyed_by_its_url_and_later_keys_win() -> None:
    assert links("<a>, <b>; rel=x, <c>; rel=x") == {
        "a": {"url": "a"},
        "x": {"url": "c", "rel": "x"},
    }


def test_malformed_parts_are_skipped_to_the_next_link() -> None:
    assert parse_link_header('<a>; rel=next junk "q,q" more, <b>') == [
        {"url": "a", "rel": "next"},
        {"url": "b"},
    ]
    assert parse_link_header("no-brackets; rel=x, <unterminated") == [
        {"url": "no-brackets", "rel": "x"},
        {"url": "unterminated"},
    ]
    assert parse_link_header('<a>; title="unterminated, <b>') == [
        {"url": "a", "title": "unterminated, <b>"}
    ]
    assert parse_link_header("<a>; url=b") == [{"url": "a"}]  # never hides the link's URL


def test_several_link_headers_are_one_list() -> None:
    response = trioclient.Response(
        200, headers=[("Link", "<a>; rel=next"), ("Link", "<b>; rel=prev")]
    )
    assert set(response.links) == {"next", "prev"}


# -- generated headers -------------------------------------------------------------------------

tokens = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-.", min_size=1, max_size=8)
urls = st.text(
    alphabet=st.characters(blacklist_characters="<>", blacklist_categories=["Cs", "Cc"]),
    max_size=30,
).map(str.strip)
quoted_values = st.text(alphabet=st.characters(blacklist_categories=["Cs", "Cc"]), max_size=20)


@st.composite
def link_values(draw: st.DrawFn) -> tuple[str, dict[str, str]]:
    """A serialized link and the dict it must parse to."""
    url = draw(urls)
    expected = {"url": url}
    parts = [f"<{url}>"]
    for name in draw(st.lists(tokens, max_size=4, unique=True)):
        if name == "url":
            continue
        value = draw(quoted_values)
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        space = draw(st.sampled_from(["", " ", "\t"]))
        parts.append(f'{space}{name}{space}={space}"{escaped}"')
        expected[name] = value
    return ";".join(parts), expected


@given(st.lists(link_values(), max_size=5), st.sampled_from([",", ", ", " ,\t"]))
def test_serialized_links_parse_back(entries: list[tuple[str, dict[str, str]]], sep: str) -> None:
    header = sep.join(value for value, _ in entries)
    assert parse_link_header(header) == [expected for _, expected in entries]


@given(st.text(max_size=200))
def test_any_text_parses_without_raising(value: str) -> None:
    for link in parse_link_header(value):
        assert isinstance(link["url"], str)
    links_by_relation(value)


@given(
    st.lists(
        st.tuples(
            st.text(alphabet="abcdefghijklmnopqrstuvwxyz/:?=&.", min_size=1, max_size=20),
            tokens,
        ),
        min_size=1,
        max_size=4,
    )
)
def test_simple_headers_parse_as_httpx_parses_them(entries: list[tuple[str, str]]) -> None:
    # Where httpx's regex parser is right (no quotes, one relation type), we agree.
    header = ", ".join(f'<{url}>; rel="{rel}"' for url, rel in entries)
    assert links(header) == httpx.Response(200, headers={"Link": header}).links


@pytest.mark.parametrize("value", ["<a>;", "<a>;;", "<a>; =x", "<a>; rel=", ";", "<>"])
def test_degenerate_parameters(value: str) -> None:
    assert parse_link_header(value)[0]["url"] in ("a", "", ";")
