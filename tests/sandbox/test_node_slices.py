"""Slices per node follow the node type ("Node type details", Management Guide: default slices
per node ra3.xlplus 2, ra3.4xlarge 4, ra3.16xlarge 16, dc2.large 2, dc2.8xlarge 16): a cluster
made through CreateCluster shows nodes x that in STV_SLICES, node by node, and UNLOAD PARALLEL ON
writes a file per slice. Before this the count was the sandbox's own setting (2 for any cluster)."""

from __future__ import annotations

import pytest

from migrator.sandbox.client import SandboxClient
from migrator.sandbox.controlplane.node_types import cluster_slices

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("node_type, nodes, slices", [
    ("ra3.xlplus", 2, 4), ("ra3.4xlarge", 2, 8), ("dc2.large", 1, 2), ("ra3.16xlarge", 2, 32),
])
def test_stv_slices_follow_the_node_type_and_count(sandbox: SandboxClient, node_type: str, nodes: int,
                                                   slices: int) -> None:
    cluster = f"slices-{node_type.replace('.', '-')}-{nodes}"
    sandbox.create_cluster(cluster, node_type=node_type, nodes=nodes)
    assert cluster_slices(node_type, nodes) == slices
    conn = sandbox.connect(cluster, autocommit=True)
    try:
        cur = conn.cursor()
        cur.execute("select node, slice, localslice from stv_slices order by slice")
        rows = [tuple(r) for r in cur.fetchall()]
        per_node = slices // nodes
        assert rows == [(s // per_node, s, s % per_node) for s in range(slices)]
        cur.execute("create table t (id int)")
        cur.execute("insert into t values (1), (2), (3)")
        info = sandbox.info
        cur.execute(f"unload ('select * from t') to 's3://{info.bucket}/{cluster}/t_' "
                    f"iam_role '{info.iam_role_arn}' parallel on")
        keys = sandbox.client("s3").list_objects_v2(Bucket=info.bucket, Prefix=f"{cluster}/t_")["Contents"]
        assert len(keys) == slices  # text: one file per slice, empty slices too
        # One UNLOAD is one query: a row per file in STL_UNLOAD_LOG, all under its query id.
        cur.execute(f"select count(*), count(distinct query) from stl_unload_log where path like '%{cluster}/t_%'")
        assert tuple(cur.fetchone()) == (slices, 1)
    finally:
        conn.close()


def test_a_test_may_override_a_clusters_slices(sandbox: SandboxClient) -> None:
    sandbox.create_cluster("slices-override")
    sandbox.set_slices("slices-override", 3)
    conn = sandbox.connect("slices-override", autocommit=True)
    try:
        cur = conn.cursor()
        cur.execute("select count(*), max(node) from stv_slices")
        assert tuple(cur.fetchone()) == (3, 1)  # ra3.xlplus: 2 a node
    finally:
        conn.close()


def test_a_value_too_long_in_bytes_is_load_error_1204(sandbox: SandboxClient) -> None:
    """Through the whole sandbox (proxy, system log): STL_LOAD_ERRORS carries err_code 1204
    ("Load error reference") for a value longer in bytes than its VARCHAR."""
    cluster = "slices-ra3-xlplus-2"
    if cluster not in sandbox.cluster_ids():
        sandbox.create_cluster(cluster)
    info = sandbox.info
    sandbox.client("s3").put_object(Bucket=info.bucket, Key="bytes-1204/part", Body="1|日本語\n".encode())
    conn = sandbox.connect(cluster, autocommit=True)
    try:
        cur = conn.cursor()
        cur.execute("create table narrow (id int, v varchar(8))")
        with pytest.raises(Exception):
            cur.execute(f"copy narrow from 's3://{info.bucket}/bytes-1204/' iam_role '{info.iam_role_arn}'")
        cur.execute("select err_code, trim(err_reason), trim(colname) from stl_load_errors order by query desc limit 1")
        assert tuple(cur.fetchone()) == (1204, "String length exceeds DDL length (9 > 8)", "v")
    finally:
        conn.close()
