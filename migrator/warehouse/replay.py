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
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from migrator.errors import MigratorError
from migrator.warehouse.connection import Session
from migrator.warehouse.inventory import TableInfo, matches, read_inventory
from migrator.warehouse.sql import qualified, query, quote_ident

# Redshift's ACL letters (not PostgreSQL's: on Redshift D is DROP, not TRUNCATE). R (RULE) and
# t (TRIGGER) appear in an owner's default ACL but cannot be granted on Redshift.
_TABLE_PRIVS = {"r": "SELECT", "a": "INSERT", "w": "UPDATE", "d": "DELETE", "x": "REFERENCES", "D": "DROP"}
_ALL_TABLE = set(_TABLE_PRIVS)
_UNGRANTABLE = {"R", "t"}
_SCHEMA_PRIVS = {"U": "USAGE", "C": "CREATE"}
_INTERNAL_USERS = {"rdsdb", "sandbox_admin"}  # the service's own accounts (sandbox's too)
_EXEC_PRIVS = {"X": "EXECUTE"}


@dataclass(frozen=True)
class Skipped:
    kind: str  # view, function, procedure, materialized view, external schema, grant ...
    name: str
    reason: str

    @property
    def object(self) -> str:
        return f"{self.kind} {self.name}"


@dataclass
class ReplayResult:
    statements: list[str] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    users_to_reset: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class AclEntry:
    grantee: str  # '' = PUBLIC
    privileges: str  # Redshift's letters, grant-option stars removed
    grantor: str = ""
    group: bool = False


def parse_acl(acl: Any) -> list[AclEntry]:
    """aclitem[] as the driver returns it (a list of items, or the array's '{...}' text) →
    entries. Quote-aware at both levels (array elements, then each item's names), so a
    grantee or grantor whose name holds ``/``, ``=``, ``,`` or quotes stays one name and can
    never add letters to a grant; an item that does not parse is left out, never guessed."""
    if not acl:
        return []
    items = [str(i) for i in acl] if isinstance(acl, (list, tuple)) else _split_acl_text(str(acl))
    return [e for e in (parse_acl_item(i) for i in items) if e is not None]


def _read_name(text: str, i: int, stop: str) -> tuple[str, int] | None:
    """A role name at text[i]: "quoted" (with "" for ") or bare up to a character in ``stop``."""
    if text.startswith('"', i):
        name, j = "", i + 1
        while True:
            k = text.find('"', j)
            if k < 0:
                return None
            if text.startswith('""', k):
                name, j = name + text[j:k] + '"', k + 2
                continue
            return name + text[j:k], k + 1
    j = i
    while j < len(text) and text[j] not in stop and text[j] != '"':
        j += 1
    return text[i:j], j


def parse_acl_item(item: str) -> AclEntry | None:
    """``[group ]grantee=letters/grantor`` (grantee empty for PUBLIC), names as PostgreSQL's
    putid writes them: quoted when they hold anything but letters, digits and underscores."""
    text = item.strip()
    group = text.startswith("group ")
    i = 6 if group else 0
    grantee = _read_name(text, i, "=")
    if grantee is None or not text.startswith("=", grantee[1]):
        return None
    j = grantee[1] + 1
    k = j
    while k < len(text) and (text[k].isalpha() or text[k] == "*"):
        k += 1
    if not text.startswith("/", k):
        return None
    grantor = _read_name(text, k + 1, "")
    if grantor is None or grantor[1] != len(text) or not grantor[0]:
        return None
    return AclEntry(grantee[0], text[j:k].replace("*", ""), grantor[0], group)


def _split_acl_text(text: str) -> list[str]:
    """The elements of an array literal: "quoted" ones with backslash escapes, or bare."""
    body = text.strip()
    if body.startswith("{") and body.endswith("}"):
        body = body[1:-1]
    items: list[str] = []
    cur, quoted, i, any_char = "", False, 0, False
    while i < len(body):
        ch = body[i]
        if quoted:
            if ch == "\\" and i + 1 < len(body):
                cur += body[i + 1]
                i += 2
                continue
            if ch == '"':
                quoted = False
            else:
                cur += ch
        elif ch == '"':
            quoted, any_char = True, True
        elif ch == ",":
            items.append(cur)
            cur, any_char = "", False
        else:
            cur += ch
            any_char = True
        i += 1
    if cur or any_char:
        items.append(cur)
    return items


class _Applier:
    def __init__(self, target: Session, result: ReplayResult) -> None:
        self.target, self.result = target, result

    def run(self, sql: str) -> None:
        self.target.run(sql, kind="replay", what="replay DDL")
        self.result.statements.append(sql)


def next_identity_seed(seed: int, step: int, lowest: int | None, highest: int | None) -> int:
    """The seed at which generated values cannot meet any value already in the column.

    Redshift never moves an IDENTITY counter for values loaded with COPY EXPLICIT_IDS (or
    given explicitly to a GENERATED BY DEFAULT column), and a seed cannot be altered later: the
    target table is created with its seed past the values the source holds (same step, same
    residue modulo the step, so the sequence reads as the source's continued)."""
    if step > 0 and highest is not None and highest >= seed:
        return seed + step * ((highest - seed) // step + 1)
    if step < 0 and lowest is not None and lowest <= seed:
        return seed + step * ((seed - lowest) // -step + 1)
    return seed


def identity_seeds(source: Session, table: TableInfo) -> dict[str, int]:
    """Per IDENTITY column, the seed for the target table (see next_identity_seed)."""
    out = {}
    for c in table.columns:
        if c.identity:
            col = quote_ident(c.name)
            low, high = source.run(f"select min({col}), max({col}) from {table.quoted}", kind="catalog")[0]
            out[c.name] = next_identity_seed(c.identity[0], c.identity[1], None if low is None else int(low),
                                             None if high is None else int(high))
    return out


def column_ddl(table: TableInfo, seeds: dict[str, int] | None = None) -> list[str]:
    lines = []
    for c in table.columns:
        parts = [quote_ident(c.name), c.type]
        if c.identity:
            seed = (seeds or {}).get(c.name, c.identity[0])
            kind = "GENERATED BY DEFAULT AS IDENTITY" if c.identity_by_default else "IDENTITY"
            parts.append(f"{kind}({seed}, {c.identity[1]})")
        elif c.default is not None:
            parts.append(f"DEFAULT {c.default}")
        if c.not_null:
            parts.append("NOT NULL")
        if table.encode_auto is not True:
            parts.append("ENCODE " + ("RAW" if c.encoding in ("none", "raw") else c.encoding.upper()))
        lines.append(" ".join(parts))
    return lines


def create_table_sql(table: TableInfo, constraints: list[tuple[str, str]],
                     identity_seeds: dict[str, int] | None = None) -> str:
    """CREATE TABLE with Redshift's physical attributes. constraints: (name, definition) for
    PK/UNIQUE; identity_seeds: a seed per IDENTITY column instead of the source's."""
    body = column_ddl(table, identity_seeds) + [f"CONSTRAINT {quote_ident(n)} {d}" for n, d in constraints]
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
        apply.run(create_table_sql(t, keys, identity_seeds(source, t) if t.identity_columns else None))
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
    """SQL UDFs and stored procedures, views (dependency order, late-binding last),
    materialized views (created, then refreshed), table/view ownership, grants, default
    privileges; external schemas/tables reported as skipped."""
    include = include or ["*.*"]
    exclude = exclude or []
    result = ReplayResult()
    apply = _Applier(target, result)
    tgt_schemas = {str(r[0]) for r in _names(target, "schemas")}
    groups = {str(r[0]) for r in _names(source, "groups")}
    replay_routines(source, target, apply, include, exclude, tgt_schemas, groups)

    mvs = {(str(s), str(n)): _truthy(auto) for s, n, _owner, auto in _names(source, "materialized_views")}
    views = [(str(s), str(v), str(d)) for s, v, d in _names(source, "views")
             if matches(f"{s}.{v}", include, exclude) and (str(s), str(v)) not in mvs]
    late = _late_binding(source, views)
    tgt_rel = {(str(s), str(n)): (str(k), str(o), a) for s, n, k, o, a in _names(target, "relations")}
    for schema, name, definition in view_order(views, _names(source, "view_dependencies"), late):
        if (schema, name) in tgt_rel:
            continue
        if schema not in tgt_schemas:
            result.skipped.append(Skipped("view", f"{schema}.{name}", f"schema {schema} does not exist on the target"))
            continue
        apply.run(view_sql(schema, name, definition, (schema, name) in late))
    replay_materialized_views(source, target, apply, {k: v for k, v in mvs.items()
                                                      if matches(f"{k[0]}.{k[1]}", include, exclude)}, tgt_schemas)

    tgt_rel = {(str(s), str(n)): (str(k), str(o), a) for s, n, k, o, a in _names(target, "relations")}
    users = {str(r[0]) for r in _names(target, "users")}
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
    replay_default_privileges(source, target, apply, groups, users, set(tgt_schema_acl))
    report_external(source, result)
    return result


def _grants(apply: _Applier, result: ReplayResult, on: str, label: str, source: list[AclEntry],
            target: list[AclEntry], owner: str, groups: set[str], letters: dict[str, str]) -> None:
    have = {e.grantee: set(e.privileges) for e in target}
    for entry in source:
        if entry.grantee == owner or entry.grantee in _INTERNAL_USERS or entry.grantee.startswith("pg_"):
            continue
        wanted = set(entry.privileges)
        unknown = sorted(wanted - set(letters) - _UNGRANTABLE)
        if unknown:
            result.skipped.append(Skipped("grant", f"{label} to {entry.grantee or 'PUBLIC'}",
                                          f"privilege letters {''.join(unknown)} have no GRANT mapping"))
        missing = (wanted & set(letters)) - have.get(entry.grantee, set())
        if not missing:
            continue
        grantee = "PUBLIC" if not entry.grantee else (
            f"GROUP {quote_ident(entry.grantee)}" if entry.group or entry.grantee in groups
            else quote_ident(entry.grantee))
        if letters is _TABLE_PRIVS and _ALL_TABLE <= wanted:
            privs = "ALL"
        else:
            privs = ", ".join(letters[ch] for ch in sorted(missing))
        apply.run(f"GRANT {privs} ON {on} TO {grantee}")


# -------------------------------------------------------------------- routines (UDFs, procedures)

_VOLATILITY = {"i": "IMMUTABLE", "s": "STABLE", "v": "VOLATILE"}
_ARG_MODES = {"i": "", "o": "OUT", "b": "INOUT"}
_KIND_WORDS = {"f": "function", "p": "procedure", "a": "aggregate", "w": "window function"}


@dataclass(frozen=True)
class Routine:
    """A function or stored procedure as read from pg_proc_info."""

    schema: str
    name: str
    kind: str  # 'f' function, 'p' procedure, 'a' aggregate
    language: str
    arg_types: tuple[str, ...]  # the identity (proargtypes): what ALTER/GRANT/DROP name it by
    args: tuple[tuple[str, str, str], ...]  # (name or '', mode i/o/b, type) as declared
    returns: str
    volatility: str
    security_definer: bool
    body: str
    owner: str
    acl: Any

    @property
    def key(self) -> tuple[str, str, tuple[str, ...]]:
        return (self.schema, self.name, self.arg_types)

    @property
    def keyword(self) -> str:
        return "PROCEDURE" if self.kind == "p" else "FUNCTION"

    @property
    def word(self) -> str:
        return _KIND_WORDS.get(self.kind, "routine")

    @property
    def label(self) -> str:
        return f"{self.schema}.{self.name}({', '.join(self.arg_types)})"

    @property
    def signature(self) -> str:
        return f"{qualified(self.schema, self.name)}({', '.join(self.arg_types)})"


def _oids(value: Any) -> list[int]:
    """An oidvector/oid[] as the driver returns it: '23 25', '{23,25}' or a list."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [int(v) for v in value]
    return [int(v) for v in re.split(r"[\s,]+", str(value).strip().strip("{}")) if v]


def _texts(value: Any) -> list[str]:
    """A text[]/char[] as a list, or its '{a,"b c"}' text form."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return ["" if v is None else str(v) for v in value]
    return _split_acl_text(str(value))


def _truthy(value: Any) -> bool:
    return str(value).strip().lower() in ("t", "true", "1", "y", "yes")


def read_routines(session: Session) -> list[Routine]:
    types = {int(oid): str(name) for oid, name in _names(session, "type_names")}
    tname = lambda oid: types.get(oid, str(oid))  # noqa: E731 - tiny local helper
    out = []
    for (schema, name, kind, lang, argtypes, allargtypes, modes, argnames, rettype, volatility, secdef, src,
         owner, acl) in _names(session, "routines"):
        ins = _oids(argtypes)
        every = _oids(allargtypes) or ins  # NULL when all arguments are IN
        mode_list, name_list = _texts(modes), _texts(argnames)
        args = tuple((name_list[i] if i < len(name_list) else "", mode_list[i] if i < len(mode_list) else "i",
                      tname(oid)) for i, oid in enumerate(every))
        out.append(Routine(str(schema), str(name), str(kind), str(lang), tuple(tname(o) for o in ins), args,
                           tname(int(rettype)), str(volatility), bool(secdef), str(src or ""), str(owner), acl))
    return out


def cannot_recreate(r: Routine) -> str | None:
    """Why this routine cannot be recreated from the catalog, or None when it can."""
    if r.language.startswith("plpython"):
        return ("Python UDF (plpythonu): Redshift no longer accepts new Python UDFs; rewrite it as a SQL "
                "or Lambda UDF on the target")
    if r.language == "exfunc":
        return "Lambda UDF: recreate it with CREATE EXTERNAL FUNCTION and an IAM role the target may use"
    if r.kind == "a":
        return "user-defined aggregate: Redshift cannot create aggregates"
    if (r.kind, r.language) not in (("f", "sql"), ("p", "plpgsql")):
        return f"{r.word} in language {r.language}: only SQL functions and PL/pgSQL procedures are replayed"
    if "$$" in r.body:
        return "its body contains $$ and cannot be dollar-quoted"
    return None


def routine_sql(r: Routine) -> str:
    """CREATE FUNCTION ... LANGUAGE sql / CREATE PROCEDURE ... LANGUAGE plpgsql, in Redshift's
    syntax (a procedure argument as "name mode type", which PostgreSQL accepts too)."""
    if r.kind == "p":
        params = ", ".join(" ".join(x for x in (quote_ident(n) if n else "", _ARG_MODES.get(m, ""), t) if x)
                           for n, m, t in r.args)
        security = " SECURITY DEFINER" if r.security_definer else ""
        return f"CREATE PROCEDURE {qualified(r.schema, r.name)}({params}) AS $${r.body}$$ LANGUAGE plpgsql{security}"
    params = ", ".join(f"{quote_ident(n)} {t}" if n else t for n, _m, t in r.args)
    volatility = _VOLATILITY.get(r.volatility, "VOLATILE")
    return (f"CREATE FUNCTION {qualified(r.schema, r.name)}({params}) RETURNS {r.returns} {volatility} "
            f"AS $${r.body}$$ LANGUAGE sql")


def replay_routines(source: Session, target: Session, apply: _Applier, include: list[str], exclude: list[str],
                    tgt_schemas: set[str], groups: set[str]) -> None:
    """Create the routines the target lacks (by schema, name and argument types: never CREATE
    OR REPLACE, which would overwrite a target's own version), then ownership and EXECUTE grants."""
    result = apply.result
    have = {r.key for r in read_routines(target)}
    wanted = []
    for r in sorted(read_routines(source), key=lambda x: x.key):
        if not matches(f"{r.schema}.{r.name}", include, exclude):
            continue
        reason = cannot_recreate(r)
        if reason:
            result.skipped.append(Skipped(r.word, r.label, reason))
            continue
        wanted.append(r)
        if r.key in have:
            continue
        if r.schema not in tgt_schemas:
            result.skipped.append(Skipped(r.word, r.label, f"schema {r.schema} does not exist on the target"))
            continue
        apply.run(routine_sql(r))
    current = {r.key: r for r in read_routines(target)}
    users = {str(row[0]) for row in _names(target, "users")}
    for r in wanted:
        t = current.get(r.key)
        if t is None:
            continue
        if r.owner != t.owner and r.owner in users and r.owner not in _INTERNAL_USERS:
            apply.run(f"ALTER {r.keyword} {r.signature} OWNER TO {quote_ident(r.owner)}")
        # A NULL proacl is the default: the owner and PUBLIC may execute.
        granted = parse_acl(t.acl) if t.acl else [AclEntry("", "X"), AclEntry(t.owner, "X")]
        _grants(apply, result, f"{r.keyword} {r.signature}", r.label, parse_acl(r.acl), granted, r.owner, groups,
                _EXEC_PRIVS)


# -------------------------------------------------------------------- materialized views

def mv_sql(schema: str, name: str, definition: str, auto_refresh: bool) -> str:
    text = definition.strip().rstrip(";").strip()
    if re.match(r"(?is)^create\s+materialized\s+view\s", text):
        return text  # the full statement, with its BACKUP/DISTSTYLE/SORTKEY/AUTO REFRESH clauses
    return (f"CREATE MATERIALIZED VIEW {qualified(schema, name)}"
            + (" AUTO REFRESH YES" if auto_refresh else "") + f" AS {text}")


def replay_materialized_views(source: Session, target: Session, apply: _Applier, mvs: dict[tuple[str, str], bool],
                              tgt_schemas: set[str]) -> None:
    """Create missing MVs (after the data, so the first computation sees it), then REFRESH
    each. An MV may select from another: whatever fails is retried while others succeed."""
    result = apply.result
    definitions = {(str(s), str(n)): str(d) for s, n, d in _names(source, "view_definitions")}
    tgt_mvs = {(str(s), str(n)) for s, n, _o, _a in _names(target, "materialized_views")}
    taken = {(str(s), str(n)) for s, n, _d in _names(target, "view_definitions")} | \
        {(str(s), str(n)) for s, n, *_ in _names(target, "relations")}
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
            apply.run(f"REFRESH MATERIALIZED VIEW {qualified(*key)}")
        if len(errors) == len(pending):
            break  # no progress: what is left cannot be created
        pending = list(errors)
    for key, message in sorted(errors.items()):
        result.skipped.append(Skipped("materialized view", f"{key[0]}.{key[1]}", f"CREATE failed on the target: {message}"))


# -------------------------------------------------------------------- default privileges

_DEFAULT_OBJECTS = {"RELATION": "TABLES", "FUNCTION": "FUNCTIONS", "PROCEDURE": "PROCEDURES"}
_PRIVILEGE_WORD = re.compile(r"^[A-Z]+( [A-Z]+)?$")


def _default_privileges(session: Session) -> set[tuple[str, str, str, str, str, bool, str]]:
    """(owner, schema or '', object type, grantee or '' for PUBLIC, grantee type, grant option, privilege);
    an owner's own privileges (PostgreSQL lists them in schema-less entries) are left out."""
    out = set()
    for schema, objtype, owner, priv, grantee, gtype, admin in _names(session, "default_privileges"):
        gtype = str(gtype or "").lower()
        grantee = "" if gtype == "public" else str(grantee)
        if grantee == str(owner):
            continue
        if not grantee and not schema and str(priv).upper() == "EXECUTE":
            continue  # PUBLIC may run new functions and procedures by default: nothing to replay
        out.add((str(owner), str(schema or ""), str(objtype).upper(), grantee, gtype, _truthy(admin), str(priv).upper()))
    return out


def replay_default_privileges(source: Session, target: Session, apply: _Applier, groups: set[str],
                              users: set[str], tgt_schemas: set[str]) -> None:
    """ALTER DEFAULT PRIVILEGES for every entry the target lacks, one statement per owner,
    schema, object type and grantee."""
    result = apply.result
    missing: dict[tuple[str, str, str, str, str, bool], list[str]] = {}
    for owner, schema, objtype, grantee, gtype, admin, priv in sorted(_default_privileges(source) - _default_privileges(target)):
        label = f"{owner}{' in ' + schema if schema else ''} on {objtype.lower()}s to {grantee or 'PUBLIC'}"
        reason = None
        if owner in _INTERNAL_USERS:
            reason = f"for objects created by the service's internal user {owner}"
        elif owner not in users:
            reason = f"user {owner} does not exist on the target"
        elif schema and schema not in tgt_schemas:
            reason = f"schema {schema} does not exist on the target"
        elif objtype not in _DEFAULT_OBJECTS or not _PRIVILEGE_WORD.match(priv):
            reason = f"{priv} on {objtype} has no ALTER DEFAULT PRIVILEGES form"
        elif gtype == "role":
            reason = "granted to a role: roles are not replayed"
        if reason:
            result.skipped.append(Skipped("default privilege", f"{priv} {label}", reason))
            continue
        missing.setdefault((owner, schema, objtype, grantee, gtype, admin), []).append(priv)
    for (owner, schema, objtype, grantee, gtype, admin), privs in missing.items():
        to = "PUBLIC" if not grantee else (f"GROUP {quote_ident(grantee)}" if gtype == "group" or grantee in groups
                                           else quote_ident(grantee))
        apply.run(f"ALTER DEFAULT PRIVILEGES FOR USER {quote_ident(owner)}"
                  + (f" IN SCHEMA {quote_ident(schema)}" if schema else "")
                  + f" GRANT {', '.join(sorted(privs))} ON {_DEFAULT_OBJECTS[objtype]} TO {to}"
                  + (" WITH GRANT OPTION" if admin else ""))


# -------------------------------------------------------------------- external objects

def report_external(source: Session, result: ReplayResult) -> None:
    """External schemas and tables live in an outside catalog (Glue, Hive, a federated
    database) and are reached through an IAM role: nothing to copy, and not recreatable
    without a role the target is allowed to use. Reported by name so an operator does it."""
    for schema, database in _names(source, "external_schemas"):
        result.skipped.append(Skipped(
            "external schema", str(schema),
            f"external schema over catalog database {str(database)!r}: recreate it with CREATE EXTERNAL SCHEMA "
            "and an IAM role associated with the target cluster"))
    for schema, table, location in _names(source, "external_tables"):
        result.skipped.append(Skipped(
            "external table", f"{schema}.{table}",
            f"external table (data at {location}) belongs to external schema {schema}: it returns with that schema, "
            "nothing to copy"))
