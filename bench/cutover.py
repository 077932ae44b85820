"""Write downtime against copy time for an unload-copy migration whose source keeps taking writes.

    python bench/cutover.py [--tables 40] [--rows 20000] [--workers 4] [--quiet-seconds 5]
                            [--statement-seconds 3]

A seeded sandbox cluster; while `migrator run` copies and validates it (production writable), a
writer keeps inserting into a tenth of its tables. Once the run waits at the cutover gate the
writer stops (as an operator stops ETL for the window) and `migrator cutover` freezes, catches up
and swaps. Prints the copy time (writable), the write downtime (approval -> the production name
answering from the new cluster) and their ratio (goal: <= 10%), from the report's own figures,
and what the window spent its time on. The freeze's quiet period (`--quiet-seconds`, 300 s by
default on a real cluster) is part of the downtime and is printed apart. `--statement-seconds`
holds every UNLOAD and COPY that long (the sandbox's latency fault), standing in for a real
cluster where each takes seconds to hours; the comparison passes' checksums are not held.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from migration import write_config  # noqa: E402  (bench/migration.py: the shared sandbox config)

from migrator.sandbox.client import SandboxClient  # noqa: E402


def _tables(sb: SandboxClient, cluster: str) -> list[tuple[str, str]]:
    conn = sb.connect(cluster, autocommit=True)
    try:
        cur = conn.cursor()
        cur.execute('select trim("schema"), trim("table") from svv_table_info order by 1, 2')
        return [(str(s), str(t)) for s, t in cur.fetchall()]
    finally:
        conn.close()


def _quoted(schema: str, table: str) -> str:
    return ".".join('"' + part.replace('"', '""') + '"' for part in (schema, table))


class Writer(threading.Thread):
    """Deletes one row of each chosen table, round after round, until stopped (a table whose rows a
    key protects is left alone); the errors met are kept to be printed."""

    def __init__(self, sb: SandboxClient, cluster: str, tables: list[tuple[str, str]]) -> None:
        super().__init__(daemon=True)
        self.sb, self.cluster, self.tables = sb, cluster, list(tables)
        self.stop = threading.Event()
        self.writes = 0
        self.refused: list[str] = []

    def run(self) -> None:
        conn = self.sb.connect(self.cluster, autocommit=True)
        cur = conn.cursor()
        first: dict[tuple[str, str], str] = {}
        for schema, table in self.tables:
            cur.execute("select column_name from information_schema.columns where table_schema = %s "
                        "and table_name = %s order by ordinal_position limit 1", (schema, table))
            first[(schema, table)] = str(cur.fetchone()[0])
        while not self.stop.is_set() and self.tables:
            for table in list(self.tables):
                column = '"' + first[table].replace('"', '""') + '"'
                try:
                    cur.execute(f"delete from {_quoted(*table)} where {column} in "
                                f"(select {column} from {_quoted(*table)} limit 1)")
                    self.writes += 1
                except Exception as exc:  # a key refuses the delete: leave that table alone
                    self.refused.append(f"{table}: {exc}"[:200])
                    self.tables.remove(table)
            self.stop.wait(0.2)  # the writer's pace, not synchronisation
        conn.close()


def _cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "migrator", *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=7200)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tables", type=int, default=40)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--quiet-seconds", type=float, default=5.0)
    parser.add_argument("--statement-seconds", type=float, default=3.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        sb = SandboxClient.start(root / "sb", tables=args.tables, rows=args.rows)
        try:
            config = write_config(sb, root / "run", "bench-window", "bench-window-enc", args.workers)
            # As an operator limited to this config's `iam-policy --for operator`.
            env = {**os.environ, **sb.env(), **sb.operator_env(config, name="bench-window"),
                   "MIGRATOR_FREEZE_QUIET_SECONDS": str(args.quiet_seconds)}
            _cli(["init", str(config)], env, config.parent).check_returncode()
            if args.statement_seconds > 0:
                for statement in ("unload", "copy"):
                    sb.faults.add("latency", times=-1, match={"statement": statement}, seconds=args.statement_seconds)
            tables = _tables(sb, "analytics")
            changing = tables[::10]
            writer = Writer(sb, "analytics", changing)
            writer.start()
            try:
                gate = _cli(["run", "-c", str(config), "--quiet"], env, config.parent)
            finally:
                writer.stop.set()
                writer.join()
            if gate.returncode != 8:
                raise SystemExit(f"run did not reach the cutover gate: {gate.stderr}")
            done = _cli(["cutover", "-c", str(config)], env, config.parent)
            if done.returncode not in (0, 8):
                raise SystemExit(f"cutover failed: {done.stderr}")
            report = _cli(["report", "-c", str(config), "--format", "json", "--output", str(root / "r.json")],
                          env, config.parent)
            report.check_returncode()
            doc: dict[str, Any] = json.loads((root / "r.json").read_text())
        finally:
            sb.stop()
    window = doc["cutover_window"]
    phases = {p["phase"]: p["seconds"] for p in doc["phases"] if p.get("seconds") is not None}
    copy, downtime = window["copy_seconds_while_writable"], window["write_downtime_seconds"]
    print(f"tables: {len(tables)} ({len(writer.tables)} written during the copy, {writer.writes} deletes), "
          f"rows per table: {args.rows}, workers: {args.workers}, each UNLOAD and COPY held "
          f"{args.statement_seconds:g} s")
    for line in writer.refused:
        print(f"  left alone: {line}")
    print(f"copy while writable: {copy:.1f}s; tables left for the window: {len(window['left_for_window'])}")
    print(f"write downtime: {downtime:.1f}s, of which the freeze check {phases.get('freezing', 0):.1f}s "
          f"(quiet period {args.quiet_seconds:.0f}s), catch-up {phases.get('catching_up', 0):.1f}s, "
          f"swap and checks {phases.get('cutting_over', 0):.1f}s")
    print(f"downtime / copy: {downtime / copy:.1%} (goal <= 10%)")
    for p in window["catch_up_passes"]:
        print(f"  pass {p.get('pass')}: {json.dumps({k: v for k, v in p.items() if k not in ('at', 'pass')})}")


if __name__ == "__main__":
    main()
