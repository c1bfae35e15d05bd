"""The `codes` enum: every http.HTTPStatus name, lower-case aliases, phrases, classes."""

from __future__ import annotations

import sys
from http import HTTPStatus

import pytest

from trioclient._status_codes import codes


def test_every_stdlib_status_is_present_with_its_name() -> None:
    for name, status in HTTPStatus.__members__.items():
        assert codes[name] == status.value
        assert getattr(codes, name.lower()) is codes(status.value)
    assert len(codes) == len(HTTPStatus)


def test_upper_and_lower_case_names_are_the_same_member() -> None:
    # mypy takes aliases for distinct members, hence the lookups by name.
    assert codes["ok"] is codes.OK
    assert int(codes.NOT_FOUND) == 404
    assert codes["not_found"] is codes.NOT_FOUND
    assert codes(418) is codes.IM_A_TEAPOT
    assert next(iter(codes)) is codes.CONTINUE  # Aliases are not iterated.


def test_rfc9110_names_are_aliases_of_the_older_names() -> None:
    assert codes["CONTENT_TOO_LARGE"] is codes.REQUEST_ENTITY_TOO_LARGE
    assert codes["URI_TOO_LONG"] is codes.REQUEST_URI_TOO_LONG
    assert codes["RANGE_NOT_SATISFIABLE"] is codes.REQUESTED_RANGE_NOT_SATISFIABLE
    assert codes["UNPROCESSABLE_CONTENT"] is codes.UNPROCESSABLE_ENTITY
    assert codes["unprocessable_content"] is codes.UNPROCESSABLE_ENTITY
    assert codes(413).name == "REQUEST_ENTITY_TOO_LARGE"


def test_phrases_are_pinned_across_python_versions() -> None:
    assert codes.get_reason_phrase(413) == "Request Entity Too Large"
    assert codes.get_reason_phrase(422) == "Unprocessable Entity"
    assert codes.get_reason_phrase(404) == "Not Found"
    assert codes.NOT_FOUND.phrase == "Not Found"
    assert codes.get_reason_phrase(999) == ""
    if sys.version_info < (3, 13):
        for status in HTTPStatus:
            assert codes(status.value).phrase == status.phrase


def test_str_and_format_are_the_number() -> None:
    assert str(codes.OK) == "200"
    assert f"{codes.NOT_FOUND}" == "404"
    assert repr(codes.OK) == "<codes.OK: 200>"


@pytest.mark.parametrize(
    ("value", "classes"),
    [
        (100, {"informational"}),
        (199, {"informational"}),
        (200, {"success"}),
        (302, {"redirect"}),
        (404, {"client_error", "error"}),
        (503, {"server_error", "error"}),
        (600, set()),
        (99, set()),
    ],
)
def test_classes(value: int, classes: set[str]) -> None:
    for name in ("informational", "success", "redirect", "client_error", "server_error", "error"):
        assert getattr(codes, f"is_{name}")(value) is (name in classes)
