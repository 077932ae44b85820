"""`migrator probe` and the unload-copy preflight's probe, through the real CLI against the sandbox:
every type group probed, a failing shape named with its sample table and column types, nothing
left behind (no staged object, no table), bad input one line with its exit code."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from migrator.errors import PreflightFailed
from migrator.names import split_table_key
from migrator.sandbox.client import SandboxClient
from migrator.warehouse.sql import probe_prefix
from tests.cli.test_cli import cli, one_line_error, write
from tests.harness import operator_keys, run_migrator

_ids = itertools.count(1)
ALL_SHAPES = ["UNLOAD", "staging check", "CREATE TEMP TABLE", "COPY", "checksum"]


@dataclass
class Source:
    sb: SandboxClient
    directory: Path
    cluster: str
    name: str
    config: Path
    env: dict[str, str]

    def run(self, *args: str, config: Path | None = None) -> subprocess.CompletedProcess[str]:
        # As an operator limited to that config's `iam-policy --for operator`.
        env = {**self.env, **operator_keys(self.sb, config or self.config, self.name)}
        return run_migrator([*args, "-c", str(config or self.config)], cwd=self.directory, env=env, timeout=300)

    def probe(self, config: Path | None = None) -> tuple[subprocess.CompletedProcess[str], dict]:  # type: ignore[type-arg]
        proc = self.run("probe", "--json", config=config)
        assert proc.stdout, proc.stderr
        return proc, json.loads(proc.stdout)

    @property
    def staging_uri(self) -> str:
        return f"s3://{self.sb.info.bucket}/{self.name}/"

    def staged_keys(self) -> list[str]:
        s3 = self.sb.client("s3")
        answer = s3.list_objects_v2(Bucket=self.sb.info.bucket, Prefix=f"{self.name}/")
        return [o["Key"] for o in answer.get("Contents", [])]

    def unload_sessions(self) -> set[int]:
        """The backend of every UNLOAD the probe sent to the source (stl_unload_log's pid)."""
        with psycopg.connect(self.sb.admin_dsn(self.cluster)) as pg:
            rows = pg.execute("select distinct pid from pg_sandbox.stl_unload_log where path like %s",
                              (f"{self.staging_uri}%",)).fetchall()
        return {int(r[0]) for r in rows}

    def relations(self) -> set[tuple[str, str, str]]:
        """Every relation of the source's database (temporary ones included), straight from PostgreSQL."""
        with psycopg.connect(self.sb.admin_dsn(self.cluster)) as pg:
            rows = pg.execute("select n.nspname, c.relname, c.relkind::text from pg_class c "
                              "join pg_namespace n on n.oid = c.relnamespace "
                              "where n.nspname not in ('pg_catalog', 'information_schema') "
                              "and n.nspname not like 'pg_toast%'").fetchall()
        return {(str(s), str(r), str(k)) for s, r, k in rows}


def _config(sb: SandboxClient, name: str, cluster: str, user: str, strategy: str = "unload-copy",
            concurrency: int | None = None) -> str:
    staging = f"""
[staging]
s3_uri = "s3://{sb.info.bucket}/{name}/"
iam_role_arn = "{sb.info.iam_role_arn}"
kms_key_id = "{sb.info.kms_alias}"
""" if strategy == "unload-copy" else ""
    tables = f"\n[tables]\nconcurrency = {concurrency}\n" if concurrency is not None else ""
    target = f'cluster_id = "{name}-enc"\nkms_key_id = "{sb.info.kms_alias}"\npassword_env = "PROBE_TARGET_PASSWORD"' \
        if strategy == "unload-copy" else f'kms_key_id = "{sb.info.kms_alias}"'
    return f"""
[migration]
name = "{name}"
strategy = "{strategy}"
region = "{sb.info.region}"
aws_endpoint_url = "{sb.info.endpoint_url}"
sandbox_plaintext = true

[source]
cluster_id = "{cluster}"
user = "{user}"
password_env = "PROBE_SOURCE_PASSWORD"

[target]
{target}
{staging}{tables}"""


@pytest.fixture
def source(sandbox: SandboxClient, tmp_path: Path) -> Source:
    n = next(_ids)
    name, cluster = f"probe{n}", f"probe{n}-src"
    info = sandbox.create_seeded_cluster(cluster, tables=3, rows=50, seed=n, hard=True)
    config = write(tmp_path, _config(sandbox, name, cluster, info.user))
    env = {**os.environ, **sandbox.env(), "PROBE_SOURCE_PASSWORD": info.password,
           "PROBE_TARGET_PASSWORD": "TargetPassw0rd"}
    return Source(sandbox, tmp_path, cluster, name, config, env)


def _group_failure(data: dict, table: str) -> dict:  # type: ignore[type-arg]
    return next(g for g in data["groups"] if g["table"] == table)


@pytest.mark.slow
def test_probe_passes_every_type_group_and_leaves_nothing(source: Source) -> None:
    before = source.relations()
    proc, data = source.probe()
    assert proc.returncode == 0, (proc.stderr, data["failures"])
    assert data["ok"] and not data["failures"]
    assert all(c["ok"] for c in data["catalog"])
    assert {"user_tables", "table_columns", "baseline_tables", "baseline_counts", "access_self",
            "inventory"} <= {c["name"] for c in data["catalog"]}
    inventory = source.run("inventory", "--json")
    tables = json.loads(inventory.stdout)["tables"]
    # Every table belongs to exactly one group; each group went the whole way.
    assert sum(g["tables_in_group"] for g in data["groups"]) == len(tables)
    assert len({tuple(g["column_types"]) for g in data["groups"]}) == len(data["groups"])
    for group in data["groups"]:
        assert group["ok"] and group["passed"] == ALL_SHAPES, group
        assert group["rows_sampled"] == 1, group  # the seeded tables all hold rows
    # The hard types need the text and CSV routes as well as Parquet: all three were probed.
    assert {"PARQUET", "TEXT", "CSV"} <= {g["format"] for g in data["groups"]}
    assert source.staged_keys() == []
    assert source.relations() == before
    # A person reads the same outcome as a table.
    shown = source.run("probe")
    assert shown.returncode == 0 and "every statement shape worked" in shown.stdout, shown.stderr


@pytest.mark.slow
def test_type_groups_are_probed_by_as_many_sessions_as_the_copy_uses(source: Source) -> None:
    """On a real cluster each group costs an UNLOAD and a COPY of seconds: the groups share
    ``tables.concurrency`` sessions, as the copy phase does, and the outcome stays in group order."""
    user = source.sb.cluster_info(source.cluster).user
    before = source.relations()
    # Each UNLOAD holds its session a while, so one session cannot take every group by itself.
    source.sb.faults.add("latency", times=-1, match={"statement": "unload", "cluster": source.cluster},
                         seconds=0.5)
    runs = {}
    try:
        for concurrency in (1, 3):
            config = write(source.directory, _config(source.sb, source.name, source.cluster, user,
                                                     concurrency=concurrency), name=f"c{concurrency}.toml")
            earlier = source.unload_sessions()
            proc, data = source.probe(config)
            assert proc.returncode == 0, (proc.stderr, data["failures"])
            runs[concurrency] = data, source.unload_sessions() - earlier
    finally:
        source.sb.faults.clear()
    (one, one_sessions), (three, three_sessions) = runs[1], runs[3]
    assert len(one["groups"]) >= 4
    assert len(one_sessions) == 1 and 2 <= len(three_sessions) <= 3, (one_sessions, three_sessions)
    # The same groups, in the same order, each the whole way.
    assert [g["table"] for g in three["groups"]] == [g["table"] for g in one["groups"]]
    assert all(g["ok"] and g["passed"] == ALL_SHAPES for g in one["groups"] + three["groups"])
    assert any("by 1 session(s)" in n for n in one["notes"]), one["notes"]
    assert any(f"by {len(three_sessions)} session(s)" in n for n in three["notes"]), three["notes"]
    assert source.staged_keys() == []
    assert source.relations() == before


@pytest.mark.slow
def test_sessions_lost_stop_taking_groups_and_the_rest_are_counted(source: Source) -> None:
    """A session whose connection died sends nothing more; once every session is gone, the groups
    nobody probed are counted, and the preflight fails on the groups that were cut off."""
    user = source.sb.cluster_info(source.cluster).user
    config = write(source.directory, _config(source.sb, source.name, source.cluster, user, concurrency=2),
                   name="two.toml")
    # The first COPY each session sends is cut off: two drops end both sessions.
    source.sb.faults.add("drop_connection", times=2, match={"statement": "copy", "cluster": source.cluster})
    try:
        proc, data = source.probe(config)
    finally:
        source.sb.faults.clear()
    assert proc.returncode == PreflightFailed.exit_code, proc.stderr
    cut = [g for g in data["groups"] if not g["ok"]]
    assert len(data["groups"]) == len(cut) == 2, data["groups"]
    assert all(g["failed_shape"] == "COPY" for g in cut), cut
    _, full = source.probe()
    left = len(full["groups"]) - 2
    assert left > 0
    assert f"the connection to the source was lost: {left} type group(s) were not probed" in data["notes"]
    assert source.staged_keys() == []


@pytest.mark.slow
def test_failing_shapes_are_named_the_others_still_probed_nothing_left(source: Source) -> None:
    # One session, so the faults below that count requests (nth) meet the groups in order.
    source.config = write(source.directory, _config(source.sb, source.name, source.cluster, source.sb.cluster_info(
        source.cluster).user, concurrency=1), name="sequential.toml")
    _, first = source.probe()
    groups = sorted(first["groups"], key=lambda g: g["table"])
    assert len(groups) >= 4
    unload_victim = groups[0]
    schema, table = split_table_key(unload_victim["table"])
    before = source.relations()
    faults = source.sb.faults
    faults.add("sql_error", match={"statement": "unload",
                                   "table": probe_prefix(source.staging_uri, source.name, schema, table)},
               sqlstate="XX000", message="injected: unsupported type in UNLOAD")
    # The staging check cannot resolve the staging key: the second DescribeKey (the first is the
    # sandbox UNLOAD's own key check; the failing UNLOAD above fails before it asks).
    faults.add("kms_access_denied", nth=2, match={"operation": "DescribeKey"})
    # The second COPY on the source fails (the groups above never reach COPY).
    faults.add("sql_error", nth=2, match={"statement": "copy"},
               sqlstate="XX000", message="injected: COPY refused")
    try:
        proc, data = source.probe()
    finally:
        faults.clear()
    assert proc.returncode == PreflightFailed.exit_code, proc.stderr
    failed = [g for g in data["groups"] if not g["ok"]]
    assert len(failed) == 3, data["failures"]
    unload_failed = _group_failure(data, unload_victim["table"])
    assert unload_failed["failed_shape"] == "UNLOAD" and unload_failed["passed"] == []
    assert "injected: unsupported type in UNLOAD" in unload_failed["detail"]
    staging_failed = next(g for g in failed if g["failed_shape"] == "staging check")
    assert staging_failed["passed"] == ["UNLOAD"] and "AccessDeniedException" in staging_failed["detail"]
    copy_failed = next(g for g in failed if g["failed_shape"] == "COPY")
    assert copy_failed["passed"] == ["UNLOAD", "staging check", "CREATE TEMP TABLE"]
    assert copy_failed["statement"].startswith("COPY ") and "injected: COPY refused" in copy_failed["detail"]
    for group in failed:  # each failure line names the shape, the sample table and the group's types
        line = next(f for f in data["failures"] if f"sample table {group['table']} " in f)
        assert line.startswith(f"{group['failed_shape']} failed")
        assert ", ".join(group["column_types"]) in line
    assert sum(1 for g in data["groups"] if g["ok"]) == len(data["groups"]) - 3 > 0
    assert source.staged_keys() == []
    assert source.relations() == before


@pytest.mark.slow
def test_routes_without_a_data_path_probe_their_catalog_queries_only(source: Source) -> None:
    text = source.config.read_text()
    modify = write(source.directory, _config(source.sb, source.name, source.cluster,
                                             text.split('user = "')[1].split('"')[0], strategy="modify"),
                   "modify.toml")
    proc, data = source.probe(modify)
    assert proc.returncode == 0, proc.stderr
    assert data["route"] == "modify" and data["groups"] == [] and data["ok"]
    assert any("moves no rows through UNLOAD/COPY" in n for n in data["notes"])
    assert any(c["name"] == "inventory" and c["ok"] for c in data["catalog"])


@pytest.mark.slow
def test_preflight_fails_with_the_probes_lines(source: Source) -> None:
    init = run_migrator(["init", str(source.config)], cwd=source.directory, env=source.env, timeout=120)
    assert init.returncode == 0, init.stderr
    before = source.relations()
    source.sb.faults.add("sql_error", times=-1, match={"statement": "copy"},
                         sqlstate="XX000", message="injected: COPY refused")
    try:
        run = source.run("run", "--assume-frozen")
    finally:
        source.sb.faults.clear()
    one_line_error(run, PreflightFailed.exit_code, "preflight found", "probe: COPY failed on sample table",
                   "column types: ")
    assert source.sb.client("redshift").describe_clusters()["Clusters"]
    assert f"{source.name}-enc" not in {c["ClusterIdentifier"]
                                        for c in source.sb.client("redshift").describe_clusters()["Clusters"]}
    assert source.staged_keys() == []
    assert source.relations() == before
    history = json.loads(source.run("history", "--json").stdout)["events"]
    probes = [e for e in history if e["trigger"] == "probe"]
    assert probes and probes[-1]["detail"]["ok"] is False


def test_bad_input_is_one_line_with_its_exit_code(tmp_path: Path) -> None:
    one_line_error(cli("probe", "-c", str(tmp_path / "missing.toml"), cwd=tmp_path), 2, "missing.toml not found")
    body = _config_without_sandbox().replace("password_env", "pasword_env")
    config = write(tmp_path, body)
    one_line_error(cli("probe", "-c", str(config), cwd=tmp_path), 2, "source.pasword_env: unknown key")
    assert not (tmp_path / ".migrator").exists()


def _config_without_sandbox() -> str:
    return """
[migration]
name = "m"
strategy = "unload-copy"
region = "us-east-1"

[source]
cluster_id = "analytics"
password_env = "SRC_PW"

[target]
cluster_id = "analytics-enc"
kms_key_id = "alias/k"
password_env = "TGT_PW"

[staging]
s3_uri = "s3://bucket/prefix/"
iam_role_arn = "arn:aws:iam::123456789012:role/R"
kms_key_id = "alias/k"
"""


@pytest.mark.slow
def test_a_throttled_or_dropped_shape_is_retried_not_reported(source: Source) -> None:
    """S3 throttling inside UNLOAD (XX000 SlowDown) and a connection reset inside COPY are
    transient: the probe retries the group from a clean slate instead of failing the preflight."""
    faults = source.sb.faults
    faults.add("sql_error", times=2, match={"statement": "unload", "cluster": source.cluster},
               sqlstate="XX000", message="S3ServiceException:Please reduce your request rate.,Status 503,"
                                         "Error SlowDown,Rid 5C3F9B2D1E0A4B67,ExtRid abc=,CanRetry 1")
    faults.add("sql_error", times=1, match={"statement": "copy", "cluster": source.cluster},
               sqlstate="XX000", message="S3ServiceException:Connection reset by peer,Status 0,Error Unknown,Rid ")
    try:
        proc, data = source.probe()
    finally:
        faults.clear()
    assert proc.returncode == 0, (proc.stderr, data["failures"])
    assert all(g["ok"] and g["passed"] == ALL_SHAPES for g in data["groups"])
    reasons = [r for g in data["groups"] for r in g["retried_after"]]
    assert len(reasons) == 3 and all("SlowDown" in r or "reset" in r for r in reasons), reasons
    assert sum(g["attempts"] - 1 for g in data["groups"]) == 3  # each injected fault cost one attempt
    assert source.staged_keys() == []


@pytest.mark.slow
def test_a_table_written_during_the_probe_still_passes(source: Source) -> None:
    """Production keeps writing while the probe samples: the sampled row is kept in a temporary
    table first, so the UNLOAD and the checksum read the same row (before, an update between
    them made the checksum differ and stopped the preflight)."""
    import threading

    conn = source.sb.connect(source.cluster, autocommit=True)
    cur = conn.cursor()
    cur.execute("create schema live")
    cur.execute("create table live.accounts (id int, balance numeric(12,2), tag char(3))")
    cur.execute("insert into live.accounts values (1, 10.00, 'aaa'), (2, 20.00, 'bbb'), (3, 30.00, 'ccc')")
    stop = threading.Event()
    updates = []

    def writer() -> None:
        while not stop.is_set():
            cur.execute("update live.accounts set balance = balance + 1")
            cur.execute("insert into live.accounts values (0, -1.00, 'new')")
            updates.append(1)

    # Each COPY (between the UNLOAD and the checksum) holds its session a while: the writer changes
    # the table in between.
    source.sb.faults.add("latency", times=-1, match={"statement": "copy", "cluster": source.cluster},
                         seconds=0.5)
    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        proc, data = source.probe()
    finally:
        stop.set()
        thread.join()
        source.sb.faults.clear()
        conn.close()
    group = next(g for g in data["groups"] if g["table"] == "live.accounts")
    assert len(updates) > 5
    assert proc.returncode == 0 and group["ok"] and group["passed"] == ALL_SHAPES, (group, data["failures"])
    assert source.staged_keys() == []
