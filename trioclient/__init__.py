"""trioclient: a Trio-native async HTTP client whose nurseries own every connection.

The public API mirrors `httpx.AsyncClient` where the semantics agree; see docs/httpx-compat.md.
"""

from ._api import delete as delete
from ._api import get as get
from ._api import head as head
from ._api import options as options
from ._api import patch as patch
from ._api import post as post
from ._api import put as put
from ._api import request as request
from ._api import stream as stream
from ._auth import Auth as Auth
from ._auth import BasicAuth as BasicAuth
from ._auth import FunctionAuth as FunctionAuth
from ._auth import NetRCAuth as NetRCAuth
from ._client import Client as Client
from ._config import USE_CLIENT_DEFAULT as USE_CLIENT_DEFAULT
from ._config import Deadlines as Deadlines
from ._config import Limits as Limits
from ._config import Timeout as Timeout
from ._cookies import Cookies as Cookies
from ._digest import DigestAuth as DigestAuth
from ._exceptions import ClientStateError as ClientStateError
from ._exceptions import CloseError as CloseError
from ._exceptions import ConnectError as ConnectError
from ._exceptions import ConnectTimeout as ConnectTimeout
from ._exceptions import CookieConflict as CookieConflict
from ._exceptions import DecodingError as DecodingError
from ._exceptions import HTTPError as HTTPError
from ._exceptions import HTTPStatusError as HTTPStatusError
from ._exceptions import InvalidURL as InvalidURL
from ._exceptions import LocalProtocolError as LocalProtocolError
from ._exceptions import NetworkError as NetworkError
from ._exceptions import PoolTimeout as PoolTimeout
from ._exceptions import ProtocolError as ProtocolError
from ._exceptions import ProxyError as ProxyError
from ._exceptions import ReadError as ReadError
from ._exceptions import ReadTimeout as ReadTimeout
from ._exceptions import RemoteProtocolError as RemoteProtocolError
from ._exceptions import RequestError as RequestError
from ._exceptions import RequestNotRead as RequestNotRead
from ._exceptions import ResponseNotRead as ResponseNotRead
from ._exceptions import ResponseTooLarge as ResponseTooLarge
from ._exceptions import StreamClosed as StreamClosed
from ._exceptions import StreamConsumed as StreamConsumed
from ._exceptions import StreamError as StreamError
from ._exceptions import TimeoutException as TimeoutException
from ._exceptions import TooManyRedirects as TooManyRedirects
from ._exceptions import TransportError as TransportError
from ._exceptions import UnsupportedProtocol as UnsupportedProtocol
from ._exceptions import WriteError as WriteError
from ._exceptions import WriteTimeout as WriteTimeout
from ._headers import Headers as Headers
from ._proxy import Proxy as Proxy
from ._request import Request as Request
from ._response import Response as Response
from ._retry import Retry as Retry
from ._retry import RetryAttempt as RetryAttempt
from ._retry import RetryDecision as RetryDecision
from ._send import StreamContext as StreamContext
from ._status_codes import codes as codes
from ._transport import ASGITransport as ASGITransport
from ._transport import HTTPTransport as HTTPTransport
from ._transport import MockTransport as MockTransport
from ._transport import Transport as Transport
from ._transport._connection import ConnectionStatistics as ConnectionStatistics
from ._transport._pool_state import PoolStatistics as PoolStatistics
from ._transport._tls import create_ssl_context as create_ssl_context
from ._urls import URL as URL
from ._urls import QueryParams as QueryParams

__version__ = "0.1.0"
__title__ = "trioclient"
__description__ = "A Trio-native async HTTP client whose nurseries own every connection."

# httpx spells the client `AsyncClient`; the alias lets `import trioclient as httpx` work.
AsyncClient = Client

__all__ = [
    "URL",
    "USE_CLIENT_DEFAULT",
    "ASGITransport",
    "AsyncClient",
    "Auth",
    "BasicAuth",
    "Client",
    "ClientStateError",
    "CloseError",
    "ConnectError",
    "ConnectTimeout",
    "ConnectionStatistics",
    "CookieConflict",
    "Cookies",
    "Deadlines",
    "DecodingError",
    "DigestAuth",
    "FunctionAuth",
    "HTTPError",
    "HTTPStatusError",
    "HTTPTransport",
    "Headers",
    "InvalidURL",
    "Limits",
    "LocalProtocolError",
    "MockTransport",
    "NetRCAuth",
    "NetworkError",
    "PoolStatistics",
    "PoolTimeout",
    "ProtocolError",
    "Proxy",
    "ProxyError",
    "QueryParams",
    "ReadError",
    "ReadTimeout",
    "RemoteProtocolError",
    "Request",
    "RequestError",
    "RequestNotRead",
    "Response",
    "ResponseNotRead",
    "ResponseTooLarge",
    "Retry",
    "RetryAttempt",
    "RetryDecision",
    "StreamClosed",
    "StreamConsumed",
    "StreamContext",
    "StreamError",
    "Timeout",
    "TimeoutException",
    "TooManyRedirects",
    "Transport",
    "TransportError",
    "UnsupportedProtocol",
    "WriteError",
    "WriteTimeout",
    "codes",
    "create_ssl_context",
    "delete",
    "get",
    "head",
    "options",
    "patch",
    "post",
    "put",
    "request",
    "stream",
]
