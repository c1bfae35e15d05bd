"""The request command's options, and turning them (with the items) into a client and a request.

`trioclient [options] [METHOD] URL [ITEM ...]`: httpie's items and curl's options side by side
(docs/cli.md). Everything that can be wrong on the command line is found here, before any
connection is made, and becomes a `UsageError` (exit code 2).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import mimetypes
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, BinaryIO, NoReturn

from .. import __version__
from .._auth import BasicAuth
from .._config import Timeout
from .._digest import DigestAuth
from ._exit import EXIT_CODES_HELP, UsageError
from ._items import ItemKind, parse_item

__all__ = ["RequestPlan", "build_parser", "plan_request"]

# A word this shape before the URL is the method, if it is a known one or written in capitals.
_METHOD_RE = re.compile(r"[A-Za-z]+")
_KNOWN_METHODS = frozenset(
    ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "QUERY"]
)

_ITEMS_HELP = """request items (httpie's syntax):
  Header:value    request header            name==value   query parameter
  name=value      JSON string field (form field with --form)
  name:=json      raw JSON field: n:=1 ok:=true tags:='["a","b"]'
  name@path       file upload (multipart); name@path;type=image/png
  name=@path      field read from a text file; name:=@path: JSON read from a file
  Fields make a JSON object body (Content-Type: application/json) unless --form;
  a file makes it multipart/form-data.

subcommands:
  trioclient crawl URL [--depth N] [--out DIR] ...  crawl a site (trioclient crawl --help)
  trioclient demo                                   serve a demo site on 127.0.0.1, crawl it
"""


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line and exit code 2."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see {self.prog} --help)")


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, not {text!r}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The request command's parser (`trioclient --help`)."""
    parser = _Parser(
        prog="trioclient",
        usage="trioclient [options] [METHOD] URL [ITEM ...]",
        description=(
            "Send an HTTP request with trioclient and print the response. On a terminal: the "
            "status line, coloured headers and pretty JSON; piped: the body's bytes only. "
            "`python -m trioclient` is the same command."
        ),
        epilog=_ITEMS_HELP + "\n" + EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "request",
        nargs="+",
        metavar="[METHOD] URL [ITEM]",
        help="method (default GET, or POST with a body), URL (http:// if no scheme), items",
    )
    parser.add_argument("--version", action="version", version=f"trioclient {__version__}")

    req = parser.add_argument_group("request")
    req.add_argument("-X", "--method", help="the HTTP method (instead of the METHOD word)")
    req.add_argument(
        "-H",
        "--header",
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="add a request header (repeatable)",
    )
    body = req.add_mutually_exclusive_group()
    body.add_argument(
        "-d",
        "--data",
        action="append",
        metavar="DATA",
        help="request body, as curl: @FILE reads a file (@- stdin), repeats join with &, "
        "Content-Type: application/x-www-form-urlencoded unless -H sets one",
    )
    body.add_argument(
        "--json",
        metavar="DATA",
        help="JSON request body (text, @FILE or @-), checked to be JSON; "
        "Content-Type and Accept: application/json",
    )
    req.add_argument(
        "--form",
        action="store_true",
        help="send name=value items as a form (urlencoded; multipart with a file item)",
    )
    req.add_argument("-a", "--auth", metavar="USER:PASSWORD", help="credentials")
    req.add_argument(
        "--auth-type",
        choices=["basic", "digest"],
        default="basic",
        help="how --auth is sent (default basic)",
    )

    conn = parser.add_argument_group("connection")
    conn.add_argument(
        "-L",
        "--follow",
        "--follow-redirects",
        dest="follow",
        action="store_true",
        help="follow redirects",
    )
    conn.add_argument(
        "--max-redirects",
        type=_non_negative_int,
        default=20,
        metavar="N",
        help="redirects to follow at most (default 20)",
    )
    conn.add_argument(
        "--timeout",
        type=_positive_float,
        metavar="SECONDS",
        help="connect, read, write and pool timeout (default: 10 s connect, 30 s read)",
    )
    conn.add_argument("--proxy", metavar="URL", help="http://, https:// or socks5:// proxy")
    conn.add_argument("--http2", action="store_true", help="offer HTTP/2 (ALPN, over TLS)")
    conn.add_argument(
        "--http2-prior-knowledge",
        action="store_true",
        help="speak HTTP/2 only, also over http:// (h2c)",
    )
    conn.add_argument(
        "-k",
        "--insecure",
        "--no-verify",
        dest="insecure",
        action="store_true",
        help="do not verify the server's TLS certificate",
    )
    conn.add_argument(
        "--verify",
        metavar="yes|no|CA_BUNDLE",
        help="verify TLS certificates (yes), not (no), or against this CA bundle file",
    )

    out = parser.add_argument_group("output")
    out.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="print each request (headers, text body) and response head, redirects included",
    )
    out.add_argument(
        "-i", "--include", action="store_true", help="print the response head also when piped"
    )
    out.add_argument(
        "-b",
        "--body",
        "--body-only",
        dest="body_only",
        action="store_true",
        help="print only the body, also on a terminal",
    )
    out.add_argument(
        "--pretty",
        choices=["auto", "all", "format", "none"],
        default="auto",
        help="all: colours and indented JSON; format: indented JSON; none: as received. "
        "auto (default): all on a terminal, none when piped",
    )
    out.add_argument("-o", "--output", metavar="FILE", help="write the body to FILE")
    out.add_argument(
        "--download",
        action="store_true",
        help="write the body to a file named after Content-Disposition or the URL "
        "(never overwriting), with a progress bar",
    )
    out.add_argument(
        "--fail",
        action="store_true",
        help="exit 4 on a 4xx and 5 on a 5xx response, with an error line on stderr "
        "(default: exit 0, as curl and httpie; with -o/--download no file is written)",
    )
    return parser


@dataclass
class RequestPlan:
    """Everything `run_request` needs: client settings, the request, what to print."""

    method: str
    url: str
    client_kwargs: dict[str, Any]
    request_kwargs: dict[str, Any]
    args: argparse.Namespace
    #: Files opened for a multipart upload, closed when the request is over.
    opened: list[BinaryIO] = field(default_factory=list)


def _read(path: str, stdin: BinaryIO, what: str) -> bytes:
    if path == "-":
        return stdin.read()
    try:
        with open(path, "rb") as file:
            return file.read()
    except OSError as exc:
        raise UsageError(f"{what}: cannot read {path!r}: {exc.strerror or exc}") from None


def _at_file(value: str, stdin: BinaryIO, what: str) -> bytes:
    """curl's `@FILE` (and `@-`), else the text itself as UTF-8."""
    if value.startswith("@"):
        return _read(value[1:], stdin, what)
    return value.encode("utf-8")


def _loads(data: bytes, what: str) -> Any:
    try:
        return json.loads(data)
    except ValueError as exc:
        raise UsageError(f"{what}: not valid JSON: {exc}") from None


def _header_option(text: str) -> tuple[str, str]:
    name, sep, value = text.partition(":")
    if not sep or not name.strip():
        raise UsageError(f"-H {text!r}: a header must look like 'Name: value'")
    return name.strip(), value.strip()


def _split_method_url(
    words: list[str], method_option: str | None
) -> tuple[str | None, str, list[str]]:
    first = words[0]
    if (
        len(words) >= 2
        and _METHOD_RE.fullmatch(first)
        and (first.upper() in _KNOWN_METHODS or first.isupper())
    ):
        if method_option is not None:
            raise UsageError(f"the method is given twice: {first} and -X {method_option}")
        return first.upper(), words[1], words[2:]
    return method_option.upper() if method_option else None, first, words[1:]


def _complete_url(url: str) -> str:
    """httpie's shorthands: no scheme means http://, and `:8000/x` means localhost."""
    if "://" in url:
        return url
    if url.startswith(":"):
        return "http://localhost" + url
    return "http://" + url


def _verify(args: argparse.Namespace) -> bool | str:
    if args.insecure:
        return False
    if args.verify is None or args.verify.lower() in ("yes", "true"):
        return True
    if args.verify.lower() in ("no", "false"):
        return False
    if not os.path.isfile(args.verify):
        raise UsageError(f"--verify {args.verify!r}: no such CA bundle file")
    return str(args.verify)


def plan_request(args: argparse.Namespace, stdin: BinaryIO | None = None) -> RequestPlan:
    """Check the parsed command line and build the client's and the request's arguments.

    Files for a multipart upload are opened here (so a missing one is a usage error); the
    caller closes `plan.opened`.
    """
    stdin = stdin if stdin is not None else sys.stdin.buffer
    method, url, item_texts = _split_method_url(args.request, args.method)
    if args.output and args.download:
        raise UsageError("-o/--output and --download cannot be combined")
    headers = [_header_option(text) for text in args.header]
    params: list[tuple[str, str]] = []
    fields: list[tuple[str, Any]] = []
    raw_json_fields: list[str] = []
    uploads: list[tuple[str, str, str | None]] = []
    for item in map(parse_item, item_texts):
        if item.kind is ItemKind.HEADER:
            headers.append((item.name, item.value.strip()))
        elif item.kind is ItemKind.QUERY:
            params.append((item.name, item.value))
        elif item.kind is ItemKind.DATA:
            fields.append((item.name, item.value))
        elif item.kind is ItemKind.DATA_FILE:
            text = _read(item.value, stdin, item.name).decode("utf-8", "replace")
            fields.append((item.name, text))
        elif item.kind is ItemKind.FILE:
            path, _, mime = item.value.partition(";type=")
            uploads.append((item.name, path, mime or None))
        else:
            raw = item.value.encode() if item.kind is ItemKind.JSON else None
            data = raw if raw is not None else _read(item.value, stdin, item.name)
            fields.append((item.name, _loads(data, f"{item.name}{item.kind.value}")))
            raw_json_fields.append(item.name)

    defaults: list[tuple[str, str]] = []
    request_kwargs: dict[str, Any] = {}
    has_body = True
    if (args.data is not None or args.json is not None) and (fields or uploads):
        raise UsageError("field and file items cannot be combined with -d/--data or --json")
    if args.data is not None:
        request_kwargs["content"] = b"&".join(_at_file(d, stdin, "-d") for d in args.data)
        defaults.append(("Content-Type", "application/x-www-form-urlencoded"))
    elif args.json is not None:
        content = _at_file(args.json, stdin, "--json")
        _loads(content, "--json")
        request_kwargs["content"] = content
        defaults += [("Content-Type", "application/json"), ("Accept", "application/json")]
    elif uploads or (fields and args.form):
        if raw_json_fields:
            names = ", ".join(raw_json_fields)
            raise UsageError(f"raw JSON fields (name:=json) cannot be sent in a form: {names}")
        form: dict[str, list[str]] = {}
        for name, value in fields:
            form.setdefault(name, []).append(value)
        request_kwargs["data"] = form
    elif fields:
        request_kwargs["content"] = json.dumps(dict(fields), ensure_ascii=False).encode()
        defaults += [
            ("Content-Type", "application/json"),
            ("Accept", "application/json, */*;q=0.5"),
        ]
    else:
        has_body = False
    if args.output or args.download:
        # The file gets the body as sent: its size matches Content-Length for the progress bar.
        defaults.append(("Accept-Encoding", "identity"))
    given = {name.lower() for name, _ in headers}
    request_kwargs["headers"] = [d for d in defaults if d[0].lower() not in given] + headers
    if params:
        request_kwargs["params"] = params

    client_kwargs: dict[str, Any] = {
        "verify": _verify(args),
        "follow_redirects": args.follow,
        "max_redirects": args.max_redirects,
        "http2": args.http2 or args.http2_prior_knowledge,
        "http1": not args.http2_prior_knowledge,
    }
    if args.timeout is not None:
        client_kwargs["timeout"] = Timeout(args.timeout)
    if args.proxy:
        client_kwargs["proxy"] = args.proxy
    if args.auth is not None:
        user, sep, password = args.auth.partition(":")
        if not sep:
            raise UsageError("--auth must look like USER:PASSWORD")
        auth_class = DigestAuth if args.auth_type == "digest" else BasicAuth
        client_kwargs["auth"] = auth_class(user, password)

    plan = RequestPlan(
        method or ("POST" if has_body else "GET"),
        _complete_url(url),
        client_kwargs,
        request_kwargs,
        args,
    )
    with contextlib.ExitStack() as on_error:
        files: list[tuple[str, tuple[str, BinaryIO, str]]] = []
        for field_name, path, file_type in uploads:
            try:
                file = open(path, "rb")  # noqa: SIM115 - closed by the caller via plan.opened
            except OSError as exc:
                message = f"{field_name}@{path}: cannot read: {exc.strerror or exc}"
                raise UsageError(message) from None
            on_error.callback(file.close)
            plan.opened.append(file)
            guessed = mimetypes.guess_type(path)[0] or "application/octet-stream"
            files.append((field_name, (os.path.basename(path), file, file_type or guessed)))
        if files:
            request_kwargs["files"] = files
        on_error.pop_all()
    return plan


def parse_request_args(argv: Sequence[str]) -> argparse.Namespace:
    """Parse the request command's arguments, options and items in any order."""
    return build_parser().parse_intermixed_args(argv)
