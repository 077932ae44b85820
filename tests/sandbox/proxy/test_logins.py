"""Users other than the master user log in with the password CREATE USER / ALTER USER gave them,
and their session acts as them (Redshift: "CREATE USER", "ALTER USER"; the md5 form it stores)."""

from __future__ import annotations

import hashlib
import uuid

import pytest
import redshift_connector

from migrator.sandbox.client import SandboxClient
from tests.harness import make_cluster


def _connect(sandbox: SandboxClient, cluster_id: str, user: str, password: str,
             **extra: object) -> redshift_connector.Connection:
    info = sandbox.cluster_info(cluster_id)
    return redshift_connector.connect(host=info.host, port=info.port, database=info.database, user=user,
                                      password=password, ssl=False, timeout=60, **extra)  # type: ignore[arg-type]


def _one(conn: redshift_connector.Connection, sql: str) -> object:
    cur = conn.cursor()
    cur.execute(sql)
    row = cur.fetchone()
    return row[0] if row else None


@pytest.fixture(scope="module")
def cluster(sandbox: SandboxClient) -> str:
    cluster_id = f"logins-{uuid.uuid4().hex[:6]}"
    make_cluster(sandbox, cluster_id, tables=1, rows=5)
    return cluster_id


def test_created_user_logs_in_and_acts_as_itself(sandbox: SandboxClient, cluster: str) -> None:
    info = sandbox.cluster_info(cluster)
    admin = _connect(sandbox, cluster, info.user, info.password)
    admin.autocommit = True
    admin.cursor().execute("create user etl_user password 'Etl-Pass-1234'")
    admin.cursor().execute("create table public.etl_owned (id int)")
    with pytest.raises(redshift_connector.ProgrammingError, match="password authentication failed"):
        _connect(sandbox, cluster, "etl_user", "Wrong-Pass-1234")
    etl = _connect(sandbox, cluster, "etl_user", "Etl-Pass-1234")
    etl.autocommit = True
    assert _one(etl, "select current_user") == "etl_user"
    with pytest.raises(redshift_connector.ProgrammingError, match="permission denied"):
        etl.cursor().execute("insert into public.etl_owned values (1)")
    # A regular user sees only its own queries in the system log, and none of the connection log.
    assert _one(etl, "select count(distinct userid) from stl_query") == 1
    assert _one(etl, "select count(*) from stl_connection_log") == 0
    # The proxy logs in as PostgreSQL's superuser and acts as the user: the user cannot change back.
    for escape in ("reset session authorization", "set session authorization default",
                   f"set local session authorization {info.user}", "set role none", "reset role"):
        with pytest.raises(redshift_connector.ProgrammingError, match="permission denied to set session authorization"):
            etl.cursor().execute(escape)
        etl.rollback()
    assert _one(etl, "select current_user") == "etl_user"
    etl.close()
    admin.cursor().execute("alter user etl_user password 'New-Pass-5678'")
    with pytest.raises(redshift_connector.ProgrammingError, match="password authentication failed"):
        _connect(sandbox, cluster, "etl_user", "Etl-Pass-1234")
    _connect(sandbox, cluster, "etl_user", "New-Pass-5678").close()
    admin.close()


def test_disabled_md5_and_expired_passwords(sandbox: SandboxClient, cluster: str) -> None:
    info = sandbox.cluster_info(cluster)
    admin = _connect(sandbox, cluster, info.user, info.password)
    admin.autocommit = True
    hashed = "md5" + hashlib.md5(b"Hash-Pass-1234" + b"bi_user").hexdigest()
    admin.cursor().execute(f"create user bi_user password '{hashed}'")
    _connect(sandbox, cluster, "bi_user", "Hash-Pass-1234").close()
    admin.cursor().execute("alter user bi_user password disable")
    with pytest.raises(redshift_connector.ProgrammingError, match="password authentication failed"):
        _connect(sandbox, cluster, "bi_user", "Hash-Pass-1234")
    admin.cursor().execute("create user old_user password 'Old-Pass-1234' valid until '2001-01-01'")
    with pytest.raises(redshift_connector.ProgrammingError, match="password authentication failed"):
        _connect(sandbox, cluster, "old_user", "Old-Pass-1234")
    admin.cursor().execute("create group readers")
    with pytest.raises(redshift_connector.ProgrammingError, match="password authentication failed"):
        _connect(sandbox, cluster, "readers", "Old-Pass-1234")
    admin.close()


def test_connection_log_keeps_the_application_name(sandbox: SandboxClient, cluster: str) -> None:
    info = sandbox.cluster_info(cluster)
    admin = _connect(sandbox, cluster, info.user, info.password)
    admin.autocommit = True
    admin.cursor().execute("create user app_user password 'App-Pass-1234'")
    _connect(sandbox, cluster, "app_user", "App-Pass-1234", application_name="nightly-etl").close()
    cur = admin.cursor()
    cur.execute("select trim(application_name), trim(remotehost) from stl_connection_log"
                " where trim(username) = 'app_user' and event = 'initiating session'")
    rows = cur.fetchall()
    admin.close()
    assert [tuple(r) for r in rows] == [("nightly-etl", "127.0.0.1")]
