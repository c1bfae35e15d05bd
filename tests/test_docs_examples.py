"""Every ```python example in README.md and docs/*.md, run as a reader would run it.

Each example is a complete program: it is written to a file in a fresh directory and run
with ``python`` in a subprocess (pytest-style examples with ``pytest``), and must exit 0
within a generous bound. Nothing reaches the internet, by these conventions:

- **httpbin.org is served locally.** Examples that need a real server talk to
  ``https://httpbin.org`` (or ``http://``), the public echo service readers can run them
  against too. Here the session's local httpbin (the ``httpbin`` package under hypercorn on
  127.0.0.1, TLS from a throwaway CA) answers instead: the example's text has every
  ``httpbin.org`` origin replaced by the local server's before it runs (and any other
  ``httpbin.org``, such as a netrc ``machine``, by ``127.0.0.1``), and ``SSL_CERT_FILE``
  names the CA, so certificate verification stays on.
- **proxy.example:3128 is a local tinyproxy.** Proxy examples use
  ``http://proxy.example:3128`` (with or without credentials); it is replaced by a
  tinyproxy on 127.0.0.1 (Debian's ``tinyproxy``: skipped locally when missing, failing in
  CI like the other peer tests).
- **redis://127.0.0.1:6379 is a local redis-server** on another port (Debian's
  ``redis-server``, the suite's ``redis_server`` fixture), for the crawler's Redis frontier.
- **Other hosts never resolve.** Examples with any other host (``api.example.test``...)
  must answer from a ``MockTransport``/``ASGITransport`` or a server they start on
  127.0.0.1 themselves.
- **Files.** A block whose first line is ``# name.py`` is a file of that name: all such
  blocks of a page are written side by side first, so a later block can import an earlier
  one. A ``# test_*.py`` block runs under ``pytest`` (pytest-trio, ``trio_mode = true``, the
  trioclient plugin).
- **Fragments are marked.** A block that is not meant to run (an argument listing, a line
  inside a larger program) or that needs the internet has an HTML comment on the line just
  before its fence: ``<!-- not-run: the reason -->``. The reason is required, and
  the block is not collected. Any other unmarked block that fails, fails the suite.
- **Failures on purpose.** An example that shows a mistake is marked
  ``<!-- expect-failure: TEXT -->``: it must exit non-zero with TEXT in its stderr.
- **Output.** A plain ``` block right after an example, introduced by nothing, is what the
  example prints; it is documentation only and not compared (timings and ids vary).

docs/contributing.md says the same for writers of pages.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from servers.hypercorn_server import HypercornServer
from servers.peers import unavailable
from servers.proxy_peers import TinyproxyServer

ROOT = Path(__file__).parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# Generous: the bound says "does not hang", not "is fast" (a loaded CI machine is slow).
TIMEOUT = 120.0

_FENCE = re.compile(r"^```(\S*)(.*)$")
_MARKER = re.compile(r"^<!-- (not-run|expect-failure): (.*\S) -->$")
_FILENAME = re.compile(r"^# ([\w-]+\.py)\s*$")
_HTTPBIN = re.compile(r"(https?)://([^/\s\"'@]+@)?httpbin\.org\b")
_BARE_HTTPBIN = re.compile(r"\bhttpbin\.org\b")
_PROXY = re.compile(r"http://([^/\s\"'@]+@)?proxy\.example:3128\b")
_REDIS = re.compile(r"redis://127\.0\.0\.1:6379\b")
_PYTHON_LIKE = {"py", "py3", "python3", "pycon", "pyi"}


@dataclass(frozen=True)
class Example:
    """One ```python block of a page."""

    page: Path
    line: int  # of the opening fence, 1-based
    code: str
    not_run: str | None  # the not-run marker's reason
    expect_failure: str | None  # what stderr must contain
    filename: str | None  # from a first line "# name.py"

    @property
    def id(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def read_examples(page: Path) -> list[Example]:
    """The ```python blocks of `page`, in order; other fences are skipped whole."""
    lines = page.read_text(encoding="utf-8").splitlines()
    examples: list[Example] = []
    i = 0
    while i < len(lines):
        fence = _FENCE.match(lines[i])
        if fence is None:
            i += 1
            continue
        language = fence.group(1)
        end = next((j for j in range(i + 1, len(lines)) if lines[j] == "```"), None)
        if end is None:
            raise AssertionError(f"{page.name}:{i + 1}: a ``` fence is never closed")
        if language in _PYTHON_LIKE:
            raise AssertionError(f"{page.name}:{i + 1}: write ```python, not ```{language}")
        if language == "python":
            code = "\n".join(lines[i + 1 : end]) + "\n"
            marker = _MARKER.match(lines[i - 1]) if i > 0 else None
            name = _FILENAME.match(lines[i + 1]) if end > i + 1 else None
            examples.append(
                Example(
                    page=page,
                    line=i + 1,
                    code=code,
                    not_run=marker.group(2) if marker and marker.group(1) == "not-run" else None,
                    expect_failure=(
                        marker.group(2) if marker and marker.group(1) == "expect-failure" else None
                    ),
                    filename=name.group(1) if name else None,
                )
            )
        i = end + 1
    return examples


ALL_EXAMPLES = [example for page in PAGES for example in read_examples(page)]
RUN = [example for example in ALL_EXAMPLES if example.not_run is None]


# -- the servers examples talk to ------------------------------------------------------------


@pytest.fixture(scope="session")
def tinyproxy() -> Iterator[TinyproxyServer]:
    if not TinyproxyServer.available():
        unavailable("tinyproxy is not installed (apt-get install tinyproxy)")
    with TinyproxyServer() as server:
        yield server


def _localize(
    code: str, *, httpbin: HypercornServer, proxy_url: str | None, redis_port: int | None
) -> str:
    def to_httpbin(match: re.Match[str]) -> str:
        scheme, userinfo = match.group(1), match.group(2) or ""
        origin = httpbin.https_url if scheme == "https" else httpbin.http_url
        return origin.replace("://", f"://{userinfo}", 1)

    code = _HTTPBIN.sub(to_httpbin, code)
    code = _BARE_HTTPBIN.sub("127.0.0.1", code)
    if proxy_url is not None:
        code = _PROXY.sub(lambda m: proxy_url.replace("://", f"://{m.group(1) or ''}", 1), code)
    if redis_port is not None:
        code = _REDIS.sub(f"redis://127.0.0.1:{redis_port}", code)
    return code


def _plugin_args() -> list[str]:
    """Load trioclient's pytest plugin, unless installing trioclient registered it already."""
    names = {ep.name for ep in importlib.metadata.entry_points(group="pytest11")}
    return [] if "trioclient" in names else ["-p", "trioclient._pytest_plugin"]


def _environment(httpbin: HypercornServer) -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.upper().endswith("_PROXY") and not name.upper().startswith("SSL_CERT_")
    }
    env["SSL_CERT_FILE"] = httpbin.ca_pem_path
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.pop("TRIOCLIENT_HYPOTHESIS_PROFILE", None)
    return env


# -- running them ----------------------------------------------------------------------------

# Examples run a few at a time: each spends most of its life starting Python or waiting for
# the server, so four at once take about a third of the time one after the other does.
WORKERS = 4


def _run(example: Example, directory: Path, env: dict[str, str], localize: Any) -> Any:
    """Write the example (and its page's named files) into `directory` and run it there."""
    for other in RUN:
        if other.page == example.page and other.filename is not None:
            (directory / other.filename).write_text(localize(other.code), encoding="utf-8")
    filename = example.filename or "example.py"
    (directory / filename).write_text(localize(example.code), encoding="utf-8")
    if filename.startswith("test_"):
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
        command += [*_plugin_args(), "-o", "trio_mode=true", filename]
    else:
        command = [sys.executable, filename]
    try:
        return subprocess.run(
            command,
            cwd=directory,
            env=env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        return exc


@pytest.fixture(scope="session")
def example_runs(
    request: pytest.FixtureRequest,
    httpbin_server: HypercornServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, Future[Any]]]:
    """Every selected example, started in a pool on first use: id -> its run's future."""
    selected = [
        item.callspec.params["example"]
        for item in request.session.items
        if isinstance(item, pytest.Function)
        and item.path == Path(__file__)
        and item.originalname == "test_example_runs"
    ]
    proxy_url = None
    if any(_PROXY.search(example.code) for example in selected):
        proxy_url = request.getfixturevalue("tinyproxy").url
    redis_port = None
    if any(_REDIS.search(example.code) for example in selected):
        redis_port = request.getfixturevalue("redis_server").port
    env = _environment(httpbin_server)
    localize = partial(
        _localize, httpbin=httpbin_server, proxy_url=proxy_url, redis_port=redis_port
    )
    with ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="docs-example") as pool:
        futures = {
            example.id: pool.submit(
                _run, example, tmp_path_factory.mktemp("example"), env, localize
            )
            for example in selected
        }
        try:
            yield futures
        finally:
            for future in futures.values():
                future.cancel()


# -- the tests -------------------------------------------------------------------------------


@pytest.mark.parametrize("example", RUN, ids=[example.id for example in RUN])
def test_example_runs(example: Example, example_runs: dict[str, Future[Any]]) -> None:
    result = example_runs[example.id].result()
    if isinstance(result, subprocess.TimeoutExpired):
        pytest.fail(
            f"{example.id} still running after {TIMEOUT:.0f} s:\n{result.stdout!r}\n"
            f"{result.stderr!r}",
            pytrace=False,
        )
    print(result.stdout)  # shown by `pytest -rP`, to compare with the page by eye
    if example.expect_failure is not None:
        if result.returncode == 0 or example.expect_failure not in result.stderr:
            pytest.fail(
                f"{example.id} should fail with {example.expect_failure!r} in its stderr; it "
                f"exited with {result.returncode}\n--- stderr\n{result.stderr}",
                pytrace=False,
            )
    elif result.returncode != 0:
        pytest.fail(
            f"{example.id} exited with {result.returncode}\n--- stdout\n{result.stdout}"
            f"--- stderr\n{result.stderr}",
            pytrace=False,
        )


def test_every_page_has_been_read() -> None:
    """The collector sees the pages' examples (a broken fence regex would see none)."""
    assert len(RUN) >= 30, [example.id for example in RUN]


def test_fragments_are_few_and_say_why() -> None:
    """Marked blocks carry a reason; most examples run."""
    fragments = [example for example in ALL_EXAMPLES if example.not_run is not None]
    assert all(len(example.not_run or "") >= 10 for example in fragments)
    assert len(fragments) * 3 <= len(ALL_EXAMPLES), [example.id for example in fragments]
