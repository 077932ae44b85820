"""The assembled sandbox, used the way the tool and its users use it: the real
redshift_connector and psql against the clusters, real boto3 against the AWS side."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
import redshift_connector

from migrator.sandbox.client import SandboxClient


def _rows(conn: redshift_connector.Connection, sql: str) -> list[tuple]:  # type: ignore[type-arg]
    cur = conn.cursor()
    cur.execute(sql)
    return [tuple(r) for r in cur.fetchall()] if cur.description else []


def _connect_described(sandbox: SandboxClient, cluster_id: str) -> redshift_connector.Connection:
    """Connect the way the product does: to the Endpoint the API describes (the cluster's name)."""
    endpoint = sandbox.client("redshift").describe_clusters(ClusterIdentifier=cluster_id)["Clusters"][0]["Endpoint"]
    info = sandbox.cluster_info(cluster_id)
    return redshift_connector.connect(host=endpoint["Address"], port=endpoint["Port"], database=info.database,
                                      user=info.user, password=info.password, ssl=False, timeout=60)


def test_source_is_seeded_and_described(sandbox: SandboxClient) -> None:
    source = sandbox.info.source_cluster_id
    cluster = sandbox.client("redshift").describe_clusters(ClusterIdentifier=source)["Clusters"][0]
    info = sandbox.cluster_info(source)
    assert cluster["ClusterStatus"] == "available" and cluster["Encrypted"] is False
    assert cluster["Endpoint"]["Address"] == "127.0.0.1" and info.port > 0
    conn = _connect_described(sandbox, source)
    tables = _rows(conn, 'select "schema", "table", tbl_rows from svv_table_info')
    conn.close()
    assert len(tables) >= 5 and any(schema == "Ops Data" for schema, _, _ in tables)
    assert {r[0] for r in sandbox.client("s3").list_buckets()["Buckets"] for r in [(r["Name"],)]} >= {
        sandbox.info.bucket}


def test_psql_connects_through_the_proxy(sandbox: SandboxClient) -> None:
    psql = shutil.which("psql") or next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin/psql"))), None)
    assert psql, "psql is needed for this test"
    info = sandbox.cluster_info(sandbox.info.source_cluster_id)
    out = subprocess.run([str(psql), "-At", "-c", "select count(*) > 0 from svv_table_info",
                          f"host={info.host} port={info.port} dbname={info.database} user={info.user} sslmode=disable"],
                         env={**os.environ, "PGPASSWORD": info.password}, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "t"


def test_cluster_lifecycle_moves_database_and_endpoint(sandbox: SandboxClient) -> None:
    rs = sandbox.client("redshift")
    sandbox.create_cluster("lifecycle-a", encrypted=True, kms_key_id=sandbox.info.kms_alias)
    conn = sandbox.connect("lifecycle-a", autocommit=True)
    _rows(conn, "create table marker (v int)")
    _rows(conn, "insert into marker values (42)")
    conn.close()
    described = rs.describe_clusters(ClusterIdentifier="lifecycle-a")["Clusters"][0]
    assert described["KmsKeyId"] == sandbox.info.kms_key_arn
    rs.modify_cluster(ClusterIdentifier="lifecycle-a", NewClusterIdentifier="lifecycle-b")
    sandbox.wait_available("lifecycle-b")
    assert "lifecycle-a" not in sandbox.cluster_ids()
    conn = _connect_described(sandbox, "lifecycle-b")
    assert _rows(conn, "select v from marker") == [(42,)]
    conn.close()
    rs.delete_cluster(ClusterIdentifier="lifecycle-b", SkipFinalClusterSnapshot=True)
    waiter_deadline = time.monotonic() + 30
    while "lifecycle-b" in sandbox.cluster_ids() and time.monotonic() < waiter_deadline:
        rs.describe_clusters()  # the modelled deletion completes as the control plane is asked
        time.sleep(0.1)  # the modelled status advances with time; polling it is not test synchronisation
    assert "lifecycle-b" not in sandbox.cluster_ids()


def test_unload_in_one_cluster_copy_into_another(sandbox: SandboxClient) -> None:
    sandbox.create_cluster("copy-target")
    src = sandbox.connect(sandbox.info.source_cluster_id, autocommit=True)
    prefix = f"s3://{sandbox.info.bucket}/tests/unload-copy/customers/"
    _rows(src, f"unload ('select * from public.customers') to '{prefix}' iam_role '{sandbox.info.iam_role_arn}' "
               f"format parquet manifest verbose encrypted kms_key_id '{sandbox.info.kms_key_id}' cleanpath")
    ddl = _rows(src, "select count(*) from public.customers")[0][0]
    src.close()
    with psycopg.connect(sandbox.admin_dsn(sandbox.info.source_cluster_id)) as pg:
        columns = pg.execute("select string_agg(quote_ident(attname) || ' ' || format_type(atttypid, atttypmod), "
                             "', ' order by attnum) from pg_attribute where attrelid = 'public.customers'::regclass "
                             "and attnum > 0 and not attisdropped").fetchone()
    assert columns is not None
    dst = sandbox.connect("copy-target")
    _rows(dst, f"create table customers ({columns[0]})")
    _rows(dst, f"copy customers from '{prefix}manifest' iam_role '{sandbox.info.iam_role_arn}' "
               "format parquet manifest")
    dst.rollback()
    assert _rows(dst, "select count(*) from pg_tables where tablename = 'customers'") == [(0,)]
    _rows(dst, f"create table customers ({columns[0]})")
    _rows(dst, f"copy customers from '{prefix}manifest' iam_role '{sandbox.info.iam_role_arn}' "
               "format parquet manifest")
    assert _rows(dst, "select pg_last_copy_count()") == [(ddl,)]
    dst.commit()
    dst.close()
    source_dsn, target_dsn = sandbox.admin_dsn(sandbox.info.source_cluster_id), sandbox.admin_dsn("copy-target")
    with psycopg.connect(source_dsn) as a, psycopg.connect(target_dsn) as b:
        left = sorted(a.execute("select md5(c::text) from public.customers c").fetchall())
        right = sorted(b.execute("select md5(c::text) from public.customers c").fetchall())
    assert left == right and len(left) == ddl


def test_write_traffic_shows_in_cloudwatch(sandbox: SandboxClient) -> None:
    import datetime as dt

    sandbox.create_cluster("metrics-demo")
    conn = sandbox.connect("metrics-demo", autocommit=True)
    _rows(conn, "create table w (v int)")
    for i in range(20):
        _rows(conn, f"insert into w values ({i})")
    conn.close()
    cw = sandbox.client("cloudwatch")
    deadline = time.monotonic() + 20
    peak = 0.0
    while time.monotonic() < deadline and peak == 0.0:
        now = dt.datetime.now(dt.timezone.utc)
        stats = cw.get_metric_statistics(
            Namespace="AWS/Redshift", MetricName="WriteIOPS", StartTime=now - dt.timedelta(minutes=5),
            EndTime=now + dt.timedelta(minutes=1), Period=60, Statistics=["Maximum"],
            Dimensions=[{"Name": "ClusterIdentifier", "Value": "metrics-demo"}])
        peak = max([p["Maximum"] for p in stats["Datapoints"]] or [0.0])
        time.sleep(0.5)  # metrics are published on an interval; this polls for them with a deadline
    assert peak > 0


def test_restore_carries_the_snapshot_data(sandbox: SandboxClient) -> None:
    rs = sandbox.client("redshift")
    sandbox.create_seeded_cluster("restore-src", tables=3, rows=200)
    rs.create_cluster_snapshot(SnapshotIdentifier="restore-src-snap", ClusterIdentifier="restore-src")
    deadline = time.monotonic() + 30
    while rs.describe_cluster_snapshots(SnapshotIdentifier="restore-src-snap")["Snapshots"][0]["Status"] != "available":
        assert time.monotonic() < deadline
        time.sleep(0.1)  # modelled snapshot status advancing with time
    rs.restore_from_cluster_snapshot(ClusterIdentifier="restored", SnapshotIdentifier="restore-src-snap",
                                     Encrypted=True, KmsKeyId=sandbox.info.kms_alias)
    sandbox.wait_available("restored")
    assert rs.describe_clusters(ClusterIdentifier="restored")["Clusters"][0]["KmsKeyId"] == sandbox.info.kms_key_arn
    src = sandbox.connect("restore-src")
    dst = sandbox.connect("restored")
    query = 'select "schema", "table", tbl_rows from svv_table_info order by 1, 2'
    assert _rows(src, query) == _rows(dst, query)
    src.close()
    dst.close()


def test_cli_sandbox_commands(tmp_path: Path) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "migrator", "sandbox", *args], capture_output=True, text=True,
                              timeout=120)

    directory = str(tmp_path / "sb")
    down = cli("down", "--dir", directory)
    assert down.returncode == 0 and "no sandbox running" in down.stdout
    bad = cli("fault", "teleport", "--dir", directory)
    assert bad.returncode == 2 and bad.stderr.strip().splitlines() == [
        f"error: no sandbox running in {directory} (start one: `migrator sandbox up --dir {directory}`)"]
    up = cli("up", "--dir", directory, "--tables", "2", "--rows", "50")
    try:
        assert up.returncode == 0, up.stderr
        assert (tmp_path / "sb" / "unload-copy.toml").exists() and (tmp_path / "sb" / "modify.toml").exists()
        assert oct((tmp_path / "sb" / "sandbox.json").stat().st_mode & 0o777) == "0o600"
        again = cli("up", "--dir", directory)
        assert again.returncode == 2 and "already running" in again.stderr
        unknown = cli("fault", "teleport", "--dir", directory)
        assert unknown.returncode == 2 and "unknown fault kind 'teleport'" in unknown.stderr
        seeded = cli("seed", "--dir", directory, "--tables", "2", "--rows", "100")
        assert seeded.returncode == 0 and "seeded" in seeded.stdout, seeded.stderr
        plain = cli("seed", "--dir", directory, "--tables", "1", "--rows", "10", "--prefix", "nh_", "--no-hard")
        assert plain.returncode == 0, plain.stderr
        # The default seed (up, seed) holds the hard types and names; --no-hard leaves them out.
        client = SandboxClient(directory)
        with psycopg.connect(client.admin_dsn(client.info.source_cluster_id)) as pg:
            names = {tuple(r) for r in pg.execute("select schemaname, tablename from pg_tables")}
        assert {("public", "hard types"), ("a.b", "c"), ("a", "b.c"), ("public", "[/]"),
                ("public", "extra_hard types"), ("public", "extra_[/]")} <= names
        assert ("public", "nh_hard types") not in names and ("public", "nh_[/]") not in names
    finally:
        assert cli("down", "--dir", directory).returncode == 0
    assert cli("status", "--dir", directory).returncode == 2


def test_old_endpoint_reaches_the_renamed_cluster_until_the_name_cache_expires(sandbox: SandboxClient) -> None:
    """"Renaming clusters": the old DNS name may stay cached, so a client that kept it (or a check that
    connects through it) still reaches the renamed cluster for a while."""
    rs = sandbox.client("redshift")
    with pytest.raises(ValueError, match="unknown sandbox duration"):
        sandbox.set_durations(dnss=1.0)
    sandbox.set_durations(dns=600)
    try:
        sandbox.create_cluster("dns-a", encrypted=True, kms_key_id=sandbox.info.kms_alias)
        conn = sandbox.connect("dns-a", autocommit=True)
        _rows(conn, "create table marker (v int)")
        _rows(conn, "insert into marker values (7)")
        conn.close()
        old_endpoint = rs.describe_clusters(ClusterIdentifier="dns-a")["Clusters"][0]["Endpoint"]
        rs.modify_cluster(ClusterIdentifier="dns-a", NewClusterIdentifier="dns-b")
        sandbox.wait_available("dns-b")
        info = sandbox.cluster_info("dns-b")

        def through_old_name() -> redshift_connector.Connection:
            return redshift_connector.connect(host=old_endpoint["Address"], port=old_endpoint["Port"],
                                              database=info.database, user=info.user, password=info.password,
                                              ssl=False, timeout=10)

        cached = through_old_name()
        assert _rows(cached, "select v from marker") == [(7,)]
        cached.close()
        sandbox.set_durations(dns=0)
        with pytest.raises(redshift_connector.InterfaceError):
            through_old_name().close()
    finally:
        sandbox.set_durations(dns=2.0)


def test_a_sandbox_whose_owner_is_killed_stops_and_removes_its_servers(tmp_path: Path) -> None:
    """A test run killed before its fixtures' teardown must not leave the daemon and its
    PostgreSQL servers running (each holds CPU and hundreds of megabytes of disk)."""
    from migrator.procinfo import pid_alive

    directory = tmp_path / "owned"
    owner = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\n"
         "from migrator.sandbox.client import SandboxClient\n"
         "SandboxClient.start(sys.argv[1], tables=0, rows=1)\n"
         "print('up', flush=True)\n"
         "time.sleep(600)\n", str(directory)],
        stdout=subprocess.PIPE, text=True)
    assert owner.stdout is not None
    assert owner.stdout.readline().strip() == "up"
    daemon_pid = int((directory / "daemon.pid").read_text())
    pointers = list((directory / "clusters").glob("*/server-dir"))
    server_dirs = [Path(p.read_text().strip()) for p in pointers] or list((directory / "clusters").glob("*/pgdata"))
    assert server_dirs and all(d.exists() for d in server_dirs)

    owner.kill()
    owner.wait(timeout=30)
    deadline = time.monotonic() + 90
    while pid_alive(daemon_pid) and time.monotonic() < deadline:
        time.sleep(0.1)  # polling another process's exit
    assert not pid_alive(daemon_pid), "the daemon outlived its owner"
    assert not any(d.exists() for d in server_dirs)
