"""The `trioclient` command (also `python -m trioclient`); docs/cli.md is its manual.

- `trioclient [options] [METHOD] URL [ITEM ...]`: one request, httpie's items, curl's options
  (`_args.py` parses, `_request.py` runs, `_render.py` prints, `_progress.py` draws downloads).
- `trioclient crawl URL ...` and `trioclient demo` (`_crawl.py`): the crawler with a live display.

Only `trio` and the library are needed for a plain request; `rich` (the `cli` extra) adds
colours and progress bars, and the crawl commands need the `cli` extra.

Every way out goes through `main`: one `error: ...` line on stderr and an `ExitCode`, never a
traceback for a network problem, a closed pipe or Ctrl-C.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

import trio

from .._exceptions import (
    CookieConflict,
    HTTPError,
    InvalidURL,
    StreamError,
    TimeoutException,
    TooManyRedirects,
)
from ._exit import CLIError, ExitCode, leaves

__all__ = ["main"]

SUBCOMMANDS = ("crawl", "demo")


def _error(message: str) -> None:
    print(f"error: {message}", file=sys.stderr, flush=True)


def request_error(exc: BaseException) -> CLIError | None:
    """The exit code and message for an exception of trioclient's; None for anything else."""
    message = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, TimeoutException):
        return CLIError(message, ExitCode.TIMEOUT)
    if isinstance(exc, TooManyRedirects):
        return CLIError(message, ExitCode.TOO_MANY_REDIRECTS)
    if isinstance(exc, (HTTPError, InvalidURL, StreamError, CookieConflict)):
        return CLIError(message, ExitCode.REQUEST_FAILED)
    return None


def _silence_stdout() -> None:
    """Point fd 1 at /dev/null, so the interpreter's last flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass  # not a real file (a test's capture): nothing will flush it at exit


def stdout_isatty() -> bool:
    """Whether standard output is a terminal (a seam for the in-process tests)."""
    return sys.stdout.isatty()


def _request_command(argv: list[str]) -> int:
    from ._args import parse_request_args, plan_request
    from ._render import Printer
    from ._request import run_request

    args = parse_request_args(argv)
    plan = plan_request(args)
    try:
        tty = stdout_isatty()
        pretty = args.pretty if args.pretty != "auto" else ("all" if tty else "none")
        printer = Printer(
            sys.stdout.buffer,
            colors=pretty == "all",
            format=pretty in ("all", "format"),
            tty=tty,
        )
        show_head = not args.body_only and (args.include or tty)
        try:
            return int(trio.run(lambda: run_request(plan, printer, show_head=show_head)))
        except BaseException as exc:
            error = request_error(exc)
            if error is None:
                raise
            raise error from None
    finally:
        for file in plan.opened:
            file.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `trioclient` script and of `python -m trioclient`; the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        if args and args[0] in SUBCOMMANDS:
            from ._crawl import crawl_command

            return crawl_command(args)
        return _request_command(args)
    except CLIError as exc:
        _error(str(exc))
        return int(exc.code)
    except BaseException as exc:
        errors = leaves(exc)
        if any(isinstance(leaf, KeyboardInterrupt) for leaf in errors):
            return int(ExitCode.INTERRUPTED)
        if errors and all(isinstance(leaf, BrokenPipeError) for leaf in errors):
            _silence_stdout()
            return int(ExitCode.CLOSED_PIPE)
        raise
