"""What a step leaves in history: every UNLOAD/COPY before it runs, a failed statement with the
first rows of stl_load_errors, and a step's timings. Written for table steps and part steps alike
(a part step's records also name its part and count its own attempt: a part is retried on its
own, not with its table). The part steps use all of it; the table steps share the failure
recorder, and keep their own statement recorder (it also skips statements announced with the
move that started the step) and timings for now."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from migrator.errors import MigratorError
from migrator.store import PartView, TableView
from migrator.warehouse.pipeline import StatementHook

if TYPE_CHECKING:
    from migrator.engine.context import PhaseContext


class AnyStep(Protocol):
    """A table step's context (engine.tables.StepContext) or a part step's (engine.parts.PartStepContext)."""

    @property
    def phase(self) -> "PhaseContext": ...

    @property
    def task(self) -> TableView: ...


def _attempt_and_part(step: AnyStep) -> dict[str, Any]:
    part: PartView | None = getattr(step, "part", None)
    if part is None:
        return {"attempt": step.task.attempt}
    return {"attempt": part.attempt, "part": part.part_no}


def statement_recorder(step: AnyStep) -> StatementHook:
    """History gets every UNLOAD and COPY (already redacted by the pipeline) before it runs."""
    which = _attempt_and_part(step)

    def record(kind: str, sql: str) -> None:
        step.phase.store.add_event(step.phase.migration, step.task.subject, "statement",
                                   {"kind": kind, "statement": sql, **which}, state=step.phase.migration.phase)
    return record


def record_failure(step: AnyStep, exc: MigratorError) -> None:
    """A failed UNLOAD/COPY: its statement and the first rows of stl_load_errors, in history."""
    statement = getattr(exc, "statement", None)
    load_errors = getattr(exc, "load_errors", None) or []
    if statement is None and not load_errors:
        return
    step.phase.store.add_event(step.phase.migration, step.task.subject, "statement_failed",
                               {"statement": statement, "error": exc.one_line(), **_attempt_and_part(step),
                                "load_errors": [row.describe() for row in load_errors]},
                               state=step.phase.migration.phase)


def recording_failures(step: AnyStep, fn: Callable[[], dict[str, Any]]) -> Callable[[], dict[str, Any]]:
    """``fn`` with its failed statements recorded (record_failure) before they are raised on."""
    def run() -> dict[str, Any]:
        try:
            return fn()
        except MigratorError as exc:
            record_failure(step, exc)
            raise
    return run


def timing(task: TableView, step: str, started: float) -> dict[str, Any]:
    """The table's step_timings with ``step`` (started, seconds) set."""
    timings = dict(task.step_timings or {})
    timings[step] = {"started": started, "seconds": round(time.time() - started, 3)}
    return timings
