"""Functions and stored procedures: read from the catalog, recreated where the catalog holds
all of them (SQL UDFs, PL/pgSQL procedures), with their owners and EXECUTE grants; Python and
Lambda UDFs, aggregates and other languages are reported in ``skipped`` with why."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from migrator.warehouse.connection import Session
from migrator.warehouse.inventory import matches
from migrator.warehouse.replay.statements import alter_owner
from migrator.warehouse.replay.acl import EXEC_PRIVS, AclEntry, grant_missing, parse_acl, split_array_text
from migrator.warehouse.replay.base import INTERNAL_USERS, Applier, Skipped, catalog
from migrator.warehouse.sql import qualified, quote_ident

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
    return split_array_text(str(value))


def read_routines(session: Session) -> list[Routine]:
    types = {int(oid): str(name) for oid, name in catalog(session, "type_names")}
    tname = lambda oid: types.get(oid, str(oid))  # noqa: E731 - tiny local helper
    out = []
    for (schema, name, kind, lang, argtypes, allargtypes, modes, argnames, rettype, volatility, secdef, src,
         owner, acl) in catalog(session, "routines"):
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


def replay_routines(source: Session, target: Session, apply: Applier, include: list[str], exclude: list[str],
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
    users = {str(row[0]) for row in catalog(target, "users")}
    for r in wanted:
        t = current.get(r.key)
        if t is None:
            continue
        if r.owner != t.owner and r.owner in users and r.owner not in INTERNAL_USERS:
            apply.run(alter_owner(r.keyword, r.signature, r.owner))
        # A NULL proacl is the default: the owner and PUBLIC may execute.
        granted = parse_acl(t.acl) if t.acl else [AclEntry("", "X"), AclEntry(t.owner, "X")]
        grant_missing(apply, result, f"{r.keyword} {r.signature}", r.label, parse_acl(r.acl), granted, r.owner,
                      groups, EXEC_PRIVS)
