"""Persisted state machines: a `transitions` machine whose every move is first
written to the checkpoint store (compare-and-set), then taken in memory.

If the store refuses (someone else moved the subject), the exception escapes
from the `before_state_change` hook and `transitions` leaves the in-memory state
untouched, so memory never runs ahead of the store.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from transitions import EventData, Machine, MachineError

from migrator.engine.definitions import MachineDef
from migrator.engine.registry import GuardContext, Registry
from migrator.errors import InternalError, MigratorError, PreflightFailed

Persist = Callable[[str, str, Mapping[str, Any]], Any]


class _Model:
    """The object `transitions` drives; it carries the stored subject between moves."""

    def __init__(self, subject: Any) -> None:
        self.subject = subject
        self.failed_guards: list[str] = []
        self.state: str
        self.trigger: Callable[..., bool]  # added by `transitions`


class PersistedMachine:
    def __init__(self, definition: MachineDef, registry: Registry, subject: Any, state: str,
                 persist: Persist, settings: Any = None) -> None:
        self.definition = definition
        self._persist = persist
        self._registry = registry
        self._settings = settings
        self.model = _Model(subject)
        definition.state(state)  # an unknown stored state is a definition/store mismatch: fail loudly
        self.machine = Machine(
            model=self.model,
            states=list(definition.states),
            initial=state,
            transitions=[self._transition(t.trigger, t.sources, t.dest, t.conditions, t.unless)
                         for t in definition.transitions],
            auto_transitions=False,
            send_event=True,
            before_state_change=self._write_through,
            ignore_invalid_triggers=False,
        )

    def _guard(self, name: str, *, negate: bool = False) -> Callable[[EventData], bool]:
        fn = self._registry.guards[name]

        def check(event: EventData) -> bool:
            ok = bool(fn(GuardContext(self.model.subject, event.kwargs, self._settings))) != negate
            if not ok:
                self.model.failed_guards.append(f"not {name}" if negate else name)
            return ok
        return check

    def _transition(self, trigger: str, sources: tuple[str, ...], dest: str, conditions: tuple[str, ...],
                    unless: tuple[str, ...]) -> dict[str, Any]:
        # `unless` guards become negated conditions so every refusal is reported the same way.
        guards = [self._guard(g) for g in conditions] + [self._guard(g, negate=True) for g in unless]
        return {"trigger": trigger, "source": list(sources), "dest": dest, "conditions": guards}

    def _write_through(self, event: EventData) -> None:
        assert event.transition is not None
        self.model.subject = self._persist(event.event.name, str(event.transition.dest), event.kwargs)

    @property
    def state(self) -> str:
        return self.model.state

    @property
    def subject(self) -> Any:
        return self.model.subject

    def refresh(self, subject: Any) -> None:
        """Adopt a re-read subject whose state is unchanged (e.g. after recording an approval)."""
        assert self._state_of(subject) == self.state, "refresh must not change the state"
        self.model.subject = subject

    def _state_of(self, subject: Any) -> str:
        return str(getattr(subject, "phase", getattr(subject, "state", self.state)))

    def fire(self, trigger: str, **facts: Any) -> Any:
        """Take ``trigger`` (guards see ``facts``); returns the stored subject after the move."""
        self.model.failed_guards = []
        try:
            moved = self.model.trigger(trigger, **facts)
        except MachineError:
            # The machine decides which moves exist; code asking for another one is a bug, not bad input.
            allowed = sorted({t.trigger for t in self.definition.transitions_from(self.state)})
            raise InternalError(
                f"internal error: {self.definition.name}: {trigger!r} is not a legal move from state "
                f"{self.state!r} (legal here: {', '.join(allowed) or 'nothing, it is final'}); nothing was written",
                hint="please report this with the --traceback output") from None
        if not moved:
            raise PreflightFailed(f"{self.definition.name}: {trigger!r} from {self.state!r} refused by guard(s) "
                                  f"{', '.join(dict.fromkeys(self.model.failed_guards))}")
        return self.model.subject

    def fail_for_operator(self, problem: str, fields: Mapping[str, Any]) -> None:
        """A step found a problem only an operator can fix: take this state's failure move."""
        failure = self.definition.leading_to(self.state, "needs_operator")
        if failure is None:
            raise InternalError(f"internal error: {self.definition.name} state {self.state!r} has no failure move")
        self.fire(failure.trigger, error=problem, fields=fields)

    def fail_on_error(self, exc: MigratorError) -> None:
        """A step raised: record it through the failure move, unless the subject is already done
        (a failure after the last move changes nothing) or this state has none."""
        failure = self.definition.leading_to(self.state, "needs_operator")
        if failure is not None and "done" not in self.definition.state(self.state).tags:
            self.fire(failure.trigger, error=exc.one_line(), detail={"retryable": exc.retryable})
