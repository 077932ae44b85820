"""`Session`: one client connection of a proxy, composed of its parts (startup, client protocol, interception, backend relay over a shared core)."""

from __future__ import annotations

from migrator.sandbox.proxy.client import ClientProtocol
from migrator.sandbox.proxy.startup import SessionStartup


class Session(ClientProtocol, SessionStartup):
    """One client connection and the PostgreSQL connection behind it."""
