"""The inventory's usage window is what the logs keep, read from SYS_QUERY_DETAIL where the cluster
has it (concurrency-scaling queries included) and from the STL step logs where it does not, and the
inventory says which and over how long."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from migrator.warehouse.connection import Session
from migrator.warehouse.inventory import USAGE_WINDOW_DAYS, read_inventory

CLUSTER = "usage-src"


@pytest.fixture(scope="module")
def session(sandbox: Any) -> Iterator[Session]:
    sandbox.create_cluster(CLUSTER)
    with Session.of(sandbox.connect(CLUSTER, autocommit=True)) as s:
        s.run('create table "public"."read_often" ("n" integer)')
        s.run('create table "public"."never_read" ("n" integer)')
        s.run('insert into "public"."read_often" values (1)')
        s.run('insert into "public"."never_read" values (1)')
        s.run('select count(*) from "public"."read_often"')
        yield s


def test_usage_comes_from_sys_query_detail_over_what_the_logs_keep(session: Session) -> None:
    found = {t.name: t for t in read_inventory(session)}
    often, never = found["read_often"], found["never_read"]
    assert often.scans >= 1 and not often.unused
    assert often.last_write is not None and never.last_write is not None
    window = often.usage
    assert window is not None and window is never.usage  # one object for the inventory
    assert (window.days, window.source, window.concurrency_scaling) == (USAGE_WINDOW_DAYS, "sys_query_detail", True)
    assert "last 7 days" in window.describe() and "concurrency-scaling clusters counted" in window.describe()


def test_without_the_sys_view_the_stl_logs_are_read_and_that_is_said(sandbox: Any) -> None:
    sb = sandbox
    cluster = "usage-stl-src"
    sb.create_cluster(cluster)
    with psycopg.connect(sb.admin_dsn(cluster), autocommit=True) as pg:
        pg.execute("drop view pg_sandbox.sys_query_detail")  # a cluster version without the SYS view
    with Session.of(sb.connect(cluster, autocommit=True)) as s:
        s.run('create table "public"."t" ("n" integer)')
        s.run('select count(*) from "public"."t"')
        (table,) = read_inventory(s)
    assert table.scans >= 1 and not table.unused
    assert table.usage is not None and table.usage.source == "stl_scan, stl_insert, stl_delete"
    assert "NOT counted" in table.usage.describe()
