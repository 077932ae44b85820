"""What each added small table costs, measured where it is paid: statements on both clusters
(the sandbox's stl_query, commits included) and write transactions on the PostgreSQL store
(pg_stat_database.xact_commit), as the difference between a migration of FEW and of MANY small
tables (what does not grow with the tables cancels out)."""

from __future__ import annotations

import itertools
import re
from collections import Counter
from pathlib import Path
from typing import Any

import psycopg
import pytest

from migrator.sandbox.client import SandboxClient
from migrator.sandbox.postgres import PostgresServer
from tests.harness import sandbox_migration

pytestmark = pytest.mark.slow

FEW, MANY = 8, 48
#: Measured per added small table: 33 statements before the sessions set exact float text once
#: (source 12.7, target 20.3), 26.8 after (7.5 + 19.3); 18 committed store transactions (9 of them
#: the table's moves, its pick and its two recorded statements). The issue's goal is <= 10
#: statements, <= 2 target commits and <= 3 store transactions; what is left is the data plane's
#: (strategies/table_steps.py, warehouse/pipeline.py), listed statement by statement by this test.
MAX_STATEMENTS_PER_TABLE = 28
MAX_STORE_TRANSACTIONS_PER_TABLE = 19
_ids = itertools.count(1)


def _statements(sb: SandboxClient, cluster_id: str, after: int = 0) -> list[str]:
    """The cluster's logged statements (stl_query's rows), those after query id ``after``."""
    with psycopg.connect(sb.admin_dsn(cluster_id)) as pg:
        return [str(r[0]) for r in pg.execute(
            "select querytxt from pg_sandbox.query_log where query > %s order by query", [after])]


def _last_query(sb: SandboxClient, cluster_id: str) -> int:
    with psycopg.connect(sb.admin_dsn(cluster_id)) as pg:
        return int(pg.execute("select coalesce(max(query), 0) from pg_sandbox.query_log").fetchone()[0])  # type: ignore[index]


def _kind(sql: str) -> str:
    """A statement's shape: its first words, names and literals blanked."""
    words = re.sub(r"'[^']*'|\"[^\"]*\"|\b\d+\b", "?", " ".join(sql.split())).split(" ")
    return " ".join(words[:3]).upper()


def _migrate(sb: SandboxClient, pg_server: PostgresServer, tmp_path: Path, tables: int) -> dict[str, Any]:
    n = next(_ids)
    source, target = f"st{n}-{tables}-src", f"st{n}-{tables}-enc"
    info = sb.create_seeded_cluster(source, tables=tables, rows=20, seed=70 + n)
    store_db = f"fleet_statements_{n}_{tables}"
    pg_server.create_database(store_db)
    m = sandbox_migration(
        sb, tmp_path / f"m{tables}", name=f"st{n}", strategy="unload-copy",
        migration={"store": pg_server.url(store_db)},
        source={"cluster_id": source, "user": info.user, "password_env": "ST_SOURCE_PASSWORD"},
        target={"cluster_id": target, "password_env": "ST_TARGET_PASSWORD"}, tables={"concurrency": 2},
        env={"ST_SOURCE_PASSWORD": info.password, "ST_TARGET_PASSWORD": "TargetPassw0rd"})
    m.init()
    seeded = _last_query(sb, source)  # the seeding's own statements are not the migration's
    with psycopg.connect(pg_server.url(store_db).replace("postgresql+psycopg", "postgresql")) as pg:
        before = int(pg.execute("select xact_commit from pg_stat_database where datname = current_database()")
                     .fetchone()[0])  # type: ignore[index]
    done = m.run()
    assert done.returncode == 8, done.stderr  # every table copied and validated: the cutover gate
    with psycopg.connect(pg_server.url(store_db).replace("postgresql+psycopg", "postgresql")) as pg:
        pg.execute("select pg_stat_force_next_flush()") if pg.info.server_version >= 150000 else None
        after = int(pg.execute("select xact_commit from pg_stat_database where datname = current_database()")
                    .fetchone()[0])  # type: ignore[index]
    with m.store() as store:
        migration = store.require_migration(m.name)
        counted = sum(c.tables for c in store.count_by_state(migration))
        events = Counter(e.trigger for e in store.events(migration))
    for side, cluster in (("source", source), ("target", target)):
        (tmp_path / f"statements-{tables}-{side}.txt").write_text("\n;;\n".join(_statements(sb, cluster)))
    with psycopg.connect(pg_server.url(store_db).replace("postgresql+psycopg", "postgresql")) as pg:
        writes = pg.execute("select relname, n_tup_ins, n_tup_upd, n_tup_del from pg_stat_user_tables "
                            "order by relname").fetchall()
    (tmp_path / f"store-{tables}.txt").write_text("\n".join(" ".join(map(str, w)) for w in writes))
    return {"tables": counted, "source": _statements(sb, source, seeded), "target": _statements(sb, target),
            "store": after - before, "events": events}


def test_statements_and_store_transactions_per_small_table(sandbox: SandboxClient, pg_server: PostgresServer,
                                                           tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                                           ) -> None:
    few = _migrate(sandbox, pg_server, tmp_path, FEW)
    many = _migrate(sandbox, pg_server, tmp_path, MANY)
    added = many["tables"] - few["tables"]
    assert added == MANY - FEW
    per: dict[str, float] = {}
    with capsys.disabled():
        print(f"\nper added small table ({few['tables']} -> {many['tables']} tables):")
        for side in ("source", "target"):
            per[side] = (len(many[side]) - len(few[side])) / added
            shapes = Counter(_kind(s) for s in many[side])
            shapes.subtract(Counter(_kind(s) for s in few[side]))
            print(f"  {side}: {per[side]:.1f} statements")
            for shape, count in shapes.most_common():
                if count / added >= 0.5:
                    print(f"    {count / added:4.1f}  {shape}")
        per["store"] = (many["store"] - few["store"]) / added
        print(f"  store: {per['store']:.1f} committed transactions; events written:")
        events = many["events"].copy()
        events.subtract(few["events"])
        for trigger, count in events.most_common():
            if count / added >= 0.5:
                print(f"    {count / added:4.1f}  {trigger}")
    assert per["source"] + per["target"] <= MAX_STATEMENTS_PER_TABLE, per
    assert per["store"] <= MAX_STORE_TRANSACTIONS_PER_TABLE, per
