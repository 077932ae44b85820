"""The data side of emulated clusters: one PostgreSQL server per cluster (so users,
groups and grants are per cluster, as on Redshift), the Redshift catalog installed
in its database, and a wire proxy in front that speaks Redshift to clients.

The AWS control plane calls this host when clusters are created, restored,
renamed or deleted.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from migrator.sandbox.faults import FaultPlan
from migrator.sandbox.interfaces import Intercept, SessionInfo
from migrator.sandbox.postgres import SUPERUSER, PostgresServer, find_pg_bin
from migrator.sandbox.proxy import ProxyThread, RedshiftProxy
from migrator.sandbox.redshift import catalog, identifiers, namespace, query_group, settings, wlm
from migrator.sandbox.redshift.dialect import RedshiftDialect
from migrator.sandbox.redshift.statements import RedshiftDataStatements
from migrator.sandbox.redshift.syslog import SystemLog

log = logging.getLogger("migrator.sandbox")
_ROLE_STATEMENT = re.compile(r'^(?:CREATE|ALTER) ROLE ("?)((?:[^"]|"")+?)\1(?:\s|;|$)', re.M)


def _password_lookup(dsn: str) -> Callable[[str], str | None]:
    """What the proxy checks a non-master login against: the user's stored md5 password, if the
    user may log in now (a LOGIN role, a password set, VALID UNTIL not passed)."""

    def stored_password(user: str) -> str | None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            row = conn.execute(
                "select rolpassword from pg_authid where rolname = %s and rolcanlogin"
                " and (rolvaliduntil is null or rolvaliduntil > now())", (user,)).fetchone()
        return str(row[0]) if row and row[0] else None

    return stored_password


class ClusterInterceptor:
    """UNLOAD/COPY first, then the DDL dialect; every completed statement goes to the system log."""

    def __init__(self, data: RedshiftDataStatements, dialect: RedshiftDialect,
                 on_connection: Callable[[str, SessionInfo], object] | None = None,
                 on_failure: Callable[[str, SessionInfo], object] | None = None) -> None:
        self.data = data
        self.dialect = dialect
        self.on_connection = on_connection
        self.on_failure = on_failure

    def classify(self, sql_text: str, session: SessionInfo) -> Intercept | None:
        return self.data.classify(sql_text, session) or self.dialect.classify(sql_text, session)

    def rewrite(self, sql_text: str, session: SessionInfo) -> str | None:
        current = sql_text
        for step in (settings.rewrite, namespace.rewrite, lambda text: identifiers.rewrite(text, session),
                     lambda text: query_group.rewrite(text, session)):
            rewritten = step(current)
            if rewritten is not None:
                current = rewritten
        return current if current is not sql_text else None

    def after_statement(self, sql_text: str, tag: str, session: SessionInfo) -> None:
        self.dialect.after_statement(sql_text, tag, session)

    def after_failure(self, sql_text: str, session: SessionInfo) -> None:
        if self.on_failure is not None:
            self.on_failure(sql_text, session)

    def on_session(self, event: str, session: SessionInfo) -> None:
        if self.on_connection is not None:
            self.on_connection(event, session)


@dataclass
class ClusterRuntime:
    key: str
    cluster_id: str
    database: str
    master_user: str
    pg: PostgresServer
    proxy: RedshiftProxy
    syslog: SystemLog

    def admin_dsn(self) -> str:
        return self.pg.dsn(self.database)


def _pg_env(password: str) -> dict[str, str]:
    return {**os.environ, "PGPASSWORD": password}


class LocalClusterHost:
    def __init__(self, directory: Path, proxies: ProxyThread, faults: FaultPlan | None,
                 s3_client: Callable[[], Any], kms_client: Callable[[], Any], iam_roles: Callable[[], set[str]],
                 region: str) -> None:
        self.directory = directory
        self.proxies = proxies
        self.faults = faults
        self._s3 = s3_client
        self._kms = kms_client
        self._iam_roles = iam_roles
        self.region = region
        self._lock = threading.Lock()
        self._registry_lock = threading.Lock()
        self._clusters: dict[str, ClusterRuntime] = {}
        self._serial = 0
        self._template_lock = threading.Lock()
        self._template: PostgresServer | None = None

    # -- ClusterHost -------------------------------------------------------------------------

    def provision(self, cluster_id: str, database: str, master_user: str, master_password: str) -> tuple[str, int]:
        runtime = self._start_cluster(cluster_id, database, master_user, master_password)
        return "127.0.0.1", runtime.proxy.port

    def provision_from_snapshot(self, cluster_id: str, database: str, master_user: str, master_password: str,
                                source_cluster_id: str, snapshot_id: str) -> tuple[str, int]:
        """A restore carries the source's data. The sandbox copies the source as it is at restore
        time (a real snapshot freezes it at snapshot time; runs here take the snapshot just before)."""
        source = self.runtime(source_cluster_id)
        # The catalog first: the restored tables' triggers call its functions, and its
        # event trigger records each table the restore creates.
        runtime = self._start_cluster(cluster_id, database, master_user, master_password)
        bin_dir = find_pg_bin()
        self._copy_roles(bin_dir, source, runtime)
        # pg_dump leaves out pg_* schemas, the emulation's included: only user objects travel.
        # Passwords reach the tools in PGPASSWORD, never in argv (any user can read a process's argv).
        dump = subprocess.run([str(bin_dir / "pg_dump"), "--format=custom", "--dbname",
                               source.pg.dsn(source.database, password=False)],
                              env=_pg_env(source.pg.password), capture_output=True, check=True)
        subprocess.run([str(bin_dir / "pg_restore"), "--no-owner", "--dbname",
                        runtime.pg.dsn(runtime.database, password=False)],
                       env=_pg_env(runtime.pg.password), input=dump.stdout, capture_output=True, check=False)
        with psycopg.connect(source.admin_dsn(), autocommit=True) as src, \
                psycopg.connect(runtime.admin_dsn(), autocommit=True) as dst:
            catalog.copy_metadata(src, dst)
        log.info("restored %s from snapshot %s of %s", cluster_id, snapshot_id, source_cluster_id)
        return "127.0.0.1", runtime.proxy.port

    @staticmethod
    def _copy_roles(bin_dir: Path, source: ClusterRuntime, target: ClusterRuntime) -> None:
        """Users and groups live in the cluster (the server here): a restore brings them along."""
        # With their passwords: a restored cluster's users log in as they did on the source.
        roles = subprocess.run([str(bin_dir / "pg_dumpall"), "--roles-only",
                                "--dbname", source.pg.dsn("postgres", password=False)],
                               env=_pg_env(source.pg.password), capture_output=True, text=True, check=True)
        with psycopg.connect(target.pg.dsn(target.database), autocommit=True) as conn:
            for statement in roles.stdout.split(";\n"):
                statement = statement.strip()
                if not statement or statement.startswith("--") and "\n" not in statement:
                    continue
                named = _ROLE_STATEMENT.search(statement)
                if named and named.group(2).replace('""', '"') in (SUPERUSER, target.master_user):
                    continue  # the server's admin and the new cluster's master keep their own passwords
                try:
                    conn.execute(statement)  # type: ignore[call-overload]
                except psycopg.Error:
                    pass  # roles that exist already (the admin, the master user)

    def deprovision(self, cluster_id: str) -> None:
        with self._lock:
            runtime = self._clusters.pop(cluster_id, None)
        if runtime is None:
            return
        self.proxies.remove(cluster_id)
        runtime.syslog.close()
        runtime.pg.destroy()
        shutil.rmtree(self.directory / runtime.key, ignore_errors=True)
        self._write_registry()

    def rename(self, old_id: str, new_id: str) -> None:
        with self._lock:
            runtime = self._clusters.pop(old_id)
            runtime.cluster_id = new_id
            self._clusters[new_id] = runtime
        self.proxies.rename(old_id, new_id)
        self._write_registry()

    def list_tables(self, cluster_id: str) -> list[str]:
        runtime = self.runtime(cluster_id)
        with psycopg.connect(runtime.admin_dsn(), autocommit=True) as conn:
            rows = conn.execute(
                "select table_schema || '.' || table_name from information_schema.tables "
                "where table_type = 'BASE TABLE' and table_schema not in ('pg_catalog', 'information_schema', "
                "'pg_sandbox') order by 1").fetchall()
        return [r[0] for r in rows]

    # -- ours --------------------------------------------------------------------------------

    def runtime(self, cluster_id: str) -> ClusterRuntime:
        with self._lock:
            return self._clusters[cluster_id]

    def runtimes(self) -> list[ClusterRuntime]:
        with self._lock:
            return list(self._clusters.values())

    def set_isolation(self, cluster_id: str, level: str) -> None:
        """SERIALIZABLE or SNAPSHOT for the cluster's database, as a test chooses (new clusters
        get SNAPSHOT, as new provisioned clusters do). Unlike ALTER DATABASE ... ISOLATION LEVEL
        this also works for a database named dev. Sessions opened afterwards get the level."""
        pg_level = {"SERIALIZABLE": "serializable", "SNAPSHOT": "repeatable read"}[level.upper()]
        runtime = self.runtime(cluster_id)
        with psycopg.connect(runtime.admin_dsn(), autocommit=True) as conn:
            conn.execute(sql.SQL("alter database {} set default_transaction_isolation = {}").format(
                sql.Identifier(runtime.database), sql.Literal(pg_level)))

    def set_namespace(self, cluster_id: str, namespace_id: str) -> None:
        """The cluster's namespace GUID (ClusterNamespaceArn's tail): SELECT current_namespace
        answers it from now on, through whatever name reaches this cluster's data."""
        runtime = self.runtime(cluster_id)
        with psycopg.connect(runtime.admin_dsn(), autocommit=True) as conn:
            conn.execute(namespace.define_sql(namespace_id))  # type: ignore[arg-type]

    def set_node_layout(self, cluster_id: str, slices: int, slices_per_node: int) -> None:
        """STV_SLICES (and so UNLOAD's files per slice): the control plane passes the node type's
        default slices per node times the node count ("Node type details", controlplane/
        node_types.py)."""
        catalog.set_layout(self.runtime(cluster_id).admin_dsn(), slices=slices, slices_per_node=slices_per_node)

    def apply_wlm(self, cluster_id: str, configuration: str, node_type: str) -> None:
        """A reboot applied the parameter group's wlm_json_configuration: the WLM tables show it."""
        runtime = self.runtime(cluster_id)
        with psycopg.connect(runtime.admin_dsn(), autocommit=True) as conn:
            wlm.apply(conn, configuration, node_type)

    def reboot(self, cluster_id: str) -> None:
        self.proxies.drop_sessions(cluster_id)

    def close(self) -> None:
        # Several servers at once: a test session's sandbox can hold dozens of clusters, and one
        # by one their shutdown outlasts what a caller waits for.
        with ThreadPoolExecutor(max_workers=8, thread_name_prefix="sandbox-close") as pool:
            list(pool.map(self.deprovision, [runtime.cluster_id for runtime in self.runtimes()]))
        with self._template_lock:
            if self._template is not None:
                self._template.destroy()
                shutil.rmtree(self._template.base_dir, ignore_errors=True)
                self._template = None

    _TEMPLATE_DATABASE = "sandbox_template_db"

    def _template_server(self) -> PostgresServer:
        """A stopped server made once per host: initdb done, the catalog installed in a database of
        its own. Every cluster starts from a copy of its files (a fraction of initdb's time); what
        differs per cluster (database name, master user, cluster id) is set on the copy."""
        with self._template_lock:
            if self._template is None:
                template = PostgresServer(self.directory / "template").start()
                try:
                    template.create_database(self._TEMPLATE_DATABASE)
                    catalog.install(template.dsn(self._TEMPLATE_DATABASE), "template")
                finally:
                    template.stop()
                self._template = template
            return self._template

    def _new_server(self, key: str, cluster_id: str, database: str, install: bool) -> PostgresServer:
        """A running server with ``database`` (the catalog installed for ``cluster_id`` when ``install``)."""
        if not install or database in ("postgres", "template0", "template1", self._TEMPLATE_DATABASE):
            pg = PostgresServer(self.directory / key).start()
            try:
                pg.create_database(database)
                if install:
                    catalog.install(pg.dsn(database), cluster_id)
            except BaseException:
                pg.destroy()
                raise
            return pg
        pg = PostgresServer(self.directory / key)
        try:
            pg.start_copy_of(self._template_server())
            with psycopg.connect(pg.dsn("postgres"), autocommit=True) as conn:
                # Settings made with ALTER DATABASE (search_path, isolation) follow the rename.
                conn.execute(sql.SQL("alter database {} rename to {}").format(
                    sql.Identifier(self._TEMPLATE_DATABASE), sql.Identifier(database)))
            catalog.set_cluster(pg.dsn(database), cluster_id)
        except BaseException:
            pg.destroy()
            raise
        return pg

    def _start_cluster(self, cluster_id: str, database: str, master_user: str, master_password: str,
                       install: bool = True) -> ClusterRuntime:
        with self._lock:
            self._serial += 1
            key = f"cluster-{self._serial:03d}"
        pg = self._new_server(key, cluster_id, database, install)
        try:
            with psycopg.connect(pg.dsn(database), autocommit=True) as conn:
                # The master user is a superuser on Redshift too.
                conn.execute(sql.SQL("create role {} login superuser password {}").format(
                    sql.Identifier(master_user), sql.Literal(master_password)))
                wlm.apply(conn, wlm.DEFAULT_WLM)  # the default parameter group's, until a reboot applies another
            syslog = SystemLog(pg.dsn(database))
            data = RedshiftDataStatements(self._s3, self._kms, self.faults, self._iam_roles(),
                                          on_unload=syslog.on_unload, on_load_commit=syslog.on_load_commit,
                                          on_load_error=syslog.on_load_error, region=self.region)
            interceptor = ClusterInterceptor(data, RedshiftDialect(observer=syslog.after_statement),
                                             on_connection=syslog.on_connection, on_failure=syslog.after_failure)
            proxy = RedshiftProxy(cluster_id, "127.0.0.1", pg.port, database, SUPERUSER, pg.password,
                                  users={master_user: master_password}, interceptor=interceptor,
                                  faults=self.faults, database=database,
                                  stored_password=_password_lookup(pg.dsn(database)))
            self.proxies.add(proxy)
        except BaseException:
            pg.destroy()
            raise
        runtime = ClusterRuntime(key, cluster_id, database, master_user, pg, proxy, syslog)
        with self._lock:
            self._clusters[cluster_id] = runtime
        self._write_registry()
        return runtime

    def _write_registry(self) -> None:
        """clusters.json: how other processes (tests, the demo) reach each cluster, mode 0600."""
        with self._registry_lock:  # close() deprovisions from several threads
            data = {r.cluster_id: {"host": "127.0.0.1", "port": r.proxy.port, "database": r.database,
                                   "user": r.master_user, "password": r.proxy.users.get(r.master_user, ""),
                                   "admin_dsn": r.admin_dsn()} for r in self.runtimes()}
            self.directory.mkdir(parents=True, exist_ok=True)
            path = self.directory.parent / "clusters.json"
            tmp = path.with_suffix(".tmp")
            fd = os.open(tmp, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                json.dump(data, fh, indent=2)
            tmp.replace(path)
