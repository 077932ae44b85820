"""The cutover window of unload-copy: production kept writing while the tables were copied, so once
writes are frozen every difference between source and target is found and copied again.

A pass compares what the patterns select on the source with the target: tables created on the
source since the inventory, tables dropped from it, tables whose columns changed, and tables whose
rows or checksum differ (both sides measured now, never a recorded figure). Only those are done
again (the after-data objects replayed, being idempotent), then the next pass checks. Passes repeat
until one finds nothing and the system logs show no write since that pass began; the start of that
quiet pass is recorded so the cutover can confirm, just before the first rename, that nothing was
written since.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from migrator.errors import RemoteError, TransientError
from migrator.store import TableSpec
from migrator.strategies import common, recorded
from migrator.strategies.part_plan import PARTS_CHECKED, done_ranges, recopy_differing
from migrator.warehouse import checksum, replay
from migrator.warehouse import parts as wparts
from migrator.warehouse.connection import Session
from migrator.warehouse.inventory import TableInfo, matches, read_inventory
from migrator.names import table_key
from migrator.warehouse.sql import qualified, query

if TYPE_CHECKING:
    from migrator.engine.definitions import MachineDef
    from migrator.engine.context import PhaseContext

log = logging.getLogger(__name__)
#: The event that records a pass which found nothing and saw no write: its `started` is what the
#: cutover's last check reads the logs from.
QUIET_EVENT = "catch_up_quiet"
PASS_EVENT = "catch_up_pass"
#: How far before a table's recorded unload start the logs are read for writes to it: the tool's
#: clock and the cluster's may disagree a little, and reading more only finds more writes.
CLOCK_SLACK = timedelta(seconds=60)
Pair = tuple[str, str]


class WrittenSinceCatchUp(Exception):
    """The logs show a write after the last quiet pass began: the window must catch up again."""

    def __init__(self, tables: list[str]) -> None:
        super().__init__(", ".join(tables))
        self.tables = tables


@dataclass
class Findings:
    """What one pass found different between the source and the target."""

    created: list[TableInfo] = field(default_factory=list)
    dropped: list[Pair] = field(default_factory=list)
    altered: list[TableInfo] = field(default_factory=list)
    changed: list[Pair] = field(default_factory=list)
    #: Tables copied in parts: the numbers of the parts that differ (only those are copied again).
    parts: dict[Pair, list[int]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.created or self.dropped or self.altered or self.changed)

    def to_dict(self) -> dict[str, list[str]]:
        return {"new_tables": [table_key(t.schema, t.name) for t in self.created],
                "dropped_tables": [table_key(*p) for p in self.dropped],
                "altered_tables": [table_key(t.schema, t.name) for t in self.altered],
                "changed_tables": [table_key(*p) for p in self.changed]}


def moved_aside(definition: MachineDef) -> set[str]:
    """Table states a pass never re-checks for data: left for the window, or dropped from the source."""
    return {t.dest for t in definition.transitions if t.trigger in ("defer", "drop")}


def dropped_state(definition: MachineDef) -> str:
    return next(t.dest for t in definition.transitions if t.trigger == "drop")


def source_clock(session: Session) -> datetime:
    """The cluster's own time (UTC, as its system logs stamp writes)."""
    return session.run("select getdate()", kind="catalog")[0][0]  # type: ignore[no-any-return]


def written_since(session: Session, since: datetime, include: list[str], exclude: list[str]) -> dict[Pair, Any]:
    """Tables the patterns select that the system logs show written (insert, update, delete, COPY)
    since ``since``, with the last write's time."""
    rows = session.run(query("writes_since"), [since], kind="catalog")
    return {(str(s), str(t)): last for s, t, last in rows if matches(f"{s}.{t}", include, exclude)}


def table_written_since(session: Session, schema: str, table: str, since_epoch: float) -> bool:
    """Whether production wrote to one table since a step began (``since_epoch``, the tool's clock)."""
    since = datetime.utcfromtimestamp(since_epoch) - CLOCK_SLACK
    rows = session.run(query("writes_since"), [since], kind="catalog")
    return any((str(s), str(t)) == (schema, table) for s, t, _ in rows)


def _shape(info: TableInfo) -> list[tuple[str, str]]:
    return [(c.name, str(c.type)) for c in info.columns]


def find_differences(ctx: "PhaseContext", source: Session, target: Session, open_session: Any) -> Findings:
    """One pass's comparison of everything the patterns select, measured on both sides now (the
    checksums on `tables.concurrency` session pairs at once: on a real cluster they are the pass's cost)."""
    t = ctx.config.settings.tables
    on_source = {info.pair: info for info in read_inventory(source, include=t.include, exclude=t.exclude)}
    on_target = {info.pair: info for info in read_inventory(target, include=t.include, exclude=t.exclude)}
    done_states = set(ctx.table_definition.tagged("done"))
    dropped = dropped_state(ctx.table_definition)
    found = Findings()
    to_compare: list[tuple[TableInfo, list[wparts.PartRange] | None]] = []
    for task in ctx.store.list_tables(ctx.migration):
        info = on_source.get(task.pair)
        if info is None:
            if task.state != dropped:
                found.dropped.append(task.pair)
            continue
        if task.state == dropped or task.pair not in on_target:
            found.created.append(info)
            continue
        if _shape(info) != _shape(on_target[task.pair]):
            found.altered.append(info)
            continue
        if task.state not in done_states:
            found.changed.append(task.pair)
            continue
        parts = ctx.store.list_parts(task.id)
        to_compare.append((info, done_ranges(parts, info) if parts and len(done_ranges(parts, info)) == len(parts)
                           else None))
    found.changed += _differing(ctx, open_session, to_compare, found.parts)
    known = {task.pair for task in ctx.store.list_tables(ctx.migration)}
    found.created += [info for pair, info in on_source.items() if pair not in known]
    return found


def _differing(ctx: "PhaseContext", open_session: Any, infos: list[tuple[TableInfo, list[wparts.PartRange] | None]],
               parts: dict[Pair, list[int]]) -> list[Pair]:
    """The tables whose rows or checksum differ between the clusters, compared by several session
    pairs at once; a failure of any comparison fails the pass. A table copied in parts is compared
    part by part (one grouped pass per side), and its differing parts are noted in ``parts``."""
    pending = list(infos)
    lock = threading.Lock()
    differing: list[Pair] = []

    def compare_some() -> None:
        with open_session(ctx, "source") as source, open_session(ctx, "target") as target:
            while not ctx.should_stop():
                with lock:
                    if not pending:
                        return
                    info, ranges = pending.pop()
                if ranges:
                    differ = wparts.differing_parts(source, target, info, ranges)
                    if differ:
                        with lock:
                            differing.append(info.pair)
                            parts[info.pair] = differ
                    continue
                a = checksum.fingerprint(source, info.schema, info.name, info.columns)
                b = checksum.fingerprint(target, info.schema, info.name, info.columns)
                if (a.rows, a.checksum) != (b.rows, b.checksum):
                    with lock:
                        differing.append(info.pair)

    workers = max(1, min(ctx.config.settings.tables.concurrency, len(pending)))
    if pending:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="catch-up") as pool:
            for done in [pool.submit(compare_some) for _ in range(workers)]:
                done.result()
    if pending:
        raise TransientError(f"stopped with {len(pending)} table(s) of the catch-up pass not compared")
    return sorted(differing)


def apply(ctx: "PhaseContext", source: Session, target: Session, found: Findings) -> None:
    """Make the target's tables match the source's list and shape; the data follows in the walk."""
    recopy: list[Pair] = list(found.changed)
    for pair in found.dropped:
        target.run(f"DROP TABLE IF EXISTS {qualified(*pair)}", kind="ddl", what=f"drop {table_key(*pair)}")
        task = ctx.store.find_table(ctx.migration, *pair)
        if task is not None and task.state != dropped_state(ctx.table_definition):
            ctx.table_flow(task).fire("drop", detail={"reason": "dropped from the source during the migration"})
    rebuilt = found.created + found.altered
    for info in found.altered:
        # A changed column list: the target table is made again from the source's definition.
        target.run(f"DROP TABLE IF EXISTS {qualified(info.schema, info.name)}", kind="ddl",
                   what=f"drop {table_key(info.schema, info.name)} to recreate it")
    if not target.conn.autocommit:
        target.commit()
    if rebuilt:
        replay.replay_objects(source, target, tables=rebuilt)
        if not target.conn.autocommit:
            target.commit()
    new = [info for info in found.created if ctx.store.find_table(ctx.migration, info.schema, info.name) is None]
    if new:
        ctx.store.add_tables(ctx.migration, [TableSpec(i.schema, i.name, i.size_mb, i.rows) for i in new],
                             ctx.table_definition.initial)
    recopy += [info.pair for info in rebuilt if info not in new]
    for info in rebuilt:
        # A table made again: its parts (and their boundaries) belonged to the old one.
        task = ctx.store.find_table(ctx.migration, info.schema, info.name)
        if task is not None:
            ctx.store.drop_parts(task, "the table was made again in the cutover window")
    pending = ctx.table_definition.initial
    for pair in recopy:
        task = ctx.store.find_table(ctx.migration, *pair)
        if task is not None and task.state != pending and any(
                t.trigger == "recopy" for t in ctx.table_definition.transitions_from(task.state)):
            fields = {}
            if pair in found.parts:
                recopy_differing(ctx, task, found.parts[pair], "differs from the source in the cutover window")
                fields = {"step_timings": {**(task.step_timings or {}), PARTS_CHECKED: True}}
            ctx.table_flow(task).fire("recopy", detail={"reason": "differs from the source in the cutover window"},
                                      fields=fields)


def confirm_quiet(ctx: "PhaseContext", source: Session) -> None:
    """Just before the first rename: nothing the patterns select was written since the last quiet
    pass began (raises WrittenSinceCatchUp otherwise)."""
    quiet = ctx.store.latest_event(ctx.migration, QUIET_EVENT)
    if quiet is None:
        raise WrittenSinceCatchUp(["(no catch-up pass recorded)"])
    since = datetime.fromisoformat(str((quiet.detail or {})["started"]))
    t = ctx.config.settings.tables
    written = written_since(source, since, t.include, t.exclude)
    if written:
        raise WrittenSinceCatchUp(sorted(table_key(*p) for p in written))


def baseline_key(ctx: "PhaseContext") -> str | None:
    """The baseline the last quiet pass recorded (what the production name must show after the swap)."""
    quiet = ctx.store.latest_event(ctx.migration, QUIET_EVENT)
    return str((quiet.detail or {}).get("baseline_key")) if quiet is not None else None


def catch_up(ctx: "PhaseContext", open_session: Any, walk: Any, replay_after_data: Any) -> None:
    """Pass after pass until one finds nothing and no write was logged since it began.

    ``open_session(ctx, which, autocommit=...)`` gives sessions, ``walk()`` copies and validates the
    tables not done, ``replay_after_data()`` replays what must follow the data."""
    settings = ctx.config.settings
    t = settings.tables
    limit = settings.freeze.catch_up_passes
    for number in range(1, limit + 1):
        if ctx.should_stop():
            # A safe point: a re-run starts the window's passes again from a fresh comparison.
            raise TransientError(f"stopped before catch-up pass {number}")
        started_at = time.time()
        # Autocommit on the target: each DROP and CREATE ends at once, so no lock of this session is
        # held while the table workers load (a pass interrupted half-way is completed by the next).
        with open_session(ctx, "source") as source, open_session(ctx, "target") as target:
            started = source_clock(source)
            found = find_differences(ctx, source, target, open_session)
            if found:
                apply(ctx, source, target, found)
        if found:
            walk()
            replay_after_data()
            rows = sum((task.rows_loaded or 0) for task in ctx.store.list_tables(ctx.migration)
                       if task.pair in set(found.changed) | {i.pair for i in found.created + found.altered})
            ctx.store.add_event(ctx.migration, "migration", PASS_EVENT,
                                {"pass": number, **found.to_dict(), "rows": rows,
                                 "seconds": round(time.time() - started_at, 3)}, state=ctx.migration.phase)
            log.info("catch-up pass %d: %s", number, found.to_dict())
            continue
        with open_session(ctx, "source") as source:
            written = written_since(source, started, t.include, t.exclude)
        if written:
            ctx.store.add_event(ctx.migration, "migration", PASS_EVENT,
                                {"pass": number, "written_during_check": sorted(table_key(*p) for p in written),
                                 "seconds": round(time.time() - started_at, 3)}, state=ctx.migration.phase)
            continue
        key = f"{common.BASELINE_KEY}:window:{started.isoformat()}"
        measured = common.measure(settings, recorded.clients(ctx), settings.source.cluster_id)
        recorded.remember(ctx, key, {**measured.to_dict(), "cluster_id": settings.source.cluster_id})
        ctx.store.add_event(ctx.migration, "migration", QUIET_EVENT,
                            {"pass": number, "started": started.isoformat(), "baseline_key": key,
                             "seconds": round(time.time() - started_at, 3)}, state=ctx.migration.phase)
        return
    raise RemoteError(f"the cutover window did not catch up: each of {limit} passes found tables written or "
                      "changed although writes should be frozen",
                      hint="find and stop the writer (`migrator history` lists the tables per pass), then re-run; "
                           "freeze.catch_up_passes sets how many passes are tried")
