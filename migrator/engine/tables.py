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
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from migrator.engine import parts as parts_engine
from migrator.engine.definitions import MachineDef, StateDef
from migrator.engine.flows import DEFAULT_TABLE_LEASE_SECONDS as DEFAULT_LEASE_SECONDS
from migrator.errors import ConcurrentUpdate, InternalError, MigratorError, RemoteError
from migrator.retry import Backoff
from migrator.store import ExtraEvent, HeldMoves, PartView, PickedMove, Probe, TableView

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
    #: The moves that ended the walk, not yet written: the worker's next pick writes them (hold_done).
    held: HeldMoves | None = None


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
         resources: R, keep_owner: bool = False, hold_done: bool = False) -> TableOutcome:
    """Walk one table to its done state, or into the state needing an operator. With
    ``keep_owner`` (a picked table) the reservation lasts until the walk ends. With ``hold_done``
    the move into the done state is not written here but handed back (TableOutcome.held) for
    the caller's next pick to write in its transaction."""
    flow = ctx.table_flow(task)
    flow.keep_owner = keep_owner
    flow.hold_done = hold_done and keep_owner
    flow.announce = _announcer(ctx, steps, resources)
    definition = flow.definition
    try:
        while True:
            state = definition.state(flow.state)
            if "done" in state.tags:
                return TableOutcome(task.qualified_name, True, held=flow.held())
            if "parted" in state.tags:
                # Its parts are picked one by one by whichever worker is free (store.pick_work);
                # the table goes on (its `next` move, guarded by parts_done) once every part is done.
                if not parts_engine.parts_all_done(ctx.store, flow.task):
                    return TableOutcome(task.qualified_name, False, "parts in progress", parted=True)
                assert state.next is not None
                flow.fire(state.next, parts_done=True)
                continue
            if "in_flight" in state.tags:
                assert state.step is not None
                result = steps[state.step](StepContext(ctx, flow.task, resources))
                if result.problem is not None:
                    flow.fail_for_operator(result.problem, result.fields)
                    return TableOutcome(task.qualified_name, False, result.problem)
                if result.move is not None and result.move not in state.moves:
                    raise InternalError(f"internal error: step {state.step!r} asked for move {result.move!r}, "
                                        f"which table state {state.name!r} does not offer")
                # Held back (defer) when it rests the table and the walk goes on: written with the next move.
                flow.fire(result.move or completing_trigger(definition, state), fields=result.fields, defer=True)
                continue
            if ctx.should_stop():
                # A resting state is a safe point: the next run (or another worker) takes the table from here.
                flow.flush()
                if keep_owner:
                    ctx.store.release_table(flow.task)
                return TableOutcome(task.qualified_name, False, "stopped before its next step")
            if state.next is None:
                raise InternalError(f"internal error: table state {state.name!r} names no `next` trigger")
            flow.fire(state.next)
    except InternalError:
        raise
    except MigratorError as exc:
        flow.fail_on_error(exc)
        return TableOutcome(task.qualified_name, False, exc.one_line(), exc.retryable, flow.task.attempt)


#: A step may name what it records first (its ``announce``: events for the table as it will be
#: when the step starts, e.g. the statement it is about to run), written with the move into the
#: step's state instead of in a transaction of its own.
Announce = Callable[[StepContext[R]], list[ExtraEvent]]


def _announcer(ctx: "PhaseContext", steps: Mapping[str, Callable[[StepContext[R]], StepResult]],
               resources: R) -> Callable[[str, TableView], list[ExtraEvent]]:
    def announce(step: str, task: TableView) -> list[ExtraEvent]:
        fn: Announce[R] | None = getattr(steps.get(step), "announce", None)
        return list(fn(StepContext(ctx, task, resources))) if fn is not None else []
    return announce


@dataclass(frozen=True)
class _Picking:
    """What a pick asks the store for, worked out once per pass from the table and part machines'
    tags: one ordered list of probes (tables and parts further along first), the failed ones to
    retry, and every state a pass still waits for."""

    states: tuple[str, ...]
    retry_states: tuple[str, ...]
    not_done: tuple[str, ...]
    max_attempts: int
    probes: tuple[Probe, ...] = ()
    parted: tuple[str, ...] = ()
    part_done: tuple[str, ...] = ()
    part_not_done: tuple[str, ...] = ()
    part_retry_states: tuple[str, ...] = ()

    @classmethod
    def of(cls, ctx: "PhaseContext", with_parts: bool = True) -> "_Picking":
        definition = ctx.table_definition
        limit = ctx.config.settings.tables.max_attempts
        done = set(definition.tagged("done"))
        in_flight = set(definition.tagged("in_flight"))
        needs_operator = set(definition.tagged("needs_operator"))
        parted = tuple(definition.tagged("parted"))
        order = list(definition.states)
        resting = [s for s in order if s not in done | in_flight | needs_operator]
        retry_states = tuple(s for s in order if s in needs_operator)
        part_def = parts_engine.part_definition()
        p_order = list(part_def.states)
        p_done = set(part_def.tagged("done"))
        p_in_flight = [s for s in p_order if s in set(part_def.tagged("in_flight"))]
        p_needs_operator = [s for s in p_order if s in set(part_def.tagged("needs_operator"))]
        p_resting = [s for s in p_order if s not in p_done | set(p_in_flight) | set(p_needs_operator)]
        # A part goes on while its table is parted, and also once the table failed for another
        # part (work done is kept); a failed part is retried only while its table is parted.
        with_table = parted + retry_states
        part_probes: list[Probe] = []
        if with_parts:
            part_probes += [Probe("part", s, table_states=with_table) for s in p_in_flight]  # a dead owner's
            part_probes += [Probe("part", s, table_states=with_table) for s in reversed(p_resting)]
            part_probes += [Probe("part", s, limit, table_states=parted) for s in p_needs_operator]
        # Further along first: a table half-way holds staged files; finishing it frees them. Parts
        # come before tables not started (their table is half-way), largest first across tables.
        probes: list[Probe] = []
        for state in reversed(resting):
            if state == definition.initial:
                probes.extend(part_probes)
            probes.append(Probe("table", state, joinable=state in parted))
        if definition.initial not in resting:
            probes.extend(part_probes)
        probes.extend(Probe("table", s, limit) for s in retry_states)
        return cls(tuple(reversed(resting)), retry_states, tuple(s for s in order if s not in done), limit,
                   tuple(probes), parted, tuple(sorted(p_done)), tuple(s for s in p_order if s not in p_done),
                   tuple(p_needs_operator))


def pick(ctx: "PhaseContext", picking: _Picking, lease_seconds: float,
         advance: Callable[[TableView], PickedMove | None] | None = None,
         held: HeldMoves | None = None) -> TableView | PartView | None:
    """The next table or part for this worker, reserved for it (one store transaction), with a
    table's first move already taken when ``advance`` gives one, and the end of the worker's
    previous table (``held``) written first."""
    return ctx.store.pick_work(ctx.migration, picking.probes, lease_seconds, part_done_states=picking.part_done,
                               advance=advance, settle=held)


def first_move(ctx: "PhaseContext", steps: Mapping[str, Callable[[StepContext[R]], StepResult]],
               resources: R) -> Callable[[TableView], PickedMove | None]:
    """For a picked table resting where the walk would at once take its `next` move into a step
    (unguarded, e.g. pending -> unloading): that move, so the pick takes it in its own transaction
    (the walk then starts with the step). None when stopping, or for any other move."""
    definition = ctx.table_definition
    announce = _announcer(ctx, steps, resources)
    lease_seconds = DEFAULT_LEASE_SECONDS  # as TableFlow's claim

    def advance(task: TableView) -> PickedMove | None:
        state = definition.state(task.state)
        if state.next is None or {"in_flight", "done", "parted", "needs_operator"} & set(state.tags):
            return None
        moves = definition.transitions_from(task.state, state.next)
        if len(moves) != 1 or moves[0].conditions or moves[0].unless:
            return None
        dest = definition.state(moves[0].dest)
        if "in_flight" not in dest.tags or dest.step is None or ctx.should_stop():
            return None
        new_attempt = task.state == definition.initial  # as TableFlow: a fresh attempt leaves the initial state
        would_be = replace(task, state=dest.name, attempt=task.attempt + int(new_attempt))
        return PickedMove(state.next, dest.name, lease_seconds, new_attempt, events=announce(dest.step, would_be))
    return advance


def walk_all(ctx: "PhaseContext", steps: Mapping[str, Callable[[StepContext[R]], StepResult]],
             open_resources: Callable[[], AbstractContextManager[R]], concurrency: int,
             part_steps: Mapping[str, "parts_engine.PartStep[R]"] | None = None,
             reconcile_part: "parts_engine.PartReconciler[R] | None" = None) -> list[TableOutcome]:
    """Walk every table not done with ``concurrency`` threads, each with its own resources
    (connections); one table's failure does not stop the others.

    Tables and parts come from the store one pick at a time (`Store.pick_work`: index probes,
    with SKIP LOCKED on PostgreSQL), so any number of processes (`migrator run --worker`) share
    the pass: each table or part is reserved by one worker from its first step to its last. A
    table split into parts rests in its `parted` state while its parts are picked, largest first
    across all parts of all tables, so one table's parts run on several workers and processes at
    once; once they are all done the table is picked again and goes on (join_parts). A table or
    part that failed transiently gets a retry time in the store (attempt, reason, wait recorded)
    and any worker picks it again then, up to `tables.max_attempts`; a part needing an operator
    fails its table. The pass ends when nothing is left to pick, nothing runs here and nothing
    is held elsewhere; while others hold work this waits, handing back the tables and parts of
    workers that died (`ctx.recover`)."""
    # A process without the strategy's part steps never picks a part (every process of a
    # migration decides the same from its config: part_steps.any_parted).
    picking = _Picking.of(ctx, with_parts=part_steps is not None)
    backoff = retry_backoff()
    lease_seconds = DEFAULT_LEASE_SECONDS
    if ctx.role == "leader":
        # A new pass gives every failed table and part with attempts left one more go (as a re-run always did).
        ctx.store.arm_retries(ctx.migration, picking.retry_states, picking.max_attempts)
        ctx.store.arm_part_retries(ctx.migration, picking.part_retry_states, picking.max_attempts)
    _recover(ctx)
    failed_tables: set[int] = set()
    cond = threading.Condition()
    outcomes: list[TableOutcome] = []
    crashed: list[BaseException] = []
    active = 0
    finished = False

    def next_task(advance: Callable[[TableView], PickedMove | None],
                  held: HeldMoves | None) -> TableView | PartView | None:
        nonlocal active, finished
        with cond:
            try:
                while not ctx.should_stop() and not crashed and not finished:
                    task = pick(ctx, picking, lease_seconds, advance, held)
                    held = None  # written by that pick
                    if task is not None:
                        active += 1
                        return task
                    if active == 0 and not ctx.store.work_elsewhere(
                            ctx.migration, picking.not_done, picking.retry_states, picking.max_attempts,
                            part_not_done=picking.part_not_done, part_retry_states=picking.part_retry_states,
                            parted_states=picking.parted):
                        _fail_stuck_parted(ctx, picking, outcomes, failed_tables)
                        finished = True
                        cond.notify_all()
                        return None
                    cond.wait(timeout=_IDLE_CHECK_SECONDS)
                    if active == 0:
                        _recover(ctx)  # a worker that died hands its tables back here
                return None
            finally:
                if held is not None:  # no pick wrote it (stopping): on its own
                    ctx.store.pick_work(ctx.migration, (), lease_seconds, settle=held)

    def settle(task: TableView, outcome: TableOutcome) -> None:
        nonlocal active
        with cond:
            active -= 1
            limit = picking.max_attempts
            if outcome.parted:
                pass  # its parts are picked now; the table again once they are done
            elif not outcome.done and outcome.retryable and outcome.attempt < limit and not ctx.should_stop():
                wait = backoff.delay(outcome.attempt)
                ctx.store.schedule_retry(task, wait, RETRY_EVENT,
                                         {"attempt": outcome.attempt, "max_attempts": limit,
                                          "reason": outcome.error, "wait_seconds": round(wait, 1)})
                log.info("%s: retry %d/%d in %.1fs (%s)", outcome.table, outcome.attempt + 1, limit, wait,
                         outcome.error)
            else:
                outcomes.append(outcome)
            cond.notify_all()

    def fail_table(table_id: int, error: str) -> None:
        """(under cond) A part needs an operator: its table into its needs-operator state, once."""
        current = ctx.store.get_table(table_id)
        flow = ctx.table_flow(current)
        failure = flow.definition.leading_to(current.state, "needs_operator")
        if failure is not None and "parted" in flow.definition.state(current.state).tags:
            try:
                flow.fire(failure.trigger, error=error)
            except ConcurrentUpdate:
                pass  # another worker failed (or moved) it first
        if table_id not in failed_tables:
            failed_tables.add(table_id)
            outcomes.append(TableOutcome(current.qualified_name, False, error, False, current.attempt))

    def settle_part(part: PartView, done: bool, error: str | None, retryable: bool) -> None:
        nonlocal active
        with cond:
            active -= 1
            now = ctx.store.get_part(part.id)
            task = ctx.store.get_table(part.table_id)
            limit = picking.max_attempts
            if done:
                pass  # the table is picked again (join_parts) once its last part is done
            elif retryable and now.attempt < limit and not ctx.should_stop():
                wait = backoff.delay(now.attempt)
                ctx.store.schedule_part_retry(now, task.subject, wait, RETRY_EVENT,
                                              {"attempt": now.attempt, "max_attempts": limit, "reason": error,
                                               "wait_seconds": round(wait, 1)})
                log.info("%s part %s: retry %d/%d in %.1fs (%s)", task.qualified_name, now.label, now.attempt + 1,
                         limit, wait, error)
            elif not ctx.should_stop():
                # A part that needs an operator fails its table (once): the table's retry (a re-run)
                # takes the parts not done from where they are.
                fail_table(task.id, f"part {now.label}: {error}")
            cond.notify_all()

    def walk_picked_part(part: PartView, resources: R) -> None:
        if part_steps is None:
            raise InternalError(f"internal error: part {part.label} picked, but the strategy gave no part steps")
        try:
            result = parts_engine.walk_part(ctx, ctx.store.get_table(part.table_id), part, part_steps,
                                            reconcile_part, resources, picked=True)
        except BaseException:
            settle_part(part, False, "worker crashed", False)
            raise
        settle_part(part, *result)

    def worker() -> None:
        try:
            with open_resources() as resources:
                advance = first_move(ctx, steps, resources)
                held: HeldMoves | None = None  # the end of the previous table: the next pick writes it
                while (task := next_task(advance, held)) is not None:
                    held = None
                    if isinstance(task, PartView):
                        walk_picked_part(task, resources)
                        continue
                    try:
                        outcome = walk(ctx, task, steps, resources, keep_owner=True, hold_done=True)
                    except BaseException:
                        settle(task, TableOutcome(task.qualified_name, False, "worker crashed"))
                        raise
                    held = outcome.held
                    settle(task, outcome)
        except BaseException as exc:  # surfaced below, after every worker stopped
            with cond:
                crashed.append(exc)
                cond.notify_all()

    # Parts multiply the work: once a table is split every worker may find something to do. Without
    # parts, no more workers (each with its own sessions) than tables left to walk.
    count = max(1, concurrency)
    if part_steps is None:
        left = sum(c.tables for c in ctx.store.count_by_state(ctx.migration) if c.state in picking.not_done)
        count = min(count, max(1, left))
    workers = [threading.Thread(target=worker, name=f"table-{i}", daemon=True) for i in range(count)]
    ctx.pass_cache = {}  # what this pass reads once for all its workers (ctx.shared)
    try:
        for w in workers:
            w.start()
        for w in workers:
            w.join()
    finally:
        ctx.pass_cache = None
    if crashed:
        first = crashed[0]
        raise first if isinstance(first, MigratorError) else RemoteError(f"table worker failed: {first}")
    return outcomes


def _fail_stuck_parted(ctx: "PhaseContext", picking: _Picking, outcomes: list[TableOutcome],
                       failed_tables: set[int]) -> None:
    """At the end of a pass: a table still parted while none of its parts is left to pick (a part
    needs an operator, with no attempt or retry left) needs an operator too, so a re-run retries
    it instead of leaving it parted for ever."""
    if not picking.parted:
        return
    for task in ctx.store.list_tables(ctx.migration, states=list(picking.parted)):
        if parts_engine.parts_all_done(ctx.store, task):
            continue  # joinable: picked by the next pick (it raced this check)
        flow = ctx.table_flow(task)
        failure = flow.definition.leading_to(task.state, "needs_operator")
        if failure is None:
            continue
        try:
            flow.fire(failure.trigger, error="a part needs an operator (no attempt left)")
        except ConcurrentUpdate:
            continue
        if task.id not in failed_tables:
            failed_tables.add(task.id)
            outcomes.append(TableOutcome(task.qualified_name, False, "a part needs an operator", False, task.attempt))


def _recover(ctx: "PhaseContext") -> None:
    try:
        recovered = ctx.recover()
    except MigratorError as exc:  # another worker recovered it first, or a store hiccup: the next wait retries
        log.info("recovering tables of a dead worker: %s", exc.one_line())
        return
    if recovered:
        log.info("handed back %d table(s) whose worker died: %s", len(recovered), ", ".join(recovered[:5]))
