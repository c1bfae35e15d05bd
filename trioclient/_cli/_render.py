"""What the request command writes to standard output: heads, bodies, pretty JSON.

Everything goes out as bytes through one `BinaryIO`, so bodies keep their exact bytes when
piped. Colour comes from `rich` when it is installed (the `cli` extra): rich renders into a
string (`Console.capture`) and those bytes are written like the rest. Without rich the output is
the same minus the colours, so a plain GET never needs the extra.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any, BinaryIO

if TYPE_CHECKING:
    from rich.console import Console

    from .._request import Request
    from .._response import Response

__all__ = ["Printer", "load_rich"]

# Bodies up to this size are buffered to be re-indented as JSON; a longer one streams as is.
PRETTY_JSON_LIMIT = 8 * 1024 * 1024


def load_rich() -> bool:
    """Whether `rich` can be imported (the `cli` extra); the command degrades without it."""
    try:
        import rich.console  # noqa: F401
    except ImportError:
        return False
    return True


def is_json_type(content_type: str | None) -> bool:
    """`application/json`, `application/problem+json`, `text/json` and the like."""
    if not content_type:
        return False
    mime = content_type.split(";", 1)[0].strip().lower()
    return mime.endswith(("/json", "+json"))


def _status_style(status: int) -> str:
    if status < 300:
        return "bold green"
    if status < 400:
        return "bold yellow"
    return "bold red"


class Printer:
    """Writes heads and bodies to `out`, with colours (`colors`) and re-indented JSON (`format`)."""

    def __init__(self, out: BinaryIO, *, colors: bool, format: bool, tty: bool) -> None:
        self.out = out
        self.format = format
        #: Standard output is a terminal: binary bodies are not dumped on it.
        self.tty = tty
        self._console: Console | None = None
        if colors and load_rich():
            from rich.console import Console

            # A terminal for the colour system and width, but output is captured (see render).
            self._console = Console(
                file=sys.__stdout__ or sys.stdout,
                force_terminal=True,
                highlight=False,
                markup=False,
                emoji=False,
                soft_wrap=True,
            )

    @property
    def colors(self) -> bool:
        """Whether ANSI colours are written."""
        return self._console is not None

    def write(self, data: bytes) -> None:
        """Write bytes as they are."""
        self.out.write(data)

    def flush(self) -> None:
        """Flush standard output (a closed pipe shows up here as BrokenPipeError)."""
        self.out.flush()

    def _render(self, *renderables: Any) -> None:
        assert self._console is not None
        with self._console.capture() as capture:
            self._console.print(*renderables)
        self.out.write(capture.get().encode("utf-8", "replace"))

    def _head(self, first: list[tuple[str, str]], headers: list[tuple[bytes, bytes]]) -> None:
        if self._console is None:
            lines = ["".join(text for text, _ in first)]
            lines += [f"{n.decode('latin-1')}: {v.decode('latin-1')}" for n, v in headers]
            self.out.write(("\n".join(lines) + "\n\n").encode("utf-8", "replace"))
            return
        from rich.text import Text

        text = Text()
        for part, style in first:
            text.append(part, style)
        for name, value in headers:
            text.append("\n")
            text.append(name.decode("latin-1"), "cyan")
            text.append(": ")
            text.append(value.decode("latin-1"))
        text.append("\n")
        self._render(text)

    def request_head(self, request: Request, version: str | None) -> None:
        """`GET /path HTTP/1.1` and the headers as sent; `version` None when not yet known."""
        target = request.url.raw_path.decode("ascii")
        first = [(request.method, "bold green"), (" ", ""), (target, "")]
        if version:
            first += [(" ", ""), (version, "blue")]
        self._head(first, list(request.headers.raw))

    def request_body(self, content: bytes) -> None:
        """A request body under -v: as text when it decodes, else its size."""
        if not content:
            return
        try:
            text = content.decode("utf-8")
        except UnicodeDecodeError:
            text = ""
        if text and "\0" not in text:
            self.write(text.encode("utf-8") + b"\n\n")
        else:
            self.write(f"[{len(content)} bytes of binary data]\n\n".encode())

    def response_head(self, response: Response) -> None:
        """The status line and the headers as received."""
        first = [
            (response.http_version, "blue"),
            (" ", ""),
            (str(response.status_code), _status_style(response.status_code)),
            (" ", ""),
            (response.reason_phrase, _status_style(response.status_code)),
        ]
        self._head(first, list(response.headers.raw))

    def json_body(self, body: bytes, encoding: str) -> bool:
        """Write a JSON body re-indented (and coloured); False if it does not parse."""
        try:
            text = body.decode(encoding)
            value = json.loads(text)
        except (UnicodeDecodeError, LookupError, ValueError):
            return False
        if self._console is None:
            self.write(json.dumps(value, indent=2, ensure_ascii=False).encode("utf-8") + b"\n")
            return True
        from rich.json import JSON

        self._render(JSON.from_data(value, indent=2, ensure_ascii=False))
        return True

    def binary_note(self) -> None:
        """What a terminal gets instead of a binary body."""
        note = "[binary body not shown on a terminal: use -o FILE, --download or a pipe]"
        if self._console is None:
            self.write(note.encode() + b"\n")
        else:
            from rich.text import Text

            self._render(Text(note, "bold yellow"))
