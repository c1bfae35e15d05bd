"""The SOCKS5 messages, checked against socksio (an independent implementation) by hypothesis."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st
from socksio import socks5

from trioclient._transport._socks5 import (
    SocksProtocolError,
    auth_request,
    connect_request,
    greeting,
    parse_auth_reply,
    parse_method_choice,
    parse_reply,
    reply_length,
)

hostnames = st.from_regex(r"[a-z][a-z0-9.-]{0,60}", fullmatch=True)
ports = st.integers(0, 65535)
secrets = st.binary(min_size=1, max_size=255)


@given(user=secrets, password=secrets)
def test_auth_request_matches_socksio(user: bytes, password: bytes) -> None:
    assert (
        auth_request(user, password) == socks5.SOCKS5UsernamePasswordRequest(user, password).dumps()
    )


@given(host=st.one_of(hostnames, st.ip_addresses().map(str)), port=ports)
def test_connect_request_matches_socksio(host: str, port: int) -> None:
    theirs = socks5.SOCKS5CommandRequest.from_address(socks5.SOCKS5Command.CONNECT, (host, port))
    assert connect_request(host, port) == theirs.dumps()


def test_greeting() -> None:
    no_auth = socks5.SOCKS5AuthMethodsRequest([socks5.SOCKS5AuthMethod.NO_AUTH_REQUIRED])
    assert greeting(False) == no_auth.dumps()
    assert greeting(True) == b"\x05\x02\x00\x02"


@given(
    code=st.integers(0, 8),
    address=st.one_of(st.ip_addresses(), hostnames),
    port=ports,
)
def test_reply_framing_and_code(code: int, address: object, port: int) -> None:
    if isinstance(address, str):
        addr = bytes([3, len(address)]) + address.encode()
    else:
        assert isinstance(address, (ipaddress.IPv4Address, ipaddress.IPv6Address))
        addr = bytes([1 if address.version == 4 else 4]) + address.packed
    reply = bytes([5, code, 0]) + addr + port.to_bytes(2, "big")
    assert reply_length(reply[:5]) == len(reply)
    assert parse_reply(reply) == code
    assert socks5.SOCKS5Reply.loads(reply).reply_code == socks5.SOCKS5ReplyCode(bytes([code]))
    with pytest.raises(SocksProtocolError):
        parse_reply(reply + b"x")


@given(st.binary(max_size=40))
def test_garbage_replies_raise_only_ours(data: bytes) -> None:
    for parse in (
        lambda: parse_method_choice(data, True),
        lambda: parse_auth_reply(data),
        lambda: parse_reply(data),
        lambda: reply_length(data),
    ):
        try:
            parse()
        except SocksProtocolError:
            pass


def test_method_choice_and_auth_reply() -> None:
    assert parse_method_choice(b"\x05\x00", False) == 0
    assert parse_method_choice(b"\x05\xff", False) == 0xFF
    with pytest.raises(SocksProtocolError, match="not offered"):
        parse_method_choice(b"\x05\x02", False)
    assert parse_auth_reply(b"\x01\x00") is True
    assert parse_auth_reply(b"\x01\x01") is False
    with pytest.raises(ValueError, match="1 to 255 bytes"):
        connect_request("a" * 256, 80)
