"""The backend side of a session: forwarding to PostgreSQL, relaying its answers to the client while
matching each to the message it ends (transaction outcome, statement observers), waiting until the
backend is idle ("drain"), and roundtrips the proxy runs itself while it owns the backend."""

from __future__ import annotations

import asyncio
import logging

from migrator.sandbox import wire
from migrator.sandbox.interfaces import BackendError, Column
from migrator.sandbox.proxy.core import Expect, RoundTrip, SessionCore
from migrator.sandbox.proxy.errors import redshift_error_payload


log = logging.getLogger("migrator.sandbox.proxy")

REDSHIFT_SERVER_VERSION = "8.0.2"
_COPY_CHUNK = 1 << 18


class BackendRelay(SessionCore):
    """Relays the backend to the client and runs the proxy's own roundtrips."""

    def _send_backend(self, raw: bytes, expect: Expect | None = None) -> None:
        if self._backend_dead or self.backend_writer is None:
            raise ConnectionResetError("backend connection is closed")
        if expect is not None:
            self._expect.append(expect)
            self._idle.clear()
        self.backend_writer.write(raw)

    async def _relay(self) -> None:
        assert self.backend is not None
        try:
            while True:
                if self._capture is None:
                    run = self.backend.take_run(b"Dd")
                    if run:
                        self.client_writer.write(run)
                        if not self.backend.buffered():
                            await self.client_writer.drain()
                        continue
                kind, payload = await self.backend.read()
                if self._capture is not None:
                    self._capture.put_nowait((kind, payload))
                    continue
                out = await self._account(kind, payload)
                if out is not None:
                    self.client_writer.write(out)
                if not self.backend.buffered():
                    await self.client_writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, wire.ProtocolError, OSError) as exc:
            log.info("cluster %s: backend pid=%s gone: %s", self.proxy.cluster_id, self.info.pid, exc)
        finally:
            self.abort()

    async def _account(self, kind: bytes, payload: bytes) -> bytes | None:
        """Match a relayed backend message to what it answers; return what the client gets."""
        head = self._expect[0] if self._expect else None
        if kind == b"E":
            payload = redshift_error_payload(payload)
            self._cycle_failed = True
        out: bytes | None = wire.message(kind, payload)
        if kind == b"S":
            out = self._note_parameter(payload)
        elif kind in (b"1", b"2", b"3") or (kind in (b"T", b"n") and head is not None and head.kind == "describe"):
            self._pop()
        elif kind in (b"C", b"I", b"s"):
            if kind == b"C":
                self._last_tag = wire.decode_command_complete(payload)
            if kind == b"C" and head is not None:
                await self._completed(head.sql or "", self._last_tag)
            if head is not None and head.kind == "execute":
                self._pop()
        elif kind == b"E" and head is not None and head.kind == "query":
            head.failed = True
        elif kind == b"E" and head is not None and head.kind != "sync":
            # The backend now ignores everything up to the next Sync.
            while self._expect and self._expect[0].kind != "sync":
                self._expect.popleft()
            if not self._expect:
                self._skipping = True
        elif kind == b"Z":
            self.tx_status = payload.decode("ascii")
            self._settle_transaction()
            if head is not None and head.kind in ("sync", "query"):
                self._pop()
                if head.internal:
                    out = None
        if not self._expect:
            self._idle.set()
        return out

    def _settle_transaction(self) -> None:
        """At ReadyForQuery: if no transaction is open any more, the one that ended committed
        (COMMIT, or a statement of its own that did not fail) or rolled back (ROLLBACK, which is
        also the tag of a COMMIT of a failed transaction, or a failed statement of its own)."""
        tag = (self._last_tag or "").split(" ", 1)[0].upper()
        if self.tx_status == "I":
            self.info.end_transaction(tag == "COMMIT" or (tag != "ROLLBACK" and not self._cycle_failed))
        self._last_tag, self._cycle_failed = None, False

    def _pop(self) -> None:
        if self._expect:
            self._expect.popleft()

    async def _completed(self, sql: str, tag: str) -> None:
        self.proxy.stats.count_statement(tag)
        await self._observe("after_statement", sql, tag, self.info)

    async def _observe(self, hook_name: str, *args: object) -> None:
        """Call the interceptor's observer ``hook_name`` (the system log's: after_statement,
        after_failure, on_session) in a worker thread, if it has one; its failure ends nothing."""
        hook = getattr(self.proxy.interceptor, hook_name, None)
        if hook is None:
            return
        try:
            await asyncio.to_thread(hook, *args)
        except Exception:
            log.exception("cluster %s: %s observer failed", self.proxy.cluster_id, hook_name)

    async def _drain(self) -> None:
        """Wait until every forwarded message has been answered."""
        if self._expect and self._expect[-1].kind not in ("sync", "query"):
            # Without a Sync the backend may hold its answers back, and a failed
            # pipeline would swallow our own queries.
            log.debug("cluster %s: pid=%s syncing pending pipeline before answering locally",
                      self.proxy.cluster_id, self.info.pid)
            self._send_backend(wire.SYNC, Expect("sync", internal=True))
        await self._idle.wait()
        if self._backend_dead:
            raise ConnectionResetError("backend connection is closed")

    def _owning_backend(self) -> "Owning":
        return Owning(self)

    async def roundtrip(self, sql: str, copy_in: bytes | None = None) -> RoundTrip:
        """Run one simple Query on the backend for the proxy itself; the client sees nothing of it."""
        capture = self._capture
        if capture is None:
            raise RuntimeError("roundtrip outside _owning_backend")
        result = RoundTrip()
        if self._backend_dead:
            result.error = BackendError("08006", "connection to the database was lost")
            return result
        self._send_backend(wire.query(sql))
        while True:
            kind, payload = await capture.get()
            if kind == b"":
                capture.put_nowait((b"", b""))
                result.error = result.error or BackendError("08006", "connection to the database was lost")
                return result
            if kind == b"T":
                result.columns = [Column(c.name, c.type_oid) for c in wire.decode_row_description(payload)]
                result.rows = []
            elif kind == b"D":
                result.rows.append(wire.decode_data_row(payload))
            elif kind == b"C":
                result.tag = wire.decode_command_complete(payload)
            elif kind == b"E" and result.error is None:
                fields = wire.decode_fields(payload)
                result.error = BackendError(fields.get("C", "XX000"), fields.get("M", ""), fields.get("D"))
            elif kind == b"G":
                await self._feed_copy(copy_in)
            elif kind == b"d":
                result.copy_out += payload
            elif kind == b"S":
                status = self._note_parameter(payload)
                if self._started:
                    self.client_writer.write(status)
            elif kind == b"Z":
                self.tx_status = payload.decode("ascii")
                return result

    async def _feed_copy(self, data: bytes | None) -> None:
        assert self.backend_writer is not None
        if data is None:
            self._send_backend(wire.copy_fail("COPY FROM STDIN needs data from the sandbox"))
            return
        view = memoryview(data)
        for start in range(0, len(view), _COPY_CHUNK):
            self._send_backend(wire.copy_data(bytes(view[start:start + _COPY_CHUNK])))
            await self.backend_writer.drain()
        self._send_backend(wire.COPY_DONE)

    async def _flush_backend(self) -> None:
        if self.backend_writer is not None:
            await self.backend_writer.drain()

    def _note_parameter(self, payload: bytes) -> bytes:
        name, value = wire.decode_parameter_status(payload)
        if name == "server_version":
            value = REDSHIFT_SERVER_VERSION
        self._startup_params[name] = value
        return wire.parameter_status(name, value)


class Owning:
    """While held, backend messages go to the proxy (roundtrip), not to the client."""

    def __init__(self, session: BackendRelay) -> None:
        self._session = session

    async def __aenter__(self) -> None:
        session = self._session
        await session._drain()
        session._capture = asyncio.Queue()

    async def __aexit__(self, *exc: object) -> None:
        self._session._capture = None
