"""iam-policy, report and sandbox env through the real CLI: output, bad input, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from migrator.sandbox.client import SandboxClient
from tests.harness import cli, one_line_error, operator_keys, write_config

#: An unload-copy migration no AWS is asked about (iam-policy and report read only the file).
UNLOAD_COPY: dict[str, dict[str, object]] = {
    "migration": {"name": "analytics-to-kms"},
    "target": {"kms_key_id": "alias/prod", "password_env": "TGT_PW"},
    "staging": {"s3_uri": "s3://stage-bucket/migrator/", "iam_role_arn": "arn:aws:iam::123456789012:role/RedshiftCopy",
                "kms_key_id": "alias/staging"},
}


def unload_copy_config(tmp_path: Path) -> Path:
    return write_config(tmp_path / "migrator.toml", **UNLOAD_COPY)


def modify_config(tmp_path: Path) -> Path:
    """The same migration by modify: no staging, no target cluster."""
    return write_config(tmp_path / "modify.toml", migration={**UNLOAD_COPY["migration"], "strategy": "modify"},
                        target={**UNLOAD_COPY["target"], "cluster_id": None}, staging=None)


def test_iam_policy_for_both_principals(tmp_path: Path) -> None:
    config = unload_copy_config(tmp_path)
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
    config = unload_copy_config(tmp_path)
    one_line_error(cli("iam-policy", "-c", str(config), "--for", "admin", cwd=tmp_path), 2, "--for 'admin'")
    modify = modify_config(tmp_path)
    one_line_error(cli("iam-policy", "-c", str(modify), "--for", "cluster-role", cwd=tmp_path), 2, "no cluster role")
    one_line_error(cli("iam-policy", "-c", str(tmp_path / "missing.toml"), cwd=tmp_path), 2, "not found")


def test_report_bad_input_is_one_line_and_writes_nothing(tmp_path: Path) -> None:
    config = unload_copy_config(tmp_path)
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


def sandbox_config(sandbox: SandboxClient, strategy: str, tmp_path: Path, source: str | None = None) -> Path:
    """What the sandbox's ready-made config for ``strategy`` says, its store beside this copy
    (nothing shared); ``source`` names another source cluster."""
    source_id = source or sandbox.info.source_cluster_id
    target: dict[str, object] = {}
    if strategy == "unload-copy":
        target = {"cluster_id": f"{sandbox.info.source_cluster_id}-encrypted",
                  "password_env": "MIGRATOR_SANDBOX_TARGET_PASSWORD"}
    return write_config(tmp_path / f"{strategy}.toml", sandbox=sandbox,
                        migration={"name": f"sandbox-{strategy}", "strategy": strategy},
                        source={"cluster_id": source_id, "password_env": "MIGRATOR_SANDBOX_PASSWORD"},
                        target=target, staging={"s3_uri": f"s3://{sandbox.info.bucket}/migrator/"}
                        if strategy == "unload-copy" else None)


def test_plan_is_read_only_and_leaves_secrets_out(sandbox: SandboxClient, tmp_path: Path) -> None:
    config = sandbox_config(sandbox, "unload-copy", tmp_path)
    env = {**sandbox.env(), **operator_keys(sandbox, config, "plan")}
    mutating_before = len(sandbox.calls())
    proc = cli("plan", "-c", str(config), "--json", cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    assert len(sandbox.calls()) == mutating_before, "plan sent a mutating AWS call"
    assert not (tmp_path / ".migrator").exists(), "plan wrote a store"
    for secret in (env["MIGRATOR_SANDBOX_PASSWORD"], env["MIGRATOR_SANDBOX_TARGET_PASSWORD"],
                   env["AWS_SECRET_ACCESS_KEY"]):
        assert secret not in proc.stdout and secret not in proc.stderr
    plan = json.loads(proc.stdout)
    create = next(r for r in plan["requests"] if r["api"] == "CreateCluster")
    assert create["params"]["Encrypted"] is True and create["params"]["KmsKeyId"] == sandbox.info.kms_alias
    assert create["params"]["MasterUserPassword"].startswith("<")
    renames = [r["params"] for r in plan["requests"] if r["api"] == "ModifyCluster"]
    assert [r["NewClusterIdentifier"] for r in renames][1] == sandbox.info.source_cluster_id
    assert plan["tables"] and plan["tables"][0]["size_mb"] >= plan["tables"][-1]["size_mb"]
    assert plan["estimate_seconds"] is not None and "assumed" in plan["estimate_basis"]
    assert plan["suggested_strategy"] in ("snapshot-restore", "modify")  # KMS on RA3 needs no hand copy
    assert any("would also meet the target" in w for w in plan["warnings"])
    people = cli("plan", "-c", str(config), cwd=tmp_path, env=env)
    assert people.returncode == 0 and "AWS requests it will send" in people.stdout


def test_plan_for_modify_shows_the_one_modify(sandbox: SandboxClient, tmp_path: Path) -> None:
    config = sandbox_config(sandbox, "modify", tmp_path)
    proc = cli("plan", "-c", str(config), "--json", cwd=tmp_path,
               env={**sandbox.env(), **operator_keys(sandbox, config, "plan")})
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(proc.stdout)
    [modify] = [r for r in plan["requests"] if r["api"] == "ModifyCluster"]
    assert modify["params"]["Encrypted"] is True and "approve-modify" in modify["when"]
    assert not any(r["api"] in ("CreateCluster", "DeleteCluster") for r in plan["requests"])
    assert "read-only" in plan["freeze_window"]


def test_plan_with_an_unknown_source_is_one_line(sandbox: SandboxClient, tmp_path: Path) -> None:
    config = sandbox_config(sandbox, "modify", tmp_path, source="no-such-cluster")
    proc = cli("plan", "-c", str(config), cwd=tmp_path, env={**sandbox.env(), **operator_keys(sandbox, config, "plan")})
    assert proc.returncode in (7, 10), proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "no-such-cluster" in proc.stderr
