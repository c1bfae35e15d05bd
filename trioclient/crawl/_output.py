"""Where a crawl's results go: JSON lines for programs, WARC for archivists' tools.

A `ResultSink` takes `FetchResult`s one at a time and is closed once. The crawler awaits
each `write` before it marks the URL done, so a result is on its way to disk before the
frontier forgets the URL (a crash in between re-fetches it: the output is at-least-once
when workers die, exactly-once otherwise).

File writes run in worker threads (`trio.to_thread`), so a slow disk never blocks the
event loop; a lock keeps one write at a time per sink. `JsonLinesSink` buffers up to 64 KiB
of lines and writes them in one go; `aclose` flushes (shielded, so a cancelled crawl still
writes what it has). Use them with ``async with``, or call `aclose`.

WARC (ISO 28500, `warcio`, the ``[crawl]`` extra): each page is a ``request`` record and a
``response`` record, gzip-compressed per record, after one ``warcinfo`` record. What the
records can and cannot hold, because a `FetchResult` is what the crawler kept, not the
bytes on the wire:

* the response record holds the final response (after redirects: its URL is
  ``final_url``), its status and headers, and the *decoded* body; so ``Content-Encoding``
  and ``Transfer-Encoding`` are renamed ``X-Archive-Orig-...`` (pywb's convention) and
  ``Content-Length`` is the decoded size, else a WARC reader would decode the body again;
* the request record is rebuilt (``GET``, ``Host``, the crawler's ``User-Agent``);
* the HTTP version is written as HTTP/1.1 whatever was spoken (HTTP/2 has no status line);
* a result without a body (a network error, a robots.txt refusal, a content type not
  read) writes no record: a WARC holds what a server sent.
"""

from __future__ import annotations

import json
import os
from http import HTTPStatus
from io import BytesIO
from types import TracebackType
from typing import IO, Any, Protocol, TypeVar, runtime_checkable

import trio

from .._urls import URL
from ._fetch import FetchResult
from ._polite import DEFAULT_USER_AGENT

__all__ = ["JsonLinesSink", "ResultSink", "WarcSink", "result_to_json"]

_FLUSH_AT = 64 * 1024
_S = TypeVar("_S", bound="_FileSink")
_RENAMED = {"content-encoding", "transfer-encoding", "content-length"}


@runtime_checkable
class ResultSink(Protocol):
    """Something the crawler writes each result to (a file, a database, a queue)."""

    async def write(self, result: FetchResult) -> None:
        """Take one result."""
        ...

    async def aclose(self) -> None:
        """Flush and release resources; idempotent."""
        ...


def result_to_json(result: FetchResult) -> dict[str, Any]:
    """The JSON-lines record of a result (everything but the body itself)."""
    return {
        "url": result.url,
        "final_url": result.final_url,
        "status": result.status,
        "headers": [list(pair) for pair in result.headers] if result.headers is not None else None,
        "size": result.size,
        "sha256": result.sha256,
        "elapsed": round(result.elapsed, 6),
        "error": result.error,
        "error_message": result.error_message,
    }


class _FileSink:
    """A sink writing to one file through worker threads, one write at a time."""

    def __init__(self, path: str | os.PathLike[str], mode: str) -> None:
        self.path = os.fspath(path)
        self._mode = mode
        self._file: IO[bytes] | None = None
        self._lock = trio.Lock()
        self._closed = False
        self.written = 0  # records written

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"{type(self).__name__}({self.path!r}) is closed")

    def _open_sync(self) -> IO[bytes]:
        if self._file is None:
            self._file = open(self.path, self._mode)  # noqa: SIM115 (closed in aclose)
            self._opened(self._file)
        return self._file

    def _opened(self, file: IO[bytes]) -> None:
        """Hook: write a header when the file is opened."""

    def _close_sync(self) -> None:
        if self._file is not None:
            self._file.close()

    async def aclose(self) -> None:
        raise NotImplementedError

    async def __aenter__(self: _S) -> _S:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


class JsonLinesSink(_FileSink):
    """Write each result as one JSON object per line (`result_to_json`), UTF-8.

    ``append=True`` adds to an existing file instead of replacing it.
    """

    def __init__(self, path: str | os.PathLike[str], *, append: bool = False) -> None:
        super().__init__(path, "ab" if append else "wb")
        self._buffer: list[bytes] = []
        self._buffered = 0

    def _write_sync(self, chunk: bytes) -> None:
        file = self._open_sync()
        file.write(chunk)
        file.flush()

    async def _flush(self) -> None:
        # The buffer is taken only once the lock is held: a cancel while waiting for it
        # loses nothing, and a write already in its thread runs to its end.
        async with self._lock:
            chunk = b"".join(self._buffer)
            self._buffer.clear()
            self._buffered = 0
            await trio.to_thread.run_sync(self._write_sync, chunk)

    async def write(self, result: FetchResult) -> None:
        """Queue one line; the buffer is written once it holds 64 KiB."""
        await trio.lowlevel.checkpoint()
        self._check_open()
        line = json.dumps(result_to_json(result), ensure_ascii=False).encode() + b"\n"
        self._buffer.append(line)
        self._buffered += len(line)
        self.written += 1
        if self._buffered >= _FLUSH_AT:
            await self._flush()

    async def aclose(self) -> None:
        """Write what is buffered and close the file (shielded: runs even when cancelled)."""
        if self._closed:
            await trio.lowlevel.checkpoint()
            return
        self._closed = True
        with trio.CancelScope(shield=True):
            await self._flush()  # also creates the file of an empty crawl
            await trio.to_thread.run_sync(self._close_sync)


class WarcSink(_FileSink):
    """Write each page as WARC request + response records (see the module docstring).

    ``gzip`` compresses each record (the usual ``.warc.gz``); ``user_agent`` goes into the
    rebuilt request records (pass the crawl's Politeness.user_agent). Needs ``warcio``
    (``pip install trioclient[crawl]``); the ImportError comes from the constructor.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        gzip: bool = True,
        user_agent: str = DEFAULT_USER_AGENT,
    ) -> None:
        try:
            from warcio.warcwriter import WARCWriter
        except ImportError as exc:  # pragma: no cover - the test extra installs it
            raise ImportError("WARC output needs warcio: pip install trioclient[crawl]") from exc
        super().__init__(path, "wb")
        self._writer_class = WARCWriter
        self._writer: Any = None
        self.gzip = gzip
        self.user_agent = user_agent
        self.skipped = 0  # results without a body, not archived

    def _opened(self, file: IO[bytes]) -> None:
        self._writer = self._writer_class(file, gzip=self.gzip)
        info = self._writer.create_warcinfo_record(
            os.path.basename(self.path),
            {"software": "trioclient.crawl (warcio)", "format": "WARC File Format 1.1"},
        )
        self._writer.write_record(info)

    def _write_sync(self, result: FetchResult) -> None:
        from warcio.statusandheaders import StatusAndHeaders

        file = self._open_sync()
        writer = self._writer
        assert result.content is not None
        assert result.status is not None
        url = URL(result.final_url or result.url)
        target = url.raw_path.decode("ascii")
        request_headers = StatusAndHeaders(
            f"GET {target} HTTP/1.1",
            [("Host", url.netloc.decode("ascii")), ("User-Agent", self.user_agent)],
            is_http_request=True,
        )
        headers = []
        for name, value in result.headers or []:
            if name.lower() in _RENAMED:
                if name.lower() != "content-length":
                    headers.append((f"X-Archive-Orig-{name}", value))
            else:
                headers.append((name, value))
        headers.append(("Content-Length", str(len(result.content))))
        try:
            reason = HTTPStatus(result.status).phrase
        except ValueError:
            reason = "Unknown"
        response_headers = StatusAndHeaders(
            f"{result.status} {reason}", headers, protocol="HTTP/1.1"
        )
        uri = str(url)
        request = writer.create_warc_record(
            uri, "request", payload=BytesIO(b""), length=0, http_headers=request_headers
        )
        response = writer.create_warc_record(
            uri,
            "response",
            payload=BytesIO(result.content),
            length=len(result.content),
            http_headers=response_headers,
        )
        writer.write_request_response_pair(request, response)
        file.flush()

    async def write(self, result: FetchResult) -> None:
        """Archive one result (a request and a response record) if it has a body."""
        self._check_open()
        if result.content is None or result.status is None:
            await trio.lowlevel.checkpoint()
            self.skipped += 1
            return
        async with self._lock:
            await trio.to_thread.run_sync(self._write_sync, result)
        self.written += 1

    async def aclose(self) -> None:
        """Close the file (shielded); an empty crawl still leaves a valid WARC."""
        if self._closed:
            await trio.lowlevel.checkpoint()
            return
        self._closed = True
        with trio.CancelScope(shield=True):
            async with self._lock:
                await trio.to_thread.run_sync(self._open_and_close_sync)

    def _open_and_close_sync(self) -> None:
        self._open_sync()
        self._close_sync()
