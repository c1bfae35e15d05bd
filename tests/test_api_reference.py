"""docs/api.md (rendered by mkdocstrings) lists every public name, so none is left out of
the API reference when it is added to an `__all__`."""

from __future__ import annotations

import re
from pathlib import Path
from types import ModuleType

import pytest

import trioclient
import trioclient.crawl
import trioclient.testing

PAGE = Path(__file__).parent.parent / "docs" / "api.md"
# Aliases, documented in the text next to what they alias.
ALIASES = {"trioclient.AsyncClient"}


@pytest.mark.parametrize("module", [trioclient, trioclient.testing, trioclient.crawl])
def test_every_public_name_is_in_the_api_reference(module: ModuleType) -> None:
    listed = set(re.findall(r"^::: ([\w.]+)$", PAGE.read_text(encoding="utf-8"), re.MULTILINE))
    names = {f"{module.__name__}.{name}" for name in module.__all__}
    missing = sorted(names - listed - ALIASES)
    assert not missing, f"add to docs/api.md: {', '.join(missing)}"
