"""`plan` says what preflight says of a non-superuser login (issue 20): SVV_DEFAULT_PRIVILEGES
shows a regular user only the default privileges granted to it, so the replay would miss other
owners' ALTER DEFAULT PRIVILEGES. One warning line, not an error; a superuser hears nothing."""

from __future__ import annotations

import json
from pathlib import Path

from migrator.sandbox.client import SandboxClient
from tests.harness import cli, operator_keys, write_config

CLUSTER = "plan-access-src"
READER, READER_PASSWORD = "plan reader", "Readonly1pass"
PARTIAL = "source user is not a superuser: svv_default_privileges"


def _config(sandbox: SandboxClient, tmp_path: Path, user: str, name: str) -> Path:
    return write_config(tmp_path / f"{name}.toml", sandbox=sandbox,
                        migration={"name": name, "strategy": "unload-copy"},
                        source={"cluster_id": CLUSTER, "user": user, "password_env": "PLAN_SOURCE_PASSWORD"},
                        target={"cluster_id": f"{CLUSTER}-enc", "password_env": "MIGRATOR_SANDBOX_TARGET_PASSWORD"},
                        staging={"s3_uri": f"s3://{sandbox.info.bucket}/migrator/"})


def test_plan_warns_that_a_non_superuser_sees_default_privileges_in_part(sandbox: SandboxClient,
                                                                          tmp_path: Path) -> None:
    info = sandbox.create_seeded_cluster(CLUSTER, tables=1, rows=20, seed=7)
    conn = sandbox.connect(CLUSTER, autocommit=True)
    try:
        cur = conn.cursor()
        cur.execute(f"create user \"{READER}\" password '{READER_PASSWORD}'")
        cur.execute('select distinct trim("schema") from svv_table_info')
        for (schema,) in cur.fetchall():
            cur.execute(f'grant usage on schema "{schema}" to "{READER}"')
            cur.execute(f'grant select on all tables in schema "{schema}" to "{READER}"')
    finally:
        conn.close()
    results = {}
    for user, password, name in ((info.user, info.password, "plan-admin"), (READER, READER_PASSWORD, "plan-reader")):
        config = _config(sandbox, tmp_path, user, name)
        env = {**sandbox.env(), **operator_keys(sandbox, config, "plan"), "PLAN_SOURCE_PASSWORD": password}
        proc = cli("plan", "-c", str(config), "--json", cwd=tmp_path, env=env)
        assert proc.returncode == 0, proc.stderr
        people = cli("plan", "-c", str(config), cwd=tmp_path, env=env)
        assert people.returncode == 0, people.stderr
        results[name] = (json.loads(proc.stdout), people.stdout)
    admin, _ = results["plan-admin"]
    assert not any(PARTIAL in w for w in admin["warnings"])
    reader, shown = results["plan-reader"]
    partial = [w for w in reader["warnings"] if PARTIAL in w]
    assert len(partial) == 1 and "\n" not in partial[0], reader["warnings"]
    assert "ACCESS SYSTEM TABLE" in partial[0] and f'"{READER}"' in partial[0]
    assert "svv_default_privileges" in " ".join(shown.split())
