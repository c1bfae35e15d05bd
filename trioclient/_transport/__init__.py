"""Transports: what answers a client's requests. The package root imports from here.

`Transport` is the seam (`_base.py`); `HTTPTransport` is the network (a pool of HTTP/1.1
and HTTP/2 connections); `MockTransport` and `ASGITransport` answer in-process.
"""

from ._asgi import ASGITransport as ASGITransport
from ._base import Transport as Transport
from ._http import HTTPTransport as HTTPTransport
from ._mock import MockTransport as MockTransport

__all__ = ["ASGITransport", "HTTPTransport", "MockTransport", "Transport"]
