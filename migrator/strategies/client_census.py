"""Who depends on the cluster, and after the cutover who has moved: the systems that connect to
the source (its connection and query logs, warehouse.clients), and once the source was renamed
away, for each of them whether it connected to the new cluster under the production name since
the rename and whether it still reaches the old one (the old cluster's own logs, the evidence the
stray-write watch reads; when the old cluster cannot be read any more, the watch's recorded writes).
Read-only: it connects and reads logs, it writes nothing (the store is read by the caller)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from migrator.config import LoadedConfig
from migrator.errors import MigratorError
from migrator.strategies import recorded, sessions
from migrator.strategies.stray_writes import old_connection
from migrator.warehouse.clients import STL_RETENTION, ClientActivity, oldest_log_time, read_clients, require_superuser

log = logging.getLogger("migrator.clients")


@dataclass
class Census:
    cluster: str
    window_start: datetime
    window_end: datetime
    clients: list[dict[str, Any]]
    renamed_at: datetime | None = None
    old_cluster: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def not_moved(self) -> int | None:
        if self.renamed_at is None:
            return None
        return sum(1 for c in self.clients if not c.get("moved"))


def _read(config: LoadedConfig, cluster: str, section: Any, where: str, since: datetime
          ) -> tuple[list[ClientActivity], datetime | None]:
    from migrator.warehouse.connection import Session

    settings = config.settings
    conn = sessions.connect(settings, recorded.clients_for(settings), cluster, where=where, conn=section)
    try:
        conn.autocommit = True
        session = Session(conn)
        require_superuser(session, section.user, cluster)
        return read_clients(session, since), oldest_log_time(session)
    finally:
        conn.close()


def census(config: LoadedConfig, *, renamed_at: datetime | None, old_cluster: str | None,
           stray_writers: list[tuple[str | None, str | None, str]] | None = None,
           now: datetime | None = None) -> Census:
    """Before the rename (``renamed_at`` None): the source's clients over the logs' window. After it:
    the old cluster's clients (who depended on it) with ``moved`` and ``still_on_old`` each."""
    settings = config.settings
    now = now or datetime.now(UTC)
    since = now - STL_RETENTION
    production = settings.source.cluster_id
    if renamed_at is None or old_cluster is None:
        found, oldest = _read(config, production, settings.source, "source", since)
        start = max(since, oldest) if oldest else since
        return Census(production, start, now, [c.to_dict() for c in found])
    notes: list[str] = []
    old: list[ClientActivity] = []
    oldest = None
    try:
        old, oldest = _read(config, old_cluster, old_connection(settings, old_cluster), "source", since)
    except MigratorError as exc:
        notes.append(f"the old cluster {old_cluster} cannot be read ({exc.one_line()}); whether a client still "
                     "reaches it comes from the stray-write watch's records")
    new, _ = _read(config, production, sessions.target_connection(settings, production), "target", renamed_at)
    on_new = {c.key: c for c in new}
    by_key: dict[tuple[str, str, str], dict[str, Any]] = {}
    for c in old:
        row = c.to_dict()
        after = c.last_seen >= renamed_at
        seen_new = on_new.get(c.key)
        row.update(moved=seen_new is not None, still_on_old=after,
                   last_seen_new=seen_new.to_dict()["last_seen"] if seen_new else None)
        by_key[c.key] = row
    if not old:
        for user, host, _table in stray_writers or []:
            key = (user or "", (host or "").rsplit(":", 1)[0], "")
            by_key.setdefault(key, {"user": user, "host": key[1], "application": None, "first_seen": None,
                                    "last_seen": None, "sessions": 0, "statements": 0, "writes": 1,
                                    "moved": any(k[:2] == key[:2] for k in on_new), "still_on_old": True,
                                    "last_seen_new": None})
    for key, c in on_new.items():
        if key not in by_key:  # new since the rename (or its old activity is past the logs' window)
            row = c.to_dict()
            row.update(moved=True, still_on_old=False, last_seen_new=row["last_seen"], new_since_cutover=True)
            by_key[key] = row
    start = max(since, oldest) if oldest else since
    return Census(production, start, now, list(by_key.values()), renamed_at, old_cluster, notes)


__all__ = ["Census", "census"]
