"""The part steps of a table split into parts (states/part.yaml, walked by engine/parts.py):
planning a big table's parts (recorded before the first starts), each part's unload, load and
validation, the reconciler of a part found loading with its owner gone, and what a parted table's
own validation does (totals of its parts, then ANALYZE / VACUUM SORT ONLY). The table steps
(table_steps.py) call in here for a table that has, or wants, parts.

A table above `tables.part_size` is split into parts (warehouse/parts.py says how boundaries
are chosen); each part is walked through states/part.yaml by whichever worker is free. The
table's own `unload` step only plans the parts (recorded before the first starts), or, when the
table is copied again, sends back only the parts whose rows or checksum differ."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from migrator import failpoints
from migrator.aws import staging
from migrator.config import LoadedConfig
from migrator.engine import parts as parts_engine
from migrator.engine.parts import PartResult
from migrator.engine.tables import StepResult
from migrator.errors import OutcomeUnknown, TransientError
from migrator.store import PartSpec, PartView, TableView
from migrator.strategies.part_plan import PARTS_CHECKED, done_ranges, part_range, recopy_differing
from migrator.strategies.step_records import recording_failures, statement_recorder, timing
from migrator.warehouse import pipeline
from migrator.warehouse import parts as wparts
from migrator.warehouse.inventory import TableInfo
from migrator.warehouse.sql import analyze_sql, vacuum_sort_sql

if TYPE_CHECKING:
    from migrator.engine.context import PhaseContext
    from migrator.engine.parts import PartStepContext
    from migrator.engine.tables import StepContext
    # The worker is table_steps' (it imports this module, so only for type hints here).
    from migrator.strategies.table_steps import TableWorker

    Step = StepContext[TableWorker]
    PartStep = PartStepContext[TableWorker]

log = logging.getLogger(__name__)

#: Part loads of one table take turns in this process: Redshift serialises concurrent COPYs into
#: one table anyway ("Use a single COPY command": concurrent COPYs into a table are a serialised
#: load), and two open load transactions on one table would conflict (error 1023). UNLOADs and
#: checksums of the same table's parts run at once.
_LOAD_LOCKS: dict[int, threading.Lock] = {}
_LOAD_LOCKS_GUARD = threading.Lock()


def _load_lock(table_id: int) -> threading.Lock:
    with _LOAD_LOCKS_GUARD:
        return _LOAD_LOCKS.setdefault(table_id, threading.Lock())


def _range(part: PartView, info: TableInfo) -> wparts.PartRange:
    return part_range(part, info)


def wants_parts(config: LoadedConfig, task: TableView) -> int:
    """How many parts `tables.part_size` gives this table (1: whole)."""
    threshold = config.settings.tables.part_threshold()
    if threshold is None:
        return 1
    return threshold.parts_for(task.size_mb, task.source_rows)


def any_parted(ctx: "PhaseContext") -> bool:
    """Whether this copy needs the part steps at all (a table has parts, or is big enough for them)."""
    return ctx.store.has_parts(ctx.migration) or any(
        wants_parts(ctx.config, t) > 1 for t in ctx.store.list_tables(ctx.migration))


def may_have_parts(ctx: "PhaseContext", task: TableView) -> bool:
    """Whether the table can have parts: big enough to be split, or the migration had parts when
    this pass began (parts made since are only those of tables big enough). Saves a small table's
    steps a store read each (read once per pass, shared by the pass's workers)."""
    return wants_parts(ctx.config, task) > 1 or bool(
        ctx.shared("migration_has_parts", lambda: ctx.store.has_parts(ctx.migration)))


def split(step: Step, info: TableInfo) -> StepResult | None:
    """Plan the parts of a big table (or, when it has them, send back the differing ones) and rest
    the table in its `parted` state; None when the table is copied whole."""
    worker, task, store = step.resources, step.task, step.phase.store
    existing = store.list_parts(task.id) if may_have_parts(step.phase, task) else []
    started = time.time()
    if not existing:
        wanted = wants_parts(step.phase.config, task)
        if wanted < 2:
            return None
        ranges = worker.retried(f"plan parts {task.qualified_name}", lambda: {
            "ranges": wparts.plan_ranges(worker.source, info, wanted)})["ranges"]
        if len(ranges) < 2:
            log.info("%s: no column to cut into ranges (number or date); copied whole", task.qualified_name)
            return None
        total_rows = max(1, sum(r.rows for r in ranges))
        specs = [PartSpec(r.part_no, r.parts_total, r.column, r.lower, r.upper, r.rows,
                          max(1, round(task.size_mb * r.rows / total_rows))) for r in ranges]
        existing = store.add_parts(task, specs, parts_engine.part_definition().initial)
        log.info("%s: split into %d parts by %s", task.qualified_name, len(existing), ranges[0].column)
    else:
        _recheck_parts(step, info, existing)
    prefix = wparts.part_prefix(worker.staging.s3_uri, step.phase.migration.name, info.schema, info.name, 0, 0)
    timings = timing(task, "unload", started)
    timings.pop(PARTS_CHECKED, None)
    return StepResult({"staging_prefix": prefix.rsplit("/part-", 1)[0] + "/", "step_timings": timings}, move="split")


def _recheck_parts(step: Step, info: TableInfo, parts: list[PartView]) -> None:
    """The table is copied again (its source moved, or a retry): parts already done are compared
    now, both sides in one pass each, and only those whose rows or checksum differ go back to be
    copied; parts not done resume from their checkpoint. The cutover window compares by part
    itself (window.find_differences) and says so on the table (PARTS_CHECKED): no second pass."""
    worker, task = step.resources, step.task
    # The table's retry is the operator's retry of its parts too: parts that needed an operator start again.
    needs_operator = set(parts_engine.part_definition().tagged("needs_operator"))
    parts_engine.recopy_parts(step.phase, task, lambda p: p.state in needs_operator, "the table is retried")
    if (task.step_timings or {}).get(PARTS_CHECKED):
        return
    ranges = done_ranges(parts, info)
    differing = worker.retried(f"compare parts of {task.qualified_name}", lambda: {
        "parts": wparts.differing_parts(worker.source, worker.target, info, ranges)})["parts"]
    recopy_differing(step.phase, task, differing, "rows or checksum differ from the source")


def part_unload(step: PartStep) -> PartResult:
    worker, task, part = step.resources, step.task, step.part
    info = worker.info(task)
    r = _range(part, info)

    def unload() -> dict[str, Any]:
        source_slices, target_slices = worker.slices()
        fmt = pipeline.choose_format(info.columns)
        try:
            result = wparts.unload_part(worker.source, info, r, staging_uri=worker.staging.s3_uri,
                                        migration=step.phase.migration.name, attempt=part.attempt,
                                        iam_role_arn=worker.staging.iam_role_arn,
                                        kms_key_id=worker.staging.kms_key_id,
                                        estimated_bytes=part.est_mb * 1024 * 1024 * 2,
                                        source_slices=source_slices, target_slices=target_slices, fmt=fmt,
                                        on_statement=statement_recorder(step))
        except OutcomeUnknown as exc:
            worker.end_lost_statement("source", exc)
            raise TransientError(f"{exc.message}; the first UNLOAD was ended, running it again") from None
        report = staging.verify_staging(worker.clients.client("s3"), worker.clients.client("kms"),
                                        result.manifest_url, kms_key_id=worker.staging.kms_key_id,
                                        expected_rows=result.rows)
        return {"manifest_url": result.manifest_url, "staging_prefix": result.prefix,
                "rows_unloaded": result.rows, "bytes_unloaded": report.bytes, "files_unloaded": len(report.files)}

    fields = worker.retried(f"unload part {part.label} of {task.qualified_name}", recording_failures(step, unload))
    failpoints.hit("after_part_unload")
    return PartResult(fields)


def part_load(step: PartStep) -> PartResult:
    worker, task, part = step.resources, step.task, step.part
    info = worker.info(task)
    r = _range(part, info)
    migration = step.phase.migration.name

    def load() -> dict[str, Any]:
        assert part.manifest_url
        fmt = pipeline.choose_format(info.columns)
        report = staging.verify_staging(worker.clients.client("s3"), worker.clients.client("kms"),
                                        part.manifest_url, kms_key_id=worker.staging.kms_key_id,
                                        expected_rows=part.rows_unloaded or 0)
        with _load_lock(task.id):
            try:
                result = pipeline.load_exactly_once(
                    worker.target, info.schema, info.name, manifest_url=part.manifest_url, fmt=fmt,
                    iam_role_arn=worker.staging.iam_role_arn, migration=migration, attempt=part.attempt,
                    explicit_ids=bool(info.identity_columns), expected_rows=report.rows,
                    on_statement=statement_recorder(step), columns=info.columns, part=part.part_no, where=r.where())
            except OutcomeUnknown as exc:
                worker.end_lost_statement("target", exc)
                state = pipeline.reconcile_load(worker.target, migration, info.schema, info.name, part.attempt,
                                                part=part.part_no)
                if state.committed:
                    return {"rows_loaded": state.rows}
                raise TransientError(f"{exc.message}; the part's load did not commit (no marker), "
                                     "loading again") from None
        for warning in result.warnings:
            log.warning("%s", warning)
        return {"rows_loaded": result.rows}

    fields = worker.retried(f"load part {part.label} of {task.qualified_name}", recording_failures(step, load))
    failpoints.hit("after_part_load_commit")
    return PartResult(fields)


def part_validate(step: PartStep) -> PartResult:
    worker, task, part = step.resources, step.task, step.part
    info = worker.info(task)
    r = _range(part, info)

    def compare() -> dict[str, Any]:
        source = wparts.part_fingerprint(worker.source, info, r)
        target = wparts.part_fingerprint(worker.target, info, r)
        return {"source_checksum": f"{source[0]}:{source[1]}", "target_checksum": f"{target[0]}:{target[1]}"}

    fields = worker.retried(f"validate part {part.label} of {task.qualified_name}", compare)
    if fields["source_checksum"] != fields["target_checksum"]:
        return PartResult(fields, move="differ")
    return PartResult(fields)


def reconcile_part(step: PartStep) -> Mapping[str, Any]:
    """A part found `loading` with its owner gone: its marker says whether the load committed."""
    if parts_engine.part_definition().state(step.part.state).lost != "reconcile_load":
        return {}
    info = step.resources.info(step.task)
    try:
        state = pipeline.reconcile_load(step.resources.target, step.phase.migration.name, info.schema, info.name,
                                        step.part.attempt, part=step.part.part_no)
    except TransientError:
        return {"load_committed": False}
    return {"load_committed": state.committed, "fields": {"rows_loaded": state.rows} if state.committed else {}}


PART_STEPS: dict[str, Callable[[PartStep], PartResult]] = {
    "part_unload": part_unload, "part_load": part_load, "part_validate": part_validate}


def parts_totals(step: Step, info: TableInfo, parts: list[PartView]) -> dict[str, Any]:
    """A parted table's validation: the parts' own checksums (each compared when it was copied),
    summed, and the totals of both tables counted now, so no row sits outside every part."""
    worker, task = step.resources, step.task
    started = time.time()
    done_ok = all(p.source_checksum and p.source_checksum == p.target_checksum for p in parts)

    def total(which: str) -> tuple[int, int]:
        rows, sums = 0, 0
        for p in parts:
            text = getattr(p, which) or "0:0"
            n, c = text.split(":", 1)
            rows, sums = rows + int(n), sums + int(c)
        return rows, sums

    src, tgt = total("source_checksum"), total("target_checksum")
    src_rows = wparts.table_rows(worker.source, info.schema, info.name)
    tgt_rows = wparts.table_rows(worker.target, info.schema, info.name)
    source_checksum = f"{src_rows}:{src[1]}" if src_rows == src[0] else f"{src_rows}:{src[1]}+{src_rows - src[0]}"
    target_checksum = f"{tgt_rows}:{tgt[1]}" if tgt_rows == tgt[0] else f"{tgt_rows}:{tgt[1]}+{tgt_rows - tgt[0]}"
    mismatch = None
    if not done_ok or source_checksum != target_checksum:
        differing = [p.label for p in parts if p.source_checksum != p.target_checksum]
        mismatch = (f"{task.qualified_name}: source rows={src_rows}, target rows={tgt_rows}; parts differing: "
                    f"{', '.join(differing) or 'none'}")
        if source_checksum == target_checksum:
            target_checksum += "!"
    return {"source_checksum": source_checksum, "target_checksum": target_checksum, "mismatch": mismatch,
            "step_timings": timing(task, "validate", started)}


def after_last_part(step: Step, info: TableInfo, parts: int) -> None:
    """A table loaded in several COPYs: ANALYZE for the planner, and VACUUM SORT ONLY when it has
    a compound sort key (parts land out of order, largest first), so its sorted region is whole
    again ("VACUUM", "ANALYZE"). Both outside any transaction block."""
    target = step.resources.target
    statements = [analyze_sql(info.schema, info.name)]
    if parts > 1 and info.sortkeys and info.sortkey_kind not in ("INTERLEAVED", "AUTO"):
        statements.append(vacuum_sort_sql(info.schema, info.name))
    target.rollback()
    target.conn.autocommit = True
    try:
        for sql in statements:
            target.run(sql, kind="maintenance")
    finally:
        target.conn.autocommit = False
    step.phase.store.add_event(step.phase.migration, step.task.subject, "table_maintained",
                               {"statements": statements}, state=step.phase.migration.phase)
