"""The machines are the single source of the route: the engine imports no strategy, and no
route's state name is written in Python outside the engine."""

from __future__ import annotations

import ast
from pathlib import Path

import yaml

from migrator.paths import states_dir

PACKAGE = Path(__file__).resolve().parents[2] / "migrator"
#: Literals that coincide with a state name but mean something else where they appear.
NOT_STATES = {
    ("store/store.py", "pending"): "a remote action's status",
    ("store/store.py", "created"): "the event trigger that records a migration's creation",
    ("strategies/snapshot_restore.py", "failed"): "an AWS snapshot status",
    ("strategies/snapshot_restore.py", "restoring"): "a key of a progress report",
    ("results.py", "created"): "a word of `init`'s output",
    ("results.py", "loaded"): "a column heading (rows loaded)",
}


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return found


def test_the_engine_imports_no_strategy() -> None:
    for path in (PACKAGE / "engine").glob("*.py"):
        strategies = {m for m in _imports(path) if m.startswith("migrator.strategies")}
        assert not strategies, f"{path.name} imports {strategies}"


def test_no_state_name_of_a_route_is_written_in_python_outside_the_engine() -> None:
    states: set[str] = set()
    triggers: set[str] = set()
    for path in states_dir().glob("*.yaml"):
        raw = yaml.safe_load(path.read_text())
        states |= set(raw["states"])
        triggers |= {t["trigger"] for t in raw["transitions"]}
        triggers |= {spec.get(k) for spec in raw["states"].values() if spec for k in ("action", "step")}
    only_states = states - triggers  # a name that is also a move, an action or a step is not a place
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel.startswith(("engine/", "sandbox/")):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in only_states \
                    and (rel, node.value) not in NOT_STATES:
                offenders.append(f"{rel}:{node.lineno}: {node.value!r}")
    assert offenders == []
