"""The command line: parse, call a function from `commands`, render its result."""

from __future__ import annotations

import errno
import io
import logging
import math
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from typer._click import Context  # typer's own click (typer >= 0.29 vendors it)
from typer._click import exceptions as click_exc
from typer.core import TyperGroup

from migrator import interrupt, routes
from migrator.errors import (ApprovalRequired, EnvironmentProblem, MigratorError, UsageError, mask_userinfo,
                             shorten)
from migrator.paths import DEFAULT_CONFIG_NAME
from migrator.results import Result, print_result

T = TypeVar("T", bound=Result)


class _Commands:
    """`migrator.commands`, imported on first use: `--help` and `status` must not pay for the
    engine, the strategies, boto3 and the warehouse driver they never touch."""

    def __getattr__(self, name: str) -> Any:
        import migrator.commands

        return getattr(migrator.commands, name)


commands = _Commands()


def _no_type_for_flags() -> None:
    """A flag takes no value, so its help shows no `<bool>` (this typer shows one for every bool)."""
    from typer.core import TyperOption

    shown = TyperOption.display_type_rich

    def display_type_rich(self: TyperOption, ctx: Any) -> str | None:
        return None if self.is_flag else shown(self, ctx)

    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


_no_type_for_flags()

#: errno values that mean the output (stdout or stderr) cannot be written.
_OUTPUT_ERRNOS = frozenset({errno.ENOSPC, errno.EPIPE, errno.EIO, errno.EFBIG, errno.EDQUOT, errno.EBADF})


class _Guarded(TyperGroup):
    """The one place at the top of the CLI where whatever a command lets escape becomes one line
    and an exit code: a MigratorError its documented code, a usage mistake exit 2, a damaged store
    exit 3, output that cannot be written exit 13, anything else exit 1 with a "please report"
    line (a bug: the suite proves no input of issue 24's families gets there). Tracebacks only
    with --traceback. New commands and options need nothing from here."""

    def make_context(self, info_name: str | None, args: list[str], parent: Context | None = None,
                     **extra: Any) -> Context:
        _safe_streams()
        return _guarded(lambda: super(_Guarded, self).make_context(info_name, args, parent=parent, **extra))

    def invoke(self, ctx: Context) -> Any:
        def checked_then_run() -> Any:
            from migrator.config import check_environment

            check_environment()  # the timing overrides, checked like the keys they override
            return super(_Guarded, self).invoke(ctx)
        return _guarded(checked_then_run)


def _guarded(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except (click_exc.NoArgsIsHelpError, typer.Exit, typer.Abort, SystemExit):
        raise
    except click_exc.UsageError as exc:
        _usage(exc)
    except MigratorError as exc:
        _fail(exc)
    except Exception as exc:  # noqa: BLE001 (the top of the CLI: nothing passes here unseen)
        known = _known_failure(exc)
        if known is not None:
            _fail(known, cause=exc)
        _internal(exc)


def _safe_streams() -> None:
    """A character the terminal's encoding lacks (PYTHONIOENCODING=ascii, a non-UTF-8 locale and
    a path in another script) is written as an escape, never an exception."""
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            try:
                stream.reconfigure(errors="backslashreplace")
            except (ValueError, OSError):
                pass


def _usage(exc: click_exc.UsageError) -> NoReturn:
    """A mistake on the command line: one line, exit 2 (click's own box has three or more)."""
    where = exc.ctx.command_path if exc.ctx is not None else "migrator"
    line = shorten(mask_userinfo(" ".join(exc.format_message().split())), 500)
    err.print(f"[red]error:[/red] {escape(line)} (see `{escape(where)} --help`)", markup=True, highlight=False,
              soft_wrap=True)
    raise typer.Exit(2)


def _known_failure(exc: BaseException) -> MigratorError | None:
    """Families of failure the user's machine or files cause, met below a command's own handling."""
    if "sqlalchemy" in sys.modules:
        from sqlalchemy.exc import DatabaseError

        if isinstance(exc, DatabaseError):
            from migrator.store import db

            return db.store_failure(exc)
    if isinstance(exc, OSError) and exc.errno in _OUTPUT_ERRNOS and exc.filename is None:
        _silence_stdout()
        return EnvironmentProblem(f"cannot write the output: {os.strerror(exc.errno or 0)}",
                                  hint="check the file or pipe it goes to")
    return None


def _silence_stdout() -> None:
    """Output that cannot be written is dropped, so the exit's own flush cannot fail again."""
    try:
        fd = sys.stdout.fileno()
    except (OSError, ValueError, AttributeError):
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)


def _internal(exc: BaseException) -> NoReturn:
    """A bug: say so in one line, ask for a report; the traceback with --traceback."""
    if _State.traceback:
        from rich.traceback import Traceback

        err.print(Traceback.from_exception(type(exc), exc, exc.__traceback__))
    what = shorten(mask_userinfo(" ".join(str(exc).split())), 300)
    err.print(f"[red]error:[/red] internal error ({escape(type(exc).__name__)}: {escape(what)}); this is a bug: "
              "please report it to migrator's maintainers with the output of the same command run with --traceback",
              markup=True, highlight=False, soft_wrap=True)
    raise typer.Exit(1)


def _new_app() -> typer.Typer:
    return typer.Typer(cls=_Guarded, add_completion=True, no_args_is_help=True, pretty_exceptions_enable=False,
                       help="Resumable, verifiable migration of Amazon Redshift clusters to KMS or HSM encryption.")


app = _new_app()
db_app = typer.Typer(no_args_is_help=True, help="Manage the checkpoint store's own schema.")
app.add_typer(db_app, name="db")
sandbox_app = typer.Typer(no_args_is_help=True, help="A local Redshift + AWS stand-in for rehearsals and tests.")
app.add_typer(sandbox_app, name="sandbox")

err = Console(stderr=True)


class _State:
    traceback = False


ConfigOpt = Annotated[Path, typer.Option("--config", "-c", envvar="MIGRATOR_CONFIG",
                                         help="migration config (TOML)")]
JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable output")]


@app.callback()
def _main(
    traceback: Annotated[bool, typer.Option("--traceback", help="show tracebacks for errors")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="log progress; implies --traceback")] = False,
) -> None:
    _State.traceback = traceback or verbose
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)


def _fail(exc: MigratorError, cause: BaseException | None = None) -> NoReturn:
    """One line on stderr (a traceback only on request) and the error's documented exit code."""
    if _State.traceback:
        from rich.traceback import Traceback

        shown = cause or exc
        err.print(Traceback.from_exception(type(shown), shown, shown.__traceback__))
    # A gate is where the migration pauses by design, not a failure; nor is a stop asked for.
    label = ("[yellow]waiting:[/yellow]" if isinstance(exc, ApprovalRequired) else
             "[yellow]stopped:[/yellow]" if isinstance(exc, interrupt.Interrupted) else "[red]error:[/red]")
    err.print(f"{label} {escape(exc.one_line())}", markup=True, highlight=False, soft_wrap=True)
    raise typer.Exit(exc.exit_code)


def _show(result: T, as_json: bool = False) -> T:
    print_result(result, as_json=as_json)
    code = result.exit_code()
    if code:
        raise typer.Exit(code)
    return result


def _call(fn: Callable[[], T], as_json: bool = False, *, stoppable: bool = False) -> T:
    """Run a command; a ``stoppable`` one (it changes state) stops at its next safe point on
    SIGINT, SIGTERM or SIGHUP, releases the run lease and exits 130, 143 or 129."""
    try:
        if stoppable:
            with interrupt.handling_signals():
                result = fn()
        else:
            result = fn()
    except MigratorError as exc:
        _fail(exc)
    except KeyboardInterrupt as exc:
        _stopped_at_once(exc)
    return _show(result, as_json)


def _stopped_at_once(exc: KeyboardInterrupt) -> NoReturn:
    """Ctrl-C outside a stoppable command, or a second signal: stopped where it stood (never
    inside a checkpoint write, so the store holds whole writes only)."""
    signum = exc.signum if isinstance(exc, interrupt.HardStop) else 2
    err.print(f"interrupted ({interrupt.signal_name(signum)}); the checkpoint is consistent: re-run to resume",
              highlight=False, soft_wrap=True)
    raise typer.Exit(128 + signum) from None


@app.command()
def init(config: Annotated[Path, typer.Argument(help="migration config (TOML)")],
         as_json: JsonOpt = False) -> None:
    """Validate CONFIG, create or upgrade the checkpoint store, and register the migration."""
    _call(lambda: commands.init(config), as_json)


@app.command()
def run(
    config: ConfigOpt = Path(DEFAULT_CONFIG_NAME),
    approve_cutover: Annotated[bool, typer.Option("--approve-cutover",
                                                  help="pass the cutover gate when the run reaches it")] = False,
    approve_modify: Annotated[bool, typer.Option("--approve-modify",
                                                 help="pass the modify gate (ModifyCluster) when the run reaches it"
                                                 )] = False,
    assume_frozen: Annotated[bool, typer.Option("--assume-frozen",
                                                help="skip the write-freeze check (recorded)")] = False,
    accept_stray_writes: Annotated[bool, typer.Option("--accept-stray-writes",
                                                      help="decommission despite writes to the old cluster after "
                                                           "the cutover, or a hole in their proof (recorded)")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no live progress display")] = False,
    worker: Annotated[bool, typer.Option("--worker", help="join the migration a `migrator run` leads and work on "
                                                          "its tables only (PostgreSQL store)")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Run the migration from wherever it stands; safe to re-run after any crash."""
    from migrator.engine.context import RunOptions

    if worker:
        if approve_cutover or approve_modify or assume_frozen or accept_stray_writes:
            _fail(UsageError("--worker works on tables only; gates and the write freeze are the leader's",
                             hint="pass those options to the leading `migrator run`"))
        _call(lambda: commands.run_worker(config, say=lambda line: err.print(line, markup=False, highlight=False,
                                                                             soft_wrap=True)),
              as_json, stoppable=True)
        return

    options = RunOptions(approve_cutover=approve_cutover, approve_modify=approve_modify, assume_frozen=assume_frozen,
                         accept_stray_writes=accept_stray_writes)
    if quiet:
        _log_to_file(config)
    if quiet or as_json or not err.is_terminal:
        _call(lambda: commands.run(config, options), as_json, stoppable=True)
        return
    failure: MigratorError | KeyboardInterrupt | None = None
    with interrupt.handling_signals(), _live_status(config):  # the panel closes before anything else prints
        try:
            result = commands.run(config, options)
        except (MigratorError, KeyboardInterrupt) as exc:
            failure = exc
    if isinstance(failure, KeyboardInterrupt):
        _stopped_at_once(failure)
    if failure is not None:
        _fail(failure)
    _show(result)


def _log_to_file(config: Path) -> None:
    """`--quiet`: only the outcome reaches the terminal; warnings go to the log file (and, through
    the run, to the history)."""
    path = log_file_for(config)
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        if isinstance(old, logging.StreamHandler) and not isinstance(old, logging.FileHandler):
            root.removeHandler(old)
    root.addHandler(handler)


def log_file_for(config: Path) -> Path:
    return config.resolve().parent / ".migrator" / "migrator.log"


class _live_status:
    """A progress panel on stderr, refreshed from the store (read-only) while the run works."""

    def __init__(self, config: Path, interval: float = 1.0) -> None:
        import threading

        self.config, self.interval = config, interval
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        from rich.live import Live

        watch = commands.StatusWatch(self.config)  # reads the status again only when something happened
        try:
            with Live(console=err, transient=True, refresh_per_second=4) as live:
                while not self.stop.wait(self.interval):
                    try:
                        live.update(watch.read().render())
                    except MigratorError:
                        watch.close()
                        continue  # the store may not exist yet on the very first beat
        finally:
            watch.close()

    def __enter__(self) -> "_live_status":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


@app.command()
def demo(directory: Annotated[Path | None, typer.Option("--dir", help="where the sandbox lives "
                                                        "(default: a new temporary directory)")] = None,
         keep: Annotated[bool, typer.Option("--keep", help="leave the sandbox running to explore")] = False,
         tables: Annotated[int, typer.Option(min=1, max=MAX_SEED_TABLES, help="tables in the seeded source")] = 30,
         rows: Annotated[int, typer.Option(min=1, max=MAX_SEED_ROWS, help="rows in the largest seeded table")
                         ] = 5000) -> None:
    """Rehearse a whole unload-copy migration offline: sandbox, crash, resume, validate, cutover."""
    from migrator.demo import run_demo

    out = Console()
    _call(lambda: run_demo(directory, keep=keep, tables=tables, rows=rows,
                           say=lambda line: out.print(f"[bold cyan]demo[/]: {escape(line)}")))


@app.command()
def cutover(config: ConfigOpt = Path(DEFAULT_CONFIG_NAME), as_json: JsonOpt = False) -> None:
    """Approve the cutover (endpoint swap) and run it."""
    def go() -> Result:
        commands.approve(config, "cutover", "migrator cutover")
        return commands.run(config)
    _call(go, as_json, stoppable=True)


@app.command()
def decommission(config: ConfigOpt = Path(DEFAULT_CONFIG_NAME),
                 confirm: Annotated[bool, typer.Option("--confirm", help="yes: snapshot and delete the old "
                                                       "source cluster")] = False,
                 accept_stray_writes: Annotated[bool, typer.Option(
                     "--accept-stray-writes", help="go ahead despite writes to the old cluster after the cutover, "
                     "or a hole in their proof (recorded with who and when)")] = False,
                 as_json: JsonOpt = False) -> None:
    """Take a final snapshot of the old source cluster, then delete it (needs --confirm)."""
    def go() -> Result:
        from migrator.engine.context import RunOptions

        if not confirm:
            raise UsageError("decommission deletes the old source cluster (after a final snapshot)",
                             hint="add --confirm to go ahead")
        commands.approve(config, "decommission", "migrator decommission --confirm")
        return commands.run(config, RunOptions(accept_stray_writes=accept_stray_writes))
    _call(go, as_json, stoppable=True)


@app.command()
def rollback(config: ConfigOpt = Path(DEFAULT_CONFIG_NAME),
             delete_target: Annotated[bool, typer.Option("--delete-target",
                                                         help="also delete the new cluster (only one this "
                                                              "migration created; needs --confirm)")] = False,
             confirm: Annotated[bool, typer.Option("--confirm", help="yes: delete the new cluster")] = False,
             skip_final_snapshot: Annotated[bool, typer.Option("--skip-final-snapshot",
                                                               help="delete it without a final snapshot")] = False,
             as_json: JsonOpt = False) -> None:
    """Stop the migration and put production back: before cutover the source is untouched;
    after cutover the names are swapped back."""
    _call(lambda: commands.rollback(config, delete_target=delete_target, confirm=confirm,
                                    skip_final_snapshot=skip_final_snapshot), as_json, stoppable=True)


@app.command()
def inventory(config: ConfigOpt = Path(DEFAULT_CONFIG_NAME), as_json: JsonOpt = False) -> None:
    """List the source's user tables, largest first, with usage to spot dead ones (read-only)."""
    _call(lambda: commands.inventory(config), as_json)


@app.command()
def clients(config: ConfigOpt = Path(DEFAULT_CONFIG_NAME), as_json: JsonOpt = False) -> None:
    """List the systems that connect to the source, from its logs; after cutover, who moved (read-only)."""
    _call(lambda: commands.clients(config), as_json)


@app.command()
def status(config: ConfigOpt = Path(DEFAULT_CONFIG_NAME),
           tables: Annotated[bool, typer.Option("--tables", help="per-table detail")] = False,
           watch: Annotated[bool, typer.Option("--watch", help="refresh every 2 s until Ctrl-C")] = False,
           every: Annotated[bool, typer.Option("--all", help="every migration in the store, one line each")] = False,
           store: Annotated[str | None, typer.Option("--store", envvar="MIGRATOR_STORE",
                                                     help="store URL for --all (default: the config's store)")
                            ] = None,
           as_json: JsonOpt = False) -> None:
    """Show where the migration stands (reads the store, never writes it)."""
    def read() -> Result:
        if every:
            from migrator import fleet

            return fleet.status_all(None if store else config, store)
        if store is not None:
            raise UsageError("--store names the store for `status --all`", hint="add --all, or use -c CONFIG")
        return commands.status(config, with_tables=tables)

    if not watch:
        _call(read, as_json)
        return
    from rich.live import Live

    try:
        with Live(console=Console(), refresh_per_second=2) as live:
            while True:
                live.update(read().render())
                time.sleep(2.0)  # the display's refresh interval
    except MigratorError as exc:
        _fail(exc)
    except KeyboardInterrupt:
        return


@app.command()
def history(config: ConfigOpt = Path(DEFAULT_CONFIG_NAME),
            table: Annotated[str | None, typer.Option("--table", help="only this schema.table")] = None,
            limit: Annotated[int | None, typer.Option("--limit", min=1, max=1_000_000_000, help="newest N events")] = None,
            as_json: JsonOpt = False) -> None:
    """Show the audit log of moves, takeovers, approvals and remote actions."""
    _call(lambda: commands.history(config, table=table, limit=limit), as_json)


@app.command()
def graph(strategy: Annotated[str, typer.Option("--strategy", "-s", help=", ".join(routes.names())
                                                + " or table")] = "unload-copy",
          fmt: Annotated[str, typer.Option("--format", "-f", help="mermaid or dot")] = "mermaid") -> None:
    """Print a strategy's state machine as a Mermaid or Graphviz diagram."""
    _call(lambda: commands.graph(strategy, fmt))


@db_app.command("upgrade")
def db_upgrade(config: ConfigOpt = Path(DEFAULT_CONFIG_NAME),
               url: Annotated[str | None, typer.Option("--url", help="store URL instead of --config")] = None,
               as_json: JsonOpt = False) -> None:
    """Create the checkpoint store's schema or bring it to this version."""
    _call(lambda: commands.db_upgrade(None if url else config, url), as_json)


@db_app.command("downgrade")
def db_downgrade(revision: Annotated[str, typer.Argument(help="target revision, e.g. base")],
                 config: ConfigOpt = Path(DEFAULT_CONFIG_NAME),
                 url: Annotated[str | None, typer.Option("--url")] = None,
                 confirm: Annotated[bool, typer.Option("--confirm", help="yes: drop the tables, and the migrations "
                                                       "they hold (a SQLite store is copied first)")] = False,
                 as_json: JsonOpt = False) -> None:
    """Take the store's schema back to REVISION (drops newer tables and their rows: refused while
    the store holds a migration unless --confirm)."""
    _call(lambda: commands.db_downgrade(revision, None if url else config, url, confirm=confirm), as_json)


@app.command()
def report(config: ConfigOpt = Path(DEFAULT_CONFIG_NAME),
           fmt: Annotated[str, typer.Option("--format", "-f", help="md, html or json")] = "md",
           output: Annotated[Path | None, typer.Option("--output", "-o", help="write to FILE instead of stdout")]
           = None) -> None:
    """Evidence for an auditor: encryption before and after, tables with checksums, approvals, timings."""
    result = _call_quiet(lambda: commands.report(config, fmt, output))
    if result.text is not None:
        sys.stdout.write(result.text + "\n")
    else:
        _show(result)


@app.command()
def plan(config: ConfigOpt = Path(DEFAULT_CONFIG_NAME), as_json: JsonOpt = False) -> None:
    """Show what the migration will do (route, AWS requests, new cluster, tables, estimate), read-only."""
    _call(lambda: commands.plan(config), as_json)


@app.command()
def probe(config: ConfigOpt = Path(DEFAULT_CONFIG_NAME), as_json: JsonOpt = False) -> None:
    """Try every statement shape the migration will use on the source (one sampled row per set of
    column types), leaving nothing behind; exit 7 when one fails."""
    _call(lambda: commands.probe(config), as_json)


@app.command("iam-policy")
def iam_policy(config: ConfigOpt = Path(DEFAULT_CONFIG_NAME),
               principal: Annotated[str, typer.Option("--for", help="operator or cluster-role")] = "operator",
               as_json: JsonOpt = False) -> None:
    """Print a least-privilege IAM policy (JSON) for the operator or for the clusters' UNLOAD/COPY role."""
    result = _call_quiet(lambda: commands.iam_policy(config, principal))
    import json

    sys.stdout.write(json.dumps(result.asdict() if as_json else result.policy, indent=2) + "\n")


def _call_quiet(fn: Callable[[], T]) -> T:
    """Run a command whose output the caller writes itself (documents, JSON to pipe into files)."""
    try:
        return fn()
    except MigratorError as exc:
        _fail(exc)


#: The sandbox's size limits (a rehearsal on one machine).
MAX_SEED_TABLES = 1000
MAX_SEED_ROWS = 10_000_000
#: The longest latency a sandbox fault may add (seconds).
MAX_FAULT_SECONDS = 3600.0


def _sandbox_dir(value: Path) -> Path:
    """--dir must be a directory or a path one can be made at (never a file, a loop, a too-long name)."""
    try:
        info = value.stat()
    except FileNotFoundError:
        return value
    except NotADirectoryError:
        raise typer.BadParameter(f"{shorten(str(value))}: a part of the path is a file") from None
    except OSError as exc:
        raise typer.BadParameter(f"{shorten(str(value))}: {os.strerror(exc.errno or 0)}") from None
    except ValueError:
        raise typer.BadParameter("the path holds a NUL byte") from None
    import stat

    if not stat.S_ISDIR(info.st_mode):
        raise typer.BadParameter(f"{shorten(str(value))} exists and is not a directory")
    return value


SandboxDir = Annotated[Path, typer.Option("--dir", help="sandbox directory", callback=_sandbox_dir)]


@sandbox_app.command("up")
def sandbox_up(directory: SandboxDir = Path(".sandbox"),
               tables: Annotated[int, typer.Option(min=0, max=MAX_SEED_TABLES, help="tables to seed in the source")
                                 ] = 6,
               rows: Annotated[int, typer.Option(min=1, max=MAX_SEED_ROWS, help="rows in the largest seeded table")
                               ] = 1000,
               seed: Annotated[int, typer.Option(min=0, help="seed of the data generator")] = 0,
               as_json: JsonOpt = False) -> None:
    """Start the sandbox in the background: AWS on moto, a seeded source cluster, ready-made configs."""
    from migrator.sandbox import commands as sandbox_commands

    _call(lambda: sandbox_commands.up(directory, tables, rows, seed), as_json)


@sandbox_app.command("down")
def sandbox_down(directory: SandboxDir = Path(".sandbox")) -> None:
    """Stop the sandbox running in DIR (every cluster's data goes with it)."""
    from migrator.sandbox import commands as sandbox_commands

    _call(lambda: sandbox_commands.down(directory))


@sandbox_app.command("status")
def sandbox_status(directory: SandboxDir = Path(".sandbox"), as_json: JsonOpt = False) -> None:
    """Show the running sandbox's endpoints and configs."""
    from migrator.sandbox import commands as sandbox_commands

    _call(lambda: sandbox_commands.status(directory), as_json)


@sandbox_app.command("seed")
def sandbox_seed(directory: SandboxDir = Path(".sandbox"),
                 tables: Annotated[int, typer.Option(min=1, max=MAX_SEED_TABLES, help="tables to add")] = 10,
                 rows: Annotated[int, typer.Option(min=1, max=MAX_SEED_ROWS, help="rows in the largest added table")
                                 ] = 10_000,
                 seed: Annotated[int, typer.Option(min=0, help="seed of the data generator")] = 1,
                 prefix: Annotated[str, typer.Option(help="name prefix of the added tables")] = "extra_",
                 hard: Annotated[bool, typer.Option("--hard/--no-hard", help="also add tables of hard types "
                                                    "(VARBYTE, SUPER, full-precision floats, NULL-like strings, "
                                                    "identity) and hard names (dots, brackets, %, /, quotes)")
                                 ] = True) -> None:
    """Add tables and rows to the source cluster, through its Redshift endpoint."""
    from migrator.sandbox import commands as sandbox_commands

    _call(lambda: sandbox_commands.seed(directory, tables, rows, seed, prefix, hard))


@sandbox_app.command("env")
def sandbox_env(directory: SandboxDir = Path(".sandbox")) -> None:
    """Print shell exports for the sandbox: `eval "$(migrator sandbox env --dir DIR)"`."""
    result = _call_quiet(lambda: commands.sandbox_env(directory))
    print_result(result, as_json=False, console=Console(width=10_000, highlight=False, soft_wrap=True))


def _pairs(values: list[str], what: str) -> dict[str, str]:
    out = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{what} {shorten(item, 60)!r} must look like key=value")
        if key in out:
            raise typer.BadParameter(f"{what} {shorten(key, 60)!r} given twice")
        out[key] = value
    return out


def _seconds(value: str) -> float:
    """A fault's `seconds`: a finite number from 0 to MAX_FAULT_SECONDS."""
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not 0 <= number <= MAX_FAULT_SECONDS:
        raise typer.BadParameter(f"param seconds={shorten(value, 30)!r} must be a number of seconds from 0 to "
                                 f"{MAX_FAULT_SECONDS:g}")
    return number


@sandbox_app.command("fault")
def sandbox_fault(kind: Annotated[str, typer.Argument(help="sql_error, drop_connection, latency, s3_slowdown, "
                                                           "s3_error, kms_access_denied, cluster_stuck")],
                  directory: SandboxDir = Path(".sandbox"),
                  nth: Annotated[int, typer.Option(min=1, help="fire on the Nth matching call")] = 1,
                  times: Annotated[int, typer.Option(min=-1, help="how often it fires (-1: always)")] = 1,
                  match: Annotated[list[str], typer.Option(help="key=value the call must match")] = [],  # noqa: B006
                  param: Annotated[list[str], typer.Option(help="key=value fault parameter")] = []) -> None:  # noqa: B006
    """Arm a fault in the running sandbox (fired faults are logged in DIR/faults.log)."""
    from migrator.sandbox import commands as sandbox_commands

    params: dict[str, object] = {k: (_seconds(v) if k == "seconds" else v) for k, v in _pairs(param, "param").items()}
    _call(lambda: sandbox_commands.fault(directory, kind, nth, times, _pairs(match, "match"), params))


#: The options of `migrator` itself that may stand before the command's name.
_TOP_FLAGS = frozenset({"--traceback", "--verbose", "-v"})


def app_for(argv: list[str]) -> typer.Typer:
    """The app with only the command ``argv`` names (the same function, options and guard):
    typer builds the parameters of every registered command on each start, ~60 ms that
    `migrator status` would otherwise pay for twenty commands it does not run. Anything else
    (no command, an unknown or misspelt one, completion) gets the whole app and its answers."""
    from typer.main import get_command_name

    words = iter(argv)
    name = next((w for w in words if w not in _TOP_FLAGS), None)
    if name is None:
        return app
    chosen = [c for c in app.registered_commands
              if (c.name or get_command_name(c.callback.__name__ if c.callback else "")) == name]
    groups = [g for g in app.registered_groups if g.name == name]
    if len(chosen) + len(groups) != 1:
        return app
    narrow = _new_app()
    narrow.registered_callback = app.registered_callback
    narrow.registered_commands = chosen
    narrow.registered_groups = groups
    return narrow


def main() -> None:
    _safe_streams()
    try:
        app_for(sys.argv[1:])()
        code: Any = 0
    except SystemExit as exc:
        code = exc.code
    # Output still buffered is written here, where a full disk or a closed pipe still gets its line.
    try:
        sys.stdout.flush()
    except OSError as exc:
        _silence_stdout()
        try:
            err.print(f"[red]error:[/red] cannot write the output: {os.strerror(exc.errno or 0)} (check the file or "
                      "pipe it goes to)", markup=True, highlight=False, soft_wrap=True)
        except OSError:
            pass
        code = EnvironmentProblem.exit_code
    sys.exit(code)


if __name__ == "__main__":
    main()
