"""The README's first command: `migrator demo` runs a whole rehearsal and cleans up after itself."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_demo_end_to_end(tmp_path: Path) -> None:
    directory = tmp_path / "demo"
    proc = subprocess.run([sys.executable, "-m", "migrator", "demo", "--dir", str(directory), "--tables", "6",
                           "--rows", "400"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = " ".join(proc.stdout.split())
    assert "SIGKILL sent to the worker" in out
    assert "independent check through the original endpoint" in out
    assert "phase awaiting_decommission" in out
    assert not (directory / "daemon.pid").exists()  # torn down
