"""The sandbox's slices: STV_SLICES lists the cluster's slices, UNLOAD PARALLEL ON writes files
per slice of that count, and MAXFILESIZE makes each slice write several (what the parts' file
counts are chosen from)."""

from __future__ import annotations

import json

import pytest

from migrator.sandbox.client import SandboxClient

pytestmark = pytest.mark.slow


def test_unload_writes_files_per_slice_of_the_cluster(sandbox: SandboxClient) -> None:
    cluster = "slices-src"
    if cluster not in sandbox.cluster_ids():
        sandbox.create_cluster(cluster)
    conn = sandbox.connect(cluster, autocommit=True)
    try:
        cur = conn.cursor()
        cur.execute("select count(*), min(slice), max(slice) from stv_slices")
        slices, low, high = cur.fetchone()
        assert slices >= 2 and (low, high) == (0, slices - 1)
        cur.execute("create table wide (id bigint not null, pad varchar(2000)) sortkey (id)")
        for start in range(0, 4000, 500):
            cur.execute("insert into wide select id, pad from (select %s + 1 as id, repeat('x', 1500) as pad) s",
                        (start,))
        cur.execute("select count(*) from wide")
        rows = cur.fetchone()[0]
        info = sandbox.info
        prefix = f"s3://{info.bucket}/slices/"
        cur.execute(f"unload ('select * from wide') to '{prefix}a_' iam_role '{info.iam_role_arn}' "
                    "manifest parallel on")
        bucket_keys = [o["Key"] for o in sandbox.client("s3").list_objects_v2(
            Bucket=info.bucket, Prefix="slices/a_")["Contents"]]
        assert len([k for k in bucket_keys if not k.endswith("manifest")]) == slices
        manifest = json.loads(sandbox.client("s3").get_object(Bucket=info.bucket, Key="slices/a_manifest")["Body"]
                              .read())
        assert len(manifest["entries"]) == slices and rows == 8
    finally:
        conn.close()


def test_concurrent_copies_into_one_table_take_turns(sandbox: SandboxClient) -> None:
    import threading

    import psycopg

    from tests.harness import wait_for

    cluster = "slices-copy"
    if cluster not in sandbox.cluster_ids():
        sandbox.create_cluster(cluster)
    info = sandbox.info
    setup = sandbox.connect(cluster, autocommit=True)
    cur = setup.cursor()
    cur.execute("create table src (id int)")
    cur.execute("insert into src values (1), (2), (3)")
    cur.execute("create table dst (id int)")
    cur.execute(f"unload ('select * from src') to 's3://{info.bucket}/turns/' iam_role '{info.iam_role_arn}' "
                "manifest cleanpath")
    setup.close()
    copy = f"copy dst from 's3://{info.bucket}/turns/manifest' iam_role '{info.iam_role_arn}' manifest"
    first, second = sandbox.connect(cluster), sandbox.connect(cluster)
    first.cursor().execute(copy)  # its transaction stays open
    done = threading.Event()

    def other() -> None:
        second.cursor().execute(copy)
        second.commit()
        done.set()

    thread = threading.Thread(target=other, daemon=True)
    thread.start()
    with psycopg.connect(sandbox.admin_dsn(cluster), autocommit=True) as pg:
        wait_for(lambda: pg.execute("select count(*) from pg_stat_activity where wait_event_type = 'Lock'")
                 .fetchone()[0] >= 1, "the second COPY waiting for the first's lock")
    assert not done.is_set()
    first.commit()
    thread.join(timeout=60)
    assert done.is_set()
    first.close()
    second.close()
