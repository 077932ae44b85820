"""Views and materialized views, after the data: bound views in dependency order, late-binding
views last; materialized views created (retried while others succeed, as one may select from
another) and then refreshed. Their ownership and grants are acl.py's."""

from __future__ import annotations

import re
from typing import Any

from migrator.errors import MigratorError
from migrator.warehouse.connection import Session
from migrator.warehouse.inventory import matches
from migrator.warehouse.replay.statements import refresh_materialized_view
from migrator.warehouse.replay.base import Applier, Skipped, catalog, truthy
from migrator.warehouse.sql import qualified, query


def _late_binding(source: Session, views: list[tuple[str, str, str]]) -> set[tuple[str, str]]:
    rows = source.try_run(query("late_binding_views")) or []
    late = {(str(s), str(v)) for s, v in rows}
    late |= {(s, v) for s, v, d in views if "with no schema binding" in d.lower()}
    return late


def view_order(views: list[tuple[str, str, str]], deps: list[tuple[Any, ...]],
               late: set[tuple[str, str]]) -> list[tuple[str, str, str]]:
    """Bound views after the views they select from; late-binding views last."""
    by_key = {(s, v): (s, v, d) for s, v, d in views}
    needs: dict[tuple[str, str], set[tuple[str, str]]] = {k: set() for k in by_key}
    for vs, vn, rs, rn in deps:
        k, r = (str(vs), str(vn)), (str(rs), str(rn))
        if k in needs and r in by_key:
            needs[k].add(r)
    ordered: list[tuple[str, str, str]] = []
    done: set[tuple[str, str]] = set()
    bound = sorted(k for k in by_key if k not in late)
    while bound:
        ready = [k for k in bound if needs[k] <= done]
        if not ready:  # a cycle cannot happen in a real catalog; keep going rather than loop
            ready = bound[:1]
        for k in ready:
            ordered.append(by_key[k])
            done.add(k)
            bound.remove(k)
    return ordered + [by_key[k] for k in sorted(late)]


def view_sql(schema: str, name: str, definition: str, late: bool) -> str:
    text = definition.strip().rstrip(";").strip()
    if re.match(r"(?is)^create\s", text):
        return text  # Redshift shows a late-binding view's full CREATE statement
    return f"CREATE VIEW {qualified(schema, name)} AS {text}" + (" WITH NO SCHEMA BINDING" if late else "")


def replay_views(source: Session, target: Session, apply: Applier, include: list[str], exclude: list[str],
                 tgt_schemas: set[str]) -> None:
    """The views, then the materialized views, that match include/exclude and the target lacks."""
    result = apply.result
    mvs = {(str(s), str(n)): truthy(auto) for s, n, _owner, auto in catalog(source, "materialized_views")}
    views = [(str(s), str(v), str(d)) for s, v, d in catalog(source, "views")
             if matches(f"{s}.{v}", include, exclude) and (str(s), str(v)) not in mvs]
    late = _late_binding(source, views)
    tgt_rel = {(str(s), str(n)) for s, n, *_ in catalog(target, "relations")}
    for schema, name, definition in view_order(views, catalog(source, "view_dependencies"), late):
        if (schema, name) in tgt_rel:
            continue
        if schema not in tgt_schemas:
            result.skipped.append(Skipped("view", f"{schema}.{name}", f"schema {schema} does not exist on the target"))
            continue
        apply.run(view_sql(schema, name, definition, (schema, name) in late))
    replay_materialized_views(source, target, apply, {k: v for k, v in mvs.items()
                                                      if matches(f"{k[0]}.{k[1]}", include, exclude)}, tgt_schemas)


def mv_sql(schema: str, name: str, definition: str, auto_refresh: bool) -> str:
    text = definition.strip().rstrip(";").strip()
    if re.match(r"(?is)^create\s+materialized\s+view\s", text):
        return text  # the full statement, with its BACKUP/DISTSTYLE/SORTKEY/AUTO REFRESH clauses
    return (f"CREATE MATERIALIZED VIEW {qualified(schema, name)}"
            + (" AUTO REFRESH YES" if auto_refresh else "") + f" AS {text}")


def replay_materialized_views(source: Session, target: Session, apply: Applier, mvs: dict[tuple[str, str], bool],
                              tgt_schemas: set[str]) -> None:
    """Create missing MVs (after the data, so the first computation sees it), then REFRESH
    each. An MV may select from another: whatever fails is retried while others succeed."""
    result = apply.result
    definitions = {(str(s), str(n)): str(d) for s, n, d in catalog(source, "view_definitions")}
    tgt_mvs = {(str(s), str(n)) for s, n, _o, _a in catalog(target, "materialized_views")}
    taken = {(str(s), str(n)) for s, n, _d in catalog(target, "view_definitions")} | \
        {(str(s), str(n)) for s, n, *_ in catalog(target, "relations")}
    pending: list[tuple[str, str]] = []
    for key in sorted(mvs):
        label = f"{key[0]}.{key[1]}"
        if key in tgt_mvs:
            continue
        if key in taken:
            result.skipped.append(Skipped("materialized view", label, "a table or view of that name exists on the target"))
        elif key[0] not in tgt_schemas:
            result.skipped.append(Skipped("materialized view", label, f"schema {key[0]} does not exist on the target"))
        elif key not in definitions:
            result.skipped.append(Skipped("materialized view", label, "its definition is not readable on the source"))
        else:
            pending.append(key)
    errors: dict[tuple[str, str], str] = {}
    while pending:
        errors = {}
        for key in pending:
            try:
                apply.run(mv_sql(key[0], key[1], definitions[key], mvs[key]))
            except MigratorError as exc:
                errors[key] = str(exc)
                continue
            apply.run(refresh_materialized_view(*key))
        if len(errors) == len(pending):
            break  # no progress: what is left cannot be created
        pending = list(errors)
    for key, message in sorted(errors.items()):
        result.skipped.append(Skipped("materialized view", f"{key[0]}.{key[1]}", f"CREATE failed on the target: {message}"))
