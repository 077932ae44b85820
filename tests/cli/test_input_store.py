"""Issue 24, the checkpoint store as a careless or hostile user meets it: `db downgrade` never
wipes a store that holds a migration without --confirm (and copies a SQLite store first);
damaged, read-only, unreachable and uncreatable stores end in one line with exit 3; three `init`
at once say "created" once. Every command goes through the CLI."""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from migrator.store import Store
from migrator.store.views import TableSpec
from tests.cli.test_cli import good_config
from tests.harness import cli, one_line_error

STORE = Path(".migrator") / "state.db"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _initialised(tmp_path: Path, tables: int = 3) -> Path:
    """A store holding migration m1 with table tasks and history (as a run leaves it)."""
    good_config(tmp_path)
    proc = cli("init", "migrator.toml", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    store_path = tmp_path / STORE
    with Store.open(f"sqlite:///{store_path}") as store:
        migration = store.require_migration("m1")
        store.add_tables(migration, [TableSpec("public", f"t{i}", 1, 10) for i in range(tables)], "pending")
    _checkpoint(store_path)
    return store_path


def _checkpoint(path: Path) -> None:
    """Fold the WAL into the file, so that the file's bytes are the store's content."""
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def _tables(path: Path) -> set[str]:
    conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    try:
        return {r[0] for r in conn.execute("select name from sqlite_master where type = 'table'")}
    finally:
        conn.close()


# -- db downgrade --------------------------------------------------------------------------------

def test_downgrade_refuses_a_store_holding_a_migration_and_says_what_would_be_lost(tmp_path: Path) -> None:
    store = _initialised(tmp_path)
    before = _digest(store)
    proc = cli("db", "downgrade", "base", cwd=tmp_path)
    one_line_error(proc, 2, "1 migration(s)", "'m1' in phase created", "3 table task(s)", "history event(s)",
                   "--confirm")
    assert _digest(store) == before
    assert {"migration", "event", "table_task"} <= _tables(store)
    assert not list(store.parent.glob("*.backup-*"))


def test_downgrade_with_confirm_writes_a_backup_first(tmp_path: Path) -> None:
    store = _initialised(tmp_path)
    proc = cli("db", "downgrade", "base", "--confirm", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    [backup] = store.parent.glob("state.db.backup-*")
    assert str(backup) in proc.stdout
    assert _tables(store) <= {"alembic_version"}
    conn = sqlite3.connect(backup)
    try:
        assert conn.execute("select name, phase from migration").fetchall() == [("m1", "created")]
        assert conn.execute("select count(*) from table_task").fetchone() == (3,)
    finally:
        conn.close()
    assert oct(backup.stat().st_mode & 0o777) == "0o600"


def test_downgrade_of_an_empty_store_needs_no_confirm(tmp_path: Path) -> None:
    good_config(tmp_path)
    assert cli("db", "upgrade", cwd=tmp_path).returncode == 0
    proc = cli("db", "downgrade", "base", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("revision", ["nonexistent-rev", "+1", "heads", "x" * 50_000, "0001\n"])
def test_downgrade_to_an_unknown_revision_is_one_line(tmp_path: Path, revision: str) -> None:
    store = _initialised(tmp_path)
    before = _digest(store)
    proc = cli("db", "downgrade", revision, "--confirm", cwd=tmp_path)
    one_line_error(proc, 2, "cannot downgrade to", "choose one of: base")
    assert len(proc.stderr) < 500
    assert _digest(store) == before


def test_downgrade_of_a_store_at_an_unknown_revision_is_refused(tmp_path: Path) -> None:
    store = _initialised(tmp_path)
    conn = sqlite3.connect(store)
    conn.execute("update alembic_version set version_num = 'ffff'")
    conn.commit()
    conn.close()
    _checkpoint(store)
    before = _digest(store)
    one_line_error(cli("db", "downgrade", "base", "--confirm", cwd=tmp_path), 3, "'ffff'", "does not know")
    assert _digest(store) == before


@contextmanager
def _immutable(path: Path) -> Iterator[None]:
    """chattr +i: not even root may write (the tests run as root, where chmod protects nothing)."""
    if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode != 0:
        pytest.fail("chattr +i is needed to make a file read-only for root")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


def test_downgrade_of_a_read_only_store_is_one_line(tmp_path: Path) -> None:
    store = _initialised(tmp_path)
    before = _digest(store)
    with _immutable(store):
        proc = cli("db", "downgrade", "base", "--confirm", cwd=tmp_path)
    one_line_error(proc, 3, "readonly database", "nothing was changed")
    assert _digest(store) == before


def test_downgrade_where_no_backup_can_be_written_changes_nothing(tmp_path: Path) -> None:
    store = _initialised(tmp_path)
    before = _digest(store)
    with _immutable(store.parent):
        proc = cli("db", "downgrade", "base", "--confirm", cwd=tmp_path)
    # refused when the backup cannot be written, or before (SQLite cannot make its WAL files there)
    one_line_error(proc, 3, "checkpoint store")
    assert not list(store.parent.glob("*.backup-*"))
    assert _digest(store) == before
    assert "migration" in _tables(store)


def test_read_only_store_errors_name_the_users_url(tmp_path: Path) -> None:
    """A reading command opens the file read-only; its errors name the store as configured,
    never the internal `file:...?mode=ro&uri=true` form."""
    store = _initialised(tmp_path)
    store.write_bytes(b"\xff" * 4096)
    proc = cli("status", cwd=tmp_path)
    one_line_error(proc, 3, f"sqlite:///{store}", "damaged")
    assert "mode=ro" not in proc.stderr and "file%3A" not in proc.stderr


# -- secrets in what the store shows ---------------------------------------------------------------

def test_status_and_history_mask_urls_with_a_password(tmp_path: Path) -> None:
    """Through the store's moves (masked on write) and a row an older migrator wrote unmasked
    (masked on the way out)."""
    import json

    store_path = _initialised(tmp_path)
    url = "http://admin:Secr3tPW@127.0.0.1:9/x"
    with Store.open(f"sqlite:///{store_path}") as store:
        migration = store.require_migration("m1")
        store.record_migration_error(migration, f"could not reach {url}", {"endpoint": url})
    conn = sqlite3.connect(store_path)
    conn.execute("insert into event (migration_id, at, subject, trigger, detail, host, pid) "
                 "select id, updated_at, 'migration', 'warning', ?, 'h', 1 from migration",
                 (json.dumps({"message": f"old row {url}"}),))
    conn.execute("update table_task set last_error = ?", (f"old {url}",))
    conn.commit()
    conn.close()
    for argv in (["status"], ["status", "--json", "--tables"], ["history"], ["history", "--json"]):
        proc = cli(*argv, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        assert "Secr3tPW" not in proc.stdout + proc.stderr, argv
        assert "http://***@127.0.0.1:9/x" in proc.stdout, argv
    conn = sqlite3.connect(store_path)
    stored = conn.execute("select last_error from migration").fetchone()[0]
    conn.close()
    assert "Secr3tPW" not in stored


# -- damaged stores ------------------------------------------------------------------------------

def _damage(path: Path, how: str) -> None:
    data = bytearray(path.read_bytes())
    if how == "header":
        data[0:100] = b"\xff" * 100
    elif how == "schema_text":  # found by the property test: the schema's SQL text is no UTF-8
        at = data.index(b"CREATE TABLE") + 3
        data[at] = 0x80
    elif how == "third":
        data = data[: len(data) // 3]
    else:
        offset = int(how)
        assert offset + 512 <= len(data), "the store is smaller than the damage"
        data[offset:offset + 512] = b"\xab" * 512
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("how", ["header", "4096", "20000", "third", "schema_text"])
def test_damaged_store_is_one_line_exit_3_for_every_command(tmp_path: Path, how: str) -> None:
    store = _initialised(tmp_path)
    _damage(store, how)
    for argv in (["status"], ["status", "--tables", "--json"], ["history"], ["run", "-q"], ["db", "upgrade"],
                 ["init", "migrator.toml"], ["cutover"], ["rollback"]):
        damaged = _digest(store)
        proc = cli(*argv, cwd=tmp_path, env={"SRC_PW": "x"})
        assert proc.returncode in (0, 3), (argv, proc.stderr)  # 0: what a command needs was intact
        assert "Traceback" not in proc.stderr and "please report" not in proc.stderr, (argv, proc.stderr)
        if proc.returncode == 3:
            one_line_error(proc, 3, "checkpoint store")
        if argv[0] in ("status", "history"):
            assert _digest(store) == damaged
    # a damaged header can never be read
    if how in ("header", "4096", "third", "schema_text"):
        one_line_error(cli("status", cwd=tmp_path), 3, "may be damaged")


# -- store URLs and paths ------------------------------------------------------------------------

@pytest.mark.parametrize("url", ["postgresql://u:Secr3tPW@h:notaport/db", "postgresql://u:Secr3tPW@[::1/db",
                                 "postgresql://u:Secr3tPW@h:99999/db"])
def test_store_url_with_a_bad_port_is_refused_at_init_and_masked(tmp_path: Path, url: str) -> None:
    good_config(tmp_path)
    (tmp_path / "migrator.toml").write_text(
        (tmp_path / "migrator.toml").read_text().replace('"sqlite:///.migrator/state.db"', f'"{url}"'))
    proc = cli("init", "migrator.toml", cwd=tmp_path)
    one_line_error(proc, 2, "migration.store", "port")
    for argv in (["db", "upgrade", "--url", url], ["db", "downgrade", "base", "--url", url]):
        proc = cli(*argv, cwd=tmp_path)
        one_line_error(proc, 3, "port", "***@")
        assert "Secr3tPW" not in proc.stderr + proc.stdout


@pytest.mark.parametrize("where", ["proc", "under_a_file", "too_long"])
def test_store_path_that_cannot_be_created_is_one_line(tmp_path: Path, where: str) -> None:
    (tmp_path / "a_file").write_text("x")
    path = {"proc": "/proc/self/no/state.db", "under_a_file": f"{tmp_path}/a_file/state.db",
            "too_long": f"{tmp_path}/{'d' * 300}/state.db"}[where]
    good_config(tmp_path, migration={"store": f"sqlite:///{path}"})
    proc = cli("init", "migrator.toml", cwd=tmp_path)
    one_line_error(proc, 3, "checkpoint store")
    proc = cli("db", "upgrade", "--url", f"sqlite:///{path}", cwd=tmp_path)
    one_line_error(proc, 3, "checkpoint store")


def test_store_in_an_immutable_directory_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "locked").mkdir()
    good_config(tmp_path, migration={"store": "sqlite:///locked/state.db"})
    with _immutable(tmp_path / "locked"):
        proc = cli("init", "migrator.toml", cwd=tmp_path)
    one_line_error(proc, 3, "cannot create the checkpoint store", "Operation not permitted")


# -- concurrent init -----------------------------------------------------------------------------

def test_init_says_created_only_when_it_created(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another `init` inserts the migration right after this one looked and found none (the race
    of three `init` at once, made certain): this one must say "already initialised"."""
    from migrator import commands
    from migrator.config import load_config
    from migrator.engine.runner import ensure_migration
    from migrator.strategies import build

    good_config(tmp_path)
    assert cli("db", "upgrade", cwd=tmp_path).returncode == 0
    config = load_config(tmp_path / "migrator.toml")
    looked = Store.get_migration

    def look_then_lose_the_race(self: Store, name: str) -> object:
        found = looked(self, name)
        if found is None and not getattr(look_then_lose_the_race, "raced", False):
            look_then_lose_the_race.raced = True  # type: ignore[attr-defined]
            strategy = build("unload-copy")
            with Store.open(config.store_url) as other:  # the other process, through its own engine
                ensure_migration(other, config, strategy.definition, strategy.table_definition.initial)
        return found

    monkeypatch.setattr(Store, "get_migration", look_then_lose_the_race)
    result = commands.init(tmp_path / "migrator.toml")
    assert result.created is False
    monkeypatch.undo()
    with Store.open(config.store_url, read_only=True) as store:
        assert len(store.list_migrations()) == 1


def test_three_inits_at_once_say_created_once(tmp_path: Path) -> None:
    from tests.harness import migrator_command

    good_config(tmp_path)
    procs = [subprocess.Popen(migrator_command("init", "migrator.toml"), cwd=tmp_path, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(3)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outs
    said = [out for out, _ in outs]
    assert sum("(unload-copy) created;" in s for s in said) == 1, said
    assert sum("already initialised" in s for s in said) == 2, said
