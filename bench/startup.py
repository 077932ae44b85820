"""Start-up figures: what a person waits for before the CLI answers, and a restarted run
before it works again.

    python bench/startup.py [--runs 7] [--tables 10000] [--restart-tables 30]

Prints the median wall time of whole processes: the bare interpreter, importing SQLAlchemy
(the floor for any command that reads the store), `migrator --help`, `migrator status` and
`migrator status --all` on a store of --tables tables, and status against its goal (1.5x the
import of SQLAlchemy). With --restart-tables N (0: skipped) it also starts the sandbox, SIGKILLs
a run of N tables mid-copy and prints restart-to-work: from starting `migrator run` again to its
first new unit of work in the store (goal: 1 s), split into the process start (imports) and the
rest.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from migrator.store import Store, TableSpec, db

CONFIG = ('[migration]\nname = "bench"\nstrategy = "unload-copy"\nregion = "us-east-1"\n'
          '[source]\ncluster_id = "a"\npassword_env = "P"\n[target]\ncluster_id = "b"\n'
          '[staging]\ns3_uri = "s3://bucket/x/"\niam_role_arn = "arn:aws:iam::123456789012:role/R"\n'
          'kms_key_id = "alias/k"\n')


def median_ms(argv: list[str], runs: int, cwd: Path) -> float:
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True, cwd=cwd)
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--tables", type=int, default=10_000)
    parser.add_argument("--restart-tables", type=int, default=30, help="0: skip the restart-to-work figure")
    parser.add_argument("--profile", type=Path, help="write a cProfile of the restarted run to this file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        url = f"sqlite:///{tmp / '.migrator' / 'state.db'}"
        db.upgrade(url)
        with Store.open(url) as store:
            m = store.create_migration("bench", "unload-copy", "0" * 64, {}, "copying")
            store.add_tables(m, [TableSpec("s", f"t{i:06d}", i % 97, i) for i in range(args.tables)], "pending")
        (tmp / "migrator.toml").write_text(CONFIG)
        py = sys.executable
        figures = {
            "python -c pass": median_ms([py, "-c", "pass"], args.runs, tmp),
            "import sqlalchemy": median_ms([py, "-c", "import sqlalchemy"], args.runs, tmp),
            "migrator --help": median_ms([py, "-m", "migrator", "--help"], args.runs, tmp),
            f"migrator status ({args.tables} tables)": median_ms([py, "-m", "migrator", "status"], args.runs, tmp),
            "migrator status --all": median_ms([py, "-m", "migrator", "status", "--all"], args.runs, tmp),
            "import migrator.commands": median_ms([py, "-c", "import migrator.commands"], args.runs, tmp),
        }
    for what, ms in figures.items():
        print(f"{what:<36} {ms:8.0f} ms")
    ratio = figures[f"migrator status ({args.tables} tables)"] / figures["import sqlalchemy"]
    print(f"{'status / import sqlalchemy':<36} {ratio:8.2f} x   (goal <= 1.5)")
    if args.restart_tables:
        restart_to_work(args.restart_tables, args.profile)


def restart_to_work(tables: int, profile: Path | None = None) -> None:
    """SIGKILL a sandbox run mid-copy, start it again, and time its first new table move."""
    import os
    import signal

    sys.path.insert(0, str(Path(__file__).parent))
    from migration import write_config  # bench/migration.py: the sandbox config of its runs

    from migrator.sandbox.client import SandboxClient

    with tempfile.TemporaryDirectory() as name:
        root = Path(name)
        sb = SandboxClient.start(root / "sb", tables=tables, rows=2000)
        try:
            config = write_config(sb, root / "crash", "bench-restart", "bench-restart-enc", 2)
            # As an operator limited to this config's `iam-policy --for operator`.
            env = {**os.environ, **sb.env(), **sb.operator_env(config, name="bench-restart")}
            subprocess.run([sys.executable, "-m", "migrator", "init", str(config)], env=env, cwd=config.parent,
                           check=True, capture_output=True)
            url = f"sqlite:///{config.parent / '.migrator' / 'state.db'}"
            argv = [sys.executable, "-m", "migrator", "run", "-c", str(config), "--assume-frozen", "--quiet"]
            with open(root / "victim.err", "wb") as victim_err:
                victim = subprocess.Popen(argv, env=env, cwd=config.parent, stdout=subprocess.DEVNULL,
                                          stderr=victim_err)
            while not _validated(url, max(1, tables // 3)):
                if victim.poll() is not None:
                    raise SystemExit(f"the run to kill ended first (exit {victim.returncode}): "
                                     f"{(root / 'victim.err').read_text()[-2000:]}")
                time.sleep(0.02)  # watching the victim's progress through its store
            os.kill(victim.pid, signal.SIGKILL)
            victim.wait()
            with Store.open(url, read_only=True) as store:
                last = store.events(store.require_migration("bench-restart"), limit=1, newest_first=True)[0].id
            started, wall = time.perf_counter(), time.time()
            profiled = [sys.executable, "-m", "cProfile", "-o", str(profile.resolve()), *argv[1:]] if profile else argv
            survivor = subprocess.Popen(profiled, env=env, cwd=config.parent, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
            first = None
            while first is None and survivor.poll() is None:
                first = _first_work(url, last, survivor.pid)
                if first is None:
                    time.sleep(0.01)  # polling the store for the restarted run's first move
            waited = time.perf_counter() - started
            survivor.send_signal(signal.SIGTERM)
            survivor.wait(timeout=120)
            imports = median_ms([sys.executable, "-c", "import migrator.commands, migrator.strategies, "
                                 "migrator.strategies.table_steps"], 3, root)
            print(f"{'restart to first new work':<36} {waited * 1000:8.0f} ms   (goal <= 1000; first move: "
                  f"{first or 'none'}; the imports a run needs alone: {imports:.0f} ms)")
            for at, what in _timeline(url, last, survivor.pid, wall):
                print(f"    {at * 1000:8.0f} ms  {what}")
        finally:
            sb.stop()


def _validated(url: str, enough: int) -> bool:
    try:
        with Store.open(url, read_only=True) as store:
            m = store.get_migration("bench-restart")
            return bool(m) and sum(c.tables for c in store.count_by_state(m) if c.state == "validated") >= enough
    except Exception:  # the store may be mid-creation on the first looks
        return False


def _timeline(url: str, after: int, pid: int, wall: float) -> list[tuple[float, str]]:
    """The restarted run's history up to its first new work, in ms from its start (where the rest goes)."""
    out = []
    with Store.open(url, read_only=True) as store:
        for e in store.events(store.require_migration("bench-restart"), limit=200, newest_first=True)[::-1]:
            if e.id > after and e.pid == pid:
                out.append((e.at.timestamp() - wall, f"{e.trigger} {e.subject} {e.from_state or ''}->{e.to_state or ''}"))
                if e.subject.startswith("table:") and e.trigger.startswith("start_") and e.to_state != e.from_state:
                    break
    return out


def _first_work(url: str, after: int, pid: int) -> str | None:
    with Store.open(url, read_only=True) as store:
        m = store.require_migration("bench-restart")
        for e in store.events(m, limit=50, newest_first=True):
            if e.id > after and e.pid == pid and e.subject.startswith("table:") and e.to_state != e.from_state \
                    and e.trigger.startswith("start_"):
                return f"{e.trigger} {e.subject}"
    return None


if __name__ == "__main__":
    main()
