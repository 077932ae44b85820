"""Each strategy describes itself once (migrator.routes): a new route is a YAML, a module and its
entry in the registry of routes. Nothing else in migrator compares strategy names, and a toy
route registered with nothing but those three is validated, planned, given an IAM policy, built
and run."""

from __future__ import annotations

import ast
import shutil
import sys
import types
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from migrator import iam_policy, planning, routes
from migrator.config import parse_config
from migrator.engine.registry import Registry
from migrator.errors import ApprovalRequired, ConfigError
from migrator.paths import states_dir
from migrator.routes import Route, Suggestion

PACKAGE = Path(__file__).resolve().parents[2] / "migrator"
#: Where a route's name may be written: its own declaration (the registry of routes).
DECLARED_IN = {"routes.py"}


def _route_names_compared(path: Path) -> list[str]:
    """``x == "modify"``, ``x in ("unload-copy", ...)`` and the like: a decision by route name."""
    names = set(routes.names())
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Compare):
            continue
        for operand in (node.left, *node.comparators):
            literals = operand.elts if isinstance(operand, (ast.Tuple, ast.List, ast.Set)) else [operand]
            for literal in literals:
                if isinstance(literal, ast.Constant) and literal.value in names:
                    found.append(f"{path.relative_to(PACKAGE)}:{node.lineno}: compares with {literal.value!r}")
    return found


def test_no_module_decides_by_comparing_strategy_names() -> None:
    found = [hit for path in sorted(PACKAGE.rglob("*.py")) if str(path.relative_to(PACKAGE)) not in DECLARED_IN
             for hit in _route_names_compared(path)]
    assert not found, "ask the route (migrator.routes) instead:\n" + "\n".join(found)


def test_every_route_has_its_machine_and_its_module() -> None:
    for route in routes.ROUTES.values():
        assert (states_dir() / f"{route.machine}.yaml").is_file(), route.name
        assert (PACKAGE / "strategies" / f"{route.module}.py").is_file(), route.name


def test_routes_is_a_leaf_the_lowest_layers_can_import() -> None:
    imported = {node.module for node in ast.walk(ast.parse((PACKAGE / "routes.py").read_text()))
                if isinstance(node, ast.ImportFrom) and node.module}
    assert not {m for m in imported if m.split(".")[0] == "migrator"}, imported


# -- a toy route: a YAML, a module and a registry entry, nothing else --------------------------

TOY_YAML = """\
name: toy-copy
kind: migration
initial: created
states:
  created: {action: toy_start, tags: [resumable]}
  awaiting_toy: {action: toy_gate, approval: toy, tags: [resumable, needs_approval]}
  completed: {tags: [final]}
transitions:
  - {trigger: started, source: created, dest: awaiting_toy}
  - {trigger: approved, source: awaiting_toy, dest: completed, conditions: [gate_approved]}
"""
TOY = Route(name="toy-copy", module="toy_copy", provisioning="create", reaches=frozenset({"kms"}),
            freeze_window="toy freeze ({span})",
            suggestions=(Suggestion(0, "toys copy everything on {node_type}", node_type_prefix="toy"),),
            gates=MappingProxyType({"toy": "`migrator approve toy`"}))


def _toy_module() -> types.ModuleType:
    from migrator.engine.gates import pass_gate

    module = types.ModuleType("migrator.strategies.toy_copy")

    def registry() -> Registry:
        own = Registry()
        own.actions["toy_start"] = lambda ctx: "started"
        own.actions["toy_gate"] = pass_gate
        return own

    module.registry = registry  # type: ignore[attr-defined]
    return module


@pytest.fixture
def toy_route(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Route:
    machines = tmp_path / "states"
    machines.mkdir()
    for existing in states_dir().glob("*.yaml"):
        shutil.copy(existing, machines / existing.name)
    (machines / "toy-copy.yaml").write_text(TOY_YAML)
    monkeypatch.setattr("migrator.engine.definitions.states_dir", lambda: machines)
    monkeypatch.setitem(sys.modules, "migrator.strategies.toy_copy", _toy_module())
    monkeypatch.setattr(routes, "ROUTES", MappingProxyType({**routes.ROUTES, TOY.name: TOY}))
    return TOY


def _toy_config(tmp_path: Path, **target: Any) -> Any:
    data = {"migration": {"name": "toy", "strategy": "toy-copy", "region": "us-east-1",
                          "store": f"sqlite:///{tmp_path / 'state.db'}"},
            "source": {"cluster_id": "prod", "password_env": "PW"},
            "target": {"kms_key_id": "alias/prod", "password_env": "PW", **target}}
    return parse_config(data, tmp_path / "migrator.toml")


def test_a_toy_route_is_validated_planned_and_given_a_policy(toy_route: Route, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="target.cluster_id: required for strategy 'toy-copy'"):
        _toy_config(tmp_path)
    with pytest.raises(ConfigError, match="HSM cannot be enabled by 'toy-copy'; use strategy 'unload-copy'"):
        _toy_config(tmp_path, cluster_id="prod-new", encryption="hsm", kms_key_id=None, hsm_client_certificate="c",
                    hsm_configuration="h")
    settings = _toy_config(tmp_path, cluster_id="prod-new").settings
    assert settings.route is toy_route

    source = {"ClusterIdentifier": "prod", "NodeType": "toy.large", "MasterUsername": "admin", "DBName": "dev"}
    assert planning.suggest_route(settings, source) == ("toy-copy", "toys copy everything on toy.large")
    apis = [r["api"] for r in planning.requests_for(settings, source, {"NodeType": "toy.large"}, "prod-old")]
    assert apis[0] == "CreateCluster" and "DeleteCluster" in apis
    assert planning.freeze_window(toy_route, 30) == "toy freeze (about 30 s)"

    actions = {a for s in iam_policy.operator_policy(settings)["Statement"] for a in s["Action"]}
    assert {"redshift:CreateCluster", "redshift:DeleteCluster"} <= actions


def test_a_toy_route_is_built_and_run_to_its_gate(toy_route: Route, tmp_path: Path) -> None:
    from migrator import commands, strategies
    from migrator.engine.runner import Runner
    from migrator.store import Store, db

    config = _toy_config(tmp_path, cluster_id="prod-new")
    built = strategies.build("toy-copy", config)
    assert built.route is toy_route and built.definition.name == "toy-copy"
    assert commands.graph("toy-copy").text.startswith("stateDiagram-v2")
    db.upgrade(config.store_url)
    with Store.open(config.store_url) as store:
        with pytest.raises(ApprovalRequired) as waiting:
            Runner(config, store, built.registry).run()
        assert "`migrator approve toy`" in waiting.value.hint
        assert store.require_migration("toy").phase == "awaiting_toy"
