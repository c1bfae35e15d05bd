"""Multipart uploads end to end: httpbin (Flask/Werkzeug's parser) and a streaming
python-multipart server (``servers.upload_app``) that hashes each part as it arrives."""

from __future__ import annotations

import hashlib
import io
import os
import threading
import tracemalloc
import uuid
from pathlib import Path
from typing import Any

import pytest
import trio
from servers.hypercorn_server import HypercornServer

import trioclient
from trioclient._multipart import CHUNK_SIZE


def open_file(path: Path | int, mode: str = "rb") -> Any:
    """open(), outside the async tests (it does not block for long on a local file)."""
    return open(path, mode)


class CountingFile(io.RawIOBase):
    """Wraps a real binary file; records the largest read and the reading threads."""

    def __init__(self, path: Path, *, seekable: bool = True) -> None:
        self._file = open(path, "rb", buffering=0)  # noqa: SIM115
        self._seekable = seekable
        self.largest_read = 0
        self.reads = 0
        self.threads: set[int] = set()
        self.name = str(path)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return self._seekable

    def read(self, size: int | None = -1) -> bytes:
        assert size is not None
        assert 0 < size <= CHUNK_SIZE, f"read({size})"
        self.largest_read = max(self.largest_read, size)
        self.reads += 1
        self.threads.add(threading.get_ident())
        return self._file.read(size) or b""

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if not self._seekable:
            raise io.UnsupportedOperation("seek")
        return self._file.seek(offset, whence)

    def tell(self) -> int:
        return self._file.tell()

    def close(self) -> None:
        self._file.close()
        super().close()


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A 50 MB file of random bytes and its SHA-256."""
    path = tmp_path_factory.mktemp("upload") / "big.bin"
    digest = hashlib.sha256()
    with open(path, "wb") as file:
        for _ in range(50):
            block = os.urandom(1024 * 1024)
            digest.update(block)
            file.write(block)
    return path, digest.hexdigest()


@pytest.fixture
def upload_url(upload_server: HypercornServer) -> str:
    return upload_server.http_url


# --- httpbin ---------------------------------------------------------------------------------


async def test_httpbin_sees_fields_and_files(httpbin_url: str) -> None:
    async with trioclient.Client() as client:
        response = await client.post(
            f"{httpbin_url}/post",
            data={"name": "value", "many": ["1", "2"]},
            files={
                "text": ("notes.txt", io.BytesIO(b"some notes"), "text/plain"),
                "raw": b"raw bytes",
            },
        )
    assert response.status_code == 200
    echoed = response.json()
    assert echoed["form"] == {"name": "value", "many": ["1", "2"]}
    assert echoed["files"] == {"text": "some notes", "raw": "raw bytes"}
    assert echoed["headers"]["Content-Type"].startswith("multipart/form-data; boundary=")
    assert int(echoed["headers"]["Content-Length"]) == len(await response.request.aread())


# (No chunked upload to httpbin: WSGI gives an app no way to read a body without a
# Content-Length, so Werkzeug sees none. The streaming server below checks chunked ones.)


# --- the streaming server: large files, checksums, bounded reads ------------------------------


@pytest.mark.slow
async def test_a_50_mb_file_streams_with_bounded_reads_and_memory(
    upload_url: str, big_file: tuple[Path, str]
) -> None:
    path, digest = big_file
    file = CountingFile(path)
    tracemalloc.start()
    try:
        async with trioclient.Client(timeout=60) as client:
            response = await client.post(
                f"{upload_url}/upload",
                data={"title": "big"},
                files=[("blob", ("big.bin", file, "application/octet-stream"))],
            )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        file.close()
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["framing"] == "content-length"
    title, blob = answer["parts"]
    assert (title["name"], title["data"]) == ("title", "big")
    assert (blob["name"], blob["filename"], blob["size"]) == ("blob", "big.bin", 50 * 2**20)
    assert blob["sha256"] == digest
    assert file.largest_read <= CHUNK_SIZE
    assert file.reads >= 50 * 2**20 // CHUNK_SIZE
    assert threading.get_ident() not in file.threads  # read in worker threads
    # Client and server together (the server runs in this process too) stayed far below
    # the file's size: nothing held the whole file.
    assert peak < 8 * 2**20, f"peak {peak} bytes traced during a 50 MB upload"


@pytest.mark.parametrize("http2", [False, True], ids=["http1.1", "h2-tls"])
async def test_several_files_per_field_with_checksums(
    upload_server: HypercornServer, tmp_path: Path, http2: bool, ssl_context: Any
) -> None:
    contents = [os.urandom(n) for n in (0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, 3 * CHUNK_SIZE + 5)]
    files: list[tuple[str, Any]] = []
    for index, content in enumerate(contents):
        path = tmp_path / f"file{index}.bin"
        path.write_bytes(content)
        files.append(("many", (path.name, open_file(path))))
    files.append(("many", ("in-memory.txt", "unicode text: ü€", "text/plain; charset=utf-8")))
    url = upload_server.https_url if http2 else upload_server.http_url
    try:
        async with trioclient.Client(http2=http2, verify=ssl_context) as client:
            response = await client.post(f"{url}/upload", files=files)
    finally:
        for _, (_, handle, *_) in files:
            if not isinstance(handle, str):
                handle.close()
    assert response.http_version == ("HTTP/2" if http2 else "HTTP/1.1")
    parts = response.json()["parts"]
    assert [part["name"] for part in parts] == ["many"] * 6
    expected = [*contents, "unicode text: ü€".encode()]
    assert [part["sha256"] for part in parts] == [hashlib.sha256(c).hexdigest() for c in expected]
    assert [part["filename"] for part in parts][-1] == "in-memory.txt"
    assert ["content-type", "text/plain; charset=utf-8"] in [
        [k.lower(), v] for k, v in parts[-1]["headers"]
    ]


async def test_a_pipe_is_uploaded_chunked(upload_url: str) -> None:
    read_fd, write_fd = os.pipe()
    payload = os.urandom(5 * CHUNK_SIZE + 17)

    def writer() -> None:
        with open(write_fd, "wb") as pipe:
            pipe.write(payload)

    thread = threading.Thread(target=writer)
    thread.start()
    with open_file(read_fd) as pipe:
        async with trioclient.Client() as client:
            response = await client.post(f"{upload_url}/upload", files={"p": pipe})
    thread.join()
    answer = response.json()
    assert answer["framing"] == "chunked"
    (part,) = answer["parts"]
    assert part["sha256"] == hashlib.sha256(payload).hexdigest()


async def test_a_user_boundary_is_used(upload_url: str) -> None:
    headers = {"Content-Type": "multipart/form-data; boundary=my-own-boundary"}
    async with trioclient.Client() as client:
        response = await client.post(
            f"{upload_url}/upload", headers=headers, files={"f": ("f", b"x")}
        )
    assert response.request.headers["content-type"] == headers["Content-Type"]
    assert response.json()["parts"][0]["data"] == "x"


# --- replay: redirects, and what cannot be replayed --------------------------------------------


@pytest.mark.parametrize("status", [307, 308])
async def test_a_redirect_replays_seekable_files_from_their_start(
    upload_url: str, tmp_path: Path, status: int
) -> None:
    path = tmp_path / "f.bin"
    content = os.urandom(2 * CHUNK_SIZE + 3)
    path.write_bytes(b"skipped" + content)
    with open_file(path) as file:
        file.seek(len(b"skipped"))
        async with trioclient.Client(follow_redirects=True) as client:
            response = await client.post(
                f"{upload_url}/redirect?status={status}", files={"f": ("f", file)}
            )
    assert [r.status_code for r in response.history] == [status]
    assert response.json()["parts"][0]["sha256"] == hashlib.sha256(content).hexdigest()


async def test_a_redirect_with_a_non_seekable_file_is_refused(
    upload_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"data")
    file = CountingFile(path, seekable=False)
    async with trioclient.Client(follow_redirects=True) as client:
        with pytest.raises(trioclient.RemoteProtocolError, match="seekable files"):
            await client.post(f"{upload_url}/redirect", files={"f": ("f", file)})
        # The connection went back in a good state: the next request works.
        response = await client.post(f"{upload_url}/upload", files={"f": ("f", b"ok")})
    file.close()
    assert response.json()["parts"][0]["data"] == "ok"


async def test_a_303_drops_the_upload(upload_url: str) -> None:
    async with trioclient.Client(follow_redirects=True) as client:
        response = await client.post(f"{upload_url}/redirect?status=303", files={"f": ("f", b"x")})
    assert response.request.method == "GET"
    assert "content-type" not in response.request.headers
    assert response.status_code == 400  # /upload got a GET without a multipart body


async def test_sending_a_non_seekable_body_twice_is_stream_consumed(
    upload_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"data")
    file = CountingFile(path, seekable=False)
    async with trioclient.Client() as client:
        request = client.build_request("POST", f"{upload_url}/upload", files={"f": file})
        first = await client.send(request)
        assert first.status_code == 200
        with pytest.raises(trioclient.StreamConsumed):
            await client.send(request)
        assert (await client.post(f"{upload_url}/upload", files={"f": b"x"})).status_code == 200
    file.close()


async def test_an_early_rejection_stops_reading_the_file(
    upload_url: str, big_file: tuple[Path, str]
) -> None:
    path, _ = big_file
    file = CountingFile(path)
    async with trioclient.Client() as client:
        response = await client.post(f"{upload_url}/reject", files={"f": ("f", file)})
    file.close()
    assert response.status_code == 413
    assert file.reads < 50 * 2**20 // CHUNK_SIZE  # abandoned part-way


async def test_a_file_shrinking_mid_upload_is_a_local_protocol_error(
    upload_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"x" * (4 * CHUNK_SIZE))
    with open_file(path) as file:
        async with trioclient.Client() as client:
            request = client.build_request("POST", f"{upload_url}/upload", files={"f": file})
            os.truncate(path, CHUNK_SIZE)
            with pytest.raises(trioclient.LocalProtocolError, match="ended before"):
                await client.send(request)
            assert client.pool_statistics().connections == 0  # the half-sent one is gone
            assert (await client.post(f"{upload_url}/upload", files={"f": b"x"})).is_success


async def test_module_level_post_with_files(upload_url: str) -> None:
    response = await trioclient.post(f"{upload_url}/upload", files={"f": ("a.txt", b"hi")})
    assert response.json()["parts"][0]["filename"] == "a.txt"


async def test_cancelling_a_thread_read_returns_promptly(upload_url: str) -> None:
    """A pipe that never delivers: the upload is cancelled while a worker thread waits in
    read(); the cancellation is not held up by it (the read is abandoned)."""
    read_fd, write_fd = os.pipe()
    with open_file(read_fd) as pipe, open_file(write_fd, "wb") as writer:
        writer.write(b"first")
        writer.flush()
        async with trioclient.Client() as client:
            with trio.move_on_after(0.5) as scope:
                await client.post(f"{upload_url}/upload", files={"p": pipe})
            assert scope.cancelled_caught
            assert client.pool_statistics().connections == 0
        writer.close()  # the abandoned read() sees EOF and its thread ends


class SlowSeekableFile(io.RawIOBase):
    """A seekable file whose second read() blocks until `release` is set (a slow disk)."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)
        self.release = threading.Event()
        self.reading = threading.Event()
        self.in_read = False
        self.reads = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        self.in_read = True
        try:
            self.reads += 1
            if self.reads == 2:
                self.reading.set()
                self.release.wait(10)
            return self._data.read(size)
        finally:
            self.in_read = False

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._data.seek(offset, whence)

    def tell(self) -> int:
        return self._data.tell()


async def test_cancelling_waits_for_a_seekable_files_read(upload_url: str) -> None:
    """A seekable file's read() is not abandoned: a replay (retry, redirect, the caller's next
    attempt) seeks the same file object, which must not race a read still running in a
    worker thread. A local file read is short, so waiting for it keeps cancellation prompt."""
    file = SlowSeekableFile(b"x" * (3 * CHUNK_SIZE))
    async with trioclient.Client() as client:
        async with trio.open_nursery() as nursery:

            async def upload() -> None:
                await client.post(f"{upload_url}/upload", files={"f": file})

            nursery.start_soon(upload)
            await trio.to_thread.run_sync(file.reading.wait)
            nursery.cancel_scope.cancel()
            # The "disk" finishes a moment later, from another thread.
            threading.Timer(0.2, file.release.set).start()
        assert not file.in_read  # cancellation returned only after the read did
    file.release.set()


async def test_a_retry_resends_seekable_files(upload_url: str, tmp_path: Path) -> None:
    """A 503 with Retry-After is retried (PUT is idempotent): the file goes again, whole."""
    path = tmp_path / "f.bin"
    content = os.urandom(CHUNK_SIZE + 1)
    path.write_bytes(content)
    with open_file(path) as file:
        async with trioclient.Client(retries=trioclient.Retry(total=1, backoff_factor=0)) as client:
            response = await client.put(
                f"{upload_url}/unavailable-once?key={uuid.uuid4()}", files={"f": file}
            )
    assert len(response.attempts) == 1
    assert response.json()["parts"][0]["sha256"] == hashlib.sha256(content).hexdigest()
