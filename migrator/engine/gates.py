"""Approval gates: a phase tagged `needs_approval` names its gate; the migration waits there
until an operator approves *that* gate *while it waits there*.

An approval is recorded with who (OS user, host, pid) and when, is valid only in the phase it
was given in (the store clears approvals on every move), and the move out of the gate names
the approval it consumed in its event. `migrator run --approve-<gate>` approves the gate when
the run reaches it, so it is recorded at the gate like any other approval.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from migrator.errors import ApprovalRequired, GateNotOpen

if TYPE_CHECKING:
    from migrator.engine.definitions import MachineDef
    from migrator.engine.context import PhaseContext
    from migrator.store import MigrationView

APPROVED_TRIGGER = "approved"
WAITING_EVENT = "gate_waiting"


def how_to_pass(gate: str, instructions: Mapping[str, str]) -> str:
    """How an operator passes ``gate``, as the strategy says (``instructions``, its registry's gates)."""
    return instructions.get(gate, f"approve the {gate} gate")


def gate_of(definition: "MachineDef", phase: str) -> str | None:
    """The gate the migration waits at in ``phase``, if any."""
    if phase not in definition.states:
        return None
    return definition.state(phase).approval


def _reachable(definition: "MachineDef", starts: set[str], *, stop_at: set[str]) -> set[str]:
    """States reachable from ``starts`` without entering a state of ``stop_at`` or a final one."""
    seen: set[str] = set()
    todo = [s for s in starts if s not in stop_at]
    while todo:
        name = todo.pop()
        if name in seen or definition.state(name).final:
            continue
        seen.add(name)
        todo += [t.dest for t in definition.transitions_from(name) if t.dest not in stop_at]
    return seen


def started_by(definition: "MachineDef", gate: str) -> frozenset[str]:
    """The phases that passing ``gate`` starts: reached from its approved move before the next
    gate, and never before it (e.g. `cutting_over` for the cutover gate). A command that passes
    the gate and is interrupted in one of them continues there when it is run again."""
    at_gate = {name for name, state in definition.states.items() if state.approval == gate}
    others = {name for name, state in definition.states.items() if state.approval and name not in at_gate}
    before = _reachable(definition, {definition.initial}, stop_at=at_gate)
    passed = {t.dest for name in at_gate for t in definition.transitions_from(name, APPROVED_TRIGGER)}
    after = _reachable(definition, passed, stop_at=at_gate | others)
    return frozenset(after - before)


def check_open(definition: "MachineDef", migration: "MigrationView", gate: str) -> bool:
    """Whether the migration waits at ``gate`` (True) or is past it in a phase passing it started
    (False: the interrupted command continues, nothing to approve). Anywhere else: refuse (exit 8,
    one line, nothing recorded)."""
    waiting_at = gate_of(definition, migration.phase)
    if waiting_at == gate:
        return True
    if migration.phase in started_by(definition, gate):
        return False
    if definition.states.get(migration.phase) is not None and definition.state(migration.phase).final:
        where = f"has ended in phase {migration.phase!r}"
    elif waiting_at is not None:
        where = f"waits at the {waiting_at} gate (phase {migration.phase!r}), not at the {gate} gate"
    else:
        where = f"is in phase {migration.phase!r}, not waiting at the {gate} gate"
    gates = sorted({s.approval for s in definition.states.values() if s.approval})
    hint = ("run `migrator status` to see where it stands" if gate in gates
            else f"strategy {migration.strategy!r} has no {gate} gate (its gates: {', '.join(gates) or 'none'})")
    raise GateNotOpen(f"not approved: migration {migration.name!r} {where}; nothing was recorded", hint=hint)


def pass_gate(ctx: "PhaseContext", preview: Mapping[str, Any] | None = None, summary: str | None = None) -> str:
    """The action of a gate phase: leave it if approved here, else stop the run (exit 8).

    ``summary`` (one line) and ``preview`` (recorded) say what the approved move will do.
    """
    gate = ctx.state_def.approval
    assert gate is not None, f"phase {ctx.state_def.name} has no gate"
    if preview is not None and not _waiting_recorded(ctx, gate):
        ctx.store.add_event(ctx.migration, "migration", WAITING_EVENT,
                            {"gate": gate, "summary": summary, **preview}, state=ctx.migration.phase)
    if gate not in ctx.migration.approvals and ctx.options.approves(gate):
        ctx.flow.refresh(ctx.store.record_approval(ctx.migration, gate, {"via": f"run --approve-{gate}"}))
    if gate not in ctx.migration.approvals:
        what = f": {summary}" if summary else ""
        raise ApprovalRequired(f"migration {ctx.migration.name!r} is waiting for {gate} approval{what}",
                               hint=f"review `migrator status`, then run {how_to_pass(gate, ctx.registry.gates)}")
    ctx.facts["gate"] = gate
    return APPROVED_TRIGGER


def _waiting_recorded(ctx: "PhaseContext", gate: str) -> bool:
    last = ctx.store.latest_event(ctx.migration, WAITING_EVENT)
    return last is not None and last.detail.get("gate") == gate and last.from_state == ctx.migration.phase
