"""Test servers for trioclient.

* :mod:`servers.asgi_app`: a framework-free ASGI 3 app with deterministic routes.
* :mod:`servers.hypercorn_server`: that app on hypercorn (Trio) in a background thread,
  plain HTTP (h11 + h2c) and HTTPS (ALPN h2, http/1.1) on 127.0.0.1 ephemeral ports.
* :mod:`servers.raw`: raw, misbehaving HTTP/1.1 peers run inside a test's own Trio run.

None of these modules import trioclient.
"""
