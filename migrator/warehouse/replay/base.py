"""What every replay part shares: the result (statements run, objects skipped with why, users
whose passwords an operator must reset), the runner that applies a statement to the target and
records it, and catalog reads by query name (migrator/warehouse/sql/<name>.sql)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from migrator.warehouse.connection import Session
from migrator.warehouse.sql import query

INTERNAL_USERS = {"rdsdb", "sandbox_admin"}  # the service's own accounts (sandbox's too)
#: Replay DDL statements per transaction (Applier.run_grouped).
DDL_PER_TRANSACTION = 200


@dataclass(frozen=True)
class Skipped:
    kind: str  # view, function, procedure, materialized view, external schema, grant ...
    name: str
    reason: str

    @property
    def object(self) -> str:
        return f"{self.kind} {self.name}"


@dataclass
class ReplayResult:
    statements: list[str] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    users_to_reset: list[str] = field(default_factory=list)


class Applier:
    """Runs replay statements on the target and records each in the result."""

    def __init__(self, target: Session, result: ReplayResult) -> None:
        self.target, self.result = target, result

    def run(self, sql: str) -> None:
        self.target.run(sql, kind="replay", what="replay DDL")
        self.result.statements.append(sql)

    def run_grouped(self, statements: list[str], chunk: int = DDL_PER_TRANSACTION) -> None:
        """Many statements of one kind (CREATE TABLE, ALTER TABLE, GRANT) in transactions of up to
        ``chunk``, one commit each instead of one per statement (Redshift runs DDL in a
        transaction block; what cannot be, e.g. CREATE EXTERNAL TABLE or VACUUM, never comes
        here). A failure rolls its chunk back; replay skips what exists, so a re-run redoes only
        the rest. On a session already in a transaction, the statements join it."""
        if not self.target.conn.autocommit:
            for sql in statements:
                self.run(sql)
            return
        for start in range(0, len(statements), chunk):
            self.target.conn.autocommit = False
            try:
                for sql in statements[start:start + chunk]:
                    self.target.run(sql, kind="replay", what="replay DDL")
                self.target.commit()
            except BaseException:
                self.target.rollback()
                raise
            finally:
                self.target.conn.autocommit = True
            self.result.statements.extend(statements[start:start + chunk])


def catalog(session: Session, sql_name: str) -> list[tuple[Any, ...]]:
    """The rows of the named catalog query (migrator/warehouse/sql/<sql_name>.sql)."""
    return session.run(query(sql_name), kind="catalog")


def truthy(value: Any) -> bool:
    return str(value).strip().lower() in ("t", "true", "1", "y", "yes")
