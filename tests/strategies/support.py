"""Helpers for strategy tests: a migration config for a sandbox cluster, and `migrator`
run in a subprocess exactly as an operator runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from migrator.sandbox.client import SandboxClient as Sandbox
from migrator.store import Store

ROOT = Path(__file__).resolve().parents[2]
PW_ENV = "SRC_PW"


@dataclass
class Migration:
    sb: Sandbox
    config: Path
    env: dict[str, str]
    cluster_id: str

    def cli(self, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "migrator", *args], cwd=ROOT, env=self.env,
                              capture_output=True, text=True, timeout=timeout)

    def start(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen([sys.executable, "-m", "migrator", *args], cwd=ROOT, env=self.env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def init(self) -> None:
        """`migrator init` in-process (the store and registration; no AWS involved)."""
        from migrator import commands

        commands.init(self.config)

    def invoke(self, *args: str) -> Any:
        """The real CLI in-process (typer's runner): exit code, stdout and stderr apart."""
        from typer.testing import CliRunner

        from migrator.cli import app

        return CliRunner().invoke(app, list(args), env=self.env)

    def run(self, *extra: str) -> subprocess.CompletedProcess[str]:
        return self.cli("run", "-c", str(self.config), *extra)

    def store(self) -> Store:
        from migrator.config import load_config
        return Store.open(load_config(self.config).store_url, read_only=True)

    def phase(self) -> str | None:
        with self.store() as store:
            found = store.get_migration(self.name)
            return found.phase if found else None

    @property
    def name(self) -> str:
        return f"m-{self.cluster_id}"

    def describe(self, cluster_id: str | None = None) -> dict[str, Any]:
        return self.sb.client("redshift").describe_clusters(  # type: ignore[no-any-return]
            ClusterIdentifier=cluster_id or self.cluster_id)["Clusters"][0]

    def mutating_calls(self, *cluster_ids: str) -> list[dict[str, Any]]:
        ids = set(cluster_ids or (self.cluster_id,))
        return [c for c in self.sb.calls() if c.get("cluster_id") in ids]


def make_cluster(sb: Sandbox, cluster_id: str, *, tables: int = 3, rows: int = 60, encrypted: bool = False,
                 kms_key_id: str | None = None, node_type: str = "ra3.xlplus") -> None:
    from migrator.sandbox.seed import seed_cluster

    sb.create_cluster(cluster_id, encrypted=encrypted, kms_key_id=kms_key_id, node_type=node_type)
    if tables:
        seed_cluster(sb.admin_dsn(cluster_id), tables=tables, rows=rows, seed=len(cluster_id))


def migration(sb: Sandbox, tmp: Path, source_id: str, strategy: str = "modify", **target: Any) -> Migration:
    cluster_id = source_id
    target = {"encryption": "kms", "kms_key_id": sb.info.kms_alias, **target}
    lines = [
        "[migration]", f'name = "m-{cluster_id}"', f'strategy = "{strategy}"', f'region = "{sb.info.region}"',
        f'store = "sqlite:///{tmp}/state.db"', f'aws_endpoint_url = "{sb.info.endpoint_url}"', "sandbox_plaintext = true", "",
        "[source]", f'cluster_id = "{cluster_id}"', f'password_env = "{PW_ENV}"', "", "[target]",
    ]
    lines += [f"{k} = {json.dumps(v)}" for k, v in target.items()]
    config = tmp / "migration.toml"
    config.write_text("\n".join(lines) + "\n")
    env = {**os.environ, **sb.env(), PW_ENV: (sb.cluster_info(cluster_id).password if cluster_id in sb.cluster_ids() else "no-cluster-no-password")}
    env.pop("MIGRATOR_CONFIG", None)
    return Migration(sb, config, env, cluster_id)


def wait_for(predicate: Any, what: str, timeout: float = 60.0, proc: subprocess.Popen[str] | None = None) -> None:
    """Poll (the store, the call log) until ``predicate()``; the subprocess must still be running."""
    import time

    deadline = time.monotonic() + timeout
    while not predicate():
        if proc is not None and proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"run ended (rc {proc.returncode}) before {what}: {err}{out}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)  # polling observable state, not synchronising by time


def one_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line, got: {text!r}"
    return lines[0]
