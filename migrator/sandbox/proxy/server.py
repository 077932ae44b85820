"""`RedshiftProxy`: one emulated cluster endpoint (an asyncio server in front of one PostgreSQL database), its sessions, cancel requests and `ProxyStats`."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import asdict, dataclass
from typing import Callable, Literal

from migrator.sandbox import wire
from migrator.sandbox.faults import FaultPlan
from migrator.sandbox.interfaces import StatementInterceptor
from migrator.sandbox.proxy.session import Session
from migrator.sandbox.proxy.sql import is_write_tag


log = logging.getLogger("migrator.sandbox.proxy")


@dataclass
class ProxyStats:
    """What a proxy has seen; the control plane turns these into CloudWatch metrics."""

    connections_total: int = 0
    connections_open: int = 0
    statements: int = 0
    write_statements: int = 0

    def count_statement(self, tag: str) -> None:
        self.statements += 1
        if is_write_tag(tag):
            self.write_statements += 1

    def snapshot(self) -> dict[str, int]:
        return asdict(self)


class RedshiftProxy:
    """One emulated cluster endpoint: an asyncio server in front of one PostgreSQL database."""

    def __init__(
        self,
        cluster_id: str,
        pg_host: str,
        pg_port: int,
        pg_database: str,
        pg_user: str,
        pg_password: str,
        users: dict[str, str],
        interceptor: StatementInterceptor | None = None,
        faults: FaultPlan | None = None,
        auth: Literal["md5", "cleartext"] = "md5",
        host: str = "127.0.0.1",
        port: int = 0,
        database: str | None = None,
        stored_password: Callable[[str], str | None] | None = None,
    ) -> None:
        """``database``: the name clients must ask for (None: any name reaches ``pg_database``).
        ``stored_password``: for users other than those in ``users``, the md5 form of the password
        the cluster keeps for a user who may log in now (None: no such user, no password, cannot
        log in, or expired); blocking, called from a worker thread."""
        if auth not in ("md5", "cleartext"):
            raise ValueError(f"unsupported auth method {auth!r}")
        self.cluster_id = cluster_id
        self.pg_host = pg_host
        self.pg_port = pg_port
        self.pg_database = pg_database
        self.pg_user = pg_user
        self.pg_password = pg_password
        self.users = dict(users)  # mutable: the emulation may add users or change passwords
        self.interceptor = interceptor
        self.stored_password = stored_password
        self.faults = faults
        self.auth = auth
        self.database = database
        self.host = host
        self.port = port
        self.stats = ProxyStats()
        self._server: asyncio.Server | None = None
        self._sessions: set[Session] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    def __repr__(self) -> str:
        return f"RedshiftProxy({self.cluster_id!r}, {self.host}:{self.port} -> {self.pg_host}:{self.pg_port}/{self.pg_database})"

    def set_password(self, user: str, password: str) -> None:
        self.users[user] = password

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._on_client, self.host, self.port)
        self.port = int(self._server.sockets[0].getsockname()[1])
        log.info("cluster %s: proxy listening on %s:%s", self.cluster_id, self.host, self.port)
        return self.port

    async def stop(self) -> None:
        """Stop listening and drop every session (their transactions roll back)."""
        if self._server is not None:
            self._server.close()
        for session in list(self._sessions):
            session.abort()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
        log.info("cluster %s: proxy stopped", self.cluster_id)

    async def drop_sessions(self) -> None:
        """Disconnect every client (a reboot); open transactions roll back, the listener stays."""
        sessions = list(self._sessions)
        for session in sessions:
            session.abort()
        await asyncio.gather(*(t for t in list(self._tasks)), return_exceptions=True)

    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = Session(self, reader, writer)
        task = asyncio.current_task()
        assert task is not None
        self._sessions.add(session)
        self._tasks.add(task)
        try:
            await session.run()
        finally:
            self._sessions.discard(session)
            self._tasks.discard(task)

    async def forward_cancel(self, pid: int, key: int) -> None:
        """Clients see the backend's own pid and key, so a cancel request maps one to one."""
        if not any(s.backend_key == (pid, key) for s in self._sessions):
            log.info("cluster %s: ignoring cancel request for unknown pid %s", self.cluster_id, pid)
            return
        try:
            reader, writer = await asyncio.open_connection(self.pg_host, self.pg_port)
            writer.write(wire.cancel_request(pid, key))
            await writer.drain()
            # PostgreSQL closes the socket once the cancel is delivered; the client waits for that too.
            await asyncio.wait_for(reader.read(), timeout=10)
            writer.close()
        except (OSError, asyncio.TimeoutError) as exc:
            log.warning("cluster %s: cancel for pid %s failed: %s", self.cluster_id, pid, exc)
