"""docs/crawling.md's toolkit examples run as they are, and print what their comments say."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

DOC = Path(__file__).parents[2] / "docs" / "crawling.md"
EXAMPLES = [
    block
    for block in re.findall(r"```python\n(.*?)```", DOC.read_text(), re.DOTALL)
    if "trio.run(" in block and ("fetch_all(" in block or "Politeness(" in block)
]


def test_the_page_has_its_examples() -> None:
    assert len(EXAMPLES) >= 3


@pytest.mark.parametrize("index", range(len(EXAMPLES)))
def test_example_runs_and_prints_what_it_says(index: int) -> None:
    code = EXAMPLES[index]
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        exec(compile(code, f"{DOC}:example{index}", "exec"), {"__name__": "__main__"})
    printed = output.getvalue().splitlines()
    # What a print's trailing comment says, or the comment lines right after a loop of
    # prints, must be printed in that order.
    promised = re.findall(r"print\(.*\)  # (.*)", code)
    promised += re.findall(r"^        # (/.*)$", code, re.MULTILINE)
    assert promised
    for line in promised:
        assert line in printed, (line, printed)
        printed = printed[printed.index(line) + 1 :]
