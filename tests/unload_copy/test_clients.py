"""`migrator clients`: who connects to the source, from its logs; after the cutover, who moved to the
new cluster and who still reaches the old one; `status` counts those that have not moved."""

from __future__ import annotations

import json
from typing import Any

import redshift_connector

from tests.harness import Migration


def _connect(m: Migration, cluster_id: str, user: str, password: str, app: str) -> redshift_connector.Connection:
    info = m.sb.cluster_info(cluster_id)
    conn = redshift_connector.connect(host=info.host, port=info.port, database=info.database, user=user,
                                      password=password, ssl=False, timeout=60, application_name=app)
    conn.autocommit = True
    return conn


def _admin(m: Migration, cluster_id: str) -> redshift_connector.Connection:
    info = m.sb.cluster_info(cluster_id)
    return _connect(m, cluster_id, info.user, info.password, "test-admin")


def _write(m: Migration, cluster_id: str, user: str, password: str, app: str) -> None:
    conn = _connect(m, cluster_id, user, password, app)
    cur = conn.cursor()
    cur.execute("insert into public.client_feed values (1)")
    cur.execute("select count(*) from public.client_feed")
    conn.close()


def _by_user(clients: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {c["user"]: c for c in clients if c["user"] in ("etl_user", "bi_user")}


def test_clients_before_and_after_cutover(migration: Migration) -> None:
    m = migration
    admin = _admin(m, m.source)
    for sql in ("create user etl_user password 'Etl-Pass-1234'", "create user bi_user password 'Bi-Pass-12345'",
                "create table public.client_feed (id int)",
                "grant insert, select on public.client_feed to etl_user, bi_user"):
        admin.cursor().execute(sql)
    admin.close()
    _write(m, m.source, "etl_user", "Etl-Pass-1234", "nightly-etl")
    _write(m, m.source, "bi_user", "Bi-Pass-12345", "dashboards")

    listed = m.cli("clients", "--json")
    assert listed.returncode == 0, listed.stderr
    before = json.loads(listed.stdout)
    assert "about 7 days" in before["window"] and before["renamed_at"] is None
    seen = _by_user(before["clients"])
    assert seen["etl_user"]["application"] == "nightly-etl" and seen["etl_user"]["host"] == "127.0.0.1"
    assert seen["etl_user"]["statements"] >= 2 and seen["etl_user"]["writes"] == 1
    assert seen["bi_user"]["application"] == "dashboards" and seen["bi_user"]["writes"] == 1
    assert not any(c["application"] == "migrator" for c in before["clients"])  # the tool's own sessions

    planned = m.cli("plan", "--json")
    assert planned.returncode == 0, planned.stderr
    plan = json.loads(planned.stdout)
    assert {"etl_user", "bi_user"} <= {c["user"] for c in plan["clients"]}

    m.init()
    assert m.cli("run").returncode == 8
    assert m.cli("cutover").returncode == 8  # waiting for decommission approval
    old_name = next(c for c in m.sb.cluster_ids() if c.startswith(f"{m.source}-unencrypted-"))
    # The operator gives etl_user its password on the new cluster; it reconnects through the
    # production name. bi_user still has the old cluster's address and writes there.
    admin = _admin(m, m.source)
    admin.cursor().execute("alter user etl_user password 'Etl-Pass-1234'")
    admin.close()
    _write(m, m.source, "etl_user", "Etl-Pass-1234", "nightly-etl")
    _write(m, old_name, "bi_user", "Bi-Pass-12345", "dashboards")

    after = json.loads(m.cli("clients", "--json").stdout)
    assert after["old_cluster"] == old_name and after["renamed_at"] is not None
    seen = _by_user(after["clients"])
    assert seen["etl_user"]["moved"] is True and seen["etl_user"]["still_on_old"] is False
    assert seen["bi_user"]["moved"] is False and seen["bi_user"]["still_on_old"] is True
    assert after["not_moved"] >= 1
    people = m.cli("clients")
    assert people.returncode == 0 and "not moved" in people.stdout and "dashboards" in people.stdout
    status = json.loads(m.cli("status", "--json").stdout)
    assert "have not moved to the new cluster" in status["clients_not_moved"]
    assert "bi_user@127.0.0.1 (dashboards)" in status["clients_not_moved"]
    assert "etl_user" not in status["clients_not_moved"]
    reported = m.cli("report", "--format", "json")
    assert reported.returncode == 0, reported.stderr
    in_report = _by_user(json.loads(reported.stdout)["clients"]["clients"])
    assert in_report["bi_user"]["still_on_old"] is True and in_report["etl_user"]["moved"] is True
    assert "| bi_user |" in m.cli("report").stdout
