"""Building the client's `ssl.SSLContext` from `verify=`, `cert=` and the environment.

One context is built per client, at construction, and shared by every connection of its
pool (so the pool never needs the TLS identity in its key: a different `verify=` means a
different client, hence a different pool). Loading certifi's bundle costs tens of
milliseconds, so default contexts are cached per (CA file, CA dir, ALPN) and shared between
clients; `ssl.SSLContext` is safe to share once configured. The SSLKEYLOGFILE setting is
part of that cache key, so `trust_env=False` never gets a context that logs keys.
"""

from __future__ import annotations

import functools
import os
import ssl

import certifi

from .._types import CertTypes, VerifyTypes

__all__ = ["create_ssl_context"]


def _alpn(http1: bool, http2: bool) -> tuple[str, ...]:
    protocols: list[str] = []
    if http2:
        protocols.append("h2")
    if http1:
        protocols.append("http/1.1")
    return tuple(protocols)


@functools.lru_cache(maxsize=16)
def _verifying_context(
    cafile: str | None, capath: str | None, alpn: tuple[str, ...], keylog: str | None
) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=cafile, capath=capath)
    _common_setup(context, alpn, keylog)
    return context


def _keylog_file(trust_env: bool) -> str | None:
    """SSLKEYLOGFILE (keys for Wireshark, the switch browsers and curl honour), if trusted."""
    return (os.environ.get("SSLKEYLOGFILE") or None) if trust_env else None


def _common_setup(context: ssl.SSLContext, alpn: tuple[str, ...], keylog: str | None) -> None:
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(list(alpn))
    if keylog is not None:
        context.keylog_filename = keylog


def create_ssl_context(
    verify: VerifyTypes = True,
    cert: CertTypes | None = None,
    *,
    trust_env: bool = True,
    http1: bool = True,
    http2: bool = False,
) -> ssl.SSLContext:
    """Build (or reuse) the SSLContext for a client.

    Args:
        verify: True (certifi's bundle, or SSL_CERT_FILE / SSL_CERT_DIR with trust_env),
            False (no verification at all), a path to a CA file or directory, or a ready
            `ssl.SSLContext` (used as given, except that ALPN is set on it).
        cert: a client certificate: PEM path, (cert, key) or (cert, key, password).
        trust_env: honour SSL_CERT_FILE, SSL_CERT_DIR and SSLKEYLOGFILE.
        http1: offer HTTP/1.1 through ALPN.
        http2: offer HTTP/2 through ALPN.
    """
    alpn = _alpn(http1, http2)
    keylog = _keylog_file(trust_env)
    if isinstance(verify, ssl.SSLContext):
        context = verify
        context.set_alpn_protocols(list(alpn))
    elif verify is False:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        _common_setup(context, alpn, keylog)
    elif verify is True or isinstance(verify, str):
        cafile, capath = _ca_locations(verify, trust_env)
        if cert is None:
            context = _verifying_context(cafile, capath, alpn, keylog)
        else:
            context = ssl.create_default_context(cafile=cafile, capath=capath)
            _common_setup(context, alpn, keylog)
    else:
        raise TypeError(f"verify must be a bool, a path or an ssl.SSLContext, not {verify!r}")
    if cert is not None:
        _load_cert(context, cert)
    return context


def _ca_locations(verify: bool | str, trust_env: bool) -> tuple[str | None, str | None]:
    if isinstance(verify, str):
        path = os.fspath(verify)
        if os.path.isdir(path):
            return None, path
        if os.path.isfile(path):
            return path, None
        raise FileNotFoundError(f"verify={verify!r} is neither a CA bundle file nor a directory")
    if trust_env:
        cafile = os.environ.get("SSL_CERT_FILE")
        capath = os.environ.get("SSL_CERT_DIR")
        if cafile and os.path.isfile(cafile):
            return cafile, None
        if capath and os.path.isdir(capath):
            return None, capath
    return certifi.where(), None


def _load_cert(context: ssl.SSLContext, cert: CertTypes) -> None:
    if isinstance(cert, str):
        context.load_cert_chain(cert)
    elif len(cert) == 2:
        context.load_cert_chain(cert[0], cert[1])
    elif len(cert) == 3:
        context.load_cert_chain(cert[0], cert[1], cert[2])
    else:
        raise TypeError("cert must be a path, (cert, key) or (cert, key, password)")
