"""Recreate the source's database objects on the target, in dependency order, idempotently.

Order: users (PASSWORD DISABLE: passwords cannot be read back; listed for an operator to
reset) → groups and memberships → schemas with owners → tables (types, NOT NULL, DEFAULT,
IDENTITY, ENCODE, DISTSTYLE/DISTKEY, SORTKEY, PRIMARY KEY/UNIQUE, BACKUP NO) → [data, done by
the pipeline] → foreign keys (replay_foreign_keys) → views by dependency, late-binding last
→ table ownership → grants. Each object is created only when the target lacks it; nothing
is ever dropped. Every statement run is returned for the event log; anything not recreated
is returned with its reason.

Not handled here (reported, not silently dropped): SQL UDFs, stored procedures, materialized
views, default privileges, external schemas. Sandbox gaps: see inventory.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from migrator.warehouse.connection import Session
from migrator.warehouse.inventory import TableInfo, matches, read_inventory
from migrator.warehouse.sql import qualified, query, quote_ident

_TABLE_PRIVS = {"r": "SELECT", "a": "INSERT", "w": "UPDATE", "d": "DELETE", "x": "REFERENCES"}
_ALL_TABLE = set(_TABLE_PRIVS)
_SCHEMA_PRIVS = {"U": "USAGE", "C": "CREATE"}
_INTERNAL_USERS = {"rdsdb", "sandbox_admin"}  # the service's own accounts (sandbox's too)


@dataclass(frozen=True)
class Skipped:
    object: str
    reason: str


@dataclass
class ReplayResult:
    statements: list[str] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    users_to_reset: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class AclEntry:
    grantee: str  # '' = PUBLIC
    privileges: str


def parse_acl(acl: Any) -> list[AclEntry]:
    """aclitem[] as the driver returns it (list, or '{a=r/b,...}' text) → entries."""
    if not acl:
        return []
    items = list(acl) if isinstance(acl, (list, tuple)) else _split_acl_text(str(acl))
    out = []
    for item in items:
        left, _, _grantor = str(item).rpartition("/")
        grantee, _, privs = left.rpartition("=")
        if grantee.startswith("group "):
            grantee = grantee[6:]
        if grantee.startswith('"') and grantee.endswith('"'):
            grantee = grantee[1:-1].replace('""', '"')
        out.append(AclEntry(grantee, privs.replace("*", "")))
    return out


def _split_acl_text(text: str) -> list[str]:
    body = text.strip().strip("{}")
    items, cur, quoted = [], "", False
    for ch in body:
        if ch == '"':
            quoted = not quoted
        if ch == "," and not quoted:
            items.append(cur)
            cur = ""
        else:
            cur += ch
    if cur:
        items.append(cur)
    # A whole item in quotes ("group g=r/o") loses them; a quoted name ("a b"=r/o) keeps its own.
    return [i[1:-1] if len(i) > 1 and i.startswith('"') and i.endswith('"') else i for i in items]


class _Applier:
    def __init__(self, target: Session, result: ReplayResult) -> None:
        self.target, self.result = target, result

    def run(self, sql: str) -> None:
        self.target.run(sql, kind="replay", what="replay DDL")
        self.result.statements.append(sql)


def column_ddl(table: TableInfo) -> list[str]:
    lines = []
    for c in table.columns:
        parts = [quote_ident(c.name), c.type]
        if c.identity:
            parts.append(f"IDENTITY({c.identity[0]}, {c.identity[1]})")
        elif c.default is not None:
            parts.append(f"DEFAULT {c.default}")
        if c.not_null:
            parts.append("NOT NULL")
        if table.encode_auto is not True:
            parts.append("ENCODE " + ("RAW" if c.encoding in ("none", "raw") else c.encoding.upper()))
        lines.append(" ".join(parts))
    return lines


def create_table_sql(table: TableInfo, constraints: list[tuple[str, str]]) -> str:
    """CREATE TABLE with Redshift's physical attributes. constraints: (name, definition) for PK/UNIQUE."""
    body = column_ddl(table) + [f"CONSTRAINT {quote_ident(n)} {d}" for n, d in constraints]
    tail = []
    if table.backup is False:
        tail.append("BACKUP NO")
    if table.diststyle == "KEY" and table.distkey:
        tail.append(f"DISTSTYLE KEY DISTKEY ({quote_ident(table.distkey)})")
    else:
        tail.append(f"DISTSTYLE {table.diststyle if table.diststyle != 'KEY' else 'AUTO'}")
    if table.sortkey_kind == "AUTO":
        tail.append("SORTKEY AUTO")
    elif table.sortkeys:
        tail.append(f"{table.sortkey_kind} SORTKEY ({', '.join(quote_ident(k) for k in table.sortkeys)})")
    return f"CREATE TABLE {table.quoted} (\n    " + ",\n    ".join(body) + "\n) " + " ".join(tail)


def _names(session: Session, sql_name: str) -> list[tuple[Any, ...]]:
    return session.run(query(sql_name), kind="catalog")


def replay_objects(source: Session, target: Session, *, include: list[str] | None = None,
                   exclude: list[str] | None = None, tables: list[TableInfo] | None = None) -> ReplayResult:
    """Everything before the data: users, groups, schemas, tables. Views, ownership and grants
    come from replay_after_data() (views may select from tables; FKs need the data in)."""
    result = ReplayResult()
    apply = _Applier(target, result)
    tables = tables if tables is not None else read_inventory(source, include=include, exclude=exclude)

    src_users = {str(r[0]): r for r in _names(source, "users")}
    tgt_users = {str(r[0]) for r in _names(target, "users")}
    for name, row in sorted(src_users.items()):
        if name in tgt_users or name in _INTERNAL_USERS:
            continue
        options = ["PASSWORD DISABLE"] + (["CREATEUSER"] if row[1] else []) + (["CREATEDB"] if row[2] else [])
        apply.run(f"CREATE USER {quote_ident(name)} {' '.join(options)}")
        result.users_to_reset.append(name)

    ids = {int(r[3]): str(r[0]) for r in _names(source, "users")}
    tgt_ids = {int(r[3]): str(r[0]) for r in _names(target, "users")}
    tgt_groups = {str(g): {tgt_ids.get(int(i), "") for i in (m or [])} for g, m in _names(target, "groups")}
    for group, members in sorted((str(g), m) for g, m in _names(source, "groups")):
        if group.startswith("pg_"):
            continue  # PostgreSQL's predefined roles (sandbox): not Redshift groups
        if group not in tgt_groups:
            apply.run(f"CREATE GROUP {quote_ident(group)}")
            tgt_groups[group] = set()
        for uid in members or []:
            user = ids.get(int(uid))
            if user and user not in tgt_groups[group]:
                apply.run(f"ALTER GROUP {quote_ident(group)} ADD USER {quote_ident(user)}")

    wanted_schemas = {t.schema for t in tables}
    tgt_schemas = {str(r[0]) for r in _names(target, "schemas")}
    for schema, owner, _acl in _names(source, "schemas"):
        schema = str(schema)
        if schema in tgt_schemas or schema not in wanted_schemas:
            continue
        owner_clause = f" AUTHORIZATION {quote_ident(str(owner))}" if owner in src_users and \
            owner not in _INTERNAL_USERS else ""
        apply.run(f"CREATE SCHEMA {quote_ident(schema)}{owner_clause}")

    constraints = _constraints(source)
    existing = {(str(s), str(n)) for s, n, k, _o, _a in _names(target, "relations") if k == "r"}
    for t in tables:
        if (t.schema, t.name) in existing:
            continue
        keys = [(n, d) for n, k, d in constraints.get((t.schema, t.name), []) if k in ("p", "u")]
        apply.run(create_table_sql(t, keys))
    return result


def _constraints(session: Session) -> dict[tuple[str, str], list[tuple[str, str, str]]]:
    out: dict[tuple[str, str], list[tuple[str, str, str]]] = {}
    for s, t, name, kind, definition in _names(session, "constraints"):
        out.setdefault((str(s), str(t)), []).append((str(name), str(kind), str(definition)))
    return out


def replay_foreign_keys(source: Session, target: Session, tables: list[TableInfo]) -> ReplayResult:
    """After the data is in: foreign keys the target lacks."""
    result = ReplayResult()
    apply = _Applier(target, result)
    wanted = {(t.schema, t.name) for t in tables}
    have = {(s, t, n) for (s, t), items in _constraints(target).items() for n, k, _ in items if k == "f"}
    for (schema, table), items in sorted(_constraints(source).items()):
        for name, kind, definition in items:
            if kind != "f" or (schema, table) not in wanted or (schema, table, name) in have:
                continue
            apply.run(f"ALTER TABLE {qualified(schema, table)} ADD CONSTRAINT {quote_ident(name)} {definition}")
    return result


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


def replay_after_data(source: Session, target: Session, *, include: list[str] | None = None,
                      exclude: list[str] | None = None) -> ReplayResult:
    """Views (dependency order, late-binding last), table/view ownership, grants."""
    include = include or ["*.*"]
    exclude = exclude or []
    result = ReplayResult()
    apply = _Applier(target, result)
    views = [(str(s), str(v), str(d)) for s, v, d in _names(source, "views")
             if matches(f"{s}.{v}", include, exclude)]
    late = _late_binding(source, views)
    tgt_rel = {(str(s), str(n)): (str(k), str(o), a) for s, n, k, o, a in _names(target, "relations")}
    tgt_schemas = {str(r[0]) for r in _names(target, "schemas")}
    for schema, name, definition in view_order(views, _names(source, "view_dependencies"), late):
        if (schema, name) in tgt_rel:
            continue
        if schema not in tgt_schemas:
            result.skipped.append(Skipped(f"{schema}.{name}", f"schema {schema} does not exist on the target"))
            continue
        apply.run(view_sql(schema, name, definition, (schema, name) in late))
    tgt_rel = {(str(s), str(n)): (str(k), str(o), a) for s, n, k, o, a in _names(target, "relations")}
    users = {str(r[0]) for r in _names(target, "users")}
    groups = {str(r[0]) for r in _names(source, "groups")}

    for s, n, kind, owner, acl in _names(source, "relations"):
        s, n, owner = str(s), str(n), str(owner)
        if (s, n) not in tgt_rel or not matches(f"{s}.{n}", include, exclude):
            continue
        keyword = "TABLE"  # Redshift's GRANT/ALTER TABLE cover views too
        if owner != tgt_rel[(s, n)][1] and owner in users and owner not in _INTERNAL_USERS:
            apply.run(f"ALTER TABLE {qualified(s, n)} OWNER TO {quote_ident(owner)}")
        _grants(apply, result, f"{keyword} {qualified(s, n)}", f"{s}.{n}", parse_acl(acl),
                parse_acl(tgt_rel[(s, n)][2]), owner, groups, _TABLE_PRIVS)
    tgt_schema_acl = {str(r[0]): parse_acl(r[2]) for r in _names(target, "schemas")}
    for schema, owner, acl in _names(source, "schemas"):
        schema = str(schema)
        if schema in tgt_schema_acl:
            _grants(apply, result, f"SCHEMA {quote_ident(schema)}", schema, parse_acl(acl),
                    tgt_schema_acl[schema], str(owner), groups, _SCHEMA_PRIVS)
    return result


def _grants(apply: _Applier, result: ReplayResult, on: str, label: str, source: list[AclEntry],
            target: list[AclEntry], owner: str, groups: set[str], letters: dict[str, str]) -> None:
    have = {e.grantee: set(e.privileges) for e in target}
    for entry in source:
        if entry.grantee == owner or entry.grantee in _INTERNAL_USERS or entry.grantee.startswith("pg_"):
            continue
        wanted = set(entry.privileges)
        unknown = sorted(wanted - set(letters) - {"D", "t"})  # D/t: TRUNCATE/TRIGGER-style extras
        if unknown:
            result.skipped.append(Skipped(f"{label} grant to {entry.grantee or 'PUBLIC'}",
                                          f"privilege letters {''.join(unknown)} have no GRANT mapping"))
        missing = (wanted & set(letters)) - have.get(entry.grantee, set())
        if not missing:
            continue
        grantee = "PUBLIC" if not entry.grantee else (
            f"GROUP {quote_ident(entry.grantee)}" if entry.grantee in groups else quote_ident(entry.grantee))
        if letters is _TABLE_PRIVS and _ALL_TABLE <= wanted:
            privs = "ALL"
        else:
            privs = ", ".join(letters[ch] for ch in sorted(missing))
        apply.run(f"GRANT {privs} ON {on} TO {grantee}")
