"""Phase actions: the work a migration does while it sits in a phase.

Each action returns the trigger that leaves its phase. Strategy modules register
real actions over these defaults; a phase nobody implemented yet stops the run
with a clear message and leaves the migration resumable where it is.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from migrator.engine.registry import Registry
from migrator.errors import ApprovalRequired, NotSupported

if TYPE_CHECKING:
    from migrator.engine.runner import PhaseContext

BUILTIN_ACTIONS = Registry()

#: Every action name the shipped definitions use; all must be registered (a placeholder at worst).
PHASE_ACTIONS = (
    "preflight", "inventory", "provision_target", "replay_objects", "rehearse", "await_write_freeze",
    "copy_tables", "validate", "cutover", "decommission", "baseline", "disable_snapshot_copy",
    "modify_cluster", "wait_for_modify", "verify", "restore_snapshot_copy", "take_snapshot", "restore_snapshot",
)


@BUILTIN_ACTIONS.action("begin")
def begin(ctx: "PhaseContext") -> str:
    return "start"


@BUILTIN_ACTIONS.action("await_approval")
def await_approval(ctx: "PhaseContext") -> str:
    gate = ctx.state_def.approval
    assert gate is not None
    if gate not in ctx.migration.approvals:
        how = {"cutover": "`migrator cutover` or `migrator run --approve-cutover`",
               "decommission": "`migrator decommission --confirm`"}.get(gate, f"approve {gate!r}")
        raise ApprovalRequired(f"migration {ctx.migration.name!r} is waiting for {gate} approval",
                               hint=f"review `migrator status`, then run {how}")
    ctx.facts["gate"] = gate
    return "approved"


def _placeholder(name: str) -> None:
    def not_yet(ctx: "PhaseContext") -> str:
        raise NotSupported(f"phase {ctx.state_def.name!r} ({name}) of strategy {ctx.migration.strategy!r} "
                           "is not implemented in this version of migrator",
                           hint="the migration is saved at this phase; upgrade migrator and re-run to resume")
    BUILTIN_ACTIONS.actions[name] = not_yet


for _name in PHASE_ACTIONS:
    _placeholder(_name)
