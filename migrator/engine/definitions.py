"""Machine definitions: YAML data in states/, checked completely when loaded.

A definition names guards (``conditions``/``unless``) and phase actions; every
name must exist in the registry handed to :func:`load_definition`, so a typo
fails at load time, never halfway through a migration.
"""

from __future__ import annotations

import copy
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from migrator.errors import DefinitionError
from migrator.paths import states_dir

KNOWN_TAGS = frozenset({"final", "done", "resumable", "in_flight", "needs_approval", "needs_operator", "frozen",
                        "parted", "table_work"})
KINDS = ("migration", "table", "part")
#: The machines every data-moving route shares (states/table.yaml, states/part.yaml).
TABLE_MACHINE = "table"
PART_MACHINE = "part"


@dataclass(frozen=True)
class StateDef:
    name: str
    tags: frozenset[str] = frozenset()
    action: str | None = None
    approval: str | None = None
    lost: str | None = None
    #: In-flight table states: the step (strategy-supplied) that does this state's work.
    step: str | None = None
    #: Resting table states: the trigger a table worker takes to go on from here.
    next: str | None = None
    #: In-flight table states: further moves out that only the step may ask for (its StepResult.move).
    moves: tuple[str, ...] = ()

    @property
    def final(self) -> bool:
        return "final" in self.tags


@dataclass(frozen=True)
class TransitionDef:
    trigger: str
    sources: tuple[str, ...]
    dest: str
    conditions: tuple[str, ...] = ()
    unless: tuple[str, ...] = ()


@dataclass(frozen=True)
class MachineDef:
    name: str
    kind: str
    initial: str
    states: Mapping[str, StateDef]
    transitions: tuple[TransitionDef, ...]
    path: Path | None = None
    triggers: frozenset[str] = field(default_factory=frozenset)

    def state(self, name: str) -> StateDef:
        try:
            return self.states[name]
        except KeyError:
            raise DefinitionError(f"state {name!r} is not defined in machine {self.name!r}") from None

    def transitions_from(self, state: str, trigger: str | None = None) -> list[TransitionDef]:
        return [t for t in self.transitions if state in t.sources and (trigger is None or t.trigger == trigger)]

    def tagged(self, tag: str) -> list[str]:
        return [s.name for s in self.states.values() if tag in s.tags]

    def leading_to(self, state: str, tag: str) -> TransitionDef | None:
        """The transition out of ``state`` into a state tagged ``tag`` (e.g. the failure move)."""
        found = [t for t in self.transitions_from(state) if tag in self.state(t.dest).tags]
        return found[0] if found else None


def _as_tuple(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise DefinitionError(f"{where}: expected a name or a list of names, got {value!r}")


def parse_definition(raw: Any, *, guards: Collection[str] | None, actions: Collection[str] | None,
                     path: Path | None = None, steps: Collection[str] | None = None) -> MachineDef:
    """``steps`` None skips the step-name check (reading a machine, not running its tables); ``guards``
    and ``actions`` None skip theirs (reading a machine to display it: `status` needs no registry,
    and every run checks the names against its registry when it loads the machine)."""
    where = str(path) if path else "<definition>"
    problems: list[str] = []
    if not isinstance(raw, dict):
        raise DefinitionError(f"{where}: top level must be a mapping")
    unknown = set(raw) - {"name", "kind", "initial", "states", "transitions"}
    if unknown:
        problems.append(f"unknown top-level keys {sorted(unknown)}")
    name, kind, initial = raw.get("name"), raw.get("kind"), raw.get("initial")
    if kind not in KINDS:
        problems.append(f"kind must be one of {KINDS}, not {kind!r}")
    states: dict[str, StateDef] = {}
    for state_name, spec in (raw.get("states") or {}).items():
        spec = spec or {}
        extra = set(spec) - {"tags", "action", "approval", "lost", "step", "next", "moves"}
        if extra:
            problems.append(f"state {state_name!r}: unknown keys {sorted(extra)}")
        tags = frozenset(_as_tuple(spec.get("tags"), f"{where}: state {state_name}"))
        if tags - KNOWN_TAGS:
            problems.append(f"state {state_name!r}: unknown tags {sorted(tags - KNOWN_TAGS)}")
        action = spec.get("action")
        if action is not None and actions is not None and action not in actions:
            problems.append(f"state {state_name!r}: unknown action {action!r}")
        if "final" in tags and action:
            problems.append(f"state {state_name!r}: a final state cannot have an action")
        if spec.get("approval") and "needs_approval" not in tags:
            problems.append(f"state {state_name!r}: has an approval gate but no needs_approval tag")
        step = spec.get("step")
        if step is not None and "in_flight" not in tags:
            problems.append(f"state {state_name!r}: only in_flight states name a step")
        if step is not None and steps is not None and step not in steps:
            problems.append(f"state {state_name!r}: unknown step {step!r}")
        moves = _as_tuple(spec.get("moves"), f"state {state_name!r} moves")
        if moves and step is None:
            problems.append(f"state {state_name!r}: only states with a step name `moves`")
        states[state_name] = StateDef(state_name, tags, action, spec.get("approval"), spec.get("lost"), step,
                                      spec.get("next"), moves)
    if not states:
        problems.append("no states")
    if initial not in states:
        problems.append(f"initial state {initial!r} is not defined")
    transitions: list[TransitionDef] = []
    for i, spec in enumerate(raw.get("transitions") or []):
        label = f"transition #{i + 1} ({spec.get('trigger', '?')})"
        extra = set(spec) - {"trigger", "source", "dest", "conditions", "unless"}
        if extra:
            problems.append(f"{label}: unknown keys {sorted(extra)}")
        sources = _as_tuple(spec.get("source"), f"{where}: {label}")
        for src in sources:
            if src not in states:
                problems.append(f"{label}: unknown source state {src!r}")
            elif states[src].final:
                problems.append(f"{label}: leaves final state {src!r}")
        if spec.get("dest") not in states:
            problems.append(f"{label}: unknown dest state {spec.get('dest')!r}")
        conditions = _as_tuple(spec.get("conditions"), f"{where}: {label}")
        unless = _as_tuple(spec.get("unless"), f"{where}: {label}")
        for guard in conditions + unless:
            if guards is not None and guard not in guards:
                problems.append(f"{label}: unknown guard {guard!r}")
        if not spec.get("trigger"):
            problems.append(f"{label}: no trigger")
        transitions.append(TransitionDef(str(spec.get("trigger")), sources, str(spec.get("dest")), conditions, unless))
    triggers = frozenset(t.trigger for t in transitions)
    for state in states.values():
        if state.lost and state.lost not in triggers:
            problems.append(f"state {state.name!r}: lost-lease trigger {state.lost!r} is not defined")
        if "in_flight" in state.tags and not state.lost:
            problems.append(f"state {state.name!r}: in_flight states must name a `lost` trigger")
        if "in_flight" in state.tags and not state.step and kind in ("table", "part"):
            problems.append(f"state {state.name!r}: in_flight states must name their `step`")
        for move in state.moves:
            if not any(state.name in t.sources and t.trigger == move for t in transitions):
                problems.append(f"state {state.name!r}: move {move!r} does not leave this state")
        if state.next and not any(state.name in t.sources and t.trigger == state.next for t in transitions):
            problems.append(f"state {state.name!r}: `next` trigger {state.next!r} does not leave this state")
    reachable = {initial}
    frontier = [initial]
    while frontier:
        here = frontier.pop()
        for t in transitions:
            if here in t.sources and t.dest not in reachable:
                reachable.add(t.dest)
                frontier.append(t.dest)
    for state_name in states:
        if state_name not in reachable and state_name in states:
            problems.append(f"state {state_name!r} is unreachable from {initial!r}")
    if problems:
        raise DefinitionError(f"{where}: " + "; ".join(problems))
    return MachineDef(str(name), str(kind), str(initial), states, tuple(transitions), path, triggers)


def load_definition(name: str, *, guards: Collection[str] | None, actions: Collection[str] | None,
                    directory: Path | None = None, steps: Collection[str] | None = None) -> MachineDef:
    path = (directory or states_dir()) / f"{name}.yaml"
    if not path.exists():
        available = ", ".join(sorted(p.stem for p in (directory or states_dir()).glob("*.yaml")))
        raise DefinitionError(f"no machine definition {path}", hint=f"available: {available}")
    try:
        raw = copy.deepcopy(_parsed(path.read_text(encoding="utf-8")))
    except yaml.YAMLError as exc:
        raise DefinitionError(f"{path}: invalid YAML: {exc}") from None
    return parse_definition(raw, guards=guards, actions=actions, path=path, steps=steps)


#: libyaml's loader when PyYAML was built with it (the pure-Python one takes ~15 ms a machine,
#: paid by every `migrator status`); the same safe subset of YAML either way.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@lru_cache(maxsize=32)
def _parsed(text: str) -> Any:
    """A machine's YAML text parsed once per process (a run loads each machine several times:
    the strategy's registry check, the runner, the readers); keyed by the text, so an edited
    file is parsed again."""
    return yaml.load(text, Loader=_LOADER)  # noqa: S506 (a safe loader)
