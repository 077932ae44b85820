"""Definitions in states/ load completely, and a bad one fails at load, not when it fires."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from migrator.engine.definitions import load_definition, parse_definition
from migrator.engine.runner import default_registry
from migrator.errors import DefinitionError
from migrator.paths import states_dir
from migrator.strategies import registry_for

_UNLOAD_COPY = registry_for("unload-copy")
NAMES = dict(guards=_UNLOAD_COPY.guards.keys(), actions=_UNLOAD_COPY.actions.keys())


@pytest.mark.parametrize("name", ["table", "unload-copy", "modify", "snapshot-restore"])
def test_every_shipped_definition_loads_with_its_own_registry(name: str) -> None:
    registry = default_registry() if name == "table" else registry_for(name)
    definition = load_definition(name, guards=registry.guards.keys(), actions=registry.actions.keys())
    assert definition.initial in definition.states
    assert definition.tagged("final") or name == "table"


def test_shipped_files_are_exactly_the_known_machines() -> None:
    assert sorted(p.stem for p in states_dir().glob("*.yaml")) == ["modify", "part", "snapshot-restore", "table",
                                                                   "unload-copy"]


def _raw(name: str) -> dict:  # type: ignore[type-arg]
    return yaml.safe_load((states_dir() / f"{name}.yaml").read_text())


def test_misspelt_guard_fails_at_load(tmp_path: Path) -> None:
    raw = _raw("table")
    raw["transitions"][1]["conditions"] = ["manifest_recordd"]
    (tmp_path / "table.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(DefinitionError, match="unknown guard 'manifest_recordd'"):
        load_definition("table", directory=tmp_path, **NAMES)


@pytest.mark.parametrize("mutate, message", [
    (lambda r: r["states"]["preflight"].update(action="preflite"), "unknown action 'preflite'"),
    (lambda r: r["transitions"].append({"trigger": "x", "source": "created", "dest": "nowhere"}),
     "unknown dest state 'nowhere'"),
    (lambda r: r["transitions"].append({"trigger": "x", "source": "completed", "dest": "created"}),
     "leaves final state 'completed'"),
    (lambda r: r["states"]["preflight"].update(tags=["resumable", "sticky"]), "unknown tags"),
    (lambda r: r.update(initial="begin"), "initial state 'begin' is not defined"),
    (lambda r: r["states"].update(orphan={"action": "begin"}), "'orphan' is unreachable"),
    (lambda r: r["transitions"][0].update(unles=["x"]), "unknown keys"),
])
def test_structural_mistakes_are_reported(mutate, message: str) -> None:  # type: ignore[no-untyped-def]
    raw = _raw("unload-copy")
    mutate(raw)
    with pytest.raises(DefinitionError, match=message):
        parse_definition(raw, **NAMES)


def test_in_flight_states_must_say_how_they_are_recovered() -> None:
    raw = _raw("table")
    del raw["states"]["loading"]["lost"]
    with pytest.raises(DefinitionError, match="must name a `lost` trigger"):
        parse_definition(raw, **NAMES)


def test_missing_definition_lists_the_available_ones(tmp_path: Path) -> None:
    with pytest.raises(DefinitionError) as info:
        load_definition("nope", **NAMES)
    assert "unload-copy" in info.value.one_line()


def test_a_strategy_missing_an_action_fails_when_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    from migrator.engine.registry import Registry
    from migrator.strategies import modify

    partial = Registry(dict(modify.REGISTRY.guards), {k: v for k, v in modify.REGISTRY.actions.items()
                                                      if k != "verify"})
    monkeypatch.setattr(modify, "registry", lambda: partial)
    with pytest.raises(DefinitionError, match="unknown action 'verify'"):
        registry_for("modify")


def test_a_misspelt_registration_fails_when_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    from migrator.engine.registry import Registry
    from migrator.strategies import modify

    named = modify.registry()  # the route's own actions with the shared ones its YAML names
    misspelt = Registry(dict(named.guards), {**named.actions, "verfy": lambda ctx: "verified"})
    monkeypatch.setattr(modify, "registry", lambda: misspelt)
    with pytest.raises(DefinitionError, match="never names: verfy"):
        registry_for("modify")


def test_an_illegal_move_is_an_internal_error_not_a_preflight_failure(store) -> None:  # type: ignore[no-untyped-def]
    from migrator.engine.flows import TableFlow
    from migrator.errors import InternalError, MigratorError
    from migrator.store import TableSpec

    registry = default_registry()
    table = load_definition("table", guards=registry.guards.keys(), actions=registry.actions.keys())
    m = store.create_migration("m", "unload-copy", "h", {}, "created")
    store.add_tables(m, [TableSpec("public", "t", 1, 1)], table.initial)
    flow = TableFlow(table, registry, store, store.list_tables(m)[0])
    with pytest.raises(InternalError, match="'complete_load' is not a legal move from state 'pending'") as caught:
        flow.fire("complete_load")
    assert caught.value.exit_code == 1 and isinstance(caught.value, MigratorError)
    assert store.list_tables(m)[0].state == "pending"
