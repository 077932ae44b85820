"""What a non-superuser needs before the tool may believe the system views.

Redshift filters what a regular user sees instead of refusing ("Visibility of data in system
tables and views"): superuser-visible views (SVV_TABLE_INFO, STV_TBL_PERM) need an explicit
GRANT SELECT; user-visible STL/SVL views (STL_SCAN, STL_INSERT, STL_DELETE, ...) show only the
user's own rows unless the user has SYSLOG ACCESS UNRESTRICTED; catalog views such as
SVV_REDSHIFT_COLUMNS leave out tables the user may not read. Read without these, "no scans",
"no writes" or "no such table" would be decided on empty results. :func:`access_problems`
names each missing grant with the statement that fixes it; empty means nothing is missing.
"""

from __future__ import annotations

from dataclasses import dataclass

from migrator.errors import MigratorError
from migrator.names import table_key
from migrator.warehouse.connection import Session
from migrator.warehouse.sql import query, quote_ident

#: Superuser-visible views the tool reads, and what it reads them for.
SUPERUSER_VIEWS = {
    "svv_table_info": "table sizes, row estimates and distribution styles",
    "stv_tbl_perm": "which tables are BACKUP NO",
}
#: User-visible logs whose other users' rows the tool needs.
LOGS = {
    "stl_scan": "which tables were read lately (unused tables)",
    "stl_insert": "which tables were written (writes during the copy, quiet window)",
    "stl_delete": "which tables were written (writes during the copy, quiet window)",
}


@dataclass(frozen=True)
class AccessProblem:
    what: str  # the view or tables concerned
    why: str  # what the tool would get wrong without it
    fix: str  # the statement (or step) that grants it

    def describe(self) -> str:
        return f"{self.what}: {self.why}; fix: {self.fix}"


def access_problems(session: Session, *, max_tables: int = 5) -> list[AccessProblem]:
    """Missing grants for this session's user (autocommit session). A superuser sees all."""
    user, superuser = session.run(query("access_self"), kind="catalog")[0]
    if bool(superuser):
        return []
    who = quote_ident(str(user))
    problems = []
    for view, purpose in SUPERUSER_VIEWS.items():
        if not _granted(session, view):
            problems.append(AccessProblem(view, f"visible only to superusers; without it, {purpose} read as empty",
                                          f"GRANT SELECT ON {view} TO {who}; (or run as a superuser)"))
    if _syslog_access(session) != "UNRESTRICTED":
        for view, purpose in LOGS.items():
            problems.append(AccessProblem(
                view, f"shows a regular user only its own rows; {purpose} would miss other users' work",
                f"ALTER USER {who} SYSLOG ACCESS UNRESTRICTED; (or run as a superuser)"))
    hidden = [(str(s), str(t)) for s, t in session.run(query("access_unreadable_tables"), kind="catalog")]
    if hidden:
        names = ", ".join(table_key(s, t) for s, t in hidden[:max_tables])
        more = f" and {len(hidden) - max_tables} more" if len(hidden) > max_tables else ""
        problems.append(AccessProblem(
            f"{len(hidden)} user table(s): {names}{more}",
            "not readable by this user: they cannot be unloaded or counted, and catalog views leave them out",
            f"GRANT USAGE ON SCHEMA <schema> TO {who}; GRANT SELECT ON ALL TABLES IN SCHEMA <schema> TO {who}; "
            "(per schema; or run as a superuser)"))
    return problems


#: Views that show a regular user part of the truth with no grant to ask for but a role's system
#: permission ("SVV_DEFAULT_PRIVILEGES": visible to superusers and to users with the ACCESS SYSTEM
#: TABLE permission; "other users can only see default permissions granted to them").
PARTIAL_VIEWS = {
    "svv_default_privileges": ("shows a regular user only the default privileges granted to it: the "
                               "ALTER DEFAULT PRIVILEGES of other owners are not replayed on the target"),
}


def access_warnings(session: Session) -> list[str]:
    """What this session's user sees only in part, said once (plan/preflight print it); empty for
    a superuser. Not a problem that stops the run: a user may hold ACCESS SYSTEM TABLE through a
    role, which no catalog view tells it."""
    user, superuser = session.run(query("access_self"), kind="catalog")[0]
    if bool(superuser):
        return []
    who = quote_ident(str(user))
    return [f"{view} {why}; log in as a superuser, or grant the user a role with ACCESS SYSTEM TABLE "
            f"(CREATE ROLE r; GRANT ACCESS SYSTEM TABLE TO ROLE r; GRANT ROLE r TO {who};)"
            for view, why in PARTIAL_VIEWS.items()]


def _granted(session: Session, view: str) -> bool:
    try:
        rows = session.run(query("access_view_grant"), [view], kind="catalog")
    except MigratorError:
        return False  # the view is not there or not ours to ask about: treat as missing
    return bool(rows and rows[0][0])


def _syslog_access(session: Session) -> str | None:
    """RESTRICTED / UNRESTRICTED, or None when this user may not read SVL_USER_INFO."""
    try:
        rows = session.run(query("access_syslog"), kind="catalog")
    except MigratorError:
        return None
    return str(rows[0][0]).upper() if rows and rows[0][0] is not None else None
