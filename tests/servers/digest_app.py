"""An ASGI app that checks HTTP Digest credentials (RFC 7616), written from the RFC and
independently of trioclient: it parses Authorization with Werkzeug's ``parse_dict_header``.

It covers what httpbin does not: the ``-sess`` algorithms, SHA-512-256, ``userhash``,
nonces that go stale after a number of uses, nonce-count replay checks, and arbitrary
(malformed) challenges.

Routes:

=============================================  ================================================
``/digest/{algorithm}/{qop}/{user}/{passwd}``  401 with a challenge unless the Authorization
                                               answers one of this route's nonces: then 200
                                               JSON ``{"authenticated", "user", "nc",
                                               "cnonce", "qop", "nonce"}``. ``qop`` is
                                               ``auth``, ``auth-int``, ``auth,auth-int`` or
                                               ``none`` (RFC 2069). Query: ``stale_after=N``
                                               (a nonce answers N requests, then is stale;
                                               default unlimited), ``userhash=1``,
                                               ``opaque=1``.
``/challenge?value=V[&value=W]``               401 with one WWW-Authenticate header per value
=============================================  ================================================

A wrong answer gets 401 with a fresh challenge (``stale=false``) and JSON ``{"error"}``; an
answer to a nonce that is no longer fresh gets ``stale=true``; an ``nc`` not greater than
the last one seen for that nonce is refused as a replay.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl, unquote

from werkzeug.http import parse_dict_header

from .asgi_app import answer_lifespan

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

__all__ = ["app", "nonces"]

_HASHES = {
    "MD5": "md5",
    "SHA-256": "sha256",
    "SHA-512-256": "sha512_256",
    "SHA": "sha1",
    "SHA-512": "sha512",
}
REALM = "trioclient@test"


class _Nonce:
    def __init__(self, stale_after: int | None) -> None:
        self.uses = 0
        self.last_nc = 0
        self.stale_after = stale_after


# Every nonce this app issued (module-level: the app is served once per session).
nonces: dict[str, _Nonce] = {}


def _h(algorithm: str, data: str | bytes) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return hashlib.new(_HASHES[algorithm.upper().removesuffix("-SESS")], raw).hexdigest()


async def _body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks)
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _respond(send: Send, status: int, answer: dict[str, Any], headers: list[str]) -> None:
    raw = [(b"www-authenticate", value.encode()) for value in headers]
    raw.append((b"content-type", b"application/json"))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": json.dumps(answer).encode()})


def _challenge(algorithm: str, qop: str, query: dict[str, str], *, stale: bool) -> str:
    nonce = secrets.token_hex(16)
    stale_after = query.get("stale_after")
    nonces[nonce] = _Nonce(None if stale_after is None else int(stale_after))
    parts = [f'realm="{REALM}"', f'nonce="{nonce}"', f"algorithm={algorithm}"]
    if qop != "none":
        parts.append(f'qop="{qop}"')
    if query.get("opaque"):
        parts.append('opaque="opaque-value"')
    if query.get("userhash"):
        parts.append("userhash=true")
    parts.append(f"stale={'true' if stale else 'false'}")
    return "Digest " + ", ".join(parts)


def _check(
    params: dict[str, str | None],
    scope: Scope,
    body: bytes,
    algorithm: str,
    user: str,
    password: str,
    query: dict[str, str],
) -> tuple[str | None, bool]:
    """(error, stale): error None when the answer is right."""
    nonce = nonces.get(params.get("nonce") or "")
    if nonce is None:
        return "unknown nonce", False
    if nonce.stale_after is not None and nonce.uses >= nonce.stale_after:
        return "stale nonce", True
    if (params.get("algorithm") or "MD5").upper() != algorithm.upper():
        return "wrong algorithm", False
    if query.get("opaque") and params.get("opaque") != "opaque-value":
        return "opaque not echoed", False
    realm = params.get("realm") or ""
    name = params.get("username") or ""
    if params.get("username*"):
        encoded = params["username*"] or ""
        name = unquote(encoded.split("''", 1)[1], encoding="utf-8")
    if query.get("userhash"):
        if params.get("userhash") != "true" or name != _h(algorithm, f"{user}:{realm}"):
            return "wrong userhash", False
    elif name != user:
        return "wrong user", False
    target = scope["raw_path"] + (b"?" + scope["query_string"] if scope["query_string"] else b"")
    if params.get("uri") != target.decode():
        return f"uri {params.get('uri')} is not {target.decode()}", False
    a1 = _h(algorithm, f"{user}:{realm}:{password}")
    cnonce = params.get("cnonce") or ""
    if algorithm.upper().endswith("-SESS"):
        a1 = _h(algorithm, f"{a1}:{params['nonce']}:{cnonce}")
    qop = params.get("qop")
    a2 = f"{scope['method']}:{params['uri']}"
    if qop == "auth-int":
        a2 += ":" + _h(algorithm, body)
    if qop is None:
        expected = _h(algorithm, f"{a1}:{params['nonce']}:{_h(algorithm, a2)}")
    else:
        nc = int(params.get("nc") or "0", 16)
        if nc <= nonce.last_nc:
            return f"nc {nc} replayed (last {nonce.last_nc})", False
        nonce.last_nc = nc
        expected = _h(
            algorithm, f"{a1}:{params['nonce']}:{params['nc']}:{cnonce}:{qop}:{_h(algorithm, a2)}"
        )
    if params.get("response") != expected:
        return "wrong response", False
    nonce.uses += 1
    return None, False


async def _digest(scope: Scope, receive: Receive, send: Send) -> None:
    body = await _body(receive)
    _, _, algorithm, qop, user, password = scope["path"].split("/", 5)
    query = dict(parse_qsl(scope["query_string"].decode()))
    headers = {k.decode().lower(): v.decode("utf-8") for k, v in scope["headers"]}
    authorization = headers.get("authorization", "")
    if not authorization.lower().startswith("digest "):
        await _respond(
            send, 401, {"error": "no credentials"}, [_challenge(algorithm, qop, query, stale=False)]
        )
        return
    params = parse_dict_header(authorization[len("digest ") :])
    error, stale = _check(params, scope, body, algorithm, user, password, query)
    if error is not None:
        await _respond(
            send, 401, {"error": error}, [_challenge(algorithm, qop, query, stale=stale)]
        )
        return
    answer = {
        "authenticated": True,
        "user": user,
        "nc": params.get("nc"),
        "cnonce": params.get("cnonce"),
        "qop": params.get("qop"),
        "nonce": params.get("nonce"),
    }
    await _respond(send, 200, answer, [])


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """The ASGI 3 entry point."""
    if scope["type"] == "lifespan":
        await answer_lifespan(receive, send)
        return
    if scope["type"] != "http":
        return
    if scope["path"].startswith("/digest/"):
        await _digest(scope, receive, send)
    elif scope["path"] == "/challenge":
        await _body(receive)
        values = [v for k, v in parse_qsl(scope["query_string"].decode()) if k == "value"]
        await _respond(send, 401, {}, values)
    else:
        await _body(receive)
        await _respond(send, 404, {}, [])
