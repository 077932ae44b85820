"""One COPY is one query, one UNLOAD is one query, through the real driver and the whole sandbox
(proxy, engine, system log).

AWS: PG_LAST_COPY_ID "Returns the query ID of the most recently completed COPY command in the
current session"; STL_LOAD_COMMITS.query and STL_LOAD_ERRORS.query are that query ID (their
examples select `where query = pg_last_copy_id()`); STL_UNLOAD_LOG holds a row per file of an
UNLOAD under its query ID. So each statement has ONE stl_query row (its text the statement as
sent), and every row it logs elsewhere carries that row's id. Before this the sandbox logged a
second stl_query row of its own per COPY (`copy <table>`) and per UNLOAD (the inner SELECT),
under another id, and fed pg_last_copy_id() from a counter of its own."""

from __future__ import annotations

import itertools
from typing import Any

import psycopg
import pytest

from migrator.sandbox.client import SandboxClient

pytestmark = pytest.mark.slow

_ids = itertools.count()


def _rows(cur: Any, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    cur.execute(sql, params) if params else cur.execute(sql)
    return [tuple(r) for r in cur.fetchall()] if cur.description else []


class Session:
    """A driver session on the sandbox's source cluster and an unlogged look at its stl_query rows
    (the admin connection reads the log table directly, so reading logs nothing)."""

    def __init__(self, sandbox: SandboxClient) -> None:
        self.sandbox = sandbox
        self.cluster = sandbox.info.source_cluster_id
        self.conn = sandbox.connect(self.cluster, autocommit=True)
        self.cur = self.conn.cursor()
        self.pid = int(_rows(self.cur, "select pg_backend_pid()")[0][0])
        self.mark = self._last_query()

    def _last_query(self) -> int:
        with psycopg.connect(self.sandbox.admin_dsn(self.cluster)) as pg:
            row = pg.execute("select coalesce(max(query), 0) from pg_sandbox.query_log").fetchone()
        assert row is not None
        return int(row[0])

    def logged(self) -> list[tuple[int, str, int]]:
        """This session's stl_query rows (query, querytxt, aborted) since the last call."""
        with psycopg.connect(self.sandbox.admin_dsn(self.cluster)) as pg:
            rows = [(int(q), str(t), int(a)) for q, t, a in pg.execute(
                "select query, querytxt, aborted from pg_sandbox.query_log where pid = %s and query > %s"
                " order by query", (self.pid, self.mark))]
        self.mark = self._last_query()
        return rows

    def run(self, sql: str) -> list[tuple[Any, ...]]:
        return _rows(self.cur, sql)

    def close(self) -> None:
        self.conn.close()


@pytest.fixture
def session(sandbox: SandboxClient) -> Any:
    s = Session(sandbox)
    yield s
    s.close()


def _put(sandbox: SandboxClient, key: str, body: str) -> str:
    sandbox.client("s3").put_object(Bucket=sandbox.info.bucket, Key=key, Body=body.encode())
    return f"s3://{sandbox.info.bucket}/{key.rsplit('/', 1)[0]}/"


def test_a_copy_is_one_query_whose_id_every_log_and_pg_last_copy_id_carry(session: Session,
                                                                          sandbox: SandboxClient) -> None:
    n = next(_ids)
    table = f"qid_copy_{n}"
    session.run(f"create table {table} (id int, v varchar(10))")
    prefix = _put(sandbox, f"qid-copy-{n}/part_00", "1|a\n2|b\n3|c\n")
    copy_sql = f"copy {table} from '{prefix}' iam_role '{sandbox.info.iam_role_arn}'"
    session.logged()
    session.run(copy_sql)
    logged = session.logged()
    assert [(t, a) for _q, t, a in logged] == [(copy_sql, 0)], "one stl_query row for the COPY, its own text"
    query = logged[0][0]
    assert session.run("select pg_last_copy_id(), pg_last_copy_count()") == [(query, 3)]
    assert session.run(f"select distinct query from stl_load_commits where filename like '%qid-copy-{n}/%'") == [
        (query,)]
    assert session.run(f"select query, rows from stl_insert where tbl = '{table}'::regclass::oid::int") == [(query, 3)]
    assert session.run(f"select count(*) from stl_query where query = {query} and trim(querytxt) like 'copy %'") == [
        (1,)]


def test_a_failed_copy_is_one_aborted_query_and_the_next_one_gets_its_own_id(session: Session,
                                                                             sandbox: SandboxClient) -> None:
    n = next(_ids)
    table = f"qid_bad_{n}"
    session.run(f"create table {table} (id int)")
    key = f"qid-bad-{n}/part_00"
    prefix = _put(sandbox, key, "1\nx\ny\n")  # two bad rows: two load errors, one COPY
    copy_sql = f"copy {table} from '{prefix}' iam_role '{sandbox.info.iam_role_arn}'"
    session.logged()
    with pytest.raises(Exception, match="stl_load_errors"):
        session.run(copy_sql)
    logged = session.logged()
    assert [(t, a) for _q, t, a in logged] == [(copy_sql, 1)], "one aborted stl_query row for the failed COPY"
    failed = logged[0][0]
    assert session.run(f"select query, line_number from stl_load_errors where tbl = '{table}'::regclass::oid::int"
                       " order by line_number") == [(failed, 2), (failed, 3)]
    # Each row names its file, its raw line and the value that failed (the product reads and scrubs them).
    assert session.run(f"select trim(filename), trim(raw_line), trim(raw_field_value) from stl_load_errors"
                       f" where query = {failed} order by line_number") == [
        (f"s3://{sandbox.info.bucket}/{key}", "x", "x"), (f"s3://{sandbox.info.bucket}/{key}", "y", "y")]

    # The same statement again, now with good data, is a new query: nothing of the failed one is
    # carried over (neither its id nor its aborted row).
    _put(sandbox, key, "1\n2\n")
    session.logged()
    session.run(copy_sql)
    assert session.run("select pg_last_copy_id()")[0][0] not in (failed, -1)
    again = session.logged()
    assert [(t, a) for _q, t, a in again] == [(copy_sql, 0), ("select pg_last_copy_id()", 0)]
    assert again[0][0] > failed
    assert session.run("select pg_last_copy_id()") == [(again[0][0],)]
    with psycopg.connect(sandbox.admin_dsn(session.cluster)) as pg:
        assert pg.execute("select querytxt, aborted from pg_sandbox.query_log where query = %s",
                          (failed,)).fetchall() == [(copy_sql, 1)]


def test_an_unload_is_one_query_whose_id_all_its_files_carry(session: Session, sandbox: SandboxClient) -> None:
    n = next(_ids)
    table = f"qid_unload_{n}"
    session.run(f"create table {table} (id int)")
    session.run(f"insert into {table} select generate_series(1, 40)")
    unload_sql = (f"unload ('select * from {table}') to 's3://{sandbox.info.bucket}/qid-unload-{n}/part_' "
                  f"iam_role '{sandbox.info.iam_role_arn}' parallel on")
    session.logged()
    session.run(unload_sql)
    logged = session.logged()
    assert [(t, a) for _q, t, a in logged] == [(unload_sql, 0)], "one stl_query row for the UNLOAD, its own text"
    query = logged[0][0]
    files = session.run(f"select query, count(*) from stl_unload_log where path like '%qid-unload-{n}/%'"
                        " group by query")
    assert len(files) == 1 and files[0][0] == query and files[0][1] > 1, files
    # A plain statement after it is logged as itself, under a new id.
    session.logged()
    session.run(f"select count(*) from {table}")
    after = session.logged()
    assert [(t, a) for _q, t, a in after] == [(f"select count(*) from {table}", 0)] and after[0][0] > query
