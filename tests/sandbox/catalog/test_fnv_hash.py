"""fnv_hash against the values AWS documents for Redshift's FNV_HASH."""

from __future__ import annotations

import time

import pytest

from tests.sandbox.catalog.conftest import Cluster

# (expression, value) pairs from AWS's FNV_HASH documentation page.
AWS_EXAMPLES = [
    ("fnv_hash(1)", -5968735742475085980),
    ("fnv_hash('Amazon Redshift')", 7783490368944507294),
    ("fnv_hash('Amazon Redshift', fnv_hash(1))", -2202602717770968555),
    ("fnv_hash('abcd')", -281581062704388899),
    ("fnv_hash('cd', fnv_hash('ab'))", -281581062704388899),
    ("fnv_hash(1::smallint)", 589727492704079044),
    ("fnv_hash(1::bigint)", -8517097267634966620),
]


@pytest.mark.parametrize(("expr", "expected"), AWS_EXAMPLES)
def test_matches_aws_examples(cluster: Cluster, expr: str, expected: int) -> None:
    assert cluster.rows(f"select {expr}")[0][0] == expected


def test_typed_columns_hash_like_literals(cluster: Cluster) -> None:
    cluster.run("create table h (s varchar(20), i int, c char(6))")
    cluster.run("insert into h values ('Amazon Redshift', 1, 'ab')")
    s, i, c, c_trimmed = cluster.rows(
        "select fnv_hash(s), fnv_hash(i), fnv_hash(c), fnv_hash(rtrim(c)) from h")[0]
    assert (s, i) == (7783490368944507294, -5968735742475085980)
    # CHAR(n) hashes its padding: 'ab    ' differs from 'ab'.
    assert c == cluster.rows("select fnv_hash('ab    '::text)")[0][0]
    assert c != c_trimmed


def test_checksum_speed_100k_rows(cluster: Cluster) -> None:
    cluster.run("create table big (id int, s varchar(64))")
    cluster.conn.execute("insert into big select i, md5(i::text) from generate_series(1, 100000) i")
    start = time.perf_counter()
    total = cluster.rows("select sum(fnv_hash(s, fnv_hash(id))) from big")[0][0]
    elapsed = time.perf_counter() - start
    print(f"\nfnv_hash checksum over 100k rows (int + 32-char text): {elapsed:.2f}s")
    assert total is not None
