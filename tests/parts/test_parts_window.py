"""The cutover window's catch-up copies again only the parts whose rows or checksum differ: an
append to a table split by its (growing) sort key re-copies its last part, not the table."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from migrator.sandbox.client import SandboxClient
from tests.parts.conftest import parted_migration

pytestmark = pytest.mark.slow


def _fill(sb: SandboxClient, cluster: str, first: int, last: int) -> None:
    with psycopg.connect(sb.admin_dsn(cluster), autocommit=True) as pg:
        pg.execute("insert into public.facts select g, date '2024-01-01' + g, 'n' || g "
                   "from generate_series(%s::int, %s::int) g", (first, last))


def test_window_recopies_only_the_parts_that_differ(sandbox: SandboxClient, tmp_path: Path) -> None:
    m = parted_migration(sandbox, tmp_path, tables=1, rows=50, part_size="100 rows")
    conn = sandbox.connect(m.source, autocommit=True)
    conn.cursor().execute("create table public.facts (id bigint not null, day date, note varchar(20)) "
                          "sortkey (id)")
    conn.close()
    _fill(sandbox, m.source, 1, 1000)
    m.init()
    assert m.cli("run", "--assume-frozen").returncode == 8
    with m.store() as store:
        migration = store.require_migration(m.name)
        task = store.find_table(migration, "public", "facts")
        assert task is not None
        before = {p.part_no: p for p in store.list_parts(task.id)}
    assert len(before) == 10 and before[9].upper_bound is None
    _fill(sandbox, m.source, 1001, 1010)  # 1% appended above the last boundary
    m.env["MIGRATOR_FAILPOINT"] = "before_first_rename"  # stop once the window has caught up
    assert m.cli("run", "--approve-cutover", "--assume-frozen").returncode == -9
    with m.store() as store:
        migration = store.require_migration(m.name)
        after = {p.part_no: p for p in store.list_parts(task.id)}
        events = store.events(migration, subject=task.subject)
    rechecked = [e.detail for e in events if e.trigger == "parts_rechecked"]
    assert rechecked and rechecked[-1]["recopied_parts"] == [9]
    assert all(after[n].attempt == before[n].attempt for n in range(9))
    assert after[9].attempt == before[9].attempt + 1 and after[9].rows_loaded == before[9].rows_loaded + 10
    digests_source = m.table_digests(m.source)
    assert m.table_digests(m.target)["public.facts"] == digests_source["public.facts"]
