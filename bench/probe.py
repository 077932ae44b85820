"""How long `migrator probe` holds a preflight, by how many sessions sample the type groups.

    python bench/probe.py [--statement-seconds 2] [--sessions 1 4]

One sandbox source seeded with the hard types (several distinct column-type sets). On a real
cluster every UNLOAD and COPY takes seconds; the sandbox answers in milliseconds, so each one
is held ``--statement-seconds`` by the sandbox's latency fault, standing in for that. Prints,
per session count (`tables.concurrency`): the type groups, the sessions that probed them and
the probe's wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from migrator.sandbox.client import SandboxClient

from migration import write_config  # bench/migration.py (this script's folder is on sys.path)


def probe_once(sb: SandboxClient, root: Path, source: str, sessions: int) -> str:
    directory = root / f"s{sessions}"
    config = write_config(sb, directory, f"probe-s{sessions}", f"probe-s{sessions}-enc", workers=sessions,
                          source=source)
    env = {**os.environ, **sb.env(), **sb.operator_env(config, name=f"probe-s{sessions}"), "MIGRATOR_SANDBOX_PASSWORD": sb.cluster_info(source).password}
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "migrator", "probe", "--json", "-c", str(config)], env=env,
                          cwd=directory, capture_output=True, text=True, timeout=3600)
    took = time.perf_counter() - started
    if not proc.stdout:
        return f"sessions={sessions}: no report (exit {proc.returncode}): {proc.stderr.strip()[-300:]}"
    data = json.loads(proc.stdout)
    used = next((n for n in data["notes"] if "session(s)" in n), "")
    return (f"tables.concurrency={sessions}: {len(data['groups'])} type groups, ok={data['ok']}, "
            f"{took:.1f} s  ({used})")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--statement-seconds", type=float, default=2.0)
    parser.add_argument("--sessions", type=int, nargs="+", default=[1, 4])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-probe-") as tmp:
        root = Path(tmp)
        sb = SandboxClient.start(root / "sb", tables=0, rows=10, durations={"create_seconds": 0.3})
        try:
            source = "probebench"
            sb.create_seeded_cluster(source, tables=4, rows=200, hard=True)
            for statement in ("unload", "copy"):
                sb.faults.add("latency", times=-1, match={"statement": statement, "cluster": source},
                              seconds=args.statement_seconds)
            print(f"each UNLOAD and COPY held {args.statement_seconds:.1f} s", flush=True)
            for sessions in args.sessions:
                print(probe_once(sb, root, source, sessions), flush=True)
        finally:
            sb.stop()


if __name__ == "__main__":
    main()
