"""A non-superuser is told which grants it lacks instead of reading filtered system views as
empty (issue 9, item 2.14)."""

from __future__ import annotations

from typing import Any

from migrator.warehouse.access import access_problems
from migrator.warehouse.connection import Session

CLUSTER = "access-src"
USER, PASSWORD = "etl reader", "Readonly1pass"


def test_regular_user_hears_what_it_lacks(sb: Any) -> None:
    sb.create_cluster(CLUSTER)
    with Session.of(sb.connect(CLUSTER, autocommit=True)) as admin:
        assert access_problems(admin) == []  # a superuser sees everything
        admin.run('create schema "open"')
        admin.run('create schema "closed"')
        admin.run('create table "open"."t" ("v" integer)')
        admin.run('create table "closed"."secret" ("v" integer)')
        admin.run(f"create user \"{USER}\" password '{PASSWORD}'")
        admin.run(f'grant usage on schema "open" to "{USER}"')
        admin.run(f'grant select on "open"."t" to "{USER}"')
    # The sandbox's proxy logs every client in as its admin; a superuser may become another
    # user for the session (SET SESSION AUTHORIZATION, on Redshift too), with its privileges.
    with Session.of(sb.connect(CLUSTER, autocommit=True)) as regular:
        regular.run(f'set session authorization "{USER}"')
        assert regular.run("select current_user")[0][0] == USER
        problems = {p.what: p for p in access_problems(regular)}
    for log in ("stl_scan", "stl_insert", "stl_delete"):
        assert "SYSLOG ACCESS UNRESTRICTED" in problems[log].fix and '"etl reader"' in problems[log].fix
    hidden = next(p for w, p in problems.items() if "user table" in w)
    assert "closed.secret" in hidden.what and "open.t" not in hidden.what
    assert all(p.describe().count(";") >= 1 for p in problems.values())
