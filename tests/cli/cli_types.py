"""Types shared by the command-line tests (a module of its own: `conftest` is ambiguous
when several test directories are on the path)."""

from __future__ import annotations

from collections.abc import Callable

#: The `cli` fixture: `cli(*argv)` -> (exit code, stdout bytes, stderr text).
RunCLI = Callable[..., tuple[int, bytes, str]]
