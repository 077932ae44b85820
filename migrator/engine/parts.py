"""Table parts: the part machine (states/part.yaml) and the walk of one part.

A big table is split into parts (the strategy plans them and records their boundaries before
the first part starts). The table then rests in its `parted`-tagged state while its parts are
walked, each on whichever table worker of whichever process is free, largest first across all
parts of all tables: parts are picked from the store like tables (store.pick_work, from
engine/tables.py), each reserved for its worker under a lease its heartbeat renews. A part is walked exactly as a table is: `next` from a
resting state, the state's `step` (strategy-supplied) in flight, the completing move with the
step's findings. An in-flight part whose owner is gone goes back through its `lost` trigger,
with the facts the strategy's reconciler reads (e.g. the part's load marker).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from migrator.engine.definitions import MachineDef, load_definition
from migrator.engine.guards import BUILTIN
from migrator.engine.machine import PersistedMachine
from migrator.engine.registry import Registry
from migrator.errors import InternalError, MigratorError
from migrator.store import PartView, Store, TableView

if TYPE_CHECKING:
    from migrator.engine.context import PhaseContext

R = TypeVar("R")
PART_MACHINE = "part"
PART_LEASE_SECONDS = 120.0
#: The event each part's committed load leaves in history (detail: part, rows).
PART_LOADED_EVENT = "part_loaded"


@lru_cache(maxsize=1)
def part_definition() -> MachineDef:
    return load_definition(PART_MACHINE, guards=BUILTIN.guards.keys(), actions=None)


@dataclass
class PartStepContext(Generic[R]):
    """What a part step gets: the phase context, its table and part as stored now, the worker's resources."""

    phase: "PhaseContext"
    task: TableView
    part: PartView
    resources: R


@dataclass
class PartResult:
    fields: dict[str, Any]
    problem: str | None = None
    move: str | None = None


PartStep = Callable[[PartStepContext[R]], PartResult]
#: Facts for a part found in flight with its owner gone (e.g. {"load_committed": True, "fields": {...}}).
PartReconciler = Callable[[PartStepContext[R]], Mapping[str, Any]]


class PartFlow(PersistedMachine):
    """A part's machine; entering an in-flight state takes the part's lease, leaving releases it."""

    def __init__(self, store: Store, task: TableView, part: PartView, registry: Registry | None = None,
                 settings: Any = None, lease_seconds: float = PART_LEASE_SECONDS) -> None:
        self.store = store
        self.task = task
        self.lease_seconds = lease_seconds
        #: Set for a picked part: its reservation outlives the resting states between steps, so no
        #: other worker takes the part half-way (store.pick_work); done or failed gives it back.
        self.keep_owner = False
        definition = part_definition()
        super().__init__(definition, registry or BUILTIN, part, part.state, self._persist, settings)

    def _persist(self, trigger: str, dest: str, facts: Mapping[str, Any]) -> PartView:
        part: PartView = self.subject
        fields = dict(facts.get("fields", {}))
        detail = dict(facts.get("detail", {}))
        dest_def = self.definition.state(dest)
        if "needs_operator" in dest_def.tags and "error" in facts:
            fields["last_error"] = str(facts["error"])
            detail["error"] = str(facts["error"])
        event, event_detail = None, None
        if dest_def.name != part.state and fields.get("rows_loaded") is not None and trigger != "requeue":
            event, event_detail = PART_LOADED_EVENT, {"rows": fields["rows_loaded"], "attempt": part.attempt}
        if "in_flight" in dest_def.tags:
            return self.store.move_part(part, self.task.subject, trigger, dest, fields=fields, detail=detail,
                                        take_lease_seconds=self.lease_seconds,
                                        new_attempt=part.state == self.definition.initial)
        keep = self.keep_owner and not ({"done", "needs_operator"} & dest_def.tags)
        return self.store.move_part(part, self.task.subject, trigger, dest, fields=fields, detail=detail,
                                    release_lease=not keep, event=event, event_detail=event_detail)

    @property
    def part(self) -> PartView:
        return self.subject  # type: ignore[no-any-return]


def done_states() -> list[str]:
    return part_definition().tagged("done")


def parts_all_done(store: Store, task: TableView) -> bool:
    parts = store.list_parts(task.id)
    done = set(done_states())
    return bool(parts) and all(p.state in done for p in parts)


def walk_part(ctx: "PhaseContext", task: TableView, part: PartView, steps: Mapping[str, PartStep[R]],
              reconcile: PartReconciler[R] | None, resources: R, picked: bool = False) -> tuple[bool, str | None, bool]:
    """Walk one part to a done state. Returns (done, error, retryable). A ``picked`` part
    (store.pick_work) is reserved for this walk; one picked in flight was its dead owner's."""
    flow = PartFlow(ctx.store, task, part, ctx.registry, ctx.config.settings)
    flow.keep_owner = picked
    orphan = picked and "in_flight" in flow.definition.state(part.state).tags
    definition = flow.definition
    limit = ctx.config.settings.tables.max_attempts
    try:
        while True:
            state = definition.state(flow.state)
            if "done" in state.tags:
                return True, None, False
            if "in_flight" in state.tags and (orphan or flow.part.owner != ctx.store.owner_label()):
                # Left in flight by a worker that is gone (a pick only hands out parts nobody
                # alive holds): back through the state's `lost` move, with what the target says.
                orphan = False
                assert state.lost is not None
                facts = dict(reconcile(PartStepContext(ctx, task, flow.part, resources))) if reconcile else {}
                previous = part.taken_from if picked else flow.part.owner
                flow.fire(state.lost, detail={"reason": "owner gone", "previous_owner": previous}, **facts)
                continue
            if "in_flight" in state.tags:
                assert state.step is not None
                result = steps[state.step](PartStepContext(ctx, task, flow.part, resources))
                if result.problem is not None:
                    flow.fail_for_operator(result.problem, result.fields)
                    return False, result.problem, False
                if result.move is not None and result.move not in state.moves:
                    raise InternalError(f"internal error: step {state.step!r} asked for move {result.move!r}")
                flow.fire(result.move or _completing(definition, state.name), fields=result.fields)
                continue
            if "needs_operator" in state.tags and flow.part.attempt >= limit:
                return False, flow.part.last_error or "part needs an operator", False
            if ctx.should_stop():
                # A resting state is a safe point: any worker takes the part on from here.
                if picked:
                    ctx.store.release_part(flow.part)
                return False, "stopped before its next step", False
            if state.next is None:
                raise InternalError(f"internal error: part state {state.name!r} names no `next` trigger")
            flow.fire(state.next)
    except InternalError:
        raise
    except MigratorError as exc:
        flow.fail_on_error(exc)
        return False, exc.one_line(), exc.retryable and flow.part.attempt < limit


def _completing(definition: MachineDef, state: str) -> str:
    st = definition.state(state)
    triggers = {t.trigger for t in definition.transitions_from(state)
                if t.trigger != st.lost and t.trigger not in st.moves
                and "needs_operator" not in definition.state(t.dest).tags}
    if len(triggers) != 1:
        raise InternalError(f"internal error: part state {state!r} has completing moves {sorted(triggers)}")
    return triggers.pop()


def recopy_parts(ctx: "PhaseContext", task: TableView, which: Callable[[PartView], bool],
                 reason: str) -> int:
    """Send the parts ``which`` picks back to be copied again (their `recopy` move); returns how many."""
    definition = part_definition()
    moved = 0
    for part in ctx.store.list_parts(task.id):
        if which(part) and definition.transitions_from(part.state, "recopy"):
            PartFlow(ctx.store, task, part, ctx.registry, ctx.config.settings).fire(
                "recopy", detail={"reason": reason})
            moved += 1
    return moved
