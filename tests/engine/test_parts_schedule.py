"""The engine walks a split table's parts on several workers at once (states/part.yaml), then
takes the table on from its `parted` state; a part that fails transiently is retried alone."""

from __future__ import annotations

import threading
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import pytest

from migrator.engine import parts as parts_engine
from migrator.engine import tables
from migrator.engine.context import PhaseContext
from migrator.engine.runner import Runner
from migrator.errors import ApprovalRequired, RemoteError, TransientError
from migrator.store import PartSpec, Store, db
from tests.conftest import make_config
from tests.engine.scripted import scripted_registry

PARTS = 8
WORKERS = 4


class PartedSteps:
    """Steps standing in for the data plane: public.t5 is split into PARTS parts; the first
    WORKERS part unloads wait for each other (a barrier), which only passes if they run at once."""

    def __init__(self, flaky_part: int | None = None) -> None:
        self.barrier = threading.Barrier(WORKERS - 1, timeout=30)
        self.lock = threading.Lock()
        self.unloads: list[int] = []
        self.loads: list[str] = []
        self.flaky_part = flaky_part

    def unload(self, ctx: tables.StepContext[None]) -> tables.StepResult:
        if ctx.task.table_name == "t5":
            specs = [PartSpec(i, PARTS, "id", None if i == 0 else str(i), None if i == PARTS - 1 else str(i + 1),
                              10, 20 - i) for i in range(PARTS)]
            ctx.phase.store.add_parts(ctx.task, specs, parts_engine.part_definition().initial)
            return tables.StepResult({}, move="split")
        return tables.StepResult({"manifest_url": "s3://b/m"})

    def load(self, ctx: tables.StepContext[None]) -> tables.StepResult:
        with self.lock:
            self.loads.append(ctx.task.table_name)
        return tables.StepResult({"rows_loaded": ctx.task.source_rows})

    def validate(self, ctx: tables.StepContext[None]) -> tables.StepResult:
        parts = ctx.phase.store.list_parts(ctx.task.id)
        rows = sum(p.rows_loaded or 0 for p in parts) if parts else ctx.task.source_rows
        return tables.StepResult({"source_checksum": str(rows), "target_checksum": str(rows)})

    def part_unload(self, ctx: parts_engine.PartStepContext[None]) -> parts_engine.PartResult:
        with self.lock:
            self.unloads.append(ctx.part.part_no)
            first = len(self.unloads) <= WORKERS - 1
            flaky = ctx.part.part_no == self.flaky_part and ctx.part.attempt == 1
        if first:
            self.barrier.wait()  # passes only when WORKERS - 1 part unloads are in flight together
        if flaky:
            raise TransientError("S3ServiceException: SlowDown")
        return parts_engine.PartResult({"manifest_url": f"s3://b/p{ctx.part.part_no}/manifest"})

    def part_load(self, ctx: parts_engine.PartStepContext[None]) -> parts_engine.PartResult:
        return parts_engine.PartResult({"rows_loaded": ctx.part.est_rows})

    def part_validate(self, ctx: parts_engine.PartStepContext[None]) -> parts_engine.PartResult:
        return parts_engine.PartResult({"source_checksum": "10:1", "target_checksum": "10:1"})

    def registry(self):  # type: ignore[no-untyped-def]
        registry = scripted_registry()

        def copy_tables(ctx: PhaseContext) -> str:
            steps = {"unload": self.unload, "load": self.load, "validate": self.validate}
            part_steps = {"part_unload": self.part_unload, "part_load": self.part_load,
                          "part_validate": self.part_validate}
            tables.walk_all(ctx, steps, lambda: nullcontext(None), WORKERS, part_steps=part_steps)
            if ctx.tables_not_done():
                raise RemoteError(f"{ctx.tables_not_done()} table(s) did not copy")
            return "tables_copied"

        registry.actions["copy_tables"] = copy_tables
        return registry


@pytest.fixture
def config(tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    db.upgrade(store_url)
    monkeypatch.setenv(tables.RETRY_BASE_ENV, "0.05")
    return make_config(tmp_path, store_url, tables={"max_attempts": 3})


def test_parts_of_one_table_run_on_several_workers_then_the_table_goes_on(config: Any, store_url: str) -> None:
    steps = PartedSteps(flaky_part=5)
    with Store.open(store_url) as store:
        with pytest.raises(ApprovalRequired):
            Runner(config, store, steps.registry()).run()
        m = store.require_migration("m1")
        assert {t.state for t in store.list_tables(m)} == {"validated"}
        t5 = store.find_table(m, "public", "t5")
        assert t5 is not None
        parts = store.list_parts(t5.id)
        assert len(parts) == PARTS and {p.state for p in parts} == {"validated"}
        # The split table never ran the whole-table load; each part was loaded once.
        assert "t5" not in steps.loads
        loaded = [e.detail for e in store.events(m, subject=t5.subject) if e.trigger == "part_loaded"]
        assert sorted(d["part"] for d in loaded) == list(range(PARTS)) and {d["rows"] for d in loaded} == {10}
        # The transient failure of part 5 was retried alone, in the run.
        flaky = next(p for p in parts if p.part_no == 5)
        assert flaky.attempt == 2 and all(p.attempt == 1 for p in parts if p.part_no != 5)
        retries = [e.detail for e in store.events(m, subject=t5.subject) if e.trigger == tables.RETRY_EVENT]
        assert [r["part"] for r in retries] == [5]
        assert store.part_counts(m, parts_engine.done_states()) == {t5.id: (PARTS, PARTS)}


def test_a_part_in_flight_of_a_dead_worker_is_reconciled_from_its_marker(config: Any, store_url: str) -> None:
    """A part found `loading` under an owner that is gone goes back by its `lost` move: to loaded when
    the reconciler says its load committed (not loaded again), else to unloaded."""
    steps = PartedSteps()
    with Store.open(store_url) as store:
        runner = Runner(config, store, steps.registry())
        migration = runner.ensure_migration()
        from migrator.store import TableSpec

        store.add_tables(migration, [TableSpec("public", "big", 100, 80)], "pending")
        task = store.find_table(migration, "public", "big")
        assert task is not None
        specs = [PartSpec(i, 2, "id", None if i == 0 else "5", "5" if i == 0 else None, 40, 50) for i in range(2)]
        p0, p1 = store.add_parts(task, specs, "pending")
        dead = Store(store.engine, identity=type(store.identity)("elsewhere", 1, None))
        for part in (p0, p1):
            part = dead.move_part(part, task.subject, "start_unload", "unloading", take_lease_seconds=-1,
                                  new_attempt=True)
            part = dead.move_part(part, task.subject, "complete_unload", "unloaded", release_lease=True,
                                  fields={"manifest_url": "s3://b/m"})
            dead.move_part(part, task.subject, "start_load", "loading", take_lease_seconds=-1)
        ctx = PhaseContext(config, store, None, runner.table_definition, runner.registry,  # type: ignore[arg-type]
                           None, lambda: False)  # type: ignore[arg-type]
        ctx.flow = type("F", (), {"migration": migration})()  # type: ignore[assignment]
        part_steps = {"part_unload": steps.part_unload, "part_load": steps.part_load,
                      "part_validate": steps.part_validate}
        committed = {0: True, 1: False}

        def reconcile(step: parts_engine.PartStepContext[None]) -> dict[str, Any]:
            ok = committed[step.part.part_no]
            return {"load_committed": ok, "fields": {"rows_loaded": 40} if ok else {}}

        for part in store.list_parts(task.id):
            assert parts_engine.walk_part(ctx, task, part, part_steps, reconcile, None)[0]
        events = store.events(migration, subject=task.subject)
        lost = [(e.detail["part"], e.to_state) for e in events if e.trigger == "reconcile_load"]
        assert lost == [(0, "loaded"), (1, "unloaded")]
        starts = [e.detail["part"] for e in events if e.trigger == "start_load"]
        assert starts.count(0) == 1 and starts.count(1) == 2


class BrokenPartSteps(PartedSteps):
    """Part 2 fails permanently (not transiently) on its first attempt."""

    def __init__(self) -> None:
        super().__init__()
        self.barrier = threading.Barrier(1)

    def part_load(self, ctx: parts_engine.PartStepContext[None]) -> parts_engine.PartResult:
        if ctx.part.part_no == 2 and ctx.part.attempt == 1:
            raise RemoteError("COPY failed: Invalid digit")
        return super().part_load(ctx)


def test_a_part_needing_an_operator_fails_its_table_and_a_rerun_takes_it_on(config: Any, store_url: str) -> None:
    steps = BrokenPartSteps()
    with Store.open(store_url) as store:
        with pytest.raises(RemoteError, match="1 table"):
            Runner(config, store, steps.registry()).run()
        m = store.require_migration("m1")
        t5 = store.find_table(m, "public", "t5")
        assert t5 is not None and t5.state == "failed" and "part 3/8" in (t5.last_error or "")
        parts = {p.part_no: p for p in store.list_parts(t5.id)}
        assert parts[2].state == "failed" and {p.state for n, p in parts.items() if n != 2} == {"validated"}
        with pytest.raises(ApprovalRequired):
            Runner(config, store, steps.registry()).run()
        assert store.find_table(m, "public", "t5").state == "validated"  # type: ignore[union-attr]
        again = {p.part_no: p for p in store.list_parts(t5.id)}
        # Only the failed part ran again.
        assert again[2].attempt == 2 and all(again[n].attempt == 1 for n in again if n != 2)


def test_a_parted_table_with_no_part_left_to_pick_fails_at_the_end_of_the_pass(config: Any, store_url: str) -> None:
    """A table resting in its parted state whose last part needs an operator with no attempt left
    (e.g. the process died between the part's failure and its table's): nothing can be picked, so
    the pass fails the table (a re-run retries it) instead of leaving it parted for ever."""
    steps = PartedSteps()
    with Store.open(store_url) as store:
        runner = Runner(config, store, steps.registry())
        migration = runner.ensure_migration()
        from migrator.store import TableSpec

        store.add_tables(migration, [TableSpec("public", "big", 100, 80)], "pending")
        task = store.find_table(migration, "public", "big")
        assert task is not None
        specs = [PartSpec(i, 2, "id", None if i == 0 else "5", "5" if i == 0 else None, 40, 50) for i in range(2)]
        store.add_parts(task, specs, "pending")
        with store.engine.begin() as conn:
            from sqlalchemy import text

            conn.execute(text("update table_task set state = 'parted' where id = :i"), {"i": task.id})
            conn.execute(text("update table_part set state = 'validated' where table_id = :i and part_no = 0"),
                         {"i": task.id})
            conn.execute(text("update table_part set state = 'failed', attempt = 3, last_error = 'bad' "
                              "where table_id = :i and part_no = 1"), {"i": task.id})
        ctx = PhaseContext(config, store, None, runner.table_definition, runner.registry,  # type: ignore[arg-type]
                           None, lambda: False)  # type: ignore[arg-type]
        ctx.flow = type("F", (), {"migration": migration})()  # type: ignore[assignment]
        part_steps = {"part_unload": steps.part_unload, "part_load": steps.part_load,
                      "part_validate": steps.part_validate}
        steps_ = {"unload": steps.unload, "load": steps.load, "validate": steps.validate}
        outcomes = tables.walk_all(ctx, steps_, lambda: nullcontext(None), 2, part_steps=part_steps)
        assert [(o.table, o.done) for o in outcomes] == [("public.big", False)]
        after = store.get_table(task.id)
        assert after.state == "failed" and "part needs an operator" in (after.last_error or "")
        assert after.owner is None and all(p.owner is None for p in store.list_parts(task.id))
