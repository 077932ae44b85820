"""What every replay part shares: the result (statements run, objects skipped with why, users
whose passwords an operator must reset), the runner that applies a statement to the target and
records it, and catalog reads by query name (migrator/warehouse/sql/<name>.sql)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from migrator.warehouse.connection import Session
from migrator.warehouse.sql import query

INTERNAL_USERS = {"rdsdb", "sandbox_admin"}  # the service's own accounts (sandbox's too)


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


def catalog(session: Session, sql_name: str) -> list[tuple[Any, ...]]:
    """The rows of the named catalog query (migrator/warehouse/sql/<sql_name>.sql)."""
    return session.run(query(sql_name), kind="catalog")


def truthy(value: Any) -> bool:
    return str(value).strip().lower() in ("t", "true", "1", "y", "yes")
