"""The `Link` header (RFC 8288), parsed for `Response.links`.

    Link: <https://api.example.org/items?page=2>; rel="next", </items?page=9>; rel=last

`parse_link_header` returns one dict per link: "url" (the target as written between `<`
and `>`, relative or not: httpx does not resolve it either) plus each parameter, its name
lowercased (RFC 8288 section 3: names are case-insensitive) and its value unquoted.
`links_by_relation` keys them the way httpx's `Response.links` does: by "rel", or by the
URL for a link without one.

Where httpx's parser (a regex split on `, <` and a split on `=`) and this one differ, this
one follows the grammar:

* a quoted string may hold `,`, `;`, `=` and `\\"`; httpx splits inside it;
* a parameter without a value (`; crossorigin`) is kept with the value ""; httpx drops it
  and every parameter after it;
* a parameter given twice keeps its first value (section 3: later occurrences of rel,
  title... are ignored); httpx keeps the last;
* `rel="next last"` is two links (section 3.3), one under "next" and one under "last",
  both with `rel` as sent; httpx keys it "next last".

It never raises: a malformed part is skipped up to the next comma, as a browser would.
The header size is already bounded by the connection's header limit, and the scan is linear.
"""

from __future__ import annotations

__all__ = ["links_by_relation", "parse_link_header"]

_WHITESPACE = " \t"


def _skip_whitespace(value: str, index: int) -> int:
    while index < len(value) and value[index] in _WHITESPACE:
        index += 1
    return index


def _quoted(value: str, index: int) -> tuple[str, int]:
    """The quoted string starting at `value[index] == '"'`, unescaped; and the index after it.

    An unterminated string runs to the end of the header."""
    out: list[str] = []
    index += 1
    while index < len(value):
        char = value[index]
        if char == '"':
            return "".join(out), index + 1
        if char == "\\" and index + 1 < len(value):
            index += 1
            char = value[index]
        out.append(char)
        index += 1
    return "".join(out), index


def _token(value: str, index: int, stops: str) -> tuple[str, int]:
    """Characters up to one of `stops` (or the end), stripped; and the index of the stop."""
    end = index
    while end < len(value) and value[end] not in stops:
        end += 1
    return value[index:end].strip(), end


def _skip_to_next_link(value: str, index: int) -> int:
    """The index just after the next comma that is not inside a quoted string."""
    while index < len(value):
        char = value[index]
        if char == '"':
            _, index = _quoted(value, index)
            continue
        index += 1
        if char == ",":
            break
    return index


def parse_link_header(value: str) -> list[dict[str, str]]:
    """The links of a `Link` header value, in order; see the module docstring."""
    links: list[dict[str, str]] = []
    index = 0
    while True:
        index = _skip_whitespace(value, index)
        while index < len(value) and value[index] == ",":
            index = _skip_whitespace(value, index + 1)
        if index >= len(value):
            return links
        if value[index] == "<":
            end = value.find(">", index + 1)
            end = len(value) if end < 0 else end
            url, index = value[index + 1 : end].strip(), end + 1
        else:
            # No brackets (invalid, but seen): the URL runs to the first ; or ,
            url, index = _token(value, index, ";,")
        link = {"url": url}
        while True:
            index = _skip_whitespace(value, index)
            if index >= len(value) or value[index] != ";":
                break
            name, index = _token(value, index + 1, "=;,")
            name = name.lower()
            param = ""
            if index < len(value) and value[index] == "=":
                index = _skip_whitespace(value, index + 1)
                if index < len(value) and value[index] == '"':
                    param, index = _quoted(value, index)
                else:  # a token: no whitespace, no quotes (junk after it is skipped)
                    param, index = _token(value, index, ';," \t')
            if name and name != "url":  # "url" would hide the link's own URL
                link.setdefault(name, param)
        links.append(link)
        index = _skip_to_next_link(value, index)


def links_by_relation(value: str) -> dict[str, dict[str, str]]:
    """`Response.links`: each link under each of its relation types, else under its URL.

    A later link with the same key replaces an earlier one, as in httpx."""
    result: dict[str, dict[str, str]] = {}
    for link in parse_link_header(value):
        relations = link.get("rel", "").split()
        for key in relations or [link["url"]]:
            result[key] = link
    return result
