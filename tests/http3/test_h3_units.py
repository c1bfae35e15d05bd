"""HTTP/3 pieces that need no peer: the options, the TLS mapping onto aioquic's
configuration, and the control-stream reader that finds GOAWAY."""

from __future__ import annotations

import os
import ssl

import pytest
import trustme

import trioclient

pytest.importorskip("aioquic", reason="the http3 extra (aioquic) is not installed")

from trioclient._transport._http3 import MAX_CONTROL_FRAME, _ControlWatcher, _varint
from trioclient._transport._quic import quic_configuration


def test_options_are_checked() -> None:
    with pytest.raises(TypeError, match="http3"):
        trioclient.Client(http3="yes")  # type: ignore[arg-type]
    with pytest.raises(trioclient.UnsupportedProtocol, match="proxy"):
        trioclient.HTTPTransport(
            http3=True, http1=False, http2=False, proxy="http://127.0.0.1:3128"
        )
    with pytest.raises(trioclient.UnsupportedProtocol, match="no protocol"):
        trioclient.HTTPTransport(http1=False, http2=False)
    # With TCP as well, a proxy simply means no HTTP/3.
    trioclient.HTTPTransport(http3=True, proxy="http://127.0.0.1:3128")


def test_tls_mapping(tls_ca: trustme.CA, ca_pem_path: str, client_cert: tuple[str, str]) -> None:
    strict = quic_configuration(ca_pem_path, None, trust_env=False)
    assert strict.verify_mode == ssl.CERT_REQUIRED
    assert strict.cafile == ca_pem_path
    assert strict.alpn_protocols == ["h3"]
    directory = quic_configuration(os.path.dirname(ca_pem_path), None, trust_env=False)
    assert directory.capath == os.path.dirname(ca_pem_path)
    assert quic_configuration(False, None, trust_env=False).verify_mode == ssl.CERT_NONE
    context = ssl.create_default_context(cafile=ca_pem_path)
    from_context = quic_configuration(context, None, trust_env=False)
    assert from_context.verify_mode == ssl.CERT_REQUIRED
    assert from_context.cadata is not None
    assert b"BEGIN CERTIFICATE" in from_context.cadata
    empty = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # no CA in memory: certifi, as TCP
    assert quic_configuration(empty, None, trust_env=False).cafile is not None
    with_cert = quic_configuration(True, client_cert, trust_env=False)
    assert with_cert.certificate is not None
    assert with_cert.private_key is not None
    with pytest.raises(TypeError, match="verify"):
        quic_configuration(1, None, trust_env=False)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="cert"):
        quic_configuration(True, ("a",), trust_env=False)  # type: ignore[arg-type]


def _frame(kind: int, payload: bytes) -> bytes:
    return _encode(kind) + _encode(len(payload)) + payload


def _encode(value: int) -> bytes:
    if value < 0x40:
        return bytes([value])
    if value < 0x4000:
        return (value | 0x4000).to_bytes(2, "big")
    if value < 0x4000_0000:
        return (value | 0x8000_0000).to_bytes(4, "big")
    return (value | 0xC000_0000_0000_0000).to_bytes(8, "big")


def test_varint() -> None:
    for value in (0, 63, 64, 16383, 16384, 2**30 - 1, 2**30, 2**62 - 1):
        assert _varint(_encode(value)) == (value, len(_encode(value)))
    assert _varint(b"") is None
    assert _varint(b"\x80\x00") is None


@pytest.mark.parametrize("step", [1, 2, 3, 1000])
def test_control_watcher_finds_goaway_in_any_split(step: int) -> None:
    control = (
        b"\x00"  # stream type: control
        + _frame(0x04, b"\x01\x00\x06\x00")  # SETTINGS
        + _frame(0x21, b"x" * 300)  # a reserved frame type: skipped
        + _frame(0x07, _encode(16384))  # GOAWAY 16384
        + _frame(0x07, _encode(8))  # GOAWAY 8
    )
    watcher = _ControlWatcher()
    assert watcher.feed(7, b"\x02") is None  # the QPACK encoder stream: ignored
    found = []
    for start in range(0, len(control), step):
        goaway = watcher.feed(3, control[start : start + step])
        if goaway is not None:
            found.append(goaway)
    assert found == [16384, 8] if step < 1000 else found == [8]
    assert watcher.feed(11, b"\x00" + _frame(0x07, b"\x00")) is None  # only one control stream
    assert watcher.error is None


def test_control_watcher_refuses_huge_frames() -> None:
    watcher = _ControlWatcher()
    huge = _encode(0x04) + _encode(MAX_CONTROL_FRAME + 1)
    assert watcher.feed(3, b"\x00" + huge) is None
    assert watcher.error is not None
    assert "control frame" in watcher.error
    goaway = _ControlWatcher()
    assert goaway.feed(3, b"\x00" + _encode(0x07) + _encode(9)) is None
    assert goaway.error == "a GOAWAY frame of 9 bytes"


def test_control_watcher_type_split_and_other_streams() -> None:
    watcher = _ControlWatcher()
    assert watcher.feed(3, b"\x40") is None  # a two-byte varint stream type, split
    assert watcher.feed(3, b"\x00" + _frame(0x07, b"\x04")) == 4
    for stream_id in range(15, 15 + 4 * 20, 4):  # many uni streams before any control one
        assert _ControlWatcher().feed(stream_id, b"\x01") is None
