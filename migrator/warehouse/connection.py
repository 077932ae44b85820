"""Connections to a cluster through redshift_connector, and a thin Session over one.

The Session runs statements, converts driver errors (see errors.py), and keeps how long
statements of each kind took, so callers can tell the tool's own overhead from the time
spent inside UNLOAD/COPY/validation.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Sequence

from migrator.credentials import DbCredentials
from migrator.errors import MigratorError
from migrator.warehouse.errors import classify, is_missing_column

log = logging.getLogger("migrator.warehouse")


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    database: str


def connect(endpoint: Endpoint, creds: DbCredentials, *, ssl: bool = True, timeout: int = 60,
            autocommit: bool = False) -> Any:
    """A redshift_connector connection. ``ssl=False`` only for the local sandbox."""
    import redshift_connector

    try:
        conn = redshift_connector.connect(host=endpoint.host, port=endpoint.port, database=endpoint.database,
                                          user=creds.user, password=creds.password, ssl=ssl, timeout=timeout)
    except Exception as exc:  # the driver raises many kinds; classify() sorts them
        raise classify(exc, f"connect to {endpoint.host}:{endpoint.port}/{endpoint.database} as {creds.user}") from None
    conn.autocommit = autocommit
    return conn


@dataclass
class Session:
    """One connection plus timing. ``statements`` lists every statement this session ran."""

    conn: Any
    timings: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    statements: list[str] = field(default_factory=list)

    def run(self, sql: str, params: Sequence[Any] | None = None, *, kind: str = "other",
            what: str | None = None) -> list[tuple[Any, ...]]:
        """Execute one statement; return its rows (empty for statements without a result)."""
        started = time.perf_counter()
        cur = self.conn.cursor()
        try:
            cur.execute(sql, params) if params is not None else cur.execute(sql)
            rows = [tuple(r) for r in cur.fetchall()] if cur.description else []
        except Exception as exc:
            raise classify(exc, what or kind) from None
        finally:
            self.timings[kind] += time.perf_counter() - started
            try:
                cur.close()
            except Exception:  # a dead connection cannot close its cursor; the error above matters
                pass
        self.statements.append(sql)
        return rows

    def try_run(self, sql: str, params: Sequence[Any] | None = None, *, kind: str = "catalog"
                ) -> list[tuple[Any, ...]] | None:
        """Like run(), but None when the catalog lacks a column/relation/function this query
        uses (so a caller can fall back to another catalog variant). Needs autocommit, or the
        failed statement would abort the open transaction."""
        cur = self.conn.cursor()
        try:
            cur.execute(sql, params) if params is not None else cur.execute(sql)
            return [tuple(r) for r in cur.fetchall()] if cur.description else []
        except Exception as exc:
            if is_missing_column(exc):
                if not self.conn.autocommit:
                    self.conn.rollback()
                log.debug("catalog variant not available: %s", exc)
                return None
            raise classify(exc, kind) from None

    def commit(self) -> None:
        try:
            self.conn.commit()
        except Exception as exc:
            raise classify(exc, "commit") from None

    def rollback(self) -> None:
        try:
            self.conn.rollback()
        except Exception:  # rollback on a broken connection: the server rolls back on its own
            pass

    def close(self) -> None:
        try:
            self.conn.close()
        except Exception:
            pass

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_session(endpoint: Endpoint, creds: DbCredentials, *, ssl: bool = True, autocommit: bool = True) -> Session:
    return Session(connect(endpoint, creds, ssl=ssl, autocommit=autocommit))


__all__ = ["Endpoint", "MigratorError", "Session", "connect", "open_session"]
