"""SOCKS5 (RFC 1928) with user name/password authentication (RFC 1929): the client side.

Theory of operation
-------------------
The first half of this module is sans-I/O: functions that build our three messages and
parse the proxy's three replies, raising `SocksProtocolError` for anything malformed. The
second half, `socks5_handshake`, drives them over a Trio stream, reading *exactly* the bytes
each reply has (a reply's length is known from its first five bytes), so nothing that
belongs to the tunnel is ever read here, and a reply split across TCP segments or sent
byte by byte parses the same.

Why not `socksio` (httpx's choice): its `receive_data` parses whatever one read returned as
one whole message, with no framing, so a reply split across segments (or a proxy that
coalesces two) is misparsed; adding the framing means computing each reply's length,
which is most of the parsing anyway. The three messages fit in this file, and the tests
check them against `socksio` as an independent implementation.

The handshake runs inside the connect phase, under its cancel scope; a refusal (a reply
code other than success, rejected credentials, no acceptable method) is a `ProxyError`
naming the proxy, the target and the code.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

from .._exceptions import ProxyError

if TYPE_CHECKING:
    import trio

    from .._request import Request

__all__ = [
    "REPLY_MEANINGS",
    "SocksProtocolError",
    "auth_request",
    "connect_request",
    "greeting",
    "parse_auth_reply",
    "parse_method_choice",
    "parse_reply",
    "reply_length",
    "socks5_handshake",
]

VERSION = 5
NO_AUTH = 0x00
USER_PASS = 0x02
NO_ACCEPTABLE = 0xFF
_ATYPE_IPV4, _ATYPE_DOMAIN, _ATYPE_IPV6 = 0x01, 0x03, 0x04

REPLY_MEANINGS = {
    1: "general SOCKS server failure",
    2: "connection not allowed by ruleset",
    3: "network unreachable",
    4: "host unreachable",
    5: "connection refused",
    6: "TTL expired",
    7: "command not supported",
    8: "address type not supported",
}


class SocksProtocolError(Exception):
    """Internal: the proxy's bytes are not the SOCKS5 reply expected here."""


# -- sans-I/O ---------------------------------------------------------------------------------


def greeting(with_credentials: bool) -> bytes:
    """The version/method-selection message; offers user name/password only with credentials."""
    methods = bytes([NO_AUTH, USER_PASS]) if with_credentials else bytes([NO_AUTH])
    return bytes([VERSION, len(methods)]) + methods


def parse_method_choice(data: bytes, with_credentials: bool) -> int:
    """The method the proxy chose (2 bytes); NO_ACCEPTABLE is returned, not raised."""
    if len(data) != 2 or data[0] != VERSION:
        raise SocksProtocolError(f"expected a SOCKS5 method choice, got {bytes(data)!r}")
    method = data[1]
    offered = (NO_AUTH, USER_PASS) if with_credentials else (NO_AUTH,)
    if method != NO_ACCEPTABLE and method not in offered:
        raise SocksProtocolError(f"the proxy chose method {method}, which was not offered")
    return method


def auth_request(username: bytes, password: bytes) -> bytes:
    """The RFC 1929 user name/password request (each 1 to 255 bytes; `Proxy` checks)."""
    return bytes([1, len(username)]) + username + bytes([len(password)]) + password


def parse_auth_reply(data: bytes) -> bool:
    """True if the proxy accepted the credentials (2 bytes)."""
    # RFC 1929 says version 1; some servers echo 5, which changes nothing here.
    if len(data) != 2 or data[0] not in (1, VERSION):
        raise SocksProtocolError(f"expected a SOCKS5 authentication reply, got {bytes(data)!r}")
    return data[1] == 0


def connect_request(host: str, port: int) -> bytes:
    """CONNECT to `host` (an IP address, or a name the proxy resolves) and `port`."""
    try:
        address = ipaddress.ip_address(host.partition("%")[0])
    except ValueError:
        name = host.encode("ascii")
        if not 0 < len(name) <= 255:
            raise ValueError(f"a SOCKS5 host name is 1 to 255 bytes, not {len(name)}") from None
        addr = bytes([_ATYPE_DOMAIN, len(name)]) + name
    else:
        atype = _ATYPE_IPV4 if address.version == 4 else _ATYPE_IPV6
        addr = bytes([atype]) + address.packed
    return bytes([VERSION, 1, 0]) + addr + port.to_bytes(2, "big")


def reply_length(head: bytes) -> int:
    """The whole reply's length from its first five bytes."""
    if len(head) != 5 or head[0] != VERSION:
        raise SocksProtocolError(f"expected a SOCKS5 reply, got {bytes(head)!r}")
    atype = head[3]
    if atype == _ATYPE_IPV4:
        return 4 + 4 + 2
    if atype == _ATYPE_IPV6:
        return 4 + 16 + 2
    if atype == _ATYPE_DOMAIN:
        return 4 + 1 + head[4] + 2
    raise SocksProtocolError(f"the reply has an unknown address type {atype}")


def parse_reply(data: bytes) -> int:
    """The reply code of a whole reply (0 is success)."""
    if len(data) < 5 or reply_length(data[:5]) != len(data):
        raise SocksProtocolError(f"a SOCKS5 reply of the wrong length: {bytes(data)!r}")
    return data[1]


# -- over a Trio stream -----------------------------------------------------------------------


async def _read_exactly(stream: trio.abc.Stream, count: int, *, started: bool = False) -> bytes:
    """`count` bytes; `started`: part of this reply was read already (for the message)."""
    data = b""
    while len(data) < count:
        chunk = await stream.receive_some(count - len(data))
        if not chunk:
            raise SocksProtocolError(
                "the proxy closed the connection"
                + (" in the middle of a reply" if data or started else " without replying")
            )
        data += chunk
    return data


async def socks5_handshake(
    stream: trio.abc.Stream,
    host: str,
    port: int,
    credentials: tuple[bytes, bytes] | None,
    *,
    proxy: str,
    target: str,
    request: Request,
) -> None:
    """Ask the SOCKS5 proxy on `stream` for a tunnel to `host`:`port`; ProxyError if not.

    `host` is an IP address (resolved by us: socks5://) or a name (socks5h://). `proxy` and
    `target` name both ends in messages. I/O errors pass through for the caller to translate.
    """

    def refused(what: str, code: int | None, reason: str) -> ProxyError:
        return ProxyError(
            f"SOCKS5 proxy {proxy} {what}",
            request=request,
            status_code=code,
            reason=reason,
            proxy=proxy,
            target=target,
        )

    try:
        await stream.send_all(greeting(credentials is not None))
        method = parse_method_choice(await _read_exactly(stream, 2), credentials is not None)
        if method == NO_ACCEPTABLE:
            wanted = (
                "no authentication or a user name and password"
                if credentials
                else ("no authentication; it probably requires a user name and password")
            )
            raise refused(
                f"accepts none of the authentication methods offered ({wanted}) for {target}",
                None,
                "no acceptable authentication method",
            )
        if method == USER_PASS:
            assert credentials is not None  # parse_method_choice checked it was offered
            await stream.send_all(auth_request(*credentials))
            if not parse_auth_reply(await _read_exactly(stream, 2)):
                raise refused(
                    f"rejected the user name and password (connecting to {target})",
                    None,
                    "authentication failed",
                )
        await stream.send_all(connect_request(host, port))
        head = await _read_exactly(stream, 5)
        reply = head + await _read_exactly(stream, reply_length(head) - 5, started=True)
        code = parse_reply(reply)
    except SocksProtocolError as exc:
        raise ProxyError(
            f"SOCKS5 proxy {proxy} sent an invalid reply while connecting to {target}: {exc}",
            request=request,
            proxy=proxy,
            target=target,
        ) from None
    if code != 0:
        meaning = REPLY_MEANINGS.get(code, "unknown reply code")
        raise refused(f"refused to connect to {target}: reply {code} ({meaning})", code, meaning)
