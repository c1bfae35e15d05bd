"""Type aliases shared by the public signatures."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterable, Mapping, Sequence
from typing import IO, TYPE_CHECKING, Any, Union

if TYPE_CHECKING:
    from ._config import Timeout
    from ._headers import Headers
    from ._urls import URL, QueryParams

__all__ = [
    "CertTypes",
    "FileContent",
    "FileTypes",
    "HeaderTypes",
    "PrimitiveData",
    "QueryParamTypes",
    "RequestContent",
    "RequestData",
    "RequestFiles",
    "TimeoutTypes",
    "URLTypes",
    "VerifyTypes",
]

PrimitiveData = Union[str, int, float, bool, None]

URLTypes = Union["URL", str]

QueryParamTypes = Union[
    "QueryParams",
    Mapping[str, Union[PrimitiveData, Sequence[PrimitiveData]]],
    Sequence[tuple[str, PrimitiveData]],
    str,
    bytes,
]

HeaderTypes = Union[
    "Headers",
    Mapping[str, str],
    Mapping[bytes, bytes],
    Sequence[tuple[str, str]],
    Sequence[tuple[bytes, bytes]],
]

TimeoutTypes = Union[
    float,
    None,
    tuple[Union[float, None], Union[float, None], Union[float, None], Union[float, None]],
    "Timeout",
]

VerifyTypes = Union[bool, str, ssl.SSLContext]

# A client certificate: a path to a PEM file holding cert and key, a (cert, key) pair of
# paths, or (cert, key, password).
CertTypes = Union[str, tuple[str, str], tuple[str, str, str]]

RequestContent = Union[str, bytes, AsyncIterable[bytes]]

RequestData = Mapping[str, Any]

# One file of `files=`: its content, or (filename, content[, content_type[, headers]]).
# A filename or content type of None leaves it out of the part.
FileContent = Union[IO[bytes], bytes, str]
FileTypes = Union[
    FileContent,
    tuple[Union[str, None], FileContent],
    tuple[Union[str, None], FileContent, Union[str, None]],
    tuple[Union[str, None], FileContent, Union[str, None], Mapping[str, str]],
]
# A mapping of field name to file, or (name, file) pairs (several files under one name).
RequestFiles = Union[Mapping[str, FileTypes], Sequence[tuple[str, FileTypes]]]
