"""Names that machine definitions may use, bound to Python callables."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from migrator.engine.context import PhaseContext


@dataclass(frozen=True)
class GuardContext:
    """What a guard may look at: the subject's stored row and the facts the trigger was given."""

    subject: Any
    facts: Mapping[str, Any]
    settings: Any = None


Guard = Callable[[GuardContext], bool]
Action = Callable[["PhaseContext"], str]
#: A table step (named by an in-flight state of states/table.yaml): does the work, returns what it found.
Step = Callable[[Any], Any]


@dataclass
class Registry:
    guards: dict[str, Guard] = field(default_factory=dict)
    actions: dict[str, Action] = field(default_factory=dict)
    steps: dict[str, Step] = field(default_factory=dict)
    #: How an operator passes each gate (a state's ``approval:``), as the strategy's route says.
    gates: dict[str, str] = field(default_factory=dict)

    def guard(self, name: str) -> Callable[[Guard], Guard]:
        def register(fn: Guard) -> Guard:
            self.guards[name] = fn
            return fn
        return register

    def action(self, name: str) -> Callable[[Action], Action]:
        def register(fn: Action) -> Action:
            self.actions[name] = fn
            return fn
        return register

    def step(self, name: str) -> Callable[[Step], Step]:
        def register(fn: Step) -> Step:
            self.steps[name] = fn
            return fn
        return register

    def extended(self, other: "Registry") -> "Registry":
        """A copy where ``other``'s names replace ours."""
        return Registry({**self.guards, **other.guards}, {**self.actions, **other.actions},
                        {**self.steps, **other.steps}, {**self.gates, **other.gates})
