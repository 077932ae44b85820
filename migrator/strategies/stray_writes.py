"""The stray-write watch: after the cutover renamed the source away, every write it still takes
(clients with a cached address, a pinned IP, a long-lived pool) is found in its system logs and
recorded, until it is decommissioned.

Each check connects to the old cluster under its new name and reads, since the rename (at most as
far back as the logs keep), STL_INSERT / STL_DELETE (which table, how many rows, when), STL_QUERY
and PG_USER (who, which statement) and STL_CONNECTION_LOG (from which address), leaving out its
own session and the migrator's bookkeeping schema. Every check is recorded (checked_at, since,
until, what it found, or why it could not look), so the record proves — or fails to prove — that
nothing was written between the rename and the deletion (see stray_record).

The ``awaiting_decommission`` state's action (``watch_stray_writes``) runs a check on every `run`
and then behaves as ``await_approval``; once the gate is approved, unaccepted stray writes or a
hole in the proof refuse the decommission (exit 7) unless ``--accept-stray-writes`` was given,
which is recorded with who and when. Decommission runs one last check just before deleting.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from migrator.config import ConnectionSection, Settings
from migrator.engine.gates import pass_gate
from migrator.errors import MigratorError, PreflightFailed
from migrator.strategies import recorded, sessions
from migrator.strategies.stray_record import (ACCEPT_EVENT, CHECK_EVENT, RETENTION, SUBJECT, WRITES_KEPT,
                                              CheckRecord, iso, parse_time, read, rename_time)
from migrator.strategies.swap_record import PLAN_KEY
from migrator.warehouse.pipeline import BOOKKEEPING_SCHEMA
from migrator.names import table_key
from migrator.warehouse.sql import query, redact

if TYPE_CHECKING:
    from migrator.engine.context import PhaseContext

log = logging.getLogger("migrator.stray_writes")
ACTION = "watch_stray_writes"
Clock = Callable[[], datetime]
#: How much of a stray statement's text is kept (secrets redacted first).
STATEMENT_CHARS = 300


class StrayWritesRefused(PreflightFailed):
    """Stray writes not accepted, or the proof that there were none is missing (exit 7)."""


def utcnow() -> datetime:
    return datetime.now(UTC)


def old_connection(settings: Settings, old_name: str) -> ConnectionSection:
    """The source's credentials, addressed by the old cluster's new name (never the configured host,
    which clients now reach the new cluster through)."""
    return settings.source.model_copy(update={"cluster_id": old_name, "host": None, "port": None})


def old_name(ctx: "PhaseContext") -> str | None:
    plan = recorded.recorded(ctx, PLAN_KEY)
    return str(plan["old_name"]) if plan and plan.get("old_name") else None


def _naive(value: datetime) -> datetime:
    """STL times are UTC without a zone."""
    return value.astimezone(UTC).replace(tzinfo=None)


def read_writes(settings: Settings, cluster: str, since: datetime) -> list[dict[str, Any]]:
    """The writes ``cluster`` logged since ``since``, one per statement and table (see stray_writes.sql)."""
    from migrator.warehouse.connection import Session

    conn = sessions.connect(settings, recorded.clients_for(settings), cluster, conn=old_connection(settings, cluster))
    try:
        conn.autocommit = True
        session = Session(conn)
        superuser = session.run("select usesuper from pg_user where usename = current_user", kind="catalog")
        if not superuser or not superuser[0][0]:
            raise PreflightFailed(f"user {settings.source.user} is not a superuser on {cluster}: other users' rows of "
                                  "STL_INSERT/STL_DELETE/STL_QUERY and all of STL_CONNECTION_LOG are hidden from it, "
                                  "so the logs cannot prove that nobody wrote",
                                  hint="configure a superuser for the source")
        since_value = _naive(since)
        rows = session.run(query("stray_writes"), [since_value, since_value, BOOKKEEPING_SCHEMA], kind="catalog")
    finally:
        conn.close()
    writes: list[dict[str, Any]] = []
    for tbl, schema, table, query_id, kind, nrows, endtime, user, text, host, port, pid in rows:
        name = table_key(schema, table) if schema and table else f"table id {tbl} (dropped or temporary)"
        at = endtime.replace(tzinfo=UTC) if isinstance(endtime, datetime) and endtime.tzinfo is None else endtime
        writes.append({"table": name, "tbl": int(tbl), "query": int(query_id), "kind": str(kind),
                       "rows": int(nrows or 0), "at": iso(at) if isinstance(at, datetime) else str(at),
                       "user": user or None, "host": f"{host}:{port}" if host and port else (host or None),
                       "pid": int(pid) if pid is not None else None,
                       "statement": redact(str(text or ""))[:STATEMENT_CHARS] or None})
    return writes


def summarize(writes: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per table: statements, rows inserted and deleted, first and last time, users, client addresses."""
    tables: dict[str, dict[str, Any]] = {}
    queries: dict[str, set[int]] = {}
    for w in writes:
        s = tables.setdefault(w["table"], {"writes": 0, "rows_inserted": 0, "rows_deleted": 0, "first": w["at"],
                                           "last": w["at"], "users": [], "hosts": []})
        queries.setdefault(w["table"], set()).add(w["query"])
        s["writes"] = len(queries[w["table"]])
        s["rows_inserted" if w["kind"] == "insert" else "rows_deleted"] += w["rows"]
        s["first"], s["last"] = min(s["first"], w["at"]), max(s["last"], w["at"])
        for key, value in (("users", w["user"]), ("hosts", w["host"])):
            if value and value not in s[key]:
                s[key] = sorted([*s[key], value])
    return tables


def check(ctx: "PhaseContext", *, now: Clock = utcnow) -> CheckRecord | None:
    """Read the old cluster's logs since the rename (at most RETENTION back) and record what was
    found, or why it could not look (a failed check proves nothing). None before any rename."""
    renamed = rename_time(ctx.store, ctx.migration)
    cluster = old_name(ctx)
    if renamed is None or cluster is None:
        return None
    checked_at = now()
    since = max(renamed, checked_at - RETENTION)
    error: str | None = None
    writes: list[dict[str, Any]] = []
    try:
        writes = read_writes(ctx.config.settings, cluster, since)
    except MigratorError as exc:
        error = exc.one_line()
        log.info("stray-write check of %s failed: %s", cluster, error)
    tables = summarize(writes)
    detail = {"cluster": cluster, "checked_at": iso(checked_at), "since": iso(since), "until": iso(checked_at),
              "ok": error is None, "error": error, "found": len(writes), "tables": tables,
              "writes": writes[-WRITES_KEPT:]}
    ctx.store.add_event(ctx.migration, SUBJECT, CHECK_EVENT, detail, state=ctx.migration.phase)
    if tables:
        log.info("stray writes to %s since the rename: %s", cluster, ", ".join(sorted(tables)))
    return CheckRecord(checked_at, since, checked_at, error is None, tables, writes[-WRITES_KEPT:], error, cluster)


def settle(ctx: "PhaseContext", last: CheckRecord | None, *, now: Clock = utcnow, where: str) -> None:
    """Before the old cluster is deleted: every stray write accepted and no hole in the proof, or
    ``--accept-stray-writes`` given (then recorded with who and when), or refuse (exit 7)."""
    record = read(ctx.store, ctx.migration)
    if record.renamed_at is None:
        return
    at = now()
    fresh = last is not None and last.ok
    tables = record.unaccepted_tables()
    missing = record.unaccepted_holes(at, fresh=fresh)
    if not tables and not missing:
        return
    cluster = (last.cluster if last else None) or old_name(ctx) or "the old source"
    if ctx.options.accept_stray_writes:
        from migrator.procinfo import os_user

        through = max([at, *(parse_time(s["last"]) for s in tables.values())])
        ctx.store.add_event(ctx.migration, SUBJECT, ACCEPT_EVENT, {
            "at": iso(at), "user": os_user(), "host": ctx.store.identity.host, "pid": ctx.store.identity.pid,
            "via": where, "cluster": cluster, "accepted_through": iso(through), "tables": sorted(tables),
            "holes": [h.to_dict() for h in missing]}, state=ctx.migration.phase)
        log.warning("stray writes accepted (%s): tables %s, missing proof %s", where,
                    ", ".join(sorted(tables)) or "none", "; ".join(h.describe() for h in missing) or "none")
        return
    said: list[str] = []
    if tables:
        said.append(f"stray writes to {cluster} after the cutover, not accepted: {', '.join(sorted(tables))}")
    if missing:
        said.append(f"the proof that {cluster} took no writes is missing for "
                    + "; ".join(h.describe() for h in missing))
    again = ("`migrator decommission --confirm --accept-stray-writes`" if where == "gate"
             else "`migrator run --accept-stray-writes`")
    raise StrayWritesRefused(f"decommission refused: {' and '.join(said)}",
                             hint=f"`migrator status` shows who wrote what; stop those clients, or delete it anyway "
                                  f"with {again} (recorded)")


def watch_then_await_approval(ctx: "PhaseContext") -> str:
    """The decommission gate's action: a check on every run, then the gate; once approved, refuse
    (exit 7) while stray writes or a hole in the proof are not accepted."""
    last = check(ctx)
    gate = ctx.state_def.approval
    if gate is not None and gate in ctx.migration.approvals:
        settle(ctx, last, where="gate")
    return pass_gate(ctx)


def last_check(ctx: "PhaseContext") -> None:
    """Decommission's own check, just before the delete."""
    settle(ctx, check(ctx), where="decommission")


__all__ = ["ACTION", "StrayWritesRefused", "check", "last_check", "old_connection", "read_writes", "settle",
           "summarize", "watch_then_await_approval"]
