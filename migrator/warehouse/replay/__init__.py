"""Recreate the source's database objects on the target, in dependency order, idempotently.

Order: users (PASSWORD DISABLE: passwords cannot be read back; listed for an operator to
reset) → groups and memberships → schemas with owners → tables (types, NOT NULL, DEFAULT,
IDENTITY, ENCODE, DISTSTYLE/DISTKEY, SORTKEY, PRIMARY KEY/UNIQUE, BACKUP NO) → [data, done by
the pipeline] → foreign keys (replay_foreign_keys) → views by dependency, late-binding last
→ table ownership → grants. Each object is created only when the target lacks it; nothing
is ever dropped. Every statement run is returned for the event log; anything not recreated
is returned with its reason.

After the data (replay_after_data): SQL UDFs and stored procedures , views,
materialized views (then REFRESH), ownership, grants, default privileges. What cannot be
recreated (Python and Lambda UDFs, aggregates, external schemas and tables) is reported in
``skipped`` with the reason. Sandbox gaps: see inventory.py.

This module is the public entry and only orders the parts; each part owns one kind of object:
roles.py (users, groups), ddl.py (schemas, tables, identity seeds, foreign keys), views.py
(views, materialized views), routines.py (functions, procedures), acl.py (ACL parsing,
ownership, grants, default privileges), external.py (external schemas and tables, reported);
base.py holds the result and the statement runner, statements.py the short statements.
"""

from __future__ import annotations

from migrator.warehouse.connection import Session
from migrator.warehouse.inventory import TableInfo, read_inventory
from migrator.warehouse.replay.acl import replay_grants
from migrator.warehouse.replay.base import Applier, ReplayResult, Skipped, catalog
from migrator.warehouse.replay.ddl import replay_foreign_keys, replay_schemas, replay_tables
from migrator.warehouse.replay.external import report_external
from migrator.warehouse.replay.roles import replay_users_and_groups
from migrator.warehouse.replay.routines import replay_routines
from migrator.warehouse.replay.views import replay_views

__all__ = ["ReplayResult", "Skipped", "replay_after_data", "replay_foreign_keys", "replay_objects"]


def replay_objects(source: Session, target: Session, *, include: list[str] | None = None,
                   exclude: list[str] | None = None, tables: list[TableInfo] | None = None) -> ReplayResult:
    """Everything before the data: users, groups, schemas, tables. Views, ownership and grants
    come from replay_after_data() (views may select from tables; FKs need the data in)."""
    result = ReplayResult()
    apply = Applier(target, result)
    tables = tables if tables is not None else read_inventory(source, include=include, exclude=exclude)
    users = replay_users_and_groups(source, target, apply)
    replay_schemas(source, target, apply, {t.schema for t in tables}, users)
    replay_tables(source, target, apply, tables)
    return result


def replay_after_data(source: Session, target: Session, *, include: list[str] | None = None,
                      exclude: list[str] | None = None) -> ReplayResult:
    """SQL UDFs and stored procedures, views (dependency order, late-binding last),
    materialized views (created, then refreshed), table/view ownership, grants, default
    privileges; external schemas/tables reported as skipped."""
    include = include or ["*.*"]
    exclude = exclude or []
    result = ReplayResult()
    apply = Applier(target, result)
    tgt_schemas = {str(r[0]) for r in catalog(target, "schemas")}
    groups = {str(r[0]) for r in catalog(source, "groups")}
    replay_routines(source, target, apply, include, exclude, tgt_schemas, groups)
    replay_views(source, target, apply, include, exclude, tgt_schemas)
    replay_grants(source, target, apply, include, exclude, groups)
    report_external(source, result)
    return result
