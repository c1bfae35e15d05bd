"""`codes`: HTTP status codes as an IntEnum, with reason phrases and class checks.

The member names and values come from `http.HTTPStatus` (every one of them, checked by the
tests), written out here so that type checkers see each name. Two things differ from the
stdlib enum:

* Python 3.13 renamed four codes after RFC 9110 (413 CONTENT_TOO_LARGE, 414 URI_TOO_LONG,
  416 RANGE_NOT_SATISFIABLE, 422 UNPROCESSABLE_CONTENT) and changed their phrases. Here the
  older names (the ones httpx uses) stay canonical and the new ones are aliases on every
  Python, and the phrases are pinned, so `reason_phrase` does not depend on the Python
  version.
* Each member has a lower-case alias (`codes.ok is codes.OK`), as in httpx; `str()` of a
  member is its number on every Python.

Building the enum at import time from `http.HTTPStatus` was turned down: mypy could not see
the member names, so `codes.NOT_FOUND` would be an error in every strictly typed caller.
"""

from __future__ import annotations

from enum import IntEnum
from http import HTTPStatus
from typing import Final

__all__ = ["codes"]

# Phrases of the codes whose wording changed in Python 3.13, pinned to the older wording.
_PINNED_PHRASES: Final = {
    413: "Request Entity Too Large",
    414: "Request-URI Too Long",
    416: "Requested Range Not Satisfiable",
    422: "Unprocessable Entity",
}
_PHRASES: Final[dict[int, str]] = {
    **{status.value: status.phrase for status in HTTPStatus},
    **_PINNED_PHRASES,
}


class codes(IntEnum):
    """HTTP status codes: `codes.NOT_FOUND == 404`, `codes.ok is codes.OK`."""

    # 1xx: Informational
    CONTINUE = 100
    SWITCHING_PROTOCOLS = 101
    PROCESSING = 102
    EARLY_HINTS = 103

    # 2xx: Success
    OK = 200
    CREATED = 201
    ACCEPTED = 202
    NON_AUTHORITATIVE_INFORMATION = 203
    NO_CONTENT = 204
    RESET_CONTENT = 205
    PARTIAL_CONTENT = 206
    MULTI_STATUS = 207
    ALREADY_REPORTED = 208
    IM_USED = 226

    # 3xx: Redirection
    MULTIPLE_CHOICES = 300
    MOVED_PERMANENTLY = 301
    FOUND = 302
    SEE_OTHER = 303
    NOT_MODIFIED = 304
    USE_PROXY = 305
    TEMPORARY_REDIRECT = 307
    PERMANENT_REDIRECT = 308

    # 4xx: Client error
    BAD_REQUEST = 400
    UNAUTHORIZED = 401
    PAYMENT_REQUIRED = 402
    FORBIDDEN = 403
    NOT_FOUND = 404
    METHOD_NOT_ALLOWED = 405
    NOT_ACCEPTABLE = 406
    PROXY_AUTHENTICATION_REQUIRED = 407
    REQUEST_TIMEOUT = 408
    CONFLICT = 409
    GONE = 410
    LENGTH_REQUIRED = 411
    PRECONDITION_FAILED = 412
    REQUEST_ENTITY_TOO_LARGE = 413
    REQUEST_URI_TOO_LONG = 414
    UNSUPPORTED_MEDIA_TYPE = 415
    REQUESTED_RANGE_NOT_SATISFIABLE = 416
    EXPECTATION_FAILED = 417
    IM_A_TEAPOT = 418
    MISDIRECTED_REQUEST = 421
    UNPROCESSABLE_ENTITY = 422
    LOCKED = 423
    FAILED_DEPENDENCY = 424
    TOO_EARLY = 425
    UPGRADE_REQUIRED = 426
    PRECONDITION_REQUIRED = 428
    TOO_MANY_REQUESTS = 429
    REQUEST_HEADER_FIELDS_TOO_LARGE = 431
    UNAVAILABLE_FOR_LEGAL_REASONS = 451

    # 5xx: Server error
    INTERNAL_SERVER_ERROR = 500
    NOT_IMPLEMENTED = 501
    BAD_GATEWAY = 502
    SERVICE_UNAVAILABLE = 503
    GATEWAY_TIMEOUT = 504
    HTTP_VERSION_NOT_SUPPORTED = 505
    VARIANT_ALSO_NEGOTIATES = 506
    INSUFFICIENT_STORAGE = 507
    LOOP_DETECTED = 508
    NOT_EXTENDED = 510
    NETWORK_AUTHENTICATION_REQUIRED = 511

    # Names used by RFC 9110 and by http.HTTPStatus since Python 3.13 (aliases).
    CONTENT_TOO_LARGE = 413
    URI_TOO_LONG = 414
    RANGE_NOT_SATISFIABLE = 416
    UNPROCESSABLE_CONTENT = 422

    # Lower-case aliases, as httpx has them: `codes.ok is codes.OK`. "continue" is a keyword,
    # so it goes into the class namespace directly (reachable with getattr only).
    vars()["continue"] = 100
    switching_protocols = 101
    processing = 102
    early_hints = 103
    ok = 200
    created = 201
    accepted = 202
    non_authoritative_information = 203
    no_content = 204
    reset_content = 205
    partial_content = 206
    multi_status = 207
    already_reported = 208
    im_used = 226
    multiple_choices = 300
    moved_permanently = 301
    found = 302
    see_other = 303
    not_modified = 304
    use_proxy = 305
    temporary_redirect = 307
    permanent_redirect = 308
    bad_request = 400
    unauthorized = 401
    payment_required = 402
    forbidden = 403
    not_found = 404
    method_not_allowed = 405
    not_acceptable = 406
    proxy_authentication_required = 407
    request_timeout = 408
    conflict = 409
    gone = 410
    length_required = 411
    precondition_failed = 412
    request_entity_too_large = 413
    request_uri_too_long = 414
    unsupported_media_type = 415
    requested_range_not_satisfiable = 416
    expectation_failed = 417
    im_a_teapot = 418
    misdirected_request = 421
    unprocessable_entity = 422
    locked = 423
    failed_dependency = 424
    too_early = 425
    upgrade_required = 426
    precondition_required = 428
    too_many_requests = 429
    request_header_fields_too_large = 431
    unavailable_for_legal_reasons = 451
    internal_server_error = 500
    not_implemented = 501
    bad_gateway = 502
    service_unavailable = 503
    gateway_timeout = 504
    http_version_not_supported = 505
    variant_also_negotiates = 506
    insufficient_storage = 507
    loop_detected = 508
    not_extended = 510
    network_authentication_required = 511
    content_too_large = 413
    uri_too_long = 414
    range_not_satisfiable = 416
    unprocessable_content = 422

    def __str__(self) -> str:
        """The number, like an int (`str(codes.OK) == "200"`)."""
        return str(self.value)

    @property
    def phrase(self) -> str:
        """The reason phrase, e.g. "Not Found"."""
        return _PHRASES.get(self.value, "")

    @classmethod
    def get_reason_phrase(cls, value: int) -> str:
        """The reason phrase of a status code; "" for codes without one."""
        return _PHRASES.get(value, "")

    @classmethod
    def is_informational(cls, value: int) -> bool:
        """True for 1xx."""
        return 100 <= value <= 199

    @classmethod
    def is_success(cls, value: int) -> bool:
        """True for 2xx."""
        return 200 <= value <= 299

    @classmethod
    def is_redirect(cls, value: int) -> bool:
        """True for 3xx."""
        return 300 <= value <= 399

    @classmethod
    def is_client_error(cls, value: int) -> bool:
        """True for 4xx."""
        return 400 <= value <= 499

    @classmethod
    def is_server_error(cls, value: int) -> bool:
        """True for 5xx."""
        return 500 <= value <= 599

    @classmethod
    def is_error(cls, value: int) -> bool:
        """True for 4xx and 5xx."""
        return 400 <= value <= 599
