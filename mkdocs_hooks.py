"""mkdocs hooks (mkdocs.yml `hooks:`): pages that show files from outside docs/.

Two HTML-comment directives, each alone on a line of a docs page, are replaced at build time
(on GitHub the comment shows nothing, so it may be followed by one line
"(On the site, ...)" saying where the content lives, which the build drops):

- ``<!-- include-newest: benchmarks/results/*.md -->``: the newest file matching the glob
  among those named by UTC timestamp (``20261202T185009Z.md``: the newest sorts last;
  ``latest.md`` is skipped because a run may leave it behind the timestamped files, and
  other reports such as ``callgrind-*.md`` are not a run's tables). Its title becomes a
  sentence and its headings move one level down, to sit under the page's own section.
- ``<!-- include-sections: benchmarks/README.md: Workloads; Method -->``: those ``##``
  sections of the file, each up to the next ``##`` heading, headings kept.

A missing file or section fails the build (strict), so the page cannot silently go empty.

Links out of docs/ (``[the suite](../conformance/README.md)``) work on GitHub but have no
page on the site: the build turns each into its text followed by the repository path in
code, e.g. "the suite (`conformance/README.md`)". A link to a file that does not exist is
left alone, so the strict build still reports it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).parent
# The directive, and the "(On the site, ...)" line after it that GitHub readers see instead.
_DIRECTIVE = re.compile(
    r"^<!-- (include-newest|include-sections): (.+?) -->\n(?:\(On the site, .*\)\n)?",
    re.MULTILINE,
)


class IncludeError(Exception):
    """A directive names a file or section that does not exist."""


# A full run's tables: <UTC timestamp>.md (not latest.md, nor a callgrind-*.md report).
_RUN_NAME = re.compile(r"^\d{8}T\d{6}Z\.md$")


def newest(pattern: str) -> Path:
    """The newest results file matching `pattern` (timestamped names sort in time order)."""
    found = sorted(p for p in ROOT.glob(pattern) if _RUN_NAME.match(p.name))
    if not found:
        raise IncludeError(f"no file matches {pattern!r}")
    return found[-1]


def _include_newest(pattern: str) -> str:
    text = newest(pattern).read_text(encoding="utf-8")
    title, _, rest = text.partition("\n")
    rest = re.sub(r"^(#+) ", r"#\1 ", rest, flags=re.MULTILINE)
    return f"From the run of {title.removeprefix('# Benchmark results, ')}:\n{rest}\n"


def _include_sections(argument: str) -> str:
    name, _, wanted = argument.partition(":")
    text = (ROOT / name.strip()).read_text(encoding="utf-8")
    parts = re.split(r"^(?=## )", text, flags=re.MULTILINE)
    by_title = {part.splitlines()[0][3:].strip(): part for part in parts if part.startswith("## ")}
    chosen = []
    for title in (t.strip() for t in wanted.split(";")):
        if title not in by_title:
            raise IncludeError(f"{name.strip()} has no section {title!r}")
        chosen.append(by_title[title].rstrip() + "\n")
    return "\n".join(chosen)


# Not right after a backtick: `[text](../x)` in code is an example of the syntax.
_OUT_OF_DOCS = re.compile(r"(?<!`)\[([^\]]+)\]\((\.\./[^)\s#]+)(#[^)\s]*)?\)")


def _unlink_out_of_docs(match: re.Match[str]) -> str:
    text, target = match.group(1), match.group(2)
    path = (ROOT / "docs" / target).resolve()
    if not path.exists() or not path.is_relative_to(ROOT):
        return match.group(0)
    return f"{text} (`{path.relative_to(ROOT).as_posix()}`)"


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    """Replace the include directives of a page with the files' content, and turn links
    out of docs/ into repository paths."""
    markdown = _OUT_OF_DOCS.sub(_unlink_out_of_docs, markdown)

    def replace(match: re.Match[str]) -> str:
        kind, argument = match.groups()
        if kind == "include-newest":
            return _include_newest(argument.strip())
        return _include_sections(argument) + "\n"

    return _DIRECTIVE.sub(replace, markdown)
