"""The engine's one table worker: walks each table through states/table.yaml by the names the
machine gives (next triggers, steps), and retries transient failures within the run."""

from __future__ import annotations

import threading
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import pytest

from migrator.engine import tables
from migrator.engine.context import PhaseContext, RunOptions
from migrator.engine.runner import Runner
from migrator.errors import ApprovalRequired, RemoteError, TransientError
from migrator.store import Store, db
from tests.conftest import make_config
from tests.engine.scripted import scripted_registry


class FlakySteps:
    """Steps standing in for the data plane; ``flaky`` tables fail their unload ``times`` times."""

    def __init__(self, flaky: dict[str, int], error: type[Exception] = TransientError) -> None:
        self.flaky, self.error = dict(flaky), error
        self.calls: list[tuple[str, str, int]] = []
        self.lock = threading.Lock()

    def _record(self, step: str, ctx: tables.StepContext[None]) -> None:
        with self.lock:
            self.calls.append((step, ctx.task.qualified_name, ctx.task.attempt))

    def unload(self, ctx: tables.StepContext[None]) -> tables.StepResult:
        self._record("unload", ctx)
        with self.lock:
            left = self.flaky.get(ctx.task.qualified_name, 0)
            if left:
                self.flaky[ctx.task.qualified_name] = left - 1
                raise self.error("S3ServiceException: Please reduce your request rate. SlowDown")
        return tables.StepResult({"manifest_url": f"s3://b/{ctx.task.table_name}/manifest"})

    def load(self, ctx: tables.StepContext[None]) -> tables.StepResult:
        self._record("load", ctx)
        return tables.StepResult({"rows_loaded": ctx.task.source_rows})

    def validate(self, ctx: tables.StepContext[None]) -> tables.StepResult:
        self._record("validate", ctx)
        return tables.StepResult({"source_checksum": "c", "target_checksum": "c"})

    def registry(self):  # type: ignore[no-untyped-def]
        registry = scripted_registry()

        def copy_tables(ctx: PhaseContext) -> str:
            steps = {"unload": self.unload, "load": self.load, "validate": self.validate}
            tables.walk_all(ctx, steps, lambda: nullcontext(None), 3)
            if ctx.tables_not_done():
                raise RemoteError(f"{ctx.tables_not_done()} table(s) did not copy")
            return "tables_copied"

        registry.actions["copy_tables"] = copy_tables
        return registry


@pytest.fixture
def config(tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    db.upgrade(store_url)
    monkeypatch.setenv(tables.RETRY_BASE_ENV, "0.05")
    return make_config(tmp_path, store_url, tables={"max_attempts": 3})


def test_a_transient_failure_is_retried_in_the_same_run_while_others_go_on(config, store_url: str) -> None:  # type: ignore[no-untyped-def]
    steps = FlakySteps({"public.t5": 2})
    with Store.open(store_url) as store:
        with pytest.raises(ApprovalRequired):
            Runner(config, store, steps.registry()).run()
        m = store.require_migration("m1")
        assert {t.state for t in store.list_tables(m)} == {"validated"}
        flaky = store.find_table(m, "public", "t5")
        assert flaky is not None and flaky.attempt == 3
        retries = [e.detail for e in store.events(m, subject="table:public.t5") if e.trigger == tables.RETRY_EVENT]
        assert [r["attempt"] for r in retries] == [1, 2]
        assert all("SlowDown" in r["reason"] and r["wait_seconds"] >= 0 and r["max_attempts"] == 3 for r in retries)
    # The other tables did not wait for the flaky one: each was walked once, start to end.
    others = [c for c in steps.calls if c[1] != "public.t5"]
    assert len(others) == 4 * 3 and {c[2] for c in others} == {1}


def test_a_table_still_failing_after_max_attempts_needs_an_operator(config, store_url: str) -> None:  # type: ignore[no-untyped-def]
    steps = FlakySteps({"public.t2": 99})
    with Store.open(store_url) as store:
        with pytest.raises(RemoteError, match="1 table"):
            Runner(config, store, steps.registry()).run()
        m = store.require_migration("m1")
        stuck = store.find_table(m, "public", "t2")
        assert stuck is not None and stuck.state == "failed" and stuck.attempt == 3
        assert "SlowDown" in (stuck.last_error or "")
        assert len([e for e in store.events(m, subject="table:public.t2") if e.trigger == tables.RETRY_EVENT]) == 2
        assert {t.state for t in store.list_tables(m) if t.qualified_name != "public.t2"} == {"validated"}


def test_a_permanent_failure_is_not_retried_in_the_run(config, store_url: str) -> None:  # type: ignore[no-untyped-def]
    steps = FlakySteps({"public.t1": 1}, error=RemoteError)
    with Store.open(store_url) as store:
        with pytest.raises(RemoteError):
            Runner(config, store, steps.registry()).run()
        m = store.require_migration("m1")
        failed = store.find_table(m, "public", "t1")
        assert failed is not None and failed.state == "failed" and failed.attempt == 1
        assert not [e for e in store.events(m) if e.trigger == tables.RETRY_EVENT]
        # A re-run is the operator's retry: the table goes through the machine's `next` move of `failed`.
        with pytest.raises(ApprovalRequired):
            Runner(config, store, steps.registry()).run()
        assert store.find_table(m, "public", "t1").state == "validated"  # type: ignore[union-attr]


def test_work_queue_and_done_counts_follow_the_tags(config, store_url: str) -> None:  # type: ignore[no-untyped-def]
    with Store.open(store_url) as store:
        runner = Runner(config, store, FlakySteps({}).registry(), RunOptions(max_steps=3))
        runner.run()
        m = store.require_migration("m1")
        ctx: Any = PhaseContext(config, store, None, runner.table_definition, runner.registry,  # type: ignore[arg-type]
                                RunOptions(), lambda: False)
        ctx.flow = type("F", (), {"migration": m})()
        assert [t.qualified_name for t in tables.work_queue(ctx)] == [f"public.t{i}" for i in range(5, 0, -1)]
        assert ctx.tables_not_done() == 5


def test_status_shows_the_scheduled_retry_while_the_run_waits(tmp_path: Path, store_url: str,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from migrator import commands
    from migrator.config import load_config
    from tests.harness import write_config

    db.upgrade(store_url)
    monkeypatch.setenv(tables.RETRY_BASE_ENV, "0.05")
    path = write_config(tmp_path / "migrator.toml", migration={"store": store_url}, tables={"max_attempts": 3})
    seen: list[Any] = []

    class Watching(FlakySteps):
        def unload(self, ctx: tables.StepContext[None]) -> tables.StepResult:
            if ctx.task.qualified_name == "public.t4" and ctx.task.attempt == 2:
                seen.append(commands.status(path, with_tables=True))
            return super().unload(ctx)

    steps = Watching({"public.t4": 1})
    with Store.open(store_url) as store:
        with pytest.raises(ApprovalRequired):
            Runner(load_config(path), store, steps.registry()).run()
    row = next(r for r in seen[0].tables if r.table == "public.t4")
    # A script reads schema and name apart, never by parsing the display text (issue 20).
    assert (row.schema, row.name) == ("public", "t4")
    assert {"schema": "public", "name": "t4"}.items() <= seen[0].asdict()["tables"][
        [t.table for t in seen[0].tables].index("public.t4")].items()
    # Seen from inside the retried attempt: the previous failure and the retry it scheduled.
    assert row.retry is not None and row.retry.startswith("attempt 2/3 in progress") and "SlowDown" in row.retry
    history = commands.history(path, table="public.t4")
    scheduled = [e for e in history.events if e.trigger == tables.RETRY_EVENT]
    assert scheduled and scheduled[0].detail["attempt"] == 1 and "wait_seconds" in scheduled[0].detail
