"""Table parts on the sandbox: makespan, rows redone after a kill, and the window's catch-up.

    python bench/parts.py [--rows 300000] [--workers 4] [--parts 16] [--seed N]
    python bench/parts.py --project 2TB [--target-slices 16] [--source-slices 16] [--part-size 2GB]

`--project SIZE` starts no sandbox: it prints what a table of SIZE would cost in parts, files
and statements, from the code that plans and runs parts (config.parse_part_size/parts_for,
sql.max_file_size/files_per_slice, warehouse/parts.plan_file_groups, and the statements
warehouse/parts.py and warehouse/pipeline.py send for one part, recorded by a session that
answers them), for a table cut into ranges and for one loaded in file groups. Slices per node
("Node type details", Amazon Redshift Management Guide): ra3.large and ra3.xlplus 2,
ra3.4xlarge 4, ra3.16xlarge 16; so ra3.4xlarge x 4 nodes = 16 slices.

One big table (a fact table: BIGINT key as its sort key, a timestamp, a decimal and a text
column; 300,000 rows load whole in about a minute on the sandbox) is copied by unload-copy with `tables.concurrency = --workers`:

1. makespan of the copy phase with parts (`tables.part_size` = rows / --parts) vs without ("0");
2. a run with parts SIGKILLed at a random point of its loads, then resumed: rows loaded again
   (COPYs of a part beyond its first) and rows unloaded again, against the table's rows
   (goal <= 1/16);
3. the cutover window after an append of 1% of the rows: the catch-up's re-copy (from the
   table's `recopy` to validated again) with parts vs without (goal <= 1/8), and the whole
   catch-up pass (which also compares the table on both sides first).

Every figure comes from the store's own events. The seed is printed (--seed replays it).

Measured (2-core machine, seed 59040847, 300,000 rows, 16 parts, 4 workers): makespan 53.0 s
whole vs 35.2 s in parts (0.66); after a SIGKILL 18,750 rows loaded again = 1/16 of the table
(one part: a table's part loads take turns), none unloaded again; catch-up after a 1% append
re-copied part 16 only: 4.2 s vs 35.7 s for the whole table (0.119). The whole catch-up pass,
comparison included, was 36.2 s vs 50.4 s: the grouped per-part comparison costs the sandbox
about twice a table checksum (on Redshift both are one scan of each side).
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from migration import write_config  # noqa: E402  (bench/migration.py: the shared sandbox config)

from migrator.sandbox.client import SandboxClient  # noqa: E402
from migrator.store import Store  # noqa: E402

TABLE = "public.facts"


def make_source(sb: SandboxClient, cluster: str, rows: int) -> None:
    sb.create_cluster(cluster)
    conn = sb.connect(cluster, autocommit=True)
    try:
        conn.cursor().execute("create table public.facts (id bigint not null, occurred_at timestamp not null, "
                              "amount decimal(12,2), note varchar(40)) diststyle even sortkey (id)")
    finally:
        conn.close()
    import psycopg

    with psycopg.connect(sb.admin_dsn(cluster), autocommit=True) as pg:
        pg.execute("insert into public.facts select g, timestamp '2024-01-01' + g * interval '1 minute', "
                   "(g %% 10000) / 100.0, 'note ' || md5(g::text) from generate_series(1, %s::int) g", (rows,))
        pg.execute("analyze public.facts")


def append(sb: SandboxClient, cluster: str, start: int, count: int) -> None:
    import psycopg

    with psycopg.connect(sb.admin_dsn(cluster), autocommit=True) as pg:
        pg.execute("insert into public.facts select g, timestamp '2024-01-01' + g * interval '1 minute', "
                   "(g %% 10000) / 100.0, 'late ' || md5(g::text) from generate_series(%s::int, %s::int) g",
                   (start, start + count - 1))


class Run:
    def __init__(self, sb: SandboxClient, root: Path, name: str, source: str, workers: int, part_size: str) -> None:
        self.name = name
        self.directory = root / name
        config = write_config(sb, self.directory, name, f"{name}-enc", workers, source=source)
        config.write_text(config.read_text() + f'part_size = "{part_size}"\n')
        self.config = config
        self.env = {**os.environ, **sb.env(), "MIGRATOR_SANDBOX_PASSWORD": sb.cluster_info(source).password,
                    "MIGRATOR_SANDBOX_TARGET_PASSWORD": "TargetPassw0rd", "MIGRATOR_FREEZE_QUIET_SECONDS": "1",
                    "MIGRATOR_FREEZE_TIMEOUT_SECONDS": "60", "MIGRATOR_TABLE_RETRY_BASE_SECONDS": "0.2"}
        self.env.pop("MIGRATOR_CONFIG", None)
        self.store_url = f"sqlite:///{self.directory / '.migrator' / 'state.db'}"
        self.cli("init", str(config), config_flag=False)

    def start(self, *args: str, config_flag: bool = True, **env: str) -> subprocess.Popen[bytes]:
        given = ["-c", str(self.config)] if config_flag else []
        return subprocess.Popen([sys.executable, "-m", "migrator", *args, *given],
                                env={**self.env, **env}, cwd=self.directory, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)

    def cli(self, *args: str, config_flag: bool = True, **env: str) -> int:
        proc = self.start(*args, config_flag=config_flag, **env)
        _, err = proc.communicate(timeout=1800)
        if proc.returncode not in (0, 8, -9):
            raise SystemExit(f"{self.name}: migrator {' '.join(args)} exited {proc.returncode}: {err.decode()[-2000:]}")
        return proc.returncode

    def events(self) -> list[Any]:
        with Store.open(self.store_url, read_only=True) as store:
            return store.events(store.require_migration(self.name))

    def parts(self) -> list[Any]:
        with Store.open(self.store_url, read_only=True) as store:
            return store.migration_parts(store.require_migration(self.name))

    def phase_seconds(self, start: str, end: str) -> float:
        entered = {e.to_state: e.at for e in self.events() if e.subject == "migration" and e.from_state != e.to_state}
        return (entered[end] - entered[start]).total_seconds()

    def count(self, trigger: str) -> int:
        return sum(1 for e in self.events() if e.trigger == trigger)


def redone(run: Run) -> tuple[int, int]:
    """(rows loaded again, rows unloaded again): statements of a part beyond its first, times its rows."""
    rows_of = {p.part_no: p.rows_loaded or p.est_rows for p in run.parts()}
    by_kind: dict[str, dict[int, int]] = {"copy": defaultdict(int), "unload": defaultdict(int)}
    for e in run.events():
        if e.trigger == "statement" and "part" in e.detail and e.detail.get("kind") in by_kind:
            by_kind[e.detail["kind"]][e.detail["part"]] += 1
    def rows(kind: str) -> int:
        return sum((n - 1) * rows_of.get(part, 0) for part, n in by_kind[kind].items() if n > 1)
    return rows("copy"), rows("unload")


def recopy_seconds(run: Run) -> float:
    """From the table's catch-up `recopy` to the table validated again."""
    events = [e for e in run.events() if e.subject == f"table:{TABLE}"]
    start = next(e.at for e in events if e.trigger == "recopy")
    end = max(e.at for e in events if e.trigger == "complete_validation" and e.at > start)
    return (end - start).total_seconds()


def pass_seconds(run: Run) -> float:
    passes = [e for e in run.events() if e.trigger == "catch_up_pass" and e.detail.get("changed_tables")]
    return float(passes[0].detail["seconds"]) if passes else float("nan")


class _Answering:
    """A session that records each statement the part code sends and answers it as a cluster
    would for a part of ``rows`` rows (counts, markers, checksums): the projection counts the
    statements of the real code path without a cluster."""

    def __init__(self, rows: int) -> None:
        self.rows = rows
        self.sent: list[str] = []
        self.conn = type("Conn", (), {"autocommit": False})()

    def run(self, sql: str, params: Any = None, *, kind: str = "other", what: str | None = None) -> list[tuple[Any, ...]]:
        self.sent.append(sql)
        text = sql.lower()
        if "pg_last_unload_count" in text or "pg_last_copy_count" in text:
            return [(self.rows,)]
        if text.startswith("select count(*), coalesce(sum("):
            return [(self.rows, 0)]
        if text.startswith("select"):
            return [(0,)]
        return []

    def commit(self) -> None:
        self.sent.append("COMMIT")

    def rollback(self) -> None:
        pass


def _sample_info() -> Any:
    from migrator.warehouse.inventory import ColumnInfo, TableInfo

    columns = [ColumnInfo("id", "bigint", "az64", True, False, 1),
               ColumnInfo("note", "character varying(40)", "lzo", False, False, 0)]
    return TableInfo("public", "facts", 1, 0, 0, "EVEN", None, "COMPOUND", ["id"], True, True, columns=columns)


_SAMPLE_INFO = _sample_info()


def _statements_of_one_part(file_group: bool) -> dict[str, int]:
    """The statements one part sends, by step, from the code that runs it (warehouse/parts.py,
    warehouse/pipeline.py) against an answering session."""
    from migrator.warehouse import parts as wparts
    from migrator.warehouse import pipeline
    info = _SAMPLE_INFO
    columns = info.columns
    part = wparts.PartRange(1, 8, "id", "bigint", "100", "200", 1000)
    staging = dict(staging_uri="s3://bucket/stage/", migration="m", attempt=1,
                   iam_role_arn="arn:aws:iam::123456789012:role/r", kms_key_id="alias/k")
    fmt = pipeline.choose_format(columns)
    counts: dict[str, int] = {}
    if not file_group:
        unload = _Answering(1000)
        wparts.unload_part(unload, info, part, estimated_bytes=1, source_slices=16, target_slices=16,  # type: ignore[arg-type]
                           fmt=fmt, **staging)
        counts["unload"] = len(unload.sent)
    load = _Answering(1000)
    pipeline.load_exactly_once(load, "public", "facts", manifest_url="s3://bucket/stage/manifest", fmt=fmt,  # type: ignore[arg-type]
                               iam_role_arn=staging["iam_role_arn"], migration="m", attempt=1, explicit_ids=False,
                               expected_rows=1000, columns=columns, part=1,
                               where=("FALSE", []) if file_group else part.where())
    counts["load"] = len(load.sent)
    if not file_group:
        check = _Answering(1000)
        wparts.part_fingerprint(check, info, part)  # type: ignore[arg-type]
        counts["validate (both sides)"] = 2 * len(check.sent)
    return counts


def project(size: str, part_size: str, source_slices: int, target_slices: int) -> None:
    """What a table of ``size`` costs in parts, files and statements (see the module docstring)."""
    from migrator.config import parse_part_size
    from migrator.warehouse.parts import plan_file_groups
    from migrator.warehouse.sql import MAX_FILE_BYTES, files_per_slice, max_file_size

    try:
        table = parse_part_size(size)
        threshold = parse_part_size(part_size)
    except ValueError as exc:
        raise SystemExit(f"error: {exc}") from None
    if table is None or table.mb is None or threshold is None:
        raise SystemExit("--project and --part-size take sizes such as 2TB and 2GB")
    size_mb = table.mb
    parts = threshold.parts_for(size_mb, 0)
    mib = 1024 ** 2
    # As the part steps estimate it: a part's catalogue size x 2 for uncompressed text (part_steps).
    part_bytes = int(size_mb / parts * mib * 2)
    file_bytes = max_file_size(part_bytes, source_slices, target_slices)
    per_slice = -(-part_bytes // source_slices)
    files_per_part = source_slices * (-(-per_slice // file_bytes) if file_bytes else 1)
    print(f"A {size} table, tables.part_size = \"{part_size}\", {source_slices} source slices, "
          f"{target_slices} target slices:")
    print(f"  ranges: {parts:,} parts of ~{size_mb / parts / 1024:.2f} GB (~{part_bytes / 1024 ** 3:.1f} GB "
          f"of uncompressed text each); MAXFILESIZE {file_bytes / mib if file_bytes else 0:,.0f} MB -> "
          f"{files_per_part} files a part ({files_per_slice(source_slices, target_slices)} per source slice, "
          f"{files_per_part // max(1, target_slices)} per target slice), {parts * files_per_part:,} files in all")
    per_part = _statements_of_one_part(file_group=False)
    table_statements = 2 + 2 + 2  # boundaries + row counts per part; both row counts; ANALYZE + VACUUM SORT ONLY
    total = parts * sum(per_part.values()) + table_statements
    print(f"  statements: {sum(per_part.values())} a part ({', '.join(f'{k} {v}' for k, v in per_part.items())}) "
          f"+ {table_statements} for the table = {total:,}; of them {parts:,} UNLOADs and {parts:,} COPYs")
    whole_bytes = int(size_mb * mib * 2)
    group_file = max_file_size(whole_bytes, source_slices, parts * target_slices)
    per_source_slice = -(-whole_bytes // source_slices)
    files = source_slices * (-(-per_source_slice // group_file) if group_file else 1)
    groups = plan_file_groups([(0, 0)] * files, parts)
    unload = _Answering(0)
    from migrator.warehouse.parts import unload_for_groups
    from migrator.warehouse.pipeline import choose_format

    unload_for_groups(unload, _SAMPLE_INFO, staging_uri="s3://bucket/stage/", migration="m", attempt=1,  # type: ignore[arg-type]
                      iam_role_arn="arn:aws:iam::123456789012:role/r", kms_key_id="alias/k",
                      estimated_bytes=whole_bytes, source_slices=source_slices, target_slices=target_slices,
                      groups=parts, fmt=choose_format(_SAMPLE_INFO.columns))
    per_group = _statements_of_one_part(file_group=True)
    table_statements = len(unload.sent) + 2 * 2 + 2  # the UNLOAD; a checksum per side; ANALYZE + VACUUM
    group_total = len(groups) * sum(per_group.values()) + table_statements
    capped = "" if group_file and group_file < MAX_FILE_BYTES else " (MAXFILESIZE at its bound: fewer files)"
    print(f"  file groups (no column to cut into ranges): 1 UNLOAD, MAXFILESIZE {(group_file or 0) / mib:,.0f} MB -> "
          f"{files:,} files{capped} in {len(groups):,} groups of {groups[0].end - groups[0].first if groups else 0} "
          f"files; statements: {sum(per_group.values())} a group (load) + {table_statements} for the table "
          f"= {group_total:,}; {len(groups):,} COPYs, {len(groups):,} group manifests written to S3")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=300000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--parts", type=int, default=16)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--project", default=None, help="print the cost of a table of this size (e.g. 2TB) and stop")
    parser.add_argument("--part-size", default=None, help="tables.part_size for --project (default: the default)")
    parser.add_argument("--source-slices", type=int, default=16)
    parser.add_argument("--target-slices", type=int, default=16)
    args = parser.parse_args()
    if args.project:
        from migrator.config import DEFAULT_PART_SIZE

        project(args.project, args.part_size or DEFAULT_PART_SIZE, args.source_slices, args.target_slices)
        return
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    part_size = f"{-(-args.rows // args.parts)} rows"
    print(f"seed {seed}; table {TABLE}: {args.rows:,} rows; tables.concurrency = {args.workers}; "
          f"tables.part_size = \"{part_size}\"")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        sb = SandboxClient.start(root / "sb", tables=1, rows=10)
        try:
            for cluster in ("whole", "parted", "killed"):
                make_source(sb, cluster, args.rows)
            whole = Run(sb, root, "whole", "whole", args.workers, "0")
            parted = Run(sb, root, "parted", "parted", args.workers, part_size)
            for run in (whole, parted):
                assert run.cli("run", "--assume-frozen") == 8
            t_whole = whole.phase_seconds("copying", "validating")
            t_parted = parted.phase_seconds("copying", "validating")
            print(f"1. makespan of the copy phase: whole table {t_whole:.1f}s, in {len(parted.parts())} parts "
                  f"{t_parted:.1f}s (parts/whole = {t_parted / t_whole:.2f})")

            killed = Run(sb, root, "killed", "killed", args.workers, part_size)
            proc = killed.start("run", "--assume-frozen")
            aim = rng.randint(2, max(2, args.parts - 2))
            while proc.poll() is None:
                if killed.count("part_loaded") >= aim if os.path.exists(killed.store_url[10:]) else False:
                    time.sleep(rng.uniform(0.0, 1.0))  # the random kill point inside the next loads
                    break
                time.sleep(0.05)  # watching the run's progress through its store
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            assert killed.cli("run", "--assume-frozen") == 8
            loads, unloads = redone(killed)
            print(f"2. SIGKILL after {aim} parts loaded (+ a random delay), resumed: rows loaded again {loads:,} "
                  f"= {loads / args.rows:.4f} of the table (goal <= {1 / 16:.4f}); rows unloaded again {unloads:,} "
                  f"= {unloads / args.rows:.4f}")

            extra = max(1, args.rows // 100)
            for run, cluster in ((whole, "whole"), (parted, "parted")):
                append(sb, cluster, args.rows + 1, extra)
                run.cli("run", "--approve-cutover", "--assume-frozen", MIGRATOR_FAILPOINT="before_first_rename")
            r_whole, r_parted = recopy_seconds(whole), recopy_seconds(parted)
            recopied = [e.detail for e in parted.events() if e.trigger == "parts_rechecked"]
            print(f"3. window catch-up after appending {extra:,} rows (1%): re-copy whole table {r_whole:.1f}s, "
                  f"by parts {r_parted:.1f}s (parts/whole = {r_parted / r_whole:.3f}, goal <= 0.125); "
                  f"parts re-copied: {recopied[-1]['recopied_parts'] if recopied else '?'} of {len(parted.parts())}")
            print(f"   whole catch-up pass (compare, then re-copy): whole {pass_seconds(whole):.1f}s, "
                  f"parts {pass_seconds(parted):.1f}s")
        finally:
            sb.stop()


if __name__ == "__main__":
    main()
