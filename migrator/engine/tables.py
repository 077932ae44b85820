"""The one table worker: walks a table through states/table.yaml to its `done`-tagged state.

The machine says what comes next: from a resting state the worker takes the state's `next`
trigger; in an in-flight state it runs the state's `step` (supplied by the strategy) and takes
the state's completing move with what the step found, or the move into the `needs_operator`
state when the step reports a problem or raises. Strategies supply steps only; which tables
are still to do, and how many are done, come from tags, never from state names.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from migrator.engine.definitions import MachineDef, StateDef
from migrator.errors import InternalError, MigratorError, RemoteError
from migrator.store import TableView

if TYPE_CHECKING:
    from migrator.engine.runner import PhaseContext

log = logging.getLogger("migrator.tables")
R = TypeVar("R")


@dataclass
class StepContext(Generic[R]):
    """What a step gets: the phase context, the table as stored now, and its worker's resources."""

    phase: "PhaseContext"
    task: TableView
    resources: R


@dataclass
class StepResult:
    """A step's findings: fields to store with the completing move, or the problem that fails the table."""

    fields: dict[str, Any] = field(default_factory=dict)
    problem: str | None = None


@dataclass(frozen=True)
class TableOutcome:
    table: str
    done: bool
    error: str | None = None


def completing_trigger(definition: MachineDef, state: StateDef) -> str:
    """The one move out of an in-flight state that is neither its lost-lease move nor a failure."""
    triggers = {t.trigger for t in definition.transitions_from(state.name)
                if t.trigger != state.lost and "needs_operator" not in definition.state(t.dest).tags}
    if len(triggers) != 1:
        raise InternalError(f"internal error: table state {state.name!r} has completing moves {sorted(triggers)}; "
                            "states/table.yaml must give it exactly one")
    return triggers.pop()


def work_queue(ctx: "PhaseContext") -> list[TableView]:
    """Tables not done and not in flight, largest first; those needing an operator only while
    attempts are left (`attempts_left` decides the retry move itself)."""
    definition = ctx.table_definition
    settled = set(definition.tagged("done")) | set(definition.tagged("in_flight"))
    needs_operator = set(definition.tagged("needs_operator"))
    limit = ctx.config.settings.tables.max_attempts
    return [t for t in ctx.store.list_tables(ctx.migration, order_by_size=True)
            if t.state not in settled and (t.state not in needs_operator or t.attempt < limit)]


def walk(ctx: "PhaseContext", task: TableView, steps: Mapping[str, Callable[[StepContext[R]], StepResult]],
         resources: R) -> TableOutcome:
    """Walk one table to its done state, or into the state needing an operator."""
    flow = ctx.table_flow(task)
    definition = flow.definition
    try:
        while True:
            state = definition.state(flow.state)
            if "done" in state.tags:
                return TableOutcome(task.qualified_name, True)
            if "in_flight" in state.tags:
                assert state.step is not None
                result = steps[state.step](StepContext(ctx, flow.task, resources))
                if result.problem is not None:
                    failure = definition.leading_to(state.name, "needs_operator")
                    if failure is None:
                        raise InternalError(f"internal error: table state {state.name!r} has no failure move")
                    flow.fire(failure.trigger, error=result.problem, fields=result.fields)
                    return TableOutcome(task.qualified_name, False, result.problem)
                flow.fire(completing_trigger(definition, state), fields=result.fields)
                continue
            if state.next is None:
                raise InternalError(f"internal error: table state {state.name!r} names no `next` trigger")
            flow.fire(state.next)
    except InternalError:
        raise
    except MigratorError as exc:
        state = definition.state(flow.state)
        failure = definition.leading_to(state.name, "needs_operator")
        if failure is not None and "done" not in state.tags:
            flow.fire(failure.trigger, error=exc.one_line())
        return TableOutcome(task.qualified_name, False, exc.one_line())


def walk_all(ctx: "PhaseContext", steps: Mapping[str, Callable[[StepContext[R]], StepResult]],
             open_resources: Callable[[], AbstractContextManager[R]], concurrency: int) -> list[TableOutcome]:
    """Walk every table of the work queue with ``concurrency`` workers, each with its own resources
    (connections); one table's failure does not stop the others."""
    queue = work_queue(ctx)
    lock = threading.Lock()
    outcomes: list[TableOutcome] = []
    crashed: list[BaseException] = []

    def worker() -> None:
        try:
            with open_resources() as resources:
                while not ctx.should_stop():
                    with lock:
                        if not queue:
                            return
                        task = queue.pop(0)
                    outcome = walk(ctx, ctx.store.get_table(task.id), steps, resources)
                    with lock:
                        outcomes.append(outcome)
        except BaseException as exc:  # surfaced below, after every worker stopped
            crashed.append(exc)

    workers = [threading.Thread(target=worker, name=f"table-{i}", daemon=True)
               for i in range(min(concurrency, max(1, len(queue))))]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    if crashed:
        first = crashed[0]
        raise first if isinstance(first, MigratorError) else RemoteError(f"table worker failed: {first}")
    return outcomes
