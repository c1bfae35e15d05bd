"""What the built distributions hold: the wheel only the library, the sdist what it needs to
build and test itself, and metadata that agrees with the code (version, licence, Pythons).

The wheel and sdist are built here with hatchling, offline and without build isolation (it
is in the test extra). `.ci/run` builds them again with `python -m build`, checks them with
`twine check`, and runs this file against those artifacts (TRIOCLIENT_DIST_DIR).
"""

from __future__ import annotations

import email.parser
import email.policy
import importlib.metadata
import os
import re
import subprocess
import sys
import tarfile
import zipfile
from email.message import Message
from pathlib import Path

import pytest

import trioclient

REPO = Path(__file__).resolve().parent.parent

# The Python versions the classifiers claim and CI runs (.ci/run: the suite on the default
# python3, a quick subset on every other one the machine has).
PYTHONS = ["3.10", "3.11", "3.12", "3.13"]


@pytest.fixture(scope="module")
def dist_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    given = os.environ.get("TRIOCLIENT_DIST_DIR")
    if given:
        return Path(given)
    if not (REPO / "pyproject.toml").is_file():
        pytest.skip("no pyproject.toml beside tests/: the suite runs from an installed copy")
    pytest.importorskip("hatchling", reason="hatchling (in the test extra) builds the dists")
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "hatchling", "build", "--directory", str(out)],
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    return out


def _one(directory: Path, pattern: str) -> Path:
    (found,) = directory.glob(pattern)
    return found


@pytest.fixture(scope="module")
def wheel_names(dist_dir: Path) -> list[str]:
    with zipfile.ZipFile(_one(dist_dir, "trioclient-*.whl")) as wheel:
        return wheel.namelist()


@pytest.fixture(scope="module")
def metadata(dist_dir: Path) -> Message:
    with zipfile.ZipFile(_one(dist_dir, "trioclient-*.whl")) as wheel:
        (name,) = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
        text = wheel.read(name).decode()
    return email.parser.Parser(policy=email.policy.compat32).parsestr(text)


@pytest.fixture(scope="module")
def sdist_names(dist_dir: Path) -> list[str]:
    with tarfile.open(_one(dist_dir, "trioclient-*.tar.gz")) as sdist:
        names = sdist.getnames()
    top = {name.split("/", 1)[0] for name in names}
    assert top == {f"trioclient-{trioclient.__version__}"}, top
    return [name.split("/", 1)[1] for name in names if "/" in name]


def test_the_wheel_holds_only_the_library(wheel_names: list[str]) -> None:
    dist_info = f"trioclient-{trioclient.__version__}.dist-info/"
    strays = [n for n in wheel_names if not n.startswith(("trioclient/", dist_info))]
    assert strays == []
    assert "trioclient/py.typed" in wheel_names
    assert "trioclient/_transport/_pool.py" in wheel_names
    assert f"{dist_info}licenses/LICENSE" in wheel_names
    assert not [n for n in wheel_names if "__pycache__" in n or n.endswith(".pyc")]


def test_one_version_everywhere(metadata: Message, dist_dir: Path) -> None:
    # Hatch reads the version out of trioclient/__init__.py: the built metadata, the files'
    # names and the imported module must agree.
    version = trioclient.__version__
    assert metadata["Version"] == version
    assert _one(dist_dir, "trioclient-*.whl").name.startswith(f"trioclient-{version}-")
    assert _one(dist_dir, "trioclient-*.tar.gz").name == f"trioclient-{version}.tar.gz"


def test_the_installed_version_is_the_modules() -> None:
    # The installed distribution's metadata (an editable install's too) names the version
    # the module says.
    assert importlib.metadata.version("trioclient") == trioclient.__version__


def test_license_is_an_spdx_expression_with_its_file(metadata: Message) -> None:
    assert metadata["License-Expression"] == "MIT"
    assert metadata.get_all("License-File") == ["LICENSE"]
    assert (REPO / "LICENSE").read_text().startswith("MIT License\n")
    # PEP 639: the expression replaces licence classifiers (PyPI refuses both at once).
    classifiers = metadata.get_all("Classifier") or []
    assert not [c for c in classifiers if c.startswith("License ::")]


def test_classifiers_name_every_python_ci_runs(metadata: Message) -> None:
    classifiers = metadata.get_all("Classifier") or []
    claimed = [
        c.rsplit(" :: ", 1)[1]
        for c in classifiers
        if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)
    ]
    assert sorted(claimed, key=lambda v: int(v.split(".")[1])) == PYTHONS
    assert metadata["Requires-Python"] == f">={PYTHONS[0]}"
    for expected in ["Framework :: Trio", "Typing :: Typed", "Intended Audience :: Developers"]:
        assert expected in classifiers
    assert [c for c in classifiers if c.startswith("Development Status :: ")]


def test_the_sdist_can_build_and_test_itself(sdist_names: list[str]) -> None:
    present = set(sdist_names)
    for needed in [
        "pyproject.toml",
        "README.md",
        "LICENSE",
        "CHANGELOG.md",
        "PKG-INFO",
        "trioclient/py.typed",
        "tests/conftest.py",
        "tests/servers/hypercorn_server.py",
        "tests/cancellation/conftest.py",
        "docs/httpx-compat.md",  # tests/test_httpx_compat.py reads it
        "benchmarks/run.py",  # tests/test_benchmarks_smoke.py runs it
        "benchmarks/conformance/results/latest.json",  # tests/test_conformance_smoke.py
        "mkdocs.yml",
        "mkdocs_hooks.py",
    ]:
        assert needed in present, needed
    assert not [n for n in sdist_names if n.startswith((".ci/", "benchmarks/results/", ".git/"))]
    assert not [n for n in sdist_names if "__pycache__" in n or n.endswith(".pyc")]


def test_the_changelog_has_an_unreleased_section() -> None:
    changelog = (REPO / "CHANGELOG.md").read_text()
    assert changelog.startswith("# Changelog\n")
    assert "\n## [Unreleased]\n" in changelog


def test_the_readme_documents_every_extra(metadata: Message) -> None:
    # README's "Installing" table: one row per extra, saying what it installs and brings.
    readme = (REPO / "README.md").read_text()
    rows = set(re.findall(r"^\| `([a-z0-9-]+)` \|", readme, flags=re.MULTILINE))
    assert rows == set(metadata.get_all("Provides-Extra") or [])
