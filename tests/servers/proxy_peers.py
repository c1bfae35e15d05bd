"""Real proxies for tests: tinyproxy (HTTP forwarding and CONNECT) and microsocks (SOCKS5).

Both are Debian packages (`tinyproxy`, `microsocks`) started on ephemeral loopback ports
through `PeerServer` (see `peers.py`): a missing binary skips locally and fails in CI.
"""

from __future__ import annotations

from pathlib import Path

from .peers import PeerServer

__all__ = ["PROXY_APT_PACKAGES", "PROXY_AUTH", "MicrosocksServer", "TinyproxyServer"]

PROXY_APT_PACKAGES = "tinyproxy microsocks"
PROXY_AUTH = ("proxyuser", "s3cret-pass")  # what the fixtures' proxies with auth want

_TINYPROXY_CONF = """\
Port {port}
Listen 127.0.0.1
Timeout 30
LogLevel Info
MaxClients 64
Allow 127.0.0.1
DisableViaHeader Yes
{auth}
"""


class TinyproxyServer(PeerServer):
    """tinyproxy on 127.0.0.1: `url`; with `auth=(user, password)` it wants Basic auth.

    It forwards absolute-form requests and opens CONNECT tunnels to any port.
    """

    binary = "tinyproxy"

    def __init__(self, *, auth: tuple[str, str] | None = None) -> None:
        super().__init__()
        self.auth = auth

    def _port_count(self) -> int:
        return 1

    def _prepare(self, directory: Path) -> None:
        pass  # no certificate needed

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.ports[0]}"

    def _launch(self, executable: str, directory: Path, ports: list[int]) -> list[str]:
        auth = "" if self.auth is None else f"BasicAuth {self.auth[0]} {self.auth[1]}"
        (directory / "tinyproxy.conf").write_text(_TINYPROXY_CONF.format(port=ports[0], auth=auth))
        return [executable, "-d", "-c", str(directory / "tinyproxy.conf")]


class MicrosocksServer(PeerServer):
    """microsocks (a SOCKS5 server) on 127.0.0.1: `port`; `auth` makes it require RFC 1929
    user name/password authentication."""

    binary = "microsocks"

    def __init__(self, *, auth: tuple[str, str] | None = None) -> None:
        super().__init__()
        self.auth = auth

    def _port_count(self) -> int:
        return 1

    def _prepare(self, directory: Path) -> None:
        pass

    @property
    def port(self) -> int:
        return self.ports[0]

    def _launch(self, executable: str, directory: Path, ports: list[int]) -> list[str]:
        argv = [executable, "-i", "127.0.0.1", "-p", str(ports[0])]
        if self.auth is not None:
            argv += ["-u", self.auth[0], "-P", self.auth[1]]
        return argv
