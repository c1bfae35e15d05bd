"""`python -m trioclient URL`: fetch a URL and print status line, headers and body.

Uses only argparse, so the command works with the library's own dependencies.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any, BinaryIO

import trio

from ._client import Client
from ._config import Timeout
from ._exceptions import HTTPError, InvalidURL, StreamError

__all__ = ["main"]


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m trioclient",
        description="Fetch a URL with trioclient and print the response.",
    )
    parser.add_argument("url", help="the URL to fetch")
    parser.add_argument("-X", "--method", default=None, help="HTTP method (default GET)")
    parser.add_argument(
        "-H",
        "--header",
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="add a request header (repeatable)",
    )
    body = parser.add_mutually_exclusive_group()
    body.add_argument("-d", "--data", default=None, help="request body (sends POST)")
    body.add_argument("--json", default=None, help="JSON request body (sends POST)")
    parser.add_argument("-L", "--follow-redirects", action="store_true", help="follow redirects")
    parser.add_argument("-k", "--no-verify", action="store_true", help="skip TLS verification")
    parser.add_argument("--timeout", type=float, default=None, help="timeout in seconds")
    parser.add_argument("--body-only", action="store_true", help="print only the body")
    args = parser.parse_args(argv)
    args.json_value = None
    if args.json is not None:
        try:
            args.json_value = json.loads(args.json)
        except ValueError as exc:
            parser.error(f"argument --json: not valid JSON: {exc}")
    return args


def _headers(pairs: list[str]) -> list[tuple[str, str]]:
    headers = []
    for pair in pairs:
        name, sep, value = pair.partition(":")
        if not sep:
            raise SystemExit(f"error: header {pair!r} must look like 'Name: value'")
        headers.append((name.strip(), value.strip()))
    return headers


async def _fetch(args: argparse.Namespace, out: BinaryIO) -> int:
    kwargs: dict[str, Any] = {"headers": _headers(args.header)}
    method = args.method
    if args.data is not None:
        kwargs["content"] = args.data.encode("utf-8")
        method = method or "POST"
    if args.json is not None:
        kwargs["json"] = args.json_value
        method = method or "POST"
    timeout = Timeout() if args.timeout is None else Timeout(args.timeout)
    async with (
        Client(
            verify=not args.no_verify, timeout=timeout, follow_redirects=args.follow_redirects
        ) as client,
        client.stream(method or "GET", args.url, **kwargs) as response,
    ):
        if not args.body_only:
            head = f"{response.http_version} {response.status_code} {response.reason_phrase}\n"
            for name, value in response.headers.raw:
                head += f"{name.decode('latin-1')}: {value.decode('latin-1')}\n"
            out.write((head + "\n").encode("utf-8"))
        async for chunk in response.aiter_bytes():
            out.write(chunk)
        out.flush()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `python -m trioclient` and of the `trioclient` script."""
    args = _parse_args(argv)
    try:
        return trio.run(_fetch, args, sys.stdout.buffer)
    except (HTTPError, InvalidURL, StreamError) as exc:
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
