"""A :class:`~migrator.sandbox.interfaces.Backend` over a psycopg 3 connection.

Used by tests and by any sandbox part that wants to run intercepted statements
without the wire proxy. Statements go through the simple query protocol
(no parameters), as the proxy does; values come back in PostgreSQL's text form.
"""

from __future__ import annotations

import psycopg
from psycopg.pq import TransactionStatus

from migrator.sandbox.interfaces import BackendError, Column, QueryResult

_STATUS = {
    TransactionStatus.IDLE: "I",
    TransactionStatus.INTRANS: "T",
    TransactionStatus.INERROR: "E",
    TransactionStatus.ACTIVE: "T",
    TransactionStatus.UNKNOWN: "E",
}


def _backend_error(exc: psycopg.Error) -> BackendError:
    diag = exc.diag
    message = diag.message_primary or str(exc)
    return BackendError(diag.sqlstate or "XX000", message, diag.message_detail)


class PsycopgBackend:
    """Runs statements on ``conn`` (its own transaction handling is left to the caller)."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn

    def query(self, sql: str) -> QueryResult:
        try:
            with self.conn.cursor() as cur:
                cur.execute(sql.encode("utf-8"), prepare=False)
                res = cur.pgresult
                if res is None:
                    return QueryResult("")
                tag = (res.command_status or b"").decode()
                if cur.description is None:
                    return QueryResult(tag)
                # Raw text values, as the wire proxy sees them, not psycopg's Python objects.
                columns = [Column(d.name, d.type_code) for d in cur.description]
                rows = []
                for r in range(res.ntuples):
                    values = (res.get_value(r, c) for c in range(res.nfields))
                    rows.append(tuple(None if v is None else bytes(v).decode("utf-8") for v in values))
                return QueryResult(tag, columns, rows)
        except psycopg.Error as exc:
            raise _backend_error(exc) from exc

    def copy_in(self, sql: str, data: bytes) -> str:
        try:
            with self.conn.cursor() as cur:
                with cur.copy(sql.encode("utf-8")) as copy:
                    view = memoryview(data)
                    step = 1 << 20
                    for start in range(0, len(data), step):
                        copy.write(view[start:start + step])
                status = cur.pgresult.command_status if cur.pgresult else None
                return status.decode() if status else "COPY"
        except psycopg.Error as exc:
            raise _backend_error(exc) from exc

    def copy_out(self, sql: str) -> bytes:
        try:
            with self.conn.cursor() as cur:
                chunks: list[bytes] = []
                with cur.copy(sql.encode("utf-8")) as copy:
                    for chunk in copy:
                        chunks.append(bytes(chunk))
                return b"".join(chunks)
        except psycopg.Error as exc:
            raise _backend_error(exc) from exc

    @property
    def transaction_status(self) -> str:
        return _STATUS.get(self.conn.info.transaction_status, "E")
