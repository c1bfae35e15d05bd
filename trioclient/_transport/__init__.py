"""Connections, the pool and the wire protocols. Private: the client layer imports from here."""
