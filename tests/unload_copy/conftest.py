"""A private source cluster in the shared sandbox, a config for it, and the real CLI."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from migrator.sandbox.client import SandboxClient
from migrator.warehouse.sql import table_key

_ids = itertools.count(1)


@dataclass
class Migration:
    sb: SandboxClient
    directory: Path
    source: str
    target: str
    config: Path
    env: dict[str, str]

    def cli(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "migrator", *args, "-c", str(self.config)], cwd=self.directory,
                              env=self.env, capture_output=True, text=True, timeout=timeout)

    def init(self) -> None:
        proc = subprocess.run([sys.executable, "-m", "migrator", "init", str(self.config)], cwd=self.directory,
                              env=self.env, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen([sys.executable, "-m", "migrator", *args, "-c", str(self.config)],
                                cwd=self.directory, env=self.env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)

    def table_digests(self, cluster_id: str) -> dict[str, tuple[int, str]]:
        """Rows and an order-independent digest per user table, read straight from PostgreSQL."""
        out: dict[str, tuple[int, str]] = {}
        with psycopg.connect(self.sb.admin_dsn(cluster_id)) as pg:
            tables = pg.execute(
                "select n.nspname, c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace "
                "where c.relkind = 'r' and n.nspname not in ('pg_catalog', 'information_schema', 'redshift_sys', "
                "'migrator_bookkeeping') and n.nspname not like 'pg_toast%' order by 1, 2").fetchall()
            for schema, table in tables:
                ident = psycopg.sql.Identifier(schema, table)
                row = pg.execute(psycopg.sql.SQL(
                    "select count(*), coalesce(md5(string_agg(md5(t::text), '' order by md5(t::text))), '') "
                    "from {} t").format(ident)).fetchone()
                assert row is not None
                out[table_key(schema, table)] = (int(row[0]), str(row[1]))  # "a.b".c and a."b.c" stay two
        return out


@pytest.fixture
def migration(sandbox: SandboxClient, tmp_path: Path) -> Migration:
    n = next(_ids)
    source, target = f"uc{n}-src", f"uc{n}-enc"
    info = sandbox.create_seeded_cluster(source, tables=5, rows=400, seed=n, hard=True)
    config = tmp_path / "migrator.toml"
    config.write_text(f"""
[migration]
name = "uc{n}"
strategy = "unload-copy"
region = "{sandbox.info.region}"
aws_endpoint_url = "{sandbox.info.endpoint_url}"
sandbox_plaintext = true

[source]
cluster_id = "{source}"
user = "{info.user}"
password_env = "UC_SOURCE_PASSWORD"

[target]
cluster_id = "{target}"
kms_key_id = "{sandbox.info.kms_alias}"
password_env = "UC_TARGET_PASSWORD"

[staging]
s3_uri = "s3://{sandbox.info.bucket}/uc{n}/"
iam_role_arn = "{sandbox.info.iam_role_arn}"
kms_key_id = "{sandbox.info.kms_alias}"

[tables]
concurrency = 3
""")
    env = {**os.environ, **sandbox.env(), "UC_SOURCE_PASSWORD": info.password,
           "UC_TARGET_PASSWORD": "TargetPassw0rd", "MIGRATOR_FREEZE_QUIET_SECONDS": "2",
           "MIGRATOR_FREEZE_TIMEOUT_SECONDS": "30"}
    return Migration(sandbox, tmp_path, source, target, config, env)
