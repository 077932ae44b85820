"""A proxy session's state (its client and backend connections, transaction status, what the backend
still owes, prepared statements and portals) and the small records it keeps; `abort` ends both sides."""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from migrator.sandbox import wire
from migrator.sandbox.interfaces import BackendError, Column, Intercept, SessionInfo

if TYPE_CHECKING:
    from migrator.sandbox.proxy.server import RedshiftProxy


@dataclass
class Statement:
    sql: str
    intercept: Intercept | None
    param_oids: list[int] = field(default_factory=list)


@dataclass
class Portal:
    statement: Statement
    result_formats: list[int]


@dataclass
class Expect:
    """One forwarded message still waiting for the backend message that ends it."""

    kind: Literal["parse", "bind", "describe", "execute", "close", "sync", "query"]
    sql: str | None = None
    internal: bool = False  # its ReadyForQuery is the proxy's, not the client's
    failed: bool = False


@dataclass
class RoundTrip:
    tag: str = ""
    columns: list[Column] = field(default_factory=list)
    rows: list[tuple[str | None, ...]] = field(default_factory=list)
    copy_out: bytearray = field(default_factory=bytearray)
    error: BackendError | None = None


class Dropped(Exception):
    """A drop_connection fault closed the session."""


class SessionCore:
    """One client connection and the PostgreSQL connection behind it: the state every part shares."""

    def __init__(self, proxy: "RedshiftProxy", reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.proxy = proxy
        self.client = wire.MessageReader(reader)
        self.client_writer = writer
        self.backend: wire.MessageReader | None = None
        self.backend_writer: asyncio.StreamWriter | None = None
        self.backend_key: tuple[int, int] = (0, 0)
        self.info = SessionInfo(proxy.cluster_id, "", "", 0)
        self.tx_status = "I"
        #: Since the last ReadyForQuery: the last CommandComplete tag, and whether an error came.
        self._last_tag: str | None = None
        self._cycle_failed = False
        self._started = False
        self._counted = False
        self._expect: deque[Expect] = deque()
        self._idle = asyncio.Event()
        self._idle.set()
        self._skipping = False  # after an error in the extended protocol, until Sync
        self._capture: asyncio.Queue[tuple[bytes, bytes]] | None = None
        self._backend_dead = False
        self._relay_task: asyncio.Task[None] | None = None
        self._statements: dict[str, Statement] = {}
        self._portals: dict[str, Portal] = {}
        self._startup_params: dict[str, str] = {}

    def abort(self) -> None:
        """Close both sockets at once; PostgreSQL rolls back what the client left open."""
        for writer in (self.backend_writer, self.client_writer):
            if writer is not None and not writer.transport.is_closing():
                writer.transport.abort()
        self._backend_dead = True
        self._idle.set()
        if self._capture is not None:
            self._capture.put_nowait((b"", b""))
