"""Who uses a cluster, from its own logs: one `ClientActivity` per user, remote host and
application name, with first and last seen, sessions, statements and writes (clients.sql).
STL_CONNECTION_LOG and STL_QUERY keep about seven days ("STL views for logging"), so that is the
furthest back any answer reaches; a login that is not a superuser sees too little and is refused."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from migrator.errors import PreflightFailed
from migrator.warehouse.sql import query

#: How far back STL views reach ("STL views for logging": approximately seven days).
STL_RETENTION = timedelta(days=7)
#: The application name the tool's own sessions give (warehouse.connection.connect).
OWN_APPLICATION = "migrator"


@dataclass
class ClientActivity:
    user: str
    host: str
    application: str | None
    first_seen: datetime
    last_seen: datetime
    sessions: int
    statements: int
    writes: int

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.user, self.host, self.application or "")

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["first_seen"] = _iso(self.first_seen)
        out["last_seen"] = _iso(self.last_seen)
        return out


def _utc(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return datetime.fromisoformat(str(value)).replace(tzinfo=UTC)


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def require_superuser(session: Any, user: str, cluster: str) -> None:
    rows = session.run(query("access_self"), kind="catalog")
    if not rows or not rows[0][1]:
        raise PreflightFailed(f"user {user} is not a superuser on {cluster}: STL_CONNECTION_LOG and other users' "
                              "STL_QUERY rows are hidden from it, so the clients of the cluster cannot be listed",
                              hint="configure a superuser for the source")


def read_clients(session: Any, since: datetime) -> list[ClientActivity]:
    """Clients with a session that started at or after ``since``, busiest first."""
    naive = since.astimezone(UTC).replace(tzinfo=None)
    found: dict[tuple[str, str, str], ClientActivity] = {}
    for user, host, app, started, statements, writes, last_statement in session.run(
            query("clients"), [naive, OWN_APPLICATION], kind="catalog"):
        start = _utc(started)
        last = max(start, _utc(last_statement)) if last_statement is not None else start
        key = (str(user or ""), str(host or ""), str(app or ""))
        seen = found.get(key)
        if seen is None:
            found[key] = ClientActivity(key[0], key[1], key[2] or None, start, last, 1, int(statements or 0),
                                        int(writes or 0))
            continue
        seen.first_seen = min(seen.first_seen, start)
        seen.last_seen = max(seen.last_seen, last)
        seen.sessions += 1
        seen.statements += int(statements or 0)
        seen.writes += int(writes or 0)
    return sorted(found.values(), key=lambda c: (-c.statements, c.user, c.host, c.application or ""))


def oldest_log_time(session: Any) -> datetime | None:
    """Where the connection log starts: the window an answer really covers."""
    rows = session.run(query("clients_log_start"), kind="catalog")
    return _utc(rows[0][0]) if rows and rows[0][0] is not None else None


__all__ = ["OWN_APPLICATION", "STL_RETENTION", "ClientActivity", "oldest_log_time", "read_clients",
           "require_superuser"]
