"""The README's exit-code table is the one the code uses."""

from __future__ import annotations

import re
from pathlib import Path

from migrator.errors import EXIT_CODES

README = Path(__file__).resolve().parents[1] / "README.md"


def test_exit_code_table_matches_code() -> None:
    section = README.read_text().split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| (\d+) \| (.+?) \|$", section, flags=re.MULTILINE)
    assert [(int(code), text) for code, text in rows] == EXIT_CODES


def test_readme_test_command_is_what_ci_runs() -> None:
    command = "pip install -e '.[dev]' && python -m pytest"
    assert command in README.read_text()
    ci = (README.parent / ".ci" / "run").read_text()
    assert command in ci


def test_the_mirror_table_names_every_attribute_describe_clusters_has() -> None:
    """Each member of botocore's Cluster shape is mirrored, overridden, reported or n.a. (issue 20)."""
    import re

    import botocore.session

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("## What the new cluster mirrors", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"`([A-Za-z]+)`", section))
    members = set(botocore.session.get_session().get_service_model("redshift").shape_for("Cluster").members)
    assert sorted(members - named) == []


def test_ci_installs_the_pinned_versions_and_the_connector_floor_holds() -> None:
    """redshift-connector before 2.1.5 lacks fixes the tool relies on; CI installs the constraints."""
    import tomllib

    root = README.parent
    deps = tomllib.loads((root / "pyproject.toml").read_text())["project"]["dependencies"]
    assert "redshift-connector>=2.1.5" in deps
    assert 'export PIP_CONSTRAINT="$PWD/constraints.txt"' in (root / ".ci" / "run").read_text()
    pins = dict(line.split("==", 1) for line in (root / "constraints.txt").read_text().splitlines()
                if "==" in line and not line.startswith("#"))
    major, minor, patch = (int(p) for p in pins["redshift_connector"].split(".")[:3])
    assert (major, minor, patch) >= (2, 1, 5)
