"""A throwaway server leaves nothing on disk: a long test campaign must not fill the machine."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from migrator.sandbox.postgres import PostgresServer, sweep_orphans


def _redirected(server: PostgresServer) -> Path | None:
    pointer = server.base_dir / "server-dir"
    return Path(pointer.read_text().strip()) if pointer.exists() else None


def test_a_server_removes_its_files_when_done(tmp_path: Path) -> None:
    base = tmp_path / "private"
    base.mkdir(mode=0o700)
    with PostgresServer(base) as server:
        files = _redirected(server) or server.base_dir
        assert (files / "pgdata" / "PG_VERSION").exists()
    assert not (files / "pgdata").exists()
    assert _redirected(server) is None


def test_orphans_of_killed_processes_are_swept_and_live_ones_kept(tmp_path: Path) -> None:
    root = tmp_path / "tmp"
    root.mkdir()
    gone_owner = root / "migrator-pg-gone"
    (gone_owner / "pgdata").mkdir(parents=True)
    (gone_owner / "owner").write_text(str(tmp_path / "deleted-base"))

    live_base = tmp_path / "live-base"
    live_base.mkdir()
    live = root / "migrator-pg-live"
    live.mkdir()
    (live / "owner").write_text(str(live_base))
    (live_base / "server-dir").write_text(str(live))

    running = root / "migrator-pg-running"
    (running / "pgdata").mkdir(parents=True)
    (running / "owner").write_text(str(tmp_path / "deleted-too"))
    (running / "pgdata" / "postmaster.pid").write_text(f"{os.getpid()}\n")

    fresh_unclaimed = root / "migrator-pg-justmade"
    fresh_unclaimed.mkdir()
    old_unclaimed = root / "migrator-pg-old"
    old_unclaimed.mkdir()
    an_hour_and_more = time.time() - 2 * 3600
    os.utime(old_unclaimed, (an_hour_and_more, an_hour_and_more))

    removed = sweep_orphans(root)

    assert sorted(p.name for p in removed) == ["migrator-pg-gone", "migrator-pg-old"]
    assert not gone_owner.exists() and not old_unclaimed.exists()
    assert live.exists() and running.exists() and fresh_unclaimed.exists()


def test_starting_a_server_sweeps_what_killed_ones_left(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if os.geteuid() != 0:
        pytest.skip("only a root run redirects server files out of a private directory")
    # A temp root the server's own user can reach, as the machine's /tmp is.
    root = Path(tempfile.mkdtemp(prefix="pg-sweep-"))
    root.chmod(0o755)
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    try:
        orphan = root / "migrator-pg-orphan"
        (orphan / "pgdata").mkdir(parents=True)
        (orphan / "owner").write_text(str(tmp_path / "no-such-base"))
        base = tmp_path / "private"
        base.mkdir(mode=0o700)
        with PostgresServer(base) as server:
            files = _redirected(server)
            assert files is not None and files.parent == root
            assert not orphan.exists()
        assert not files.exists()
    finally:
        shutil.rmtree(root, ignore_errors=True)
