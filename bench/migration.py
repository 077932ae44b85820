"""Whole unload-copy migrations on the sandbox: scheduling and resume figures.

    python bench/migration.py [--tables 200] [--rows 20000] [--workers 4]

Prints, for one uninterrupted run: makespan of the copy phase against the lower bound
max(total table work / workers, largest table's work), and the tool's own overhead per
table (a table's wall time from claim to validated minus the time inside its UNLOAD,
COPY and validation steps). Then, for a second migration SIGKILLed mid-copy: the time
from restart to the first new unit of work, and the rows redone (goal: only the tables
that were in flight).
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from migrator.sandbox.client import SandboxClient
from migrator.store import Store

CONFIG = """
[migration]
name = "{name}"
strategy = "unload-copy"
region = "{region}"
aws_endpoint_url = "{endpoint}"
sandbox_plaintext = true

[source]
cluster_id = "{source}"
password_env = "MIGRATOR_SANDBOX_PASSWORD"

[target]
cluster_id = "{target}"
kms_key_id = "{alias}"
password_env = "MIGRATOR_SANDBOX_TARGET_PASSWORD"

[staging]
s3_uri = "s3://{bucket}/{name}/"
iam_role_arn = "{role}"
kms_key_id = "{alias}"

[tables]
concurrency = {workers}
max_attempts = 5
"""


def write_config(sb: SandboxClient, directory: Path, name: str, target: str, workers: int,
                 source: str = "analytics") -> Path:
    """An unload-copy config for ``source`` (its password in MIGRATOR_SANDBOX_PASSWORD)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "migrator.toml"
    path.write_text(CONFIG.format(name=name, region=sb.info.region, endpoint=sb.info.endpoint_url, target=target,
                                  alias=sb.info.kms_alias, bucket=sb.info.bucket, role=sb.info.iam_role_arn,
                                  workers=workers, source=source))
    return path


def migrator(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "migrator", *args], env=env, cwd=cwd,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def scheduling(store_url: str, name: str, workers: int) -> None:
    with Store.open(store_url, read_only=True) as store:
        m = store.require_migration(name)
        events = store.events(m)
        tasks = store.list_tables(m)
    entered = {e.to_state: e.at for e in events if e.subject == "migration" and e.from_state != e.to_state}
    makespan = (entered["validating"] - entered["copying"]).total_seconds()
    work, overhead = [], []
    for task in tasks:
        inside = sum(step.get("seconds", 0.0) for step in (task.step_timings or {}).values())
        mine = [e for e in events if e.subject == task.subject]
        claimed = min(e.at for e in mine if e.trigger == "start_unload")
        done = max(e.at for e in mine if e.trigger == "complete_validation")
        work.append(inside)
        overhead.append((done - claimed).total_seconds() - inside)
    bound = max(sum(work) / workers, max(work))
    print(f"tables: {len(tasks)}, rows: {sum(t.source_rows for t in tasks):,}, workers: {workers}")
    print(f"copy makespan {makespan:.1f}s vs lower bound {bound:.1f}s (ratio {makespan / bound:.2f}); "
          f"largest table {max(work):.2f}s, total work {sum(work):.1f}s")
    print(f"tool overhead per table: median {statistics.median(overhead) * 1000:.0f} ms, "
          f"p90 {sorted(overhead)[int(len(overhead) * 0.9)] * 1000:.0f} ms")


def resume(sb: SandboxClient, root: Path, env: dict[str, str], workers: int) -> None:
    config = write_config(sb, root / "crash", "bench-crash", "bench-crash-enc", workers)
    subprocess.run([sys.executable, "-m", "migrator", "init", str(config)], env=env, cwd=config.parent, check=True,
                   capture_output=True)
    store_url = f"sqlite:///{config.parent / '.migrator' / 'state.db'}"
    victim = migrator(["run", "-c", str(config), "--assume-frozen"], env, config.parent)
    while True:
        with Store.open(store_url, read_only=True) as store:
            m = store.get_migration("bench-crash")
            counts = {c.state: c.tables for c in store.count_by_state(m)} if m else {}
        if counts.get("validated", 0) >= max(1, sum(counts.values()) // 3):
            break
        time.sleep(0.05)  # watching the victim's progress through its store
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    with Store.open(store_url, read_only=True) as store:
        m = store.require_migration("bench-crash")
        in_flight = [t for t in store.list_tables(m) if t.owner]
        last_event = store.events(m, limit=1, newest_first=True)[0].id
    restarted = time.time()
    survivor = migrator(["run", "-c", str(config), "--assume-frozen"], env, config.parent)
    survivor.communicate(timeout=1800)
    with Store.open(store_url, read_only=True) as store:
        m = store.require_migration("bench-crash")
        later = [e for e in store.events(m) if e.id > last_event]
        tasks = {t.subject: t for t in store.list_tables(m)}
    first_work = min(e.at.timestamp() for e in later if e.trigger in ("start_unload", "start_load",
                                                                        "start_validation"))
    redone = {e.subject for e in later if e.trigger in ("requeue", "reconcile_load")
              and e.to_state in ("pending", "unloaded")}
    print(f"after SIGKILL: {len(in_flight)} tables in flight; restart to first new unit of work "
          f"{first_work - restarted:.2f}s (process start included)")
    print(f"rows redone: {sum(tasks[s].source_rows for s in redone):,} in {len(redone)} tables "
          f"(in flight at the kill: {sum(t.source_rows for t in in_flight):,} rows)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tables", type=int, default=200)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        sb = SandboxClient.start(root / "sb", tables=args.tables, rows=args.rows)
        print(f"sandbox with {args.tables} seeded tables up in {time.perf_counter() - t0:.1f}s")
        try:
            config = write_config(sb, root / "run", "bench-run", "bench-run-enc", args.workers)
            # As an operator limited to this config's `iam-policy --for operator`.
            env = {**os.environ, **sb.env(), **sb.operator_env(config, name="bench-run")}
            subprocess.run([sys.executable, "-m", "migrator", "init", str(config)], env=env, cwd=config.parent,
                           check=True, capture_output=True)
            t0 = time.perf_counter()
            proc = migrator(["run", "-c", str(config), "--assume-frozen"], env, config.parent)
            _, err = proc.communicate(timeout=3600)
            print(f"uninterrupted run to the cutover gate: {time.perf_counter() - t0:.1f}s (exit {proc.returncode})")
            scheduling(f"sqlite:///{config.parent / '.migrator' / 'state.db'}", "bench-run", args.workers)
            resume(sb, root, env, args.workers)
        finally:
            sb.stop()


if __name__ == "__main__":
    main()
