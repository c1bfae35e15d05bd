"""trioclient.crawl's public namespace, and that the core does not import it."""

from __future__ import annotations

import inspect
import subprocess
import sys
import types

import pytest

import trioclient.crawl as crawl


def _isort_key(name: str) -> tuple[int, str]:
    if name.isupper() and len(name) > 1:
        return 0, name
    if name[0].isupper():
        return 1, name
    return 2, name


def test_all_is_sorted_and_complete() -> None:
    assert crawl.__all__ == sorted(crawl.__all__, key=_isort_key)
    public = {
        name
        for name, value in vars(crawl).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public == set(crawl.__all__)


@pytest.mark.parametrize("name", crawl.__all__)
def test_exported_object_is_documented(name: str) -> None:
    obj = getattr(crawl, name)
    if not (inspect.isclass(obj) or inspect.isfunction(obj)):
        return  # a constant or a type alias: documented by its #: comment and docs/crawling.md
    assert (inspect.getdoc(obj) or "").strip(), f"trioclient.crawl.{name} has no docstring"


def test_import_trioclient_does_not_import_the_toolkit() -> None:
    code = (
        "import sys, trioclient; "
        "assert 'trioclient.crawl' not in sys.modules; "
        "assert 'protego' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_toolkit_imports_without_its_extra() -> None:
    # protego is imported when robots.txt is used, never at import time.
    code = (
        "import sys; sys.modules['protego'] = None; "
        "import trioclient.crawl as c; c.Politeness(robots=False); c.FetchLimits()"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
