"""The engine's own phase actions, shared by every strategy: leaving `created`, and the gates.

Strategies register every other action their `states/<strategy>.yaml` names; there are no
placeholders, so a missing or misspelt registration fails when the strategy is loaded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from migrator.engine.gates import pass_gate
from migrator.engine.registry import Registry

if TYPE_CHECKING:
    from migrator.engine.context import PhaseContext

BUILTIN_ACTIONS = Registry()


@BUILTIN_ACTIONS.action("begin")
def begin(ctx: "PhaseContext") -> str:
    return "start"


@BUILTIN_ACTIONS.action("await_approval")
def await_approval(ctx: "PhaseContext") -> str:
    return pass_gate(ctx)
