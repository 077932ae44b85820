"""Issue 24, property-based: configs, arguments, environment values and damaged stores drawn from
the families the issue found, each run through the real CLI (in-process, `tests.harness.cli`).
For every input: the exit code is documented, a failure is one `error:` line with no traceback
and never the "please report" line of the catch-all, a refusal leaves the store as it was, and
the secret planted in the input never reaches the output.

Derandomized (the same examples each run, so the suite is not flaky); set
MIGRATOR_HYPOTHESIS_RANDOM=1 to explore new ones. `-s` prints the tally per family."""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import tempfile
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.harness import DOCUMENTED_EXIT_CODES, OFFLINE, _toml_value, cli

SECRET = "S3cr3t-Hypo-PW"
STORE = "sqlite:///.migrator/state.db"
TALLY: Counter[tuple[str, str]] = Counter()

_SETTINGS = settings(deadline=None, derandomize=not os.environ.get("MIGRATOR_HYPOTHESIS_RANDOM"), database=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@contextmanager
def _workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="m24-") as d:
        yield Path(d)


def _toml(data: dict[str, dict[str, Any]]) -> str:
    return "\n".join(f"[{section}]\n" + "".join(f"{k} = {_toml_value(v)}\n" for k, v in values.items())
                     for section, values in data.items())


def _base() -> dict[str, dict[str, Any]]:
    data = {section: dict(values) for section, values in OFFLINE.items()}
    data["migration"]["store"] = STORE
    return data


def _state(directory: Path) -> str:
    """The store's content (its SQL dump, read from a copy so that looking changes nothing), or
    the bytes' digest when it cannot be read."""
    store = directory / ".migrator" / "state.db"
    if not store.exists():
        return "no store"
    with tempfile.TemporaryDirectory() as scratch:
        for path in store.parent.glob("state.db*"):
            if ".backup-" not in path.name:
                shutil.copy(path, Path(scratch) / path.name)
        try:
            conn = sqlite3.connect(Path(scratch) / "state.db")
            try:
                return "\n".join(conn.iterdump())
            finally:
                conn.close()
        except (sqlite3.Error, ValueError):  # damaged: a page, a text that is no UTF-8
            return hashlib.sha256(store.read_bytes()).hexdigest()


def _check(family: str, proc: Any, before: str, directory: Path) -> None:
    out = proc.stdout + proc.stderr
    assert proc.returncode in DOCUMENTED_EXIT_CODES, (proc.args, proc.returncode, out)
    assert "Traceback" not in out, (proc.args, out)
    assert "please report" not in out, (proc.args, out)
    assert SECRET not in out, (proc.args, out)
    if proc.returncode != 0:
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: "), (proc.args, proc.stderr)
        assert len(lines[0]) <= 2200, (proc.args, len(lines[0]))
        if proc.returncode not in (8,):  # a gate may record that it waits; every other refusal writes nothing
            assert _state(directory) == before, (proc.args, "a refused command changed the store")
    TALLY[(family, "refused cleanly" if proc.returncode else "accepted")] += 1


# -- values drawn from the families --------------------------------------------------------

_TEXT = st.one_of(
    st.sampled_from(["", " ", "\n", "analytics\n", "a" * 300, "inf", "nan", "-5", "4", "true", "not a url",
                     "http://[::1", "x" * 5000, "Ω≈ç√", "../../etc/passwd", "\x00",
                     f"http://admin:{SECRET}@127.0.0.1:9", f"postgresql://u:{SECRET}@h:notaport/db",
                     f"postgresql://u:{SECRET}@[::1/db", f"postgresql+psycopg://u:{SECRET}@127.0.0.1:1/db",
                     "sqlite:////proc/self/no/state.db", "sqlite:///" + "d" * 300 + "/s.db", "mysql://u@h/d"]),
    st.text(max_size=40),
)
_NUMBER = st.one_of(st.sampled_from([float("inf"), float("-inf"), 1e300, -1, 0, 10**30, -(10**30), 0.5, 65536]),
                    st.integers(min_value=-(10**20), max_value=10**20),
                    st.floats(allow_nan=False, allow_infinity=True))
_VALUE = st.one_of(_TEXT, _NUMBER, st.booleans(), st.lists(_TEXT, max_size=3))
_KEYS = [(section, key) for section, keys in {
    "migration": ["name", "strategy", "region", "store", "aws_endpoint_url", "sandbox_plaintext"],
    "source": ["cluster_id", "database", "user", "host", "port", "password_env", "secret_arn", "iam_auth", "sslmode"],
    "target": ["cluster_id", "encryption", "kms_key_id", "node_type", "cluster_port", "password_env"],
    "staging": ["s3_uri", "iam_role_arn", "kms_key_id", "keep", "format"],
    "tables": ["include", "exclude", "concurrency", "max_attempts", "live_copies"],
    "freeze": ["max_write_iops", "quiet_seconds", "timeout_seconds", "catch_up_passes"],
    "notify": ["sns_topic_arn", "webhook_url_env"],
}.items() for key in keys]
#: Where a variable's name is expected, the commonest mistake is the secret itself.
_NAME_KEYS = [("source", "password_env"), ("target", "password_env"), ("notify", "webhook_url_env")]


@st.composite
def bad_configs(draw: st.DrawFn) -> str:
    """A config with a few keys set to drawn values, unknown keys added, sections dropped, or raw
    text that is no config at all."""
    kind = draw(st.sampled_from(["values", "values", "values", "unknown", "raw"]))
    if kind == "raw":
        return draw(st.one_of(
            st.sampled_from(["x = " + "[" * 3000 + "]" * 3000, "[" + ".".join(["k"] * 400) + "]\nx=1",
                             "\ufeff[migration]", "[migration\nname = 1", ""]),
            st.text(max_size=200)))
    data = _base()
    if kind == "unknown":
        for name in draw(st.lists(st.text("abcdefghij_", min_size=1, max_size=20), min_size=1, max_size=30)):
            data[draw(st.sampled_from(list(data)))][name + "_x"] = 1
        return _toml(data)
    for section, key in draw(st.lists(st.sampled_from(_KEYS), min_size=1, max_size=4, unique=True)):
        value = draw(st.one_of(_VALUE, st.just(SECRET))) if (section, key) in _NAME_KEYS else draw(_VALUE)
        if isinstance(value, float) and value != value:
            continue
        data.setdefault(section, {})[key] = value
    if draw(st.booleans()) and draw(st.booleans()):
        data.pop(draw(st.sampled_from(["source", "staging", "target"])), None)
    return _toml(data)


@given(body=bad_configs(), then=st.sampled_from([["status"], ["history", "--json"], ["db", "upgrade"]]))
@settings(_SETTINGS, max_examples=40)
def test_drawn_configs(body: str, then: list[str]) -> None:
    with _workdir() as directory:
        (directory / "migrator.toml").write_text(body, encoding="utf-8", errors="surrogatepass")
        before = _state(directory)
        init = cli("init", "migrator.toml", cwd=directory, env={"SRC_PW": "x"})
        _check("config", init, before, directory)
        after = _state(directory)
        _check("config", cli(*then, cwd=directory, env={"SRC_PW": "x"}), after, directory)
        if init.returncode == 0:
            # what init accepted, every reading command accepts too
            assert cli("status", cwd=directory).returncode == 0


_ARGS = st.one_of(
    st.tuples(st.just("history"), st.just("--limit"), st.one_of(st.integers(-10**25, 10**25).map(str), _TEXT)),
    st.tuples(st.just("graph"), st.just("--strategy"), _TEXT),
    st.tuples(st.just("graph"), st.just("--format"), _TEXT),
    st.tuples(st.just("db"), st.just("downgrade"), _TEXT),
    st.tuples(st.just("db"), st.just("downgrade"), st.sampled_from(["base", "0001", "head", "+1", "heads"])),
    st.tuples(st.just("db"), st.just("upgrade"), st.just("--url"), _TEXT),
    st.tuples(st.just("db"), st.just("downgrade"), st.just("base"), st.just("--url"), _TEXT),
    st.tuples(st.just("status"), st.just("-c"), _TEXT),
    st.tuples(st.just("init"), _TEXT),
    st.tuples(st.just("report"), st.just("--format"), _TEXT),
    st.tuples(st.just("iam-policy"), st.just("--for"), _TEXT),
    st.tuples(st.just("sandbox"), st.sampled_from(["seed", "up"]), st.just("--tables"),
              st.integers(-10**12, 10**12).map(str)),
    st.tuples(st.just("sandbox"), st.just("fault"), st.sampled_from(["latency", "teleport"]), st.just("--param"),
              _TEXT.map(lambda v: f"seconds={v}")),
    st.tuples(st.just("sandbox"), st.just("status"), st.just("--dir"), _TEXT),
    st.lists(_TEXT, min_size=1, max_size=3).map(tuple),
)


@given(args=_ARGS)
@settings(_SETTINGS, max_examples=45)
def test_drawn_arguments(template_store: Path, args: tuple[str, ...]) -> None:
    args = tuple(a for a in args if "\x00" not in a)
    with _copy_of(template_store) as directory:
        (directory / "sb").mkdir()
        if args[:2] in (("sandbox", "seed"), ("sandbox", "up"), ("sandbox", "fault")):
            args = (*args, "--dir", str(directory / "sb" / "none"))  # no sandbox running there: never start one
        before = _state(directory)
        proc = cli(*args, cwd=directory)
        if args[:2] == ("db", "downgrade") and proc.returncode == 0:
            before = _state(directory)  # an empty-migration store may be downgraded; here it holds one
        _check("arguments", proc, before, directory)


_ENV = st.dictionaries(st.sampled_from(["MIGRATOR_FREEZE_QUIET_SECONDS", "MIGRATOR_FREEZE_TIMEOUT_SECONDS",
                                        "MIGRATOR_FREEZE_MAX_WRITE_IOPS", "MIGRATOR_WAIT_READY_SECONDS",
                                        "MIGRATOR_AWS_POLL_CAP_SECONDS", "MIGRATOR_TABLE_RETRY_BASE_SECONDS"]),
                       st.one_of(_TEXT, _NUMBER.map(str)).filter(lambda v: "\x00" not in v), min_size=1,
                       max_size=3)


@given(env=_ENV, argv=st.sampled_from([["status"], ["init", "migrator.toml"], ["history"]]))
@settings(_SETTINGS, max_examples=25)
def test_drawn_environment(template_store: Path, env: dict[str, str], argv: list[str]) -> None:
    with _copy_of(template_store) as directory:
        before = _state(directory)
        _check("environment", cli(*argv, cwd=directory, env=env), before, directory)


@pytest.fixture(scope="module")
def template_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One initialised store (WAL folded in) that each example damages a copy of."""
    directory = tmp_path_factory.mktemp("template")
    (directory / "migrator.toml").write_text(_toml(_base()))
    assert cli("init", "migrator.toml", cwd=directory).returncode == 0
    conn = sqlite3.connect(directory / ".migrator" / "state.db")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return directory


_DAMAGE = st.one_of(
    st.tuples(st.just("overwrite"), st.integers(0, 60_000), st.integers(1, 4096), st.integers(0, 255)),
    st.tuples(st.just("truncate"), st.floats(0, 0.99), st.just(0), st.just(0)),
    st.tuples(st.just("header"), st.integers(0, 99), st.integers(1, 100), st.integers(0, 255)),
)


@contextmanager
def _copy_of(template: Path) -> Iterator[Path]:
    with _workdir() as directory:
        shutil.copy(template / "migrator.toml", directory / "migrator.toml")
        shutil.copytree(template / ".migrator", directory / ".migrator")
        yield directory


@given(damage=_DAMAGE, argv=st.sampled_from([["status"], ["status", "--tables", "--json"], ["history"],
                                             ["db", "upgrade"], ["db", "downgrade", "base"],
                                             ["init", "migrator.toml"]]))
@settings(_SETTINGS, max_examples=40)
def test_drawn_damaged_stores(template_store: Path, damage: tuple[str, int | float, int, int],
                              argv: list[str]) -> None:
    how, where, length, byte = damage
    with _workdir() as directory:
        shutil.copy(template_store / "migrator.toml", directory / "migrator.toml")
        (directory / ".migrator").mkdir()
        store = directory / ".migrator" / "state.db"
        data = bytearray((template_store / ".migrator" / "state.db").read_bytes())
        if how == "truncate":
            data = data[: int(len(data) * float(where))]
        else:
            data[int(where):int(where) + length] = bytes([byte]) * len(data[int(where):int(where) + length])
        store.write_bytes(bytes(data))
        before = _state(directory)
        _check("damaged store", cli(*argv, cwd=directory), before, directory)


@pytest.fixture(scope="module", autouse=True)
def _print_tally() -> Iterator[None]:
    """What the properties tried, by family and outcome (shown with -s; the issue's closing note)."""
    yield
    for (family, outcome), count in sorted(TALLY.items()):
        print(f"\n{family:15s} {outcome:16s} {count}", end="")
