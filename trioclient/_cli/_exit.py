"""The command's exit codes and the one error type every part of it raises.

Each failure is one line on stderr (`error: ...`) and a distinct exit code, so a script can tell
"the server said 404" from "nothing answered" from "I typed the command wrong". The table is
repeated in docs/cli.md and in `trioclient --help`.
"""

from __future__ import annotations

import enum
import sys

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup

__all__ = ["EXIT_CODES_HELP", "CLIError", "ExitCode", "UsageError", "leaves"]


class ExitCode(enum.IntEnum):
    """What the process exit status means."""

    OK = 0
    #: The request failed: no connection, TLS, protocol, proxy, invalid URL, undecodable body.
    REQUEST_FAILED = 1
    #: The command line is wrong (an option, an item, an @file that cannot be read).
    USAGE = 2
    #: A timeout (connect, read, write, pool) expired.
    TIMEOUT = 3
    #: `--fail` and the final response was 4xx.
    HTTP_4XX = 4
    #: `--fail` and the final response was 5xx.
    HTTP_5XX = 5
    #: More redirects than `--max-redirects` with `--follow`.
    TOO_MANY_REDIRECTS = 6
    #: The output file (`-o`, `--download`) could not be written.
    OUTPUT_FAILED = 7
    #: Interrupted with Ctrl-C (128 + SIGINT, as shells report it).
    INTERRUPTED = 130
    #: Standard output was closed early (`| head`): 128 + SIGPIPE, what `cat` reports.
    CLOSED_PIPE = 141


EXIT_CODES_HELP = """exit codes:
  0    success (whatever the HTTP status, unless --fail)
  1    the request failed (connection, TLS, protocol, proxy, invalid URL)
  2    usage error (bad option or item, unreadable @file)
  3    timeout
  4/5  --fail and the response was 4xx/5xx
  6    too many redirects
  7    the output file could not be written
  130  interrupted (Ctrl-C)
  141  standard output closed early (e.g. `| head`)"""


class CLIError(Exception):
    """A failure that ends the command with one line on stderr and an exit code."""

    def __init__(self, message: str, code: ExitCode) -> None:
        super().__init__(message)
        self.code = code


class UsageError(CLIError):
    """The command line is wrong; exit code 2."""

    def __init__(self, message: str) -> None:
        super().__init__(message, ExitCode.USAGE)


def leaves(exc: BaseException) -> list[BaseException]:
    """The exceptions inside (nested) exception groups, or `exc` itself."""
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in leaves(inner)]
    return [exc]
