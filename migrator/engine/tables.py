"""The one table worker: walks a table through states/table.yaml to its `done`-tagged state.

The machine says what comes next: from a resting state the worker takes the state's `next`
trigger; in an in-flight state it runs the state's `step` (supplied by the strategy) and takes
the state's completing move with what the step found, or the move into the `needs_operator`
state when the step reports a problem or raises. Strategies supply steps only; which tables
are still to do, and how many are done, come from tags, never from state names.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from migrator.engine import parts as parts_engine
from migrator.engine.definitions import MachineDef, StateDef
from migrator.errors import ConcurrentUpdate, InternalError, MigratorError, RemoteError
from migrator.retry import Backoff
from migrator.store import PartView, TableView

if TYPE_CHECKING:
    from migrator.engine.context import PhaseContext

log = logging.getLogger("migrator.tables")
R = TypeVar("R")
RETRY_EVENT = "retry_scheduled"
#: In-run retries of a table that failed transiently: exponential backoff with full jitter.
#: The base can be lowered for rehearsals (the sandbox) through this variable.
RETRY_BASE_ENV = "MIGRATOR_TABLE_RETRY_BASE_SECONDS"
RETRY_BASE_SECONDS = 30.0
RETRY_CAP_SECONDS = 900.0
#: Longest a waiting worker sleeps before it looks at the stop flag again.
_IDLE_CHECK_SECONDS = 1.0


def retry_backoff() -> Backoff:
    base = float(os.environ.get(RETRY_BASE_ENV) or RETRY_BASE_SECONDS)
    return Backoff(base=base, cap=max(base, RETRY_CAP_SECONDS))


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
    #: One of the state's `moves` instead of its completing move (e.g. the source moved: copy again).
    move: str | None = None


@dataclass(frozen=True)
class TableOutcome:
    table: str
    done: bool
    error: str | None = None
    #: The failure may pass on another attempt (a transient error), so the run retries it itself.
    retryable: bool = False
    attempt: int = 0
    #: The table rests in its `parted` state: its parts are to be walked (by any worker).
    parted: bool = False


def completing_trigger(definition: MachineDef, state: StateDef) -> str:
    """The one move out of an in-flight state that is neither its lost-lease move nor a failure."""
    triggers = {t.trigger for t in definition.transitions_from(state.name)
                if t.trigger != state.lost and t.trigger not in state.moves
                and "needs_operator" not in definition.state(t.dest).tags}
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
            if "parted" in state.tags:
                # Its parts are walked one by one on whichever worker is free; the table goes on
                # (its `next` move, guarded by parts_done) once every part is done.
                if not parts_engine.parts_all_done(ctx.store, flow.task):
                    return TableOutcome(task.qualified_name, False, "parts in progress", parted=True)
                assert state.next is not None
                flow.fire(state.next, parts_done=True)
                continue
            if "in_flight" in state.tags:
                assert state.step is not None
                result = steps[state.step](StepContext(ctx, flow.task, resources))
                if result.problem is not None:
                    failure = definition.leading_to(state.name, "needs_operator")
                    if failure is None:
                        raise InternalError(f"internal error: table state {state.name!r} has no failure move")
                    flow.fire(failure.trigger, error=result.problem, fields=result.fields)
                    return TableOutcome(task.qualified_name, False, result.problem)
                if result.move is not None and result.move not in state.moves:
                    raise InternalError(f"internal error: step {state.step!r} asked for move {result.move!r}, "
                                        f"which table state {state.name!r} does not offer")
                flow.fire(result.move or completing_trigger(definition, state), fields=result.fields)
                continue
            if ctx.should_stop():
                # A resting state is a safe point: the next run takes the table from here.
                return TableOutcome(task.qualified_name, False, "stopped before its next step")
            if state.next is None:
                raise InternalError(f"internal error: table state {state.name!r} names no `next` trigger")
            flow.fire(state.next)
    except InternalError:
        raise
    except MigratorError as exc:
        state = definition.state(flow.state)
        failure = definition.leading_to(state.name, "needs_operator")
        if failure is not None and "done" not in state.tags:
            flow.fire(failure.trigger, error=exc.one_line(), detail={"retryable": exc.retryable})
        return TableOutcome(task.qualified_name, False, exc.one_line(), exc.retryable, flow.task.attempt)


@dataclass(order=True)
class _Queued:
    ready_at: float
    #: Largest first: minus the estimated size (MB) of the table or part, then a stable tie-break.
    rank: tuple[float, int]
    task: TableView = field(compare=False)
    part: PartView | None = field(default=None, compare=False)


def _table_item(task: TableView, ready_at: float = 0.0) -> _Queued:
    return _Queued(ready_at, (-float(task.size_mb), task.id), task)


def _part_item(task: TableView, part: PartView, ready_at: float = 0.0) -> _Queued:
    share = part.est_mb or (task.size_mb / max(1, part.parts_total))
    return _Queued(ready_at, (-float(share), task.id * 100000 + part.part_no), task, part)


def walk_all(ctx: "PhaseContext", steps: Mapping[str, Callable[[StepContext[R]], StepResult]],
             open_resources: Callable[[], AbstractContextManager[R]], concurrency: int,
             part_steps: Mapping[str, "parts_engine.PartStep[R]"] | None = None,
             reconcile_part: "parts_engine.PartReconciler[R] | None" = None) -> list[TableOutcome]:
    """Walk every table of the work queue with ``concurrency`` workers, each with its own resources
    (connections); one table's failure does not stop the others. A table that failed transiently
    is retried in this run after a jittered backoff, up to `tables.max_attempts`, while the other
    tables go on; each scheduled retry is recorded (attempt, reason, wait) for status and history.
    A table split into parts hands its parts to the same queue (largest first across all parts of
    all tables), so one table's parts run on several workers at once; the worker that finishes
    its last part puts the table back in the queue, to go on (validation) from its `parted` state."""
    limit = ctx.config.settings.tables.max_attempts
    backoff = retry_backoff()
    queue = [_table_item(task) for task in work_queue(ctx)]
    cond = threading.Condition()
    outcomes: list[TableOutcome] = []
    crashed: list[BaseException] = []
    active = 0
    active_parts: dict[int, int] = {}
    failed_tables: set[int] = set()

    def next_task() -> _Queued | None:
        nonlocal active
        with cond:
            while not ctx.should_stop() and not crashed:
                now = time.monotonic()
                ready = sorted(q for q in queue if q.ready_at <= now)
                if ready:
                    queue.remove(ready[0])
                    active += 1
                    if ready[0].part is not None:
                        active_parts[ready[0].task.id] = active_parts.get(ready[0].task.id, 0) + 1
                    return ready[0]
                if not queue and active == 0:
                    return None
                soonest = min((q.ready_at for q in queue), default=now + _IDLE_CHECK_SECONDS)
                cond.wait(timeout=min(max(soonest - now, 0.0), _IDLE_CHECK_SECONDS))
            return None

    def queue_parts(task: TableView) -> None:
        """(under cond) The table's parts still to walk, or the table itself when none is left."""
        if task.id in failed_tables:
            return  # it needs an operator: a re-run takes its parts on, not this run
        pending = parts_engine.open_parts(ctx.store, task, limit)
        if pending:
            queue.extend(_part_item(task, p) for p in pending if not any(
                q.part is not None and q.part.id == p.id for q in queue))
        elif any(q.task.id == task.id for q in queue) or active_parts.get(task.id, 0):
            return
        elif parts_engine.parts_all_done(ctx.store, task):
            queue.append(_table_item(ctx.store.get_table(task.id)))
        else:
            # Parts that need an operator and have no attempt left: the table needs one too.
            fail_table(task, "a part needs an operator (no attempt left)")

    def fail_table(task: TableView, error: str) -> None:
        """(under cond) The table into its needs-operator state, once, with its outcome."""
        current = ctx.store.get_table(task.id)
        flow = ctx.table_flow(current)
        failure = flow.definition.leading_to(current.state, "needs_operator")
        if failure is not None:
            try:
                flow.fire(failure.trigger, error=error)
            except ConcurrentUpdate:
                pass
        if task.id not in failed_tables:
            failed_tables.add(task.id)
            outcomes.append(TableOutcome(task.qualified_name, False, error, False, current.attempt))

    def settle_part(item: _Queued, done: bool, error: str | None, retryable: bool) -> None:
        nonlocal active
        assert item.part is not None
        with cond:
            active -= 1
            active_parts[item.task.id] -= 1
            part = ctx.store.get_part(item.part.id)
            if done:
                if not any(q.task.id == item.task.id for q in queue) and active_parts[item.task.id] == 0:
                    queue_parts(item.task)
            elif retryable and not ctx.should_stop():
                wait = backoff.delay(part.attempt)
                ctx.store.add_event(ctx.migration, item.task.subject, RETRY_EVENT,
                                    {"part": part.part_no, "attempt": part.attempt, "max_attempts": limit,
                                     "reason": error, "wait_seconds": round(wait, 1)})
                queue.append(_part_item(item.task, part, time.monotonic() + wait))
            elif not ctx.should_stop() and item.task.id not in failed_tables:
                # A part that needs an operator fails its table (once): the table's retry (a
                # re-run) takes the parts not done from where they are.
                fail_table(item.task, f"part {part.label}: {error}")
            cond.notify_all()

    def settle(item: _Queued, outcome: TableOutcome) -> None:
        nonlocal active
        with cond:
            active -= 1
            if outcome.parted:
                queue_parts(item.task)
            elif not outcome.done and outcome.retryable and outcome.attempt < limit and not ctx.should_stop():
                wait = backoff.delay(outcome.attempt)
                ctx.store.add_event(ctx.migration, item.task.subject, RETRY_EVENT,
                                    {"attempt": outcome.attempt, "max_attempts": limit, "reason": outcome.error,
                                     "wait_seconds": round(wait, 1)})
                log.info("%s: retry %d/%d in %.1fs (%s)", outcome.table, outcome.attempt + 1, limit, wait,
                         outcome.error)
                queue.append(_table_item(item.task, time.monotonic() + wait))
            else:
                outcomes.append(outcome)
            cond.notify_all()

    def worker() -> None:
        try:
            with open_resources() as resources:
                while (item := next_task()) is not None:
                    if item.part is not None:
                        assert part_steps is not None, "a parted table needs the strategy's part steps"
                        try:
                            result = parts_engine.walk_part(ctx, ctx.store.get_table(item.task.id),
                                                            ctx.store.get_part(item.part.id), part_steps,
                                                            reconcile_part, resources)
                        except BaseException:
                            settle_part(item, False, "worker crashed", False)
                            raise
                        settle_part(item, *result)
                        continue
                    try:
                        outcome = walk(ctx, ctx.store.get_table(item.task.id), steps, resources)
                    except BaseException:
                        settle(item, TableOutcome(item.task.qualified_name, False, "worker crashed"))
                        raise
                    settle(item, outcome)
        except BaseException as exc:  # surfaced below, after every worker stopped
            with cond:
                crashed.append(exc)
                cond.notify_all()

    # Parts multiply the work: once a table is split every worker may find something to do. Without
    # parts, no more workers (each with its own sessions) than tables to walk.
    count = max(1, concurrency) if part_steps is not None else min(concurrency, max(1, len(queue)))
    workers = [threading.Thread(target=worker, name=f"table-{i}", daemon=True) for i in range(count)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    if crashed:
        first = crashed[0]
        raise first if isinstance(first, MigratorError) else RemoteError(f"table worker failed: {first}")
    return outcomes
