"""The server side: data files, a throwaway CA, and nginx (or hypercorn) as a child process.

nginx runs with its own config in a temp dir, on free 127.0.0.1 ports, in the foreground
(``daemon off``) as a child of the runner, which stops it at the end. Config choices:

- ``master_process off``: one process, which is the one that serves. It is started,
  pinned and stopped by its PID with nothing forked behind it, and it needs no ``user``
  switch (a root master would hand its worker to ``nobody``, who could not read the temp
  dir's key). nginx documents this mode for development; with ``worker_processes 1`` the
  master does no request work, so the data path is the same.
- ``access_log off``, ``keepalive_requests 1000000``, ``keepalive_timeout 75s``,
  ``sendfile on``, ``open_file_cache``: nginx should be as cheap per request as it can be.
- ``listen ... ssl http2`` (nginx 1.22 syntax) with ``ssl_protocols TLSv1.2 TLSv1.3``
  (1.22's default leaves out 1.3) and ``http2_max_concurrent_streams 128`` (nginx's
  default, written out: W4's 100 tasks fit in one connection without queueing).

When nginx is missing, hypercorn on Trio (benchmarks/hypercorn_server.py) serves the same
files; the runner then says loudly that the numbers are not comparable.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from .workloads import FILES

REPO = Path(__file__).absolute().parent.parent
DATA_DIR = REPO / "benchmarks" / "data"
NGINX_CANDIDATES = (
    "nginx",
    "/usr/sbin/nginx",
    "/usr/local/sbin/nginx",
    "/usr/local/nginx/sbin/nginx",
)

NGINX_CONF = """\
# Written by benchmarks/server.py for one benchmark run; see its docstring for the choices.
worker_processes 1;
daemon off;
master_process off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
worker_rlimit_nofile 65536;
events {{
    worker_connections 16384;
}}
http {{
    access_log off;
    default_type application/octet-stream;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_requests 1000000;
    keepalive_timeout 75s;
    open_file_cache max=64 inactive=300s;
    http2_max_concurrent_streams 128;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    server {{
        listen 127.0.0.1:{http_port};
        listen 127.0.0.1:{https_port} ssl http2;
        ssl_certificate {tmp}/server.pem;
        ssl_certificate_key {tmp}/server.key;
        ssl_protocols TLSv1.2 TLSv1.3;
        root {data};
        location / {{ }}
    }}
}}
"""


@dataclass
class Server:
    """A running server: where to reach it and what it is."""

    kind: str  # "nginx" or "hypercorn"
    http_url: str
    https_url: str
    ca_path: str
    version: str
    pid: int
    notes: list[str] = field(default_factory=list)


def ensure_files(names: set[str], data_dir: Path = DATA_DIR) -> None:
    """Generate the data files named (random bytes; the big one from a repeated block)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    for name in sorted(names):
        path, size = data_dir / name, FILES[name]
        if path.is_file() and path.stat().st_size == size:
            continue
        tmp = path.with_suffix(".tmp")
        block = os.urandom(min(size, 1024 * 1024))
        with tmp.open("wb") as f:
            for offset in range(0, size, len(block)):
                f.write(block[: size - offset])
        tmp.replace(path)


def find_nginx(explicit: str | None = None) -> str | None:
    """The nginx binary: the one given, else on PATH, else in the usual sbin dirs."""
    for candidate in (explicit,) if explicit else NGINX_CANDIDATES:
        found = shutil.which(candidate) if candidate else None
        if found:
            return found
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _write_certificates(tmp: Path) -> str:
    """A throwaway CA and a server certificate for 127.0.0.1 / localhost; returns the CA path."""
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    (tmp / "server.pem").write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    cert.private_key_pem.write_to_path(str(tmp / "server.key"))
    ca.cert_pem.write_to_path(str(tmp / "ca.pem"))
    return str(tmp / "ca.pem")


def _pin(cpu: int | None) -> None:
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})


def _wait_listening(proc: subprocess.Popen[bytes], ports: list[int], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    pending = list(ports)
    while pending and time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", pending[0]), timeout=0.5):
                pending.pop(0)
        except OSError:
            time.sleep(0.05)
    return not pending


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _start_nginx(
    nginx: str, tmp: Path, data: Path, cpu: int | None
) -> tuple[Server, subprocess.Popen[bytes]]:
    version = subprocess.run([nginx, "-v"], capture_output=True, text=True, check=False)
    version_text = (version.stderr or version.stdout).strip().removeprefix("nginx version: ")
    error = "nginx did not start"
    for _attempt in range(3):  # a free port can be taken between probe and bind: retry
        http_port, https_port = _free_port(), _free_port()
        conf = tmp / "nginx.conf"
        conf.write_text(
            NGINX_CONF.format(tmp=tmp, data=data, http_port=http_port, https_port=https_port)
        )
        log = (tmp / "nginx.out").open("wb")
        proc = subprocess.Popen(
            [nginx, "-p", str(tmp), "-c", str(conf), "-e", str(tmp / "error.log")],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=lambda: _pin(cpu),
        )
        log.close()
        if _wait_listening(proc, [http_port, https_port], 10.0):
            server = Server(
                "nginx",
                f"http://127.0.0.1:{http_port}",
                f"https://127.0.0.1:{https_port}",
                str(tmp / "ca.pem"),
                version_text,
                proc.pid,
            )
            return server, proc
        _stop(proc)
        logs = [tmp / "nginx.out", tmp / "error.log"]
        error = " ".join(p.read_text(errors="replace").strip() for p in logs if p.exists())
    raise RuntimeError(f"nginx failed to start: {error[-500:]}")


def _start_hypercorn(
    tmp: Path, data: Path, cpu: int | None
) -> tuple[Server, subprocess.Popen[bytes]]:
    import hypercorn

    cmd = [sys.executable, "-m", "benchmarks.hypercorn_server", "--data", str(data)]
    cmd += ["--cert", str(tmp / "server.pem"), "--key", str(tmp / "server.key")]
    proc = subprocess.Popen(
        cmd,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        preexec_fn=lambda: _pin(cpu),
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        _stop(proc)
        raise RuntimeError("hypercorn failed to start (see its stderr above)")
    urls = json.loads(line)
    version = getattr(hypercorn, "__version__", "") or _dist_version("hypercorn")
    server = Server(
        "hypercorn", urls["http"], urls["https"], str(tmp / "ca.pem"), version, proc.pid
    )
    return server, proc


def _dist_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "missing"


@contextmanager
def running_server(
    kind: str = "auto", nginx: str | None = None, cpu: int | None = None, data: Path = DATA_DIR
) -> Iterator[Server]:
    """Start nginx (``kind="auto"`` or ``"nginx"``) or hypercorn; stop it on exit.

    With ``auto``, a missing nginx, or one that fails to start, falls back to hypercorn with
    a note saying why. ``cpu`` pins the server process to that CPU.
    """
    tmp = Path(tempfile.mkdtemp(prefix="trioclient-bench-"))
    proc: subprocess.Popen[bytes] | None = None
    try:
        _write_certificates(tmp)
        notes: list[str] = []
        server: Server | None = None
        binary = find_nginx(nginx) if kind in ("auto", "nginx") else None
        if binary is not None:
            try:
                server, proc = _start_nginx(binary, tmp, data, cpu)
            except RuntimeError as exc:
                if kind == "nginx":
                    raise
                notes.append(f"{exc}; fell back to hypercorn.")
        elif kind == "nginx":
            raise RuntimeError("nginx not found (pass --nginx PATH)")
        elif kind == "auto":
            notes.append("nginx not found; fell back to hypercorn.")
        if server is None:
            server, proc = _start_hypercorn(tmp, data, cpu)
            notes.append(
                "SERVER IS HYPERCORN, NOT NGINX: a Python server is often the bottleneck, so "
                "these numbers are not comparable with nginx runs or with the targets."
            )
        server.notes.extend(notes)
        yield server
    finally:
        if proc is not None:
            _stop(proc)
        shutil.rmtree(tmp, ignore_errors=True)
