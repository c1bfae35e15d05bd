"""Run one request and print it, or save its body: the request command's async half."""

from __future__ import annotations

import codecs
import contextlib
import email.message
import mimetypes
import os
import posixpath
import sys
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable

import trio

from .._client import Client
from .._exceptions import RequestNotRead
from .._request import Request
from .._response import Response
from ._args import RequestPlan
from ._exit import CLIError, ExitCode
from ._progress import DownloadProgress
from ._render import PRETTY_JSON_LIMIT, Printer, is_json_type

__all__ = ["run_request"]

# Candidate names tried for --download before giving up (`name`, `name-1`, ... `name-999`).
_MAX_NAME_TRIES = 1000


def _request_hook(printer: Printer, version: str | None) -> Callable[[Request], Awaitable[None]]:
    async def hook(request: Request) -> None:
        printer.request_head(request, version)
        with contextlib.suppress(RequestNotRead):
            printer.request_body(request.content)
        printer.flush()

    return hook


def _response_hook(printer: Printer) -> Callable[[Response], Awaitable[None]]:
    async def hook(response: Response) -> None:
        printer.response_head(response)
        printer.flush()

    return hook


def download_name(response: Response) -> str:
    """A file name from Content-Disposition, else the URL's last segment, else `index`.

    Only a base name is ever taken (no directories, no leading dot), so a server cannot write
    outside the current directory or hide the file.
    """
    candidates: list[str] = []
    disposition = response.headers.get("content-disposition")
    if disposition:
        message = email.message.Message()
        message["content-disposition"] = disposition
        candidates.append(message.get_filename() or "")
    path = urllib.parse.unquote(response.url.path)
    candidates.append(posixpath.basename(path))
    for candidate in candidates:
        name = os.path.basename(candidate.replace("\\", "/")).lstrip(".").strip()
        if name:
            return name
    content_type = response.headers.get("content-type", "").split(";")[0].strip()
    return "index" + (mimetypes.guess_extension(content_type) or "")


def _unused_name(name: str) -> str:
    stem, ext = os.path.splitext(name)
    for n in range(_MAX_NAME_TRIES):
        candidate = name if n == 0 else f"{stem}-{n}{ext}"
        if not os.path.exists(candidate):
            return candidate
    raise CLIError(
        f"--download: {name} and {_MAX_NAME_TRIES - 1} variants exist", ExitCode.OUTPUT_FAILED
    )


async def _save(response: Response, path: str, *, exclusive: bool, quiet: bool) -> None:
    total = None
    if "content-encoding" not in response.headers:
        with contextlib.suppress(ValueError):
            total = int(response.headers.get("content-length", ""))
    try:
        file = await trio.open_file(path, "xb" if exclusive else "wb")
    except OSError as exc:
        raise CLIError(
            f"cannot write {path}: {exc.strerror or exc}", ExitCode.OUTPUT_FAILED
        ) from None
    complete = False
    try:
        with DownloadProgress(path, total) as progress:
            async for chunk in response.aiter_bytes():
                try:
                    await file.write(chunk)
                except OSError as exc:
                    message = f"cannot write {path}: {exc.strerror or exc}"
                    raise CLIError(message, ExitCode.OUTPUT_FAILED) from None
                progress.advance(len(chunk))
        complete = True
    finally:
        with trio.CancelScope(shield=True):
            await file.aclose()
        if not complete:
            # A partial file looks like a finished one; remove it (the error says why).
            with contextlib.suppress(OSError):
                os.unlink(path)
    if not quiet:
        print(progress.summary(), file=sys.stderr)


async def _print_body(printer: Printer, response: Response) -> None:
    if printer.format and is_json_type(response.headers.get("content-type")):
        body = bytearray()
        chunks: AsyncIterator[bytes] = response.aiter_bytes()
        async for chunk in chunks:
            body += chunk
            if len(body) > PRETTY_JSON_LIMIT:
                break
        else:
            if printer.json_body(bytes(body), response.encoding or "utf-8"):
                return
        printer.write(bytes(body))
        async for chunk in chunks:
            printer.write(chunk)
        return
    if not printer.tty:
        async for chunk in response.aiter_bytes():
            printer.write(chunk)
        return
    # A terminal: text in the terminal's encoding, and never a binary body.
    decoder_input = response.aiter_bytes()
    first = True
    last = b""
    encoding = response.encoding or "utf-8"
    decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
    async for chunk in decoder_input:
        if first and b"\0" in chunk:
            printer.binary_note()
            return
        first = False
        text = decoder.decode(chunk)
        data = text.encode("utf-8", "replace")
        if data:
            last = data
        printer.write(data)
    tail = decoder.decode(b"", final=True).encode("utf-8", "replace")
    if tail:
        last = tail
        printer.write(tail)
    if last and not last.endswith(b"\n"):
        printer.write(b"\n")


async def run_request(plan: RequestPlan, printer: Printer, *, show_head: bool) -> ExitCode:
    """Send `plan`'s request, print or save the response; the exit code for an HTTP status."""
    args = plan.args
    client_kwargs = dict(plan.client_kwargs)
    if args.verbose:
        version = None if client_kwargs["http2"] else "HTTP/1.1"
        client_kwargs["event_hooks"] = {
            "request": [_request_hook(printer, version)],
            "response": [_response_hook(printer)],
        }
    async with (
        Client(**client_kwargs) as client,
        client.stream(plan.method, plan.url, **plan.request_kwargs) as response,
    ):
        if show_head and not args.verbose:
            printer.response_head(response)
        code = ExitCode.OK
        if args.fail and response.status_code >= 400:
            code = ExitCode.HTTP_4XX if response.status_code < 500 else ExitCode.HTTP_5XX
        saving = args.output or args.download
        if saving and code is ExitCode.OK:
            printer.flush()
            path = args.output or _unused_name(download_name(response))
            await _save(response, path, exclusive=args.download, quiet=not sys.stderr.isatty())
        elif not saving and response.request.method != "HEAD":
            await _print_body(printer, response)
        printer.flush()
        if code is not ExitCode.OK:
            reason = f"{response.status_code} {response.reason_phrase}".strip()
            raise CLIError(f"HTTP {reason} (--fail)", code)
    return code
