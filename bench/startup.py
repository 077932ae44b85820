"""Start-up figures: what a person waits for before the CLI answers, and a restarted run
before it works again, for this checkout and (with --before REF) the code at a git commit.

    python bench/startup.py [--runs 7] [--tables 10000] [--restart-tables 30] [--restart-runs 3]
                            [--before REF] [--profile FILE]

Prints the median wall time and the least CPU time (user + system, which a loaded machine
disturbs less) of whole processes, all commands taking turns: the bare interpreter and `import
sqlalchemy` (the floor for any command that reads the store), then per tree `migrator --help`,
`migrator status` and `migrator status --all` on a store of --tables tables, and status against
its goal (1.5x the import of SQLAlchemy). Both trees run with their bytecode compiled first, as
an installed package has it (this machine's PYTHONDONTWRITEBYTECODE would otherwise make every
process compile the package).

With --restart-tables N (0: skipped) it starts the sandbox and, --restart-runs times per tree,
SIGKILLs a `migrator run` of N tables mid-copy and times restart-to-work: from starting `migrator
run` again to its first new unit of work in the store (goal: 1 s), with the CPU time the restarted
process had used by then (all its threads, from /proc). The last restart's history up
to that move is printed with its times, to show where the rest goes.
"""

from __future__ import annotations

import argparse
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from migrator.store import Store, TableSpec, db

CONFIG = ('[migration]\nname = "bench"\nstrategy = "unload-copy"\nregion = "us-east-1"\n'
          '[source]\ncluster_id = "a"\npassword_env = "P"\n[target]\ncluster_id = "b"\n'
          '[staging]\ns3_uri = "s3://bucket/x/"\niam_role_arn = "arn:aws:iam::123456789012:role/R"\n'
          'kms_key_id = "alias/k"\n')
CHECKOUT = Path(__file__).resolve().parents[1]


@dataclass
class Restart:
    """One timed restart: wall time to its first new work, the CPU time it had used by then (its
    last look before that work showed up: within one 20 ms poll), that move, and its history."""

    wall: float
    cpu: float
    first: str | None
    timeline: list[tuple[float, str]]


@dataclass
class Figure:
    wall_ms: float
    cpu_ms: float


def measure(commands: dict[str, tuple[list[str], dict[str, str]]], runs: int, cwd: Path) -> dict[str, Figure]:
    """Each command ``runs`` times, taking turns (a load that comes and goes falls on all of them
    alike): the median wall time and the least CPU time (what the process itself costs)."""
    walls: dict[str, list[float]] = {what: [] for what in commands}
    cpus: dict[str, list[float]] = {what: [] for what in commands}
    for _ in range(runs):
        for what, (argv, env) in commands.items():
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0 = time.perf_counter()
            subprocess.run(argv, check=True, capture_output=True, cwd=cwd, env=env)
            walls[what].append(time.perf_counter() - t0)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpus[what].append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return {what: Figure(statistics.median(walls[what]) * 1000, min(cpus[what]) * 1000) for what in commands}


def tree_of(ref: str | None, into: Path) -> Path:
    """This checkout (None) or the package, states and store revisions at git ``ref``, compiled."""
    if ref is None:
        root = CHECKOUT
    else:
        root = into / f"tree-{ref}"
        root.mkdir()
        archive = subprocess.run(["git", "-C", str(CHECKOUT), "archive", ref, "migrator", "states", "migrations_db",
                                  "alembic.ini", "bench"], check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(root)], input=archive, check=True)
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(root / "migrator")], check=True,
                   capture_output=True)
    return root


def env_for(tree: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(tree)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7, help="0: skip the CLI start-up figures")
    parser.add_argument("--tables", type=int, default=10_000)
    parser.add_argument("--restart-tables", type=int, default=30, help="0: skip the restart-to-work figure")
    parser.add_argument("--restart-runs", type=int, default=3, help="restarts timed per tree (median)")
    parser.add_argument("--before", help="a git commit to measure too (e.g. the main this work started from)")
    parser.add_argument("--profile", type=Path, help="write a cProfile of this checkout's last restarted run here")
    args = parser.parse_args()
    if args.before and subprocess.run(["git", "-C", str(CHECKOUT), "rev-parse", "--verify", "--quiet",
                                       f"{args.before}^{{commit}}"], capture_output=True).returncode != 0:
        parser.error(f"--before {args.before}: not a commit of {CHECKOUT}")
    if args.runs > 0:
        start_up(args)
    if args.restart_tables:
        restart_to_work(args.restart_tables, args.restart_runs, args.before, args.profile)


def start_up(args: argparse.Namespace) -> None:
    """The CLI's start-up figures (--runs 0: skipped)."""
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        trees = {"after": tree_of(None, tmp)}
        if args.before:
            trees = {"before": tree_of(args.before, tmp), **trees}
        url = f"sqlite:///{tmp / '.migrator' / 'state.db'}"
        db.upgrade(url)
        with Store.open(url) as store:
            m = store.create_migration("bench", "unload-copy", "0" * 64, {}, "copying")
            store.add_tables(m, [TableSpec("s", f"t{i:06d}", i % 97, i) for i in range(args.tables)], "pending")
        (tmp / "migrator.toml").write_text(CONFIG)
        py = sys.executable
        status = f"migrator status ({args.tables} tables)"
        commands = {"python -c pass": ([py, "-c", "pass"], env_for(CHECKOUT)),
                    "import sqlalchemy": ([py, "-c", "import sqlalchemy"], env_for(CHECKOUT))}
        for label, tree in trees.items():
            env = env_for(tree)
            commands.update({
                f"migrator --help [{label}]": ([py, "-m", "migrator", "--help"], env),
                f"{status} [{label}]": ([py, "-m", "migrator", "status"], env),
                f"migrator status --all [{label}]": ([py, "-m", "migrator", "status", "--all"], env),
                f"import migrator.commands [{label}]": ([py, "-c", "import migrator.commands"], env),
            })
        figures = measure(commands, args.runs, tmp)
    width = max(len(what) for what in figures) + 2
    print(f"{'':<{width}} {'wall ms':>9} {'cpu ms':>9}   (median wall time; least CPU time, user + system)")
    for what, f in figures.items():
        print(f"{what:<{width}} {f.wall_ms:9.0f} {f.cpu_ms:9.0f}")
    floor = figures["import sqlalchemy"]
    for label in trees:
        s = figures[f"{status} [{label}]"]
        print(f"{'status / import sqlalchemy [' + label + ']':<{width}} {s.wall_ms / floor.wall_ms:8.2f}x "
              f"{s.cpu_ms / floor.cpu_ms:8.2f}x   (goal <= 1.5)")
    sys.stdout.flush()


def restart_to_work(tables: int, runs: int, before: str | None, profile: Path | None) -> None:
    """SIGKILL sandbox runs mid-copy, start each again, and time its first new table move."""
    sys.path.insert(0, str(Path(__file__).parent))
    from migration import write_config  # bench/migration.py: the sandbox config of its runs

    from migrator.sandbox.client import SandboxClient

    with tempfile.TemporaryDirectory() as name:
        root = Path(name)
        trees = {"after": tree_of(None, root)}
        if before:
            trees = {"before": tree_of(before, root), **trees}
        sb = SandboxClient.start(root / "sb", tables=tables, rows=2000)
        try:
            done: dict[str, list[Restart]] = {label: [] for label in trees}
            for i in range(runs):  # the trees take turns: a load that comes and goes falls on both alike
                for label, tree in trees.items():
                    final = label == "after" and i == runs - 1
                    done[label].append(_one_restart(sb, root / f"{label}-{i}", f"bench-{label}-{i}", tree,
                                                    tables, write_config, profile if final else None))
            for label in trees:
                restarts = done[label]
                last = restarts[-1]
                print(f"{'restart to first new work [' + label + ']':<34} "
                      f"{statistics.median(r.wall for r in restarts) * 1000:9.0f} ms wall "
                      f"{min(r.cpu for r in restarts) * 1000:6.0f} ms cpu   (goal <= 1000 wall; median wall, least "
                      f"CPU; runs: {', '.join(f'{r.wall * 1000:.0f}/{r.cpu * 1000:.0f}' for r in restarts)}; "
                      f"last first move: {last.first or 'none'})")
                for at, what in last.timeline:
                    print(f"    {at * 1000:8.0f} ms  {what}")
            sys.stdout.flush()
        finally:
            sb.stop()


def _one_restart(sb: object, directory: Path, name: str, tree: Path, tables: int, write_config: object,
                 profile: Path | None) -> Restart:
    config = write_config(sb, directory, name, f"{name}-enc", 2)  # type: ignore[operator]
    # As an operator limited to this config's `iam-policy --for operator`.
    env = {**env_for(tree), **sb.env(), **sb.operator_env(config, name=name)}  # type: ignore[attr-defined]
    subprocess.run([sys.executable, "-m", "migrator", "init", str(config)], env=env, cwd=config.parent,
                   check=True, capture_output=True)
    url = f"sqlite:///{config.parent / '.migrator' / 'state.db'}"
    argv = [sys.executable, "-m", "migrator", "run", "-c", str(config), "--assume-frozen", "--quiet"]
    with open(directory / "victim.err", "wb") as victim_err:
        victim = subprocess.Popen(argv, env=env, cwd=config.parent, stdout=subprocess.DEVNULL, stderr=victim_err)
    while not _validated(url, name, max(1, tables // 3)):
        if victim.poll() is not None:
            raise SystemExit(f"the run to kill ended first (exit {victim.returncode}): "
                             f"{(directory / 'victim.err').read_text()[-2000:]}")
        time.sleep(0.02)  # watching the victim's progress through its store
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    with Store.open(url, read_only=True) as store:
        last = store.events(store.require_migration(name), limit=1, newest_first=True)[0].id
    started, wall = time.perf_counter(), time.time()
    profiled = [sys.executable, "-m", "cProfile", "-o", str(profile.resolve()), *argv[1:]] if profile else argv
    survivor = subprocess.Popen(profiled, env=env, cwd=config.parent, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
    first, cpu = None, 0.0
    # One read-only store for the whole watch (opening one per look cost the machine as much CPU
    # as the run being timed), looking every 20 ms.
    with Store.open(url, read_only=True) as watch:
        migration = watch.require_migration(name)
        while first is None and survivor.poll() is None:
            cpu = _cpu_seconds(survivor.pid)
            first = _first_work(watch, migration, last, survivor.pid)
            if first is None:
                time.sleep(0.02)  # polling the store for the restarted run's first move
    waited = time.perf_counter() - started
    survivor.send_signal(signal.SIGTERM)
    survivor.wait(timeout=120)
    return Restart(waited, cpu, first, _timeline(url, name, last, survivor.pid, wall))


def _cpu_seconds(pid: int) -> float:
    """The CPU time (user + system, all threads) process ``pid`` has used so far (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _validated(url: str, name: str, enough: int) -> bool:
    try:
        with Store.open(url, read_only=True) as store:
            m = store.get_migration(name)
            return bool(m) and sum(c.tables for c in store.count_by_state(m) if c.state == "validated") >= enough
    except Exception:  # the store may be mid-creation on the first looks
        return False


def _is_work(trigger: str, subject: str, from_state: str | None, to_state: str | None) -> bool:
    return subject.startswith("table:") and from_state != to_state and trigger.startswith("start_")


def _timeline(url: str, name: str, after: int, pid: int, wall: float) -> list[tuple[float, str]]:
    """The restarted run's history up to its first new work, in ms from its start (where the time goes)."""
    out = []
    with Store.open(url, read_only=True) as store:
        for e in store.events(store.require_migration(name), limit=200, newest_first=True)[::-1]:
            if e.id > after and e.pid == pid:
                move = f"{e.from_state or ''}->{e.to_state or ''}"
                out.append((e.at.timestamp() - wall, f"{e.trigger} {e.subject} {move}"))
                if _is_work(e.trigger, e.subject, e.from_state, e.to_state):
                    break
    return out


def _first_work(store: Store, migration: object, after: int, pid: int) -> str | None:
    for e in store.events(migration, limit=50, newest_first=True)[::-1]:  # type: ignore[arg-type]
        if e.id > after and e.pid == pid and _is_work(e.trigger, e.subject, e.from_state, e.to_state):
            return f"{e.trigger} {e.subject}"
    return None


if __name__ == "__main__":
    main()
