"""Credentials never reach a repr: a traceback, a pytest failure or a `%r` in a log line
prints these objects (review of the features and proxies changes)."""

from __future__ import annotations

import trioclient
from trioclient._proxy_env import ProxyEnvironment
from trioclient._retry import RetryAttempt
from trioclient._transport._tunnel import ProxyRoute

SECRET = "s3cret"


def test_a_request_repr_hides_the_url_password() -> None:
    request = trioclient.Request("GET", f"https://user:{SECRET}@example.com/x")
    assert SECRET not in repr(request)
    assert "example.com/x" in repr(request)
    attempt = RetryAttempt(request, None, None, "connect", 0.5)
    assert SECRET not in repr(attempt)


def test_a_proxy_route_repr_hides_the_credentials() -> None:
    for url in (f"http://user:{SECRET}@proxy:3128", f"socks5://user:{SECRET}@proxy:1080"):
        route = ProxyRoute.of(trioclient.Proxy(url), verify=True, cert=None, trust_env=False)
        text = repr(route)
        assert SECRET not in text
        assert "czNjcmV0" not in text  # base64 of the secret, in Proxy-Authorization
        assert "proxy" in text


def test_a_proxy_environment_repr_hides_the_credentials() -> None:
    env = ProxyEnvironment.from_environ({"HTTPS_PROXY": f"http://u:{SECRET}@p:1"})
    assert SECRET not in repr(env)
