"""HTTP Digest authentication (RFC 7616), as an auth flow, and the challenge parser.

Theory of operation
-------------------
`DigestAuth.auth_flow` sends the request; if the server answers 401 with a Digest challenge,
it answers the challenge and sends the request again. The challenge is remembered per
origin, so later requests to that origin carry credentials at once (no extra round trip),
counting the nonce's uses (`nc`) as RFC 7616 requires. A nonce the server has expired comes
back as a 401 with `stale=true`: the flow then answers the new nonce, once more.

Rounds, at most three: (1) the request, with credentials if a challenge for its origin is
remembered; (2) after a 401 with a Digest challenge, the answer to it, whatever the first
round sent (a remembered nonce may have expired, or belong to another realm); (3) only if
(2) is refused *with* `stale=true`, the answer to that newer nonce. A 401 without
`stale=true` after an answer means the credentials are wrong: that response is returned.

Supported: the algorithms MD5, SHA-256, SHA-512-256, and SHA and SHA-512 (not in RFC 7616,
but httpbin and httpx use them), each with its `-sess` variant; qop `auth`, and `auth-int`
when the request body is bytes (only if the server offers no `auth`); the legacy RFC 2069
form without qop; `userhash`; non-ASCII usernames as RFC 7616's `username*`.

A challenge that cannot be parsed or answered (no nonce, an unknown algorithm, only
`auth-int` for a streamed body) is a `RemoteProtocolError` naming what is wrong, never a
KeyError or a ValueError from inside.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections import OrderedDict
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Final, NamedTuple
from urllib.parse import quote

from ._auth import Auth
from ._config import describe
from ._exceptions import RemoteProtocolError

if TYPE_CHECKING:
    from ._request import Request
    from ._response import Response

__all__ = ["Challenge", "ChallengeError", "DigestAuth", "parse_challenges"]

# --- the WWW-Authenticate grammar (RFC 9110 11.6.1, 11.2) --------------------------------

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_TOKEN68 = re.compile(r"[A-Za-z0-9\-._~+/]+=*(?=[ \t]*(?:,|$))")
_SPACE = " \t"


class ChallengeError(ValueError):
    """A WWW-Authenticate value that does not follow the grammar."""


class Challenge(NamedTuple):
    """One challenge: its scheme (lowercased), its auth-params (names lowercased), or a
    token68 for schemes such as Basic's `Negotiate abc==`."""

    scheme: str
    params: dict[str, str]
    token68: str | None = None


def _skip(value: str, pos: int, chars: str) -> int:
    while pos < len(value) and value[pos] in chars:
        pos += 1
    return pos


def _quoted(value: str, pos: int) -> tuple[str, int]:
    """The quoted-string starting at `value[pos]` (a `"`), unescaped, and the end."""
    out: list[str] = []
    pos += 1
    while pos < len(value):
        char = value[pos]
        if char == '"':
            return "".join(out), pos + 1
        if char == "\\":
            pos += 1
            if pos == len(value):
                break
            char = value[pos]
        out.append(char)
        pos += 1
    raise ChallengeError("a quoted string is not closed")


def parse_challenges(value: str) -> list[Challenge]:
    """Every challenge in one WWW-Authenticate value (a comma-separated list of them).

    Raises ChallengeError for text that is not `scheme [token68 | name=value, ...]`, ...
    """
    challenges: list[Challenge] = []
    pos = 0
    while True:
        pos = _skip(value, pos, _SPACE + ",")
        if pos == len(value):
            return challenges
        match = _TOKEN.match(value, pos)
        if match is None:
            raise ChallengeError(f"expected an auth scheme at {value[pos : pos + 20]!r}")
        scheme = match.group(0).lower()
        pos = _skip(value, match.end(), _SPACE)
        token68 = _TOKEN68.match(value, pos) if pos > match.end() else None
        if token68 is not None and not _is_param(value, pos):
            challenges.append(Challenge(scheme, {}, token68.group(0)))
            pos = token68.end()
            continue
        params: dict[str, str] = {}
        while pos < len(value) and value[pos] != "," and _is_param(value, pos):
            name_match = _TOKEN.match(value, pos)
            assert name_match is not None  # _is_param checked
            pos = _skip(value, name_match.end(), _SPACE) + 1  # past "="
            pos = _skip(value, pos, _SPACE)
            if pos < len(value) and value[pos] == '"':
                param, pos = _quoted(value, pos)
            else:
                value_match = _TOKEN.match(value, pos)
                if value_match is None:
                    raise ChallengeError(
                        f"auth-param {name_match.group(0)!r} has no value (a token or a "
                        "quoted string)"
                    )
                param, pos = value_match.group(0), value_match.end()
            params.setdefault(name_match.group(0).lower(), param)
            pos = _skip(value, pos, _SPACE)
            if pos < len(value) and value[pos] != ",":
                raise ChallengeError(f"expected a comma at {value[pos : pos + 20]!r}")
            # A comma: the next item is another param of this challenge if it is `name=`,
            # else the next challenge's scheme.
            pos = _skip(value, pos, _SPACE + ",")
        challenges.append(Challenge(scheme, params))


def _is_param(value: str, pos: int) -> bool:
    """Whether `value[pos:]` starts with `token BWS "="` (an auth-param, not a scheme)."""
    match = _TOKEN.match(value, pos)
    if match is None:
        return False
    end = _skip(value, match.end(), _SPACE)
    return end < len(value) and value[end] == "="


# --- answering a Digest challenge ---------------------------------------------------------


def _hasher(name: str) -> Callable[[bytes], str]:
    def digest(data: bytes) -> str:
        return hashlib.new(name, data).hexdigest()

    return digest


_ALGORITHMS: Final = {
    "MD5": _hasher("md5"),
    "SHA": _hasher("sha1"),
    "SHA-256": _hasher("sha256"),
    "SHA-512": _hasher("sha512"),
    "SHA-512-256": _hasher("sha512_256"),
}
# Challenges the origin answered most recently are kept; the oldest are forgotten.
_REMEMBERED_ORIGINS: Final = 64


class _Digest(NamedTuple):
    """A parsed Digest challenge, ready to answer."""

    realm: str
    nonce: str
    algorithm: str  # as the server spelled it, echoed back
    hash: Callable[[bytes], str]
    session: bool
    qops: tuple[str, ...]  # offered qop values, lowercased; () for RFC 2069
    opaque: str | None
    stale: bool
    userhash: bool


def _digest_challenge(challenge: Challenge, request: Request) -> _Digest:
    params = challenge.params
    for required in ("realm", "nonce"):
        if required not in params:
            raise RemoteProtocolError(
                f"The server's Digest challenge has no {required}: {params}", request=request
            )
    algorithm = params.get("algorithm", "MD5")
    base = algorithm.upper()
    session = base.endswith("-SESS")
    if session:
        base = base[: -len("-SESS")]
    if base not in _ALGORITHMS:
        raise RemoteProtocolError(
            f"The server asks for Digest algorithm {algorithm!r}, which trioclient does not "
            f"support (it supports {', '.join(_ALGORITHMS)} and their -sess variants)",
            request=request,
        )
    qops = tuple(q.strip().lower() for q in params["qop"].split(",")) if "qop" in params else ()
    return _Digest(
        realm=params["realm"],
        nonce=params["nonce"],
        algorithm=algorithm,
        hash=_ALGORITHMS[base],
        session=session,
        qops=tuple(q for q in qops if q),
        opaque=params.get("opaque"),
        stale=params.get("stale", "").lower() == "true",
        userhash=params.get("userhash", "").lower() == "true",
    )


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class _Remembered:
    """The challenge last answered for one origin, and how often its nonce was used."""

    __slots__ = ("challenge", "count")

    def __init__(self, challenge: _Digest) -> None:
        self.challenge = challenge
        self.count = 0


class DigestAuth(Auth):
    """HTTP Digest authentication (RFC 7616): MD5, SHA-256, SHA-512-256 (and SHA, SHA-512),
    with their `-sess` variants, qop `auth` (and `auth-int` for bytes bodies).

    The first request to an origin costs a round trip (the server's challenge); the
    challenge is then remembered for that origin (for the 64 most recent origins), so
    later requests send credentials at once with the nonce count increased.
    """

    def __init__(self, username: str | bytes, password: str | bytes) -> None:
        user = username.decode("utf-8") if isinstance(username, bytes) else username
        secret = password.decode("utf-8") if isinstance(password, bytes) else password
        if not isinstance(user, str) or not isinstance(secret, str):
            raise TypeError(
                "DigestAuth username and password must be str or bytes, not "
                f"{describe(username)} and {describe(password)}"
            )
        if any(char in user for char in "\r\n\0"):
            raise ValueError("DigestAuth username must not contain CR, LF or NUL")
        self._username = user
        self._password = secret.encode("utf-8")
        self._remembered: OrderedDict[object, _Remembered] = OrderedDict()

    def auth_flow(self, request: Request) -> Generator[Request, Response, None]:
        """Send; answer a Digest challenge; answer a stale nonce once more (see module)."""
        origin = request.url._origin_key
        remembered = self._remembered.get(origin)
        if remembered is not None:
            request.headers["Authorization"] = self._answer(request, remembered)
        response = yield request
        challenge = self._challenge(request, response)
        if challenge is None:
            return
        request.headers["Authorization"] = self._answer(request, self._remember(origin, challenge))
        response = yield request
        challenge = self._challenge(request, response)
        if challenge is None or not challenge.stale:
            return  # accepted, or the credentials are wrong
        request.headers["Authorization"] = self._answer(request, self._remember(origin, challenge))
        yield request

    def _remember(self, origin: object, challenge: _Digest) -> _Remembered:
        remembered = self._remembered.get(origin)
        if remembered is not None and remembered.challenge.nonce == challenge.nonce:
            remembered.challenge = challenge  # the same nonce: keep counting its uses
        else:
            remembered = self._remembered[origin] = _Remembered(challenge)
        self._remembered.move_to_end(origin)
        while len(self._remembered) > _REMEMBERED_ORIGINS:
            self._remembered.popitem(last=False)
        return remembered

    def _challenge(self, request: Request, response: Response) -> _Digest | None:
        """The Digest challenge of a 401 (the first whose algorithm we support), or None."""
        if response.status_code != 401:
            return None
        found: list[Challenge] = []
        for value in response.headers.get_list("www-authenticate"):
            try:
                found += parse_challenges(value)
            except ChallengeError as exc:
                raise RemoteProtocolError(
                    f"Cannot parse the server's WWW-Authenticate header {value!r}: {exc}",
                    request=request,
                ) from None
        digests = [challenge for challenge in found if challenge.scheme == "digest"]
        if not digests:
            return None  # another scheme (Basic, Bearer...): the 401 is the answer
        error: RemoteProtocolError | None = None
        for challenge in digests:
            try:
                return _digest_challenge(challenge, request)
            except RemoteProtocolError as exc:
                error = error or exc
        assert error is not None
        raise error

    def _answer(self, request: Request, remembered: _Remembered) -> str:
        """The Authorization header for `request` under the remembered challenge."""
        challenge = remembered.challenge
        h = challenge.hash
        uri = request.url.raw_path.decode("ascii")
        qop = self._qop(request, challenge)
        cnonce = secrets.token_hex(16)
        remembered.count += 1
        nc = f"{remembered.count:08x}"
        username = self._username
        a1 = h(f"{username}:{challenge.realm}:".encode() + self._password)
        if challenge.session:
            a1 = h(f"{a1}:{challenge.nonce}:{cnonce}".encode())
        a2 = f"{request.method}:{uri}"
        if qop == "auth-int":
            a2 += ":" + h(request.content)
        if qop is None:
            response = h(f"{a1}:{challenge.nonce}:{h(a2.encode())}".encode())
        else:
            response = h(f"{a1}:{challenge.nonce}:{nc}:{cnonce}:{qop}:{h(a2.encode())}".encode())
        if challenge.userhash:
            fields = [f"username={_quote(h(f'{username}:{challenge.realm}'.encode()))}"]
        elif username.isascii():
            fields = [f"username={_quote(username)}"]
        else:
            fields = [f"username*=UTF-8''{quote(username, safe='')}"]
        fields += [
            f"realm={_quote(challenge.realm)}",
            f"nonce={_quote(challenge.nonce)}",
            f"uri={_quote(uri)}",
            f"response={_quote(response)}",
            f"algorithm={challenge.algorithm}",
        ]
        if challenge.opaque is not None:
            fields.append(f"opaque={_quote(challenge.opaque)}")
        if qop is not None:
            fields += [f"qop={qop}", f"nc={nc}"]
        if qop is not None or challenge.session:
            fields.append(f"cnonce={_quote(cnonce)}")  # -sess hashes it in, even without qop
        if challenge.userhash:
            fields.append("userhash=true")
        return "Digest " + ", ".join(fields)

    @staticmethod
    def _qop(request: Request, challenge: _Digest) -> str | None:
        if not challenge.qops:
            return None  # RFC 2069
        if "auth" in challenge.qops:
            return "auth"
        if "auth-int" in challenge.qops:
            if isinstance(request.stream, bytes):
                return "auth-int"
            raise RemoteProtocolError(
                "The server's Digest challenge asks for qop=auth-int (a hash of the body), "
                "and the request body is a stream: read it first (`await request.aread()`) "
                "or send bytes",
                request=request,
            )
        raise RemoteProtocolError(
            f"The server's Digest challenge offers qop {', '.join(challenge.qops)}; "
            "trioclient answers auth and auth-int only",
            request=request,
        )
