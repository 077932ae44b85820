"""The import graph of the `migrator` package keeps its layers (see issue 23).

Built from the source with `ast`, nothing imported. A *unit* is a package directly under
migrator/ (aws, warehouse, store, engine, strategies) or a top-level module (cli, credentials,
config, ...). The tests check:

- no cycle between units;
- no cycle between the modules inside migrator/engine;
- no unit imports a unit of a higher layer (LAYERS, top first), and inside a layer only the
  pairs SAME_LAYER allows (in the data layer the store stands apart from the others, and the
  warehouse may use aws and credentials, never the other way: UNLOAD and COPY name S3 URLs
  and a connection needs a password that may come from AWS);
- only the modules in SANDBOX_IMPORTERS import migrator.sandbox.

Exempt: imports under `if TYPE_CHECKING:`. They never run, so they cannot make an import
cycle at run time, and a type hint naming a higher layer's type is not a dependency on its
behaviour (the engine's registry names PhaseContext this way, for one).

migrator/sandbox is left out of the graph (its own split is under way); it is only checked
that the rest of migrator does not reach into it.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path

import pytest

from tests.import_graph import cycles

PACKAGE_ROOT = Path(__file__).resolve().parent.parent / "migrator"

#: Top layer first. A unit may import units of lower layers; see SAME_LAYER for its own.
LAYERS: list[tuple[str, frozenset[str]]] = [
    ("entry points", frozenset({"__main__", "cli", "demo"})),
    ("commands", frozenset({"commands", "planning", "evidence", "iam_policy", "fleet"})),
    ("strategies", frozenset({"strategies"})),
    ("engine", frozenset({"engine"})),
    ("data", frozenset({"store", "warehouse", "credentials", "aws"})),
    ("models", frozenset({"__init__", "config", "errors", "failures", "failpoints", "interrupt", "names", "notify",
                          "paths", "procinfo", "results", "retry", "routes"})),
]
#: Imports allowed between two units of one layer (importer, imported); the cycle test still applies.
#: Layers not named here allow any import inside themselves.
SAME_LAYER: Mapping[str, frozenset[tuple[str, str]]] = {
    "data": frozenset({("warehouse", "credentials"), ("warehouse", "aws"), ("credentials", "aws")}),
}
#: Modules outside the sandbox that must reach into it, and why.
SANDBOX_IMPORTERS: Mapping[str, str] = {
    "migrator.cli": "the `migrator sandbox ...` commands",
    "migrator.demo": "`migrator demo` starts a sandbox",
    "migrator.commands": "`migrator sandbox env` reads the sandbox's info file",
}
EXCLUDED_UNITS = frozenset({"sandbox"})


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST, module: str, is_package: bool) -> Iterator[str]:
    """Every module name `module` imports at run time (TYPE_CHECKING blocks skipped)."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                yield from _imports(child, module, is_package)
            continue
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[:len(base) - node.level + (1 if is_package else 0)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            yield prefix
            # `from migrator.aws import staging` imports the module migrator.aws.staging.
            yield from (f"{prefix}.{alias.name}" for alias in node.names)
        else:
            yield from _imports(node, module, is_package)


@cache
def _graph() -> dict[str, set[str]]:
    """module -> the migrator modules it imports, over every module of the package."""
    paths = {_module_name(path): path for path in PACKAGE_ROOT.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for module, path in paths.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        found = _imports(tree, module, path.name == "__init__.py")
        graph[module] = {name for name in found if name in paths and name != module}
    return graph


def _unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _edges_between(graph: Mapping[str, set[str]], units: set[str]) -> list[str]:
    return sorted(f"{module} -> {target}" for module, targets in graph.items() for target in targets
                  if _unit(module) in units and _unit(target) in units and _unit(module) != _unit(target))


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return {module: targets for module, targets in _graph().items() if _unit(module) not in EXCLUDED_UNITS}


def _unit_graph(graph: Mapping[str, set[str]]) -> dict[str, set[str]]:
    units: dict[str, set[str]] = defaultdict(set)
    for module, targets in graph.items():
        units[_unit(module)].update(_unit(target) for target in targets
                                    if _unit(target) != _unit(module) and _unit(target) not in EXCLUDED_UNITS)
    return units


def test_every_unit_has_a_layer(graph: dict[str, set[str]]) -> None:
    placed = set().union(*(units for _, units in LAYERS))
    unplaced = sorted({_unit(module) for module in graph} - placed)
    assert not unplaced, f"give these a layer in LAYERS: {unplaced}"


def test_no_cycle_between_units(graph: dict[str, set[str]]) -> None:
    found = cycles(_unit_graph(graph))
    assert not found, "import cycles between packages:\n" + "\n".join(
        f"{cycle}:\n  " + "\n  ".join(_edges_between(graph, set(cycle))) for cycle in found)


def test_no_cycle_inside_the_engine(graph: dict[str, set[str]]) -> None:
    engine = {module: {target for target in targets if _unit(target) == "engine"}
              for module, targets in graph.items() if _unit(module) == "engine"}
    assert not cycles(engine), f"import cycles inside migrator/engine: {cycles(engine)}"


def test_no_lower_layer_imports_a_higher_one(graph: dict[str, set[str]]) -> None:
    rank = {unit: position for position, (_, units) in enumerate(LAYERS) for unit in units}
    layer_name = {unit: name for name, units in LAYERS for unit in units}
    wrong = []
    for module, targets in sorted(graph.items()):
        source = _unit(module)
        for target in sorted(targets):
            imported = _unit(target)
            if imported == source or source not in rank or imported not in rank:
                continue
            if rank[imported] < rank[source]:
                wrong.append(f"{module} ({layer_name[source]}) imports {target} ({layer_name[imported]}), a higher layer")
            elif rank[imported] == rank[source]:
                allowed = SAME_LAYER.get(layer_name[source])
                if allowed is not None and (source, imported) not in allowed:
                    wrong.append(f"{module} imports {target}: in the {layer_name[source]} layer {source} may not "
                                 f"import {imported} (SAME_LAYER)")
    assert not wrong, "\n".join(wrong)


def test_only_the_named_modules_import_the_sandbox() -> None:
    graph = _graph()
    reaching = sorted(f"{module} -> {target}" for module, targets in graph.items() for target in targets
                      if _unit(target) == "sandbox" and _unit(module) != "sandbox"
                      and module not in SANDBOX_IMPORTERS)
    assert not reaching, "modules outside the sandbox importing it:\n" + "\n".join(reaching)


def test_the_graph_sees_imports() -> None:
    """Guards the checks above against passing on an empty graph."""
    graph = _graph()
    assert "migrator.engine.registry" in graph["migrator.engine.runner"]
    assert "migrator.sandbox.info" in graph["migrator.commands"]
