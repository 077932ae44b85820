"""What the store says about stray writes: writes the old source took after the cutover renamed it
away (clients with a cached address, a pinned IP, a long-lived pool).

The watch (strategies/stray_writes.py) records each check as an event of subject ``stray_writes``;
an operator's acceptance is another. This module only reads them, so `status` and `report` can use
it without importing what a run needs (boto3, drivers), like swap_record.

A check can prove the absence of writes only as far back as the old cluster's system logs reach
(about seven days, "STL views for logging"), so each check covers ``[since, until]`` with ``since``
no earlier than ``until - RETENTION``; the part of ``[rename, now]`` no check covers is a *hole*:
there the proof is missing, and decommission says so instead of assuming nothing was written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from migrator.strategies.swap_record import swap_keys

if TYPE_CHECKING:
    from migrator.store import MigrationView, Store

SUBJECT = "stray_writes"
CHECK_EVENT = "stray_write_check"
ACCEPT_EVENT = "stray_writes_accepted"
#: How far back the STL tables reach ("STL views for logging": about seven days of history).
RETENTION = timedelta(days=7)
#: Writes kept in one check's event (newest last); the per-table summary counts them all.
WRITES_KEPT = 50


def parse_time(value: Any) -> datetime:
    """A recorded time (ISO text, naive means UTC) as an aware UTC datetime."""
    found = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return found.replace(tzinfo=UTC) if found.tzinfo is None else found.astimezone(UTC)


def iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="seconds")


def rename_time(store: "Store", migration: "MigrationView") -> datetime | None:
    """When the cutover started renaming the source away (its recorded action's start: writes sent
    to the old cluster from then on are stray); None before the rename."""
    found = store.get_action(migration, swap_keys(store, migration).rename_source)
    if found is None or (found.status != "done" and found.finished_at is not None):
        return None  # never sent, or AWS refused it (a rename still in flight counts: it may have taken effect)
    return parse_time(found.started_at)


@dataclass(frozen=True)
class Hole:
    start: datetime
    end: datetime
    why: str

    def describe(self) -> str:
        return f"{iso(self.start)} → {iso(self.end)} ({self.why})"

    def to_dict(self) -> dict[str, str]:
        return {"start": iso(self.start), "end": iso(self.end), "why": self.why}


@dataclass(frozen=True)
class CheckRecord:
    checked_at: datetime
    since: datetime
    until: datetime
    ok: bool
    tables: dict[str, dict[str, Any]]
    writes: list[dict[str, Any]]
    error: str | None = None
    cluster: str = ""


def _check(detail: dict[str, Any]) -> CheckRecord | None:
    try:
        return CheckRecord(parse_time(detail["checked_at"]), parse_time(detail["since"]), parse_time(detail["until"]),
                           bool(detail.get("ok", True)), dict(detail.get("tables") or {}),
                           list(detail.get("writes") or []), detail.get("error"), str(detail.get("cluster") or ""))
    except (KeyError, TypeError, ValueError):
        return None


def holes(rename_at: datetime, checks: list[CheckRecord], now: datetime, *, fresh: bool) -> list[Hole]:
    """The parts of ``[rename_at, now]`` no successful check covers. A gap between checks that the
    next check's logs still reached is covered (each check's ``since`` goes back at most RETENTION).
    Without a fresh check (``fresh`` false: the last attempt failed) the time after the last check
    is a hole whatever its length: nobody will read those logs once the cluster is deleted."""
    covered = rename_at
    found: list[Hole] = []
    done = sorted((c for c in checks if c.ok), key=lambda c: (c.since, c.until))
    for c in done:
        if c.since > covered:
            why = "before the first check" if covered == rename_at else "between two checks"
            found.append(Hole(covered, c.since, f"{why}, longer than the logs keep"))
        covered = max(covered, c.until)
    if not fresh and now > covered:
        found.append(Hole(covered, now, "no check could be made since" if done else "no check could be made"))
    elif fresh and now - covered > RETENTION:
        found.append(Hole(covered, now, "since the last check, longer than the logs keep"))
    return found


@dataclass
class StrayRecord:
    """Everything recorded about stray writes of one migration."""

    renamed_at: datetime | None
    checks: list[CheckRecord] = field(default_factory=list)
    acceptances: list[dict[str, Any]] = field(default_factory=list)

    @property
    def last_check(self) -> CheckRecord | None:
        return self.checks[-1] if self.checks else None

    @property
    def tables(self) -> dict[str, dict[str, Any]]:
        """Each table written after the rename, with its newest summary (first, last, writes,
        rows, users, hosts) merged over every check (old checks keep what the logs later drop)."""
        merged: dict[str, dict[str, Any]] = {}
        for c in self.checks:
            for name, summary in c.tables.items():
                seen = merged.get(name)
                if seen is None:
                    merged[name] = dict(summary)
                    continue
                for key in ("writes", "rows_inserted", "rows_deleted"):
                    seen[key] = max(int(seen.get(key, 0)), int(summary.get(key, 0)))
                seen["first"] = min(str(seen.get("first")), str(summary.get("first")))
                seen["last"] = max(str(seen.get("last")), str(summary.get("last")))
                for key in ("users", "hosts"):
                    seen[key] = sorted(set(seen.get(key) or []) | set(summary.get(key) or []))
        return merged

    @property
    def accepted_through(self) -> datetime | None:
        times = [parse_time(a["accepted_through"]) for a in self.acceptances if a.get("accepted_through")]
        return max(times) if times else None

    def unaccepted_tables(self) -> dict[str, dict[str, Any]]:
        through = self.accepted_through
        return {name: s for name, s in self.tables.items()
                if through is None or parse_time(s["last"]) > through}

    def holes(self, now: datetime, *, fresh: bool) -> list[Hole]:
        if self.renamed_at is None:
            return []
        return holes(self.renamed_at, self.checks, now, fresh=fresh)

    def unaccepted_holes(self, now: datetime, *, fresh: bool) -> list[Hole]:
        through = self.accepted_through
        return [h for h in self.holes(now, fresh=fresh) if through is None or h.end > through]


def read(store: "Store", migration: "MigrationView") -> StrayRecord:
    record = StrayRecord(rename_time(store, migration))
    for event in store.events(migration, subject=SUBJECT):
        if event.trigger == CHECK_EVENT:
            found = _check(event.detail)
            if found is not None:
                record.checks.append(found)
        elif event.trigger == ACCEPT_EVENT:
            record.acceptances.append(dict(event.detail))
    return record


def table_line(name: str, summary: dict[str, Any]) -> str:
    who = ", ".join(summary.get("users") or []) or "?"
    where = ", ".join(summary.get("hosts") or []) or "?"
    rows = f"+{summary.get('rows_inserted', 0)}/-{summary.get('rows_deleted', 0)} rows"
    return (f"{name}: {summary.get('writes', 0)} write(s), {rows}, {summary.get('first')} → {summary.get('last')}, "
            f"by {who} from {where}")


def alert(store: "Store", migration: "MigrationView") -> list[str]:
    """The lines `status` puts first: stray writes not yet accepted, or the proof not kept up."""
    record = read(store, migration)
    if record.renamed_at is None or not record.checks:
        return []
    lines: list[str] = []
    unaccepted = record.unaccepted_tables()
    if unaccepted:
        old = (record.last_check.cluster if record.last_check else "") or "the old source"
        lines.append(f"STRAY WRITES to {old} after the cutover (not accepted): {', '.join(sorted(unaccepted))}; "
                     "`migrator decommission --confirm` refuses until `--accept-stray-writes`")
        lines += ["  " + table_line(name, s) for name, s in sorted(unaccepted.items())]
    last = record.last_check
    if last is not None and not last.ok:
        lines.append(f"stray-write watch: the last check failed at {iso(last.checked_at)}: {last.error}")
    return lines


def news(store: "Store", migration: "MigrationView", after_event_id: int) -> str | None:
    """One line when a check recorded after event ``after_event_id`` found stray writes (not accepted)
    that the checks before it had not: a new table, or a table written again since."""
    before: dict[str, str] = {}
    latest: CheckRecord | None = None
    for event in store.events(migration, subject=SUBJECT):
        found = _check(event.detail) if event.trigger == CHECK_EVENT else None
        if found is None:
            continue
        if event.id <= after_event_id:
            for name, summary in found.tables.items():
                before[name] = max(before.get(name, ""), str(summary.get("last")))
        else:
            latest = found
    if latest is None:
        return None
    through = read(store, migration).accepted_through
    fresh = sorted(name for name, s in latest.tables.items()
                   if str(s.get("last")) > before.get(name, "")
                   and (through is None or parse_time(s["last"]) > through))
    if not fresh:
        return None
    return f"STRAY WRITES to {latest.cluster or 'the old source'} after the cutover: {', '.join(fresh)}"


__all__ = ["ACCEPT_EVENT", "CHECK_EVENT", "RETENTION", "SUBJECT", "CheckRecord", "Hole", "StrayRecord", "alert",
           "holes", "news", "read", "rename_time"]
