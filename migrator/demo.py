"""`migrator demo`: a whole unload-copy migration rehearsed on this machine.

It starts the sandbox, migrates a seeded source cluster to a KMS-encrypted one,
kills its own worker with SIGKILL in the middle of the copy, resumes, validates,
cuts over, checks the result independently and shows `status`. Everything the
tool does here it would do against AWS; only the endpoints differ.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import RenderableType
from rich.text import Text

from migrator import commands
from migrator.engine.definitions import MachineDef
from migrator.errors import EnvironmentProblem, ValidationMismatch
from migrator.results import Result
from migrator.store import Store

if TYPE_CHECKING:
    from migrator.sandbox.client import SandboxClient

Say = Callable[[str], None]


@dataclass
class DemoResult(Result):
    directory: str
    kept: bool
    tables: int
    rows: int
    killed_with_tables_done: int
    tables_redone: int
    final_phase: str
    seconds: float
    steps: list[str] = field(default_factory=list)

    def render(self) -> RenderableType:
        lines = [f"demo finished in {self.seconds:.0f}s: {self.tables} tables, {self.rows:,} rows migrated to an "
                 f"encrypted cluster; SIGKILLed with {self.killed_with_tables_done} tables done, resumed with "
                 f"{self.tables_redone} redone; phase {self.final_phase}"]
        if self.kept:
            lines.append(f"sandbox left running in {self.directory}: `migrator sandbox status --dir "
                         f"{self.directory}` shows how to connect; `migrator sandbox down --dir {self.directory}` "
                         "stops it")
        return Text("\n".join(lines))


def _migrator(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "migrator", *args], env=env, cwd=cwd,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _finish(proc: subprocess.Popen[bytes], allowed: tuple[int, ...]) -> int:
    _, err = proc.communicate(timeout=600)
    if proc.returncode not in allowed:
        raise EnvironmentProblem(f"`migrator run` exited {proc.returncode}: "
                                 f"{err.decode(errors='replace').strip().splitlines()[-1:] or ['no output']}")
    return proc.returncode


def run_demo(directory: Path | None, *, keep: bool, tables: int, rows: int, say: Say) -> DemoResult:
    from migrator.sandbox import require_extra

    require_extra()
    from migrator.sandbox.client import SandboxClient

    started = time.monotonic()
    directory = (directory or Path(tempfile.mkdtemp(prefix="migrator-demo-"))).resolve()
    say(f"starting the sandbox in {directory} (PostgreSQL per cluster, Redshift wire proxy, AWS on moto)")
    sb = SandboxClient.start(directory, tables=tables, rows=rows, durations={"metrics_interval": 1.0})
    try:
        return _migrate(sb, directory, keep, started, say)
    finally:
        if not keep:
            say("tearing the sandbox down")
            sb.stop()


def _migrate(sb: SandboxClient, directory: Path, keep: bool, started: float, say: Say) -> DemoResult:
    config = directory / "unload-copy.toml"
    env = {**os.environ, **sb.env(), "MIGRATOR_FREEZE_QUIET_SECONDS": "3", "MIGRATOR_FREEZE_TIMEOUT_SECONDS": "60"}
    os.environ.update({k: v for k, v in sb.env().items() if k.startswith("MIGRATOR_SANDBOX")})
    init = commands.init(config)
    say(f"registered migration {init.migration!r}: source {sb.info.source_cluster_id} -> "
        f"{sb.info.source_cluster_id}-encrypted, KMS key {sb.info.kms_alias}")
    # Slow every COPY a little so the copy phase lasts long enough to be interrupted.
    sb.faults.add("latency", times=-1, match={"statement": "copy"}, seconds=0.4)
    say("running the migration; it will be killed with SIGKILL in the middle of the copy")
    worker = _migrator(["run", "-c", str(config)], env, directory)
    store_url = f"sqlite:///{directory / '.migrator' / 'unload-copy.db'}"
    done_at_kill = _wait_for_partial_copy(store_url, init.migration, worker)
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait()
    say(f"SIGKILL sent to the worker (pid {worker.pid}) with {done_at_kill} tables validated")
    sb.faults.clear()
    say("resuming: `migrator run` takes over the dead run's lease and hands back its tables")
    _finish(_migrator(["run", "-c", str(config)], env, directory), allowed=(8,))
    say("copy validated (row counts and checksums equal); cutting over: rename, reboot, re-validate")
    _finish(_migrator(["cutover", "-c", str(config)], env, directory), allowed=(8,))
    tables, rows = _independent_check(sb)
    say(f"independent check through the original endpoint: {tables} tables, {rows:,} rows, encrypted with "
        f"{sb.info.kms_alias}")
    status = commands.status(config)
    from rich.console import Console

    Console().print(status.render())
    redone = _tables_redone(store_url, init.migration)
    return DemoResult(str(directory), keep, tables, rows, done_at_kill, redone, status.phase,
                      time.monotonic() - started)


def _wait_for_partial_copy(store_url: str, name: str, worker: subprocess.Popen[bytes]) -> int:
    done_states = set(commands.table_machine().tagged("done"))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise EnvironmentProblem(f"the worker ended (exit {worker.returncode}) before it could be interrupted")
        try:
            with Store.open(store_url, read_only=True) as store:
                migration = store.get_migration(name)
                if migration is not None:
                    # Some tables done (the table machine's `done` tag) and some not: mid-copy.
                    counts = store.count_by_state(migration)
                    done = sum(c.tables for c in counts if c.state in done_states)
                    if 1 <= done < sum(c.tables for c in counts):
                        return done
        except Exception:  # the store may be mid-creation; look again
            pass
        time.sleep(0.1)
    raise EnvironmentProblem("the copy did not start within two minutes")


def _tables_redone(store_url: str, name: str) -> int:
    with Store.open(store_url, read_only=True) as store:
        migration = store.require_migration(name)
        # Handed back by a lost-lease move to a resting state the step is redone from.
        table = commands.table_machine()
        lost = {s.lost for s in table.states.values() if s.lost}
        redo_from = {s.name for s in table.states.values() if s.next and "needs_operator" not in s.tags}
        return sum(1 for e in store.events(migration) if e.trigger in lost and e.to_state in redo_from
                   and table.state(e.from_state or table.initial).step is not None
                   and _step_redone(table, e.from_state, e.to_state))


def _step_redone(table: "MachineDef", left: str | None, to: str) -> bool:
    """True when the state handed back to is the one that starts the lost step again."""
    if left is None:
        return False
    return any(t.dest == left and to in t.sources for t in table.transitions)


def _independent_check(sb: SandboxClient) -> tuple[int, int]:
    """Compare both clusters with our own queries, not the tool's report."""
    source_now = sb.info.source_cluster_id
    old = next(c for c in sb.cluster_ids() if c.startswith(f"{source_now}-unencrypted-"))
    from migrator.warehouse.baseline import rows_per_table
    from migrator.warehouse.connection import prepare

    # Exact count(*) of every user table, empty ones included (svv_table_info's tbl_rows still
    # counts deleted rows and leaves out tables that were never written).
    counts: list[dict[str, int]] = []
    for cluster in (old, source_now):
        conn = prepare(sb.connect(cluster))  # the tool's session settings: names kept as listed
        cur = conn.cursor()
        try:
            counts.append(rows_per_table(cur))
        finally:
            cur.close()
            conn.close()
    if counts[0] != counts[1]:
        raise ValidationMismatch(f"the migrated cluster differs from the original: {counts[0]} vs {counts[1]}")
    described = sb.client("redshift").describe_clusters(ClusterIdentifier=source_now)["Clusters"][0]
    if not described["Encrypted"] or described.get("KmsKeyId") != sb.info.kms_key_arn:
        raise ValidationMismatch(f"{source_now} is not encrypted with {sb.info.kms_key_arn}")
    return len(counts[1]), sum(counts[1].values())
