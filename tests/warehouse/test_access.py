"""A non-superuser is told which grants it lacks instead of reading filtered system views as
empty (issue 9, item 2.14)."""

from __future__ import annotations

from typing import Any

from migrator.strategies.preflight_checks import access_warning_lines
from migrator.warehouse.access import access_problems
from migrator.warehouse.connection import Session

CLUSTER = "access-src"
USER, PASSWORD = "etl reader", "Readonly1pass"


def test_regular_user_hears_what_it_lacks(sb: Any) -> None:
    sb.create_cluster(CLUSTER)
    with Session.of(sb.connect(CLUSTER, autocommit=True)) as admin:
        assert access_problems(admin) == []  # a superuser sees everything
        assert access_warning_lines(admin, "source") == []
        admin.run('create schema "open"')
        admin.run('create schema "closed"')
        admin.run('create table "open"."t" ("v" integer)')
        admin.run('create table "closed"."secret" ("v" integer)')
        admin.run(f"create user \"{USER}\" password '{PASSWORD}'")
        admin.run(f'grant usage on schema "open" to "{USER}"')
        admin.run(f'grant select on "open"."t" to "{USER}"')
        admin.run('create user "other reader" password \'Readonly2pass\'')
        admin.run('alter default privileges in schema "open" grant select on tables to "other reader"')
        admin.run(f'alter default privileges in schema "open" grant insert on tables to "{USER}"')
        everyone = admin.run("select trim(grantee_name) from svv_default_privileges order by 1")
    # The sandbox's proxy logs every client in as its admin; a superuser may become another
    # user for the session (SET SESSION AUTHORIZATION, on Redshift too), with its privileges.
    with Session.of(sb.connect(CLUSTER, autocommit=True)) as regular:
        regular.run(f'set session authorization "{USER}"')
        assert regular.run("select current_user")[0][0] == USER
        problems = {p.what: p for p in access_problems(regular)}
        warnings = access_warning_lines(regular, "source")
        own = regular.run("select trim(grantee_name) from svv_default_privileges order by 1")
    assert everyone == [(USER,), ("other reader",)] and own == [(USER,)]
    # SVV_DEFAULT_PRIVILEGES shows a regular user only what was granted to it: said, not hidden.
    assert len(warnings) == 1 and warnings[0].startswith("source user is not a superuser: svv_default_privileges")
    assert "ACCESS SYSTEM TABLE" in warnings[0] and '"etl reader"' in warnings[0]
    for log in ("stl_scan", "stl_insert", "stl_delete"):
        assert "SYSLOG ACCESS UNRESTRICTED" in problems[log].fix and '"etl reader"' in problems[log].fix
    hidden = next(p for w, p in problems.items() if "user table" in w)
    assert "closed.secret" in hidden.what and "open.t" not in hidden.what
    assert all(p.describe().count(";") >= 1 for p in problems.values())
