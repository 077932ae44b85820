"""No password in any process's argv (any user of the machine can read it): the tools the sandbox
runs (pg_dump, pg_restore, pg_dumpall) and the processes tests start get it from the environment
or stdin (issue 20)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: Names whose value holds a password when passed to a process.
SECRET_NAMES = ("password", "store_url", "admin_dsn", "dsn")


def _argv_names(call: ast.Call) -> list[str]:
    """Names and attribute/method names inside the argv list of subprocess.run/Popen(...)."""
    if not call.args or not isinstance(call.args[0], (ast.List, ast.Tuple)):
        return []
    found = []
    for node in ast.walk(call.args[0]):
        if isinstance(node, ast.Name):
            found.append(node.id)
        elif isinstance(node, ast.Attribute):
            found.append(node.attr)
        elif isinstance(node, ast.keyword) and node.arg == "password" and isinstance(node.value, ast.Constant) \
                and node.value.value is False:
            found.append("password=False")
    return found


def test_no_subprocess_gets_a_password_in_its_argv() -> None:
    offenders = []
    for path in [*ROOT.joinpath("migrator").rglob("*.py"), *ROOT.joinpath("tests").rglob("*.py"),
                 *ROOT.joinpath("bench").rglob("*.py")]:
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                    node.func.attr in ("run", "Popen") and getattr(node.func.value, "id", "") == "subprocess":
                names = _argv_names(node)
                risky = [n for n in names if n in SECRET_NAMES]
                if risky and "password=False" not in names:
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} {risky}")
    assert offenders == []
