"""iam-policy, report and sandbox env through the real CLI: output, bad input, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from migrator.sandbox.client import SandboxClient
from tests.cli.test_cli import cli, one_line_error, write

UNLOAD_COPY = """
[migration]
name = "analytics-to-kms"
strategy = "unload-copy"
region = "us-east-1"

[source]
cluster_id = "analytics"
password_env = "SRC_PW"

[target]
cluster_id = "analytics-enc"
kms_key_id = "alias/prod"
password_env = "TGT_PW"

[staging]
s3_uri = "s3://stage-bucket/migrator/"
iam_role_arn = "arn:aws:iam::123456789012:role/RedshiftCopy"
kms_key_id = "alias/staging"
"""


def test_iam_policy_for_both_principals(tmp_path: Path) -> None:
    config = write(tmp_path, UNLOAD_COPY)
    operator = cli("iam-policy", "-c", str(config), cwd=tmp_path)
    assert operator.returncode == 0, operator.stderr
    policy = json.loads(operator.stdout)
    actions = {a for s in policy["Statement"] for a in s["Action"]}
    assert {"redshift:CreateCluster", "redshift:ModifyCluster", "iam:PassRole"} <= actions
    role = cli("iam-policy", "-c", str(config), "--for", "cluster-role", "--json", cwd=tmp_path)
    assert role.returncode == 0, role.stderr
    data = json.loads(role.stdout)
    assert data["trust_policy"]["Statement"][0]["Principal"] == {"Service": "redshift.amazonaws.com"}
    assert any("arn:aws:s3:::stage-bucket/migrator/*" in s["Resource"] for s in data["policy"]["Statement"])
    assert not (tmp_path / ".migrator").exists(), "iam-policy must not create a store"


def test_iam_policy_bad_input_is_one_line(tmp_path: Path) -> None:
    config = write(tmp_path, UNLOAD_COPY)
    one_line_error(cli("iam-policy", "-c", str(config), "--for", "admin", cwd=tmp_path), 2, "--for 'admin'")
    modify = write(tmp_path, UNLOAD_COPY.replace('strategy = "unload-copy"', 'strategy = "modify"')
                   .split("[staging]")[0].replace('cluster_id = "analytics-enc"\n', ""), "modify.toml")
    one_line_error(cli("iam-policy", "-c", str(modify), "--for", "cluster-role", cwd=tmp_path), 2, "no cluster role")
    one_line_error(cli("iam-policy", "-c", str(tmp_path / "missing.toml"), cwd=tmp_path), 2, "not found")


def test_report_bad_input_is_one_line_and_writes_nothing(tmp_path: Path) -> None:
    config = write(tmp_path, UNLOAD_COPY)
    one_line_error(cli("report", "-c", str(config), "--format", "pdf", cwd=tmp_path), 2, "--format 'pdf'")
    proc = cli("report", "-c", str(config), cwd=tmp_path)
    assert proc.returncode == 3, proc.stderr  # no store yet: nothing to report, nothing created
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / ".migrator" / "state.db").exists()


def test_sandbox_env_lets_the_ready_made_configs_run_by_hand(sandbox: SandboxClient, tmp_path: Path) -> None:
    directory = sandbox.directory
    proc = cli("sandbox", "env", "--dir", str(directory), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert all(line.startswith("export ") for line in proc.stdout.strip().splitlines())
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MIGRATOR_SANDBOX"))}
    script = (f'eval "$({sys.executable} -m migrator sandbox env --dir {directory})" && '
              f'{sys.executable} -m migrator inventory --json -c {directory / "unload-copy.toml"}')
    ran = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=clean, capture_output=True, text=True,
                         timeout=120)
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout)["tables"], "the ready-made config reached the sandbox's source"


def test_sandbox_env_without_a_sandbox_is_one_line(tmp_path: Path) -> None:
    one_line_error(cli("sandbox", "env", "--dir", str(tmp_path / "none"), cwd=tmp_path), 2, "no sandbox")
