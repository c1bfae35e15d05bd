"""The public namespace: `__all__` sorted and complete, everything documented."""

from __future__ import annotations

import inspect
import types

import pytest

import trioclient


def _isort_key(name: str) -> tuple[int, str]:
    """ruff's RUF022 ("isort-style") order, which the file follows: SCREAMING_CASE
    constants, then CamelCase classes, then everything else, each group sorted."""
    if name.isupper() and len(name) > 1:
        return 0, name
    if name[0].isupper():
        return 1, name
    return 2, name


def test_all_is_sorted_isort_style() -> None:
    assert trioclient.__all__ == sorted(trioclient.__all__, key=_isort_key)


def test_all_has_no_duplicates() -> None:
    assert len(trioclient.__all__) == len(set(trioclient.__all__))


def test_all_is_complete() -> None:
    public = {
        name
        for name, value in vars(trioclient).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public == set(trioclient.__all__)


def test_star_import_gives_exactly_all() -> None:
    namespace: dict[str, object] = {}
    exec("from trioclient import *", namespace)
    namespace.pop("__builtins__")
    assert set(namespace) == set(trioclient.__all__)


@pytest.mark.parametrize("name", trioclient.__all__)
def test_exported_object_is_documented(name: str) -> None:
    obj = getattr(trioclient, name)
    assert (inspect.getdoc(obj) or "").strip(), f"trioclient.{name} has no docstring"


def _public_members(cls: type) -> list[str]:
    members = []
    for name, value in vars(cls).items():
        if name.startswith("_"):
            continue
        if isinstance(value, (classmethod, staticmethod)):
            value = value.__func__
        if isinstance(value, (types.FunctionType, property)):
            members.append(name)
    return members


@pytest.mark.parametrize(
    "name",
    [
        name
        for name in trioclient.__all__
        if inspect.isclass(getattr(trioclient, name))
        and getattr(trioclient, name).__module__.startswith("trioclient")
    ],
)
def test_public_methods_of_exported_classes_are_documented(name: str) -> None:
    cls = getattr(trioclient, name)
    undocumented = [
        member
        for member in _public_members(cls)
        if not (inspect.getdoc(getattr(cls, member)) or "").strip()
    ]
    assert undocumented == [], f"trioclient.{name}: undocumented {undocumented}"


def test_exported_objects_claim_the_public_module() -> None:
    # Every exported class lives in the package (not re-exported from a dependency).
    for name in trioclient.__all__:
        obj = getattr(trioclient, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert obj.__module__.startswith("trioclient"), name


def test_version() -> None:
    assert isinstance(trioclient.__version__, str)
    assert trioclient.__version__.count(".") >= 2


def test_async_client_alias() -> None:
    assert trioclient.AsyncClient is trioclient.Client
    assert "AsyncClient" in trioclient.__all__
