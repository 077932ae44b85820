"""The part steps of a table split into parts (states/part.yaml, walked by engine/parts.py):
planning a big table's parts (recorded before the first starts), each part's unload, load and
validation, the reconciler of a part found loading with its owner gone, and what a parted table's
own validation does (totals of its parts, then ANALYZE / VACUUM SORT ONLY). The table steps
(table_steps.py) call in here for a table that has, or wants, parts.

A table above `tables.part_size` is split into parts (warehouse/parts.py says how boundaries
are chosen); each part is walked through states/part.yaml by whichever worker is free. The
table's own `unload` step only plans the parts (recorded before the first starts), or, when the
table is copied again, sends back only the parts whose rows or checksum differ.

A big table with no column that makes ranges cheap is unloaded once (here, at planning) and its
files are loaded in groups (warehouse/parts.py): a group's `part_unload` writes the group's own
manifest, its load is its own COPY with its own marker, and it is compared by rows only (no cheap
predicate picks its rows on either side); the table is then compared whole (rows and checksum).
Such a table copied again (its source moved) cannot know which group differs: its target rows are
cleared (recorded first) and it is unloaded and grouped anew."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from migrator import failpoints
from migrator.aws import manifests, staging
from migrator.config import LoadedConfig
from migrator.engine import parts as parts_engine
from migrator.engine.parts import PartResult
from migrator.engine.tables import StepResult
from migrator.errors import OutcomeUnknown, TransientError
from migrator.store import PartSpec, PartView, TableView
from migrator.strategies.part_plan import PARTS_CHECKED, done_ranges, part_range, recopy_differing
from migrator.strategies.step_records import recording_failures, statement_recorder, timing
from migrator.warehouse import checksum, pipeline
from migrator.warehouse import parts as wparts
from migrator.warehouse.inventory import TableInfo
from migrator.warehouse.sql import analyze_sql, delete_where_sql, vacuum_sort_sql

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


def file_groups(parts: list[PartView]) -> bool:
    """Whether these parts are file groups of one UNLOAD (no part column), not ranges."""
    return bool(parts) and parts[0].part_column is None


#: A file group owns no range of rows: its load deletes nothing first (a reload follows a load that
#: rolled back, which left nothing; a table copied again is cleared whole before it is regrouped).
_NOTHING = ("FALSE", [])


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
    return wants_parts(ctx.config, task) > 1 or migration_has_parts(ctx)


def migration_has_parts(ctx: "PhaseContext") -> bool:
    """Whether the migration had parts when this pass began (read once per pass, shared)."""
    return bool(ctx.shared("migration_has_parts", lambda: ctx.store.has_parts(ctx.migration)))


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
            return _split_in_file_groups(step, info, wanted, started)
        total_rows = max(1, sum(r.rows for r in ranges))
        specs = [PartSpec(r.part_no, r.parts_total, r.column, r.lower, r.upper, r.rows,
                          max(1, round(task.size_mb * r.rows / total_rows))) for r in ranges]
        existing = store.add_parts(task, specs, parts_engine.part_definition().initial)
        log.info("%s: split into %d parts by %s", task.qualified_name, len(existing), ranges[0].column)
    elif file_groups(existing):
        done = set(parts_engine.done_states())
        if task.manifest_url is None or all(p.state in done for p in existing):
            # Copied again (every group was done: the table's validation or the cutover window
            # found it differ), or planned by a run that died before the table recorded its
            # UNLOAD: no group can be compared alone, so the table is grouped anew.
            _clear_for_regrouping(step, info, len(existing))
            wanted = wants_parts(step.phase.config, task)
            return _split_in_file_groups(step, info, wanted, started) if wanted > 1 else None
        # A retry of the same copy: groups that needed an operator start again, the rest stand.
        needs_operator = set(parts_engine.part_definition().tagged("needs_operator"))
        parts_engine.recopy_parts(step.phase, task, lambda p: p.state in needs_operator, "the table is retried")
    else:
        _recheck_parts(step, info, existing)
    return _parted(step, info, started, {})


def _parted(step: Step, info: TableInfo, started: float, fields: dict[str, Any]) -> StepResult:
    """The table rests `parted` with its parts' staging root (its cleanup covers every part)."""
    prefix = wparts.part_prefix(step.resources.staging.s3_uri, step.phase.migration.name, info.schema, info.name,
                                0, 0)
    timings = timing(step.task, "unload", started)
    timings.pop(PARTS_CHECKED, None)
    return StepResult({**fields, "staging_prefix": prefix.rsplit("/part-", 1)[0] + "/", "step_timings": timings},
                      move="split")


def _split_in_file_groups(step: Step, info: TableInfo, wanted: int, started: float) -> StepResult | None:
    """A big table with no column to cut into ranges: ONE UNLOAD of it (its manifest recorded on
    the table), then parts = runs of that manifest's files; None (copied whole) when the UNLOAD
    gave fewer than two files."""
    worker, task, store = step.resources, step.task, step.phase.store
    log.info("%s: no column to cut into ranges (number or date); unloaded once, loaded in file groups",
             task.qualified_name)

    def unload() -> dict[str, Any]:
        source_slices, target_slices = worker.slices()
        with worker.unloading():
            result = wparts.unload_for_groups(
                worker.source, info, staging_uri=worker.staging.s3_uri, migration=step.phase.migration.name,
                attempt=task.attempt, iam_role_arn=worker.staging.iam_role_arn,
                kms_key_id=worker.staging.kms_key_id, estimated_bytes=int(task.size_mb * 1024 * 1024 * 2),
                source_slices=source_slices, target_slices=target_slices, groups=wanted,
                fmt=pipeline.choose_format(info.columns), on_statement=statement_recorder(step))
        report = worker.verify_staging(result.manifest_url, expected_rows=result.rows)
        return {"manifest_url": result.manifest_url, "unload_format": result.format.name,
                "format_reason": result.format.reason, "rows_unloaded": result.rows,
                "bytes_unloaded": report.bytes, "files": [(f.content_length, f.record_count) for f in report.files]}

    fields = worker.retried(f"unload {task.qualified_name} for file groups", recording_failures(step, unload))
    groups = wparts.plan_file_groups(fields.pop("files"), wanted)
    if not groups:
        log.info("%s: its UNLOAD wrote fewer than two files; copied whole", task.qualified_name)
        return None
    total_rows = max(1, sum(g.rows for g in groups))
    specs = [PartSpec(g.part_no, g.parts_total, None, str(g.first), str(g.end), g.rows,
                      max(1, round(task.size_mb * g.rows / total_rows))) for g in groups]
    store.add_parts(task, specs, parts_engine.part_definition().initial)
    log.info("%s: %d files loaded in %d groups", task.qualified_name, groups[-1].end, len(groups))
    return _parted(step, info, started, fields)


def _clear_for_regrouping(step: Step, info: TableInfo, groups: int) -> None:
    """Before a table loaded in file groups is grouped anew: its old groups are forgotten and its
    target rows deleted (the table is this migration's copy; recorded before it is sent)."""
    worker, task, store = step.resources, step.task, step.phase.store
    statement = delete_where_sql(info.schema, info.name, "TRUE")
    store.add_event(step.phase.migration, task.subject, "file_groups_cleared",
                    {"groups": groups, "statement": statement, "attempt": task.attempt},
                    state=step.phase.migration.phase)

    def clear() -> dict[str, Any]:
        worker.target.run(statement, kind="load", what=f"clear {task.qualified_name} to group it anew")
        worker.target.commit()
        return {}

    worker.retried(f"clear {task.qualified_name}", clear)
    store.drop_parts(task, "the table is copied again in new file groups")


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
    if part.part_column is None:
        return _group_manifest(step)
    info = worker.info(task)
    r = _range(part, info)

    def unload() -> dict[str, Any]:
        source_slices, target_slices = worker.slices()
        fmt = pipeline.choose_format(info.columns)
        with worker.unloading():
            result = wparts.unload_part(worker.source, info, r, staging_uri=worker.staging.s3_uri,
                                        migration=step.phase.migration.name, attempt=part.attempt,
                                        iam_role_arn=worker.staging.iam_role_arn,
                                        kms_key_id=worker.staging.kms_key_id,
                                        estimated_bytes=part.est_mb * 1024 * 1024 * 2,
                                        source_slices=source_slices, target_slices=target_slices, fmt=fmt,
                                        on_statement=statement_recorder(step))
        report = worker.verify_staging(result.manifest_url, expected_rows=result.rows)
        return {"manifest_url": result.manifest_url, "staging_prefix": result.prefix,
                "rows_unloaded": result.rows, "bytes_unloaded": report.bytes, "files_unloaded": len(report.files)}

    fields = worker.retried(f"unload part {part.label} of {task.qualified_name}", recording_failures(step, unload))
    failpoints.hit("after_part_unload")
    return PartResult(fields)


def _group_manifest(step: PartStep) -> PartResult:
    """A file group's `unload`: its own manifest (its runs of the table's UNLOAD files) written
    beside them and checked like any staged output (encrypted, lengths, rows)."""
    worker, task, part = step.resources, step.task, step.part
    if task.manifest_url is None or part.lower_bound is None or part.upper_bound is None:
        raise TransientError(f"{task.qualified_name} part {part.label}: its table's UNLOAD is not recorded",
                             hint="the table is grouped anew when it is copied again")
    table_manifest = task.manifest_url
    first, end = int(part.lower_bound), int(part.upper_bound)

    def write() -> dict[str, Any]:
        s3 = worker.clients.client("s3")
        url = wparts.group_manifest_url(table_manifest, part.part_no, part.attempt)
        manifests.write_group_manifest(s3, url, manifests.read_manifest(s3, table_manifest), first, end,
                                       kms_key_id=worker.staging.kms_key_id)
        report = staging.verify_staging(s3, worker.clients.client("kms"), url,
                                        kms_key_id=worker.staging.kms_key_id, expected_rows=part.est_rows)
        return {"manifest_url": url, "staging_prefix": url.rsplit("/", 1)[0] + "/", "rows_unloaded": report.rows,
                "bytes_unloaded": report.bytes, "files_unloaded": len(report.files)}

    fields = worker.retried(f"write the manifest of part {part.label} of {task.qualified_name}",
                            recording_failures(step, write))
    failpoints.hit("after_part_unload")
    return PartResult(fields)


def _committed(state: pipeline.MarkerState, part: PartView) -> bool:
    """A part's marker is its load's: for a file group, also of this attempt's manifest (a table
    grouped anew numbers its parts and attempts from the start again)."""
    return state.committed and (part.part_column is not None or state.manifest == part.manifest_url)


def part_load(step: PartStep) -> PartResult:
    worker, task, part = step.resources, step.task, step.part
    info = worker.info(task)
    where = _NOTHING if part.part_column is None else _range(part, info).where()
    migration = step.phase.migration.name

    def load() -> dict[str, Any]:
        assert part.manifest_url
        fmt = pipeline.choose_format(info.columns)
        report = worker.verify_staging(part.manifest_url, expected_rows=part.rows_unloaded or 0)
        with _load_lock(task.id):
            try:
                result = pipeline.load_exactly_once(
                    worker.target, info.schema, info.name, manifest_url=part.manifest_url, fmt=fmt,
                    iam_role_arn=worker.staging.iam_role_arn, migration=migration, attempt=part.attempt,
                    explicit_ids=bool(info.identity_columns), expected_rows=report.rows,
                    on_statement=statement_recorder(step), columns=info.columns, part=part.part_no, where=where)
            except OutcomeUnknown as exc:
                worker.end_lost_statement("target", exc)
                state = pipeline.reconcile_load(worker.target, migration, info.schema, info.name, part.attempt,
                                                part=part.part_no)
                if _committed(state, part):
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
    if part.part_column is None:
        # No predicate picks a file group's rows on either cluster: the group is compared by the
        # rows its files hold and its COPY loaded; its table is compared whole (parts_totals).
        fields = {"source_checksum": f"{part.rows_unloaded}:files", "target_checksum": f"{part.rows_loaded}:files"}
        return PartResult(fields, move=None if fields["source_checksum"] == fields["target_checksum"] else "differ")
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
    committed = _committed(state, step.part)
    return {"load_committed": committed, "fields": {"rows_loaded": state.rows} if committed else {}}


PART_STEPS: dict[str, Callable[[PartStep], PartResult]] = {
    "part_unload": part_unload, "part_load": part_load, "part_validate": part_validate}


def parts_totals(step: Step, info: TableInfo, parts: list[PartView]) -> dict[str, Any]:
    """A parted table's validation: the parts' own checksums (each compared when it was copied),
    summed, and the totals of both tables counted now, so no row sits outside every part."""
    worker, task = step.resources, step.task
    started = time.time()
    done_ok = all(p.source_checksum and p.source_checksum == p.target_checksum for p in parts)
    if file_groups(parts):
        return _groups_totals(step, info, parts, done_ok, started)

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
    failed = not done_ok or source_checksum != target_checksum
    return _totals(task, parts, source_checksum, target_checksum, started, None if not failed else
                   f"{task.qualified_name}: source rows={src_rows}, target rows={tgt_rows}; parts differing")


def _groups_totals(step: Step, info: TableInfo, parts: list[PartView], done_ok: bool,
                   started: float) -> dict[str, Any]:
    """A table loaded in file groups is compared whole: rows and checksum of both tables, and the
    rows its groups loaded add up to the target's (no row outside every group)."""
    worker, task = step.resources, step.task
    result = checksum.compare_table(worker.source, worker.target, info.schema, info.name, info.columns)
    source_checksum = f"{result.source.rows}:{result.source.checksum}"
    target_checksum = f"{result.target.rows}:{result.target.checksum}"
    loaded = sum(p.rows_loaded or 0 for p in parts)
    if not done_ok or loaded != result.target.rows:
        return _totals(task, parts, source_checksum, target_checksum, started,
                       f"{task.qualified_name}: the file groups loaded {loaded} rows, the target has "
                       f"{result.target.rows}; groups differing")
    return _totals(task, parts, source_checksum, target_checksum, started, None, agreed=result.describe())


def _totals(task: TableView, parts: list[PartView], source_checksum: str, target_checksum: str, started: float,
            failed: str | None, agreed: str | None = None) -> dict[str, Any]:
    """A parted table's validation result. ``failed`` (what disagrees) names the parts whose
    checksums differ, and the target's checksum is marked so the two never read as equal."""
    mismatch = agreed
    if failed is not None:
        differing = [p.label for p in parts if p.source_checksum != p.target_checksum]
        mismatch = f"{failed}: {', '.join(differing) or 'none'}"
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
    was = bool(target.conn.autocommit)  # whatever mode the worker's target session is in, it is given back
    target.conn.autocommit = True
    try:
        for sql in statements:
            target.run(sql, kind="maintenance")
    finally:
        target.conn.autocommit = was
    step.phase.store.add_event(step.phase.migration, step.task.subject, "table_maintained",
                               {"statements": statements}, state=step.phase.migration.phase)
