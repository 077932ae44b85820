"""`plan` suggests when to start the copy and when to cut over from two weeks of hourly CloudWatch
figures (CPUUtilization, DatabaseConnections, WriteIOPS), with the figures it used, and says when
there is too little data."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from migrator.planning import suggest_windows
from migrator.sandbox.client import SandboxClient
from tests.harness import cli, write_config

NOW = datetime(2026, 12, 2, 10, 30, tzinfo=UTC)  # a Wednesday


def _busy(hour: datetime) -> tuple[float, float, float]:
    """A business cluster: quiet on Sunday 01:00-06:00 UTC, quietest at 03:00; writes stop at night."""
    if hour.weekday() == 6 and 1 <= hour.hour <= 5:
        return 5.0 + abs(hour.hour - 3), 1.0 + abs(hour.hour - 3), 2.0
    night = hour.hour < 6 or hour.hour >= 22
    return (30.0 if night else 80.0), (10.0 if night else 60.0), (50.0 if night else 400.0)


def _series(days: int, now: datetime = NOW) -> dict[str, dict[datetime, float]]:
    end = now.replace(minute=0, second=0, microsecond=0)
    out: dict[str, dict[datetime, float]] = {"cpu": {}, "connections": {}, "write_iops": {}}
    for n in range(days * 24):
        hour = end - timedelta(hours=n + 1)
        cpu, conns, iops = _busy(hour)
        out["cpu"][hour], out["connections"][hour], out["write_iops"][hour] = cpu, conns, iops
    return out


def test_quietest_hours_for_copy_and_cutover() -> None:
    windows = suggest_windows(_series(14), copy_seconds=3 * 3600 - 60, now=NOW)
    assert windows["too_little_data"] is None
    copy, cut = windows["copy_start"], windows["cutover"]
    assert (copy["weekday"], copy["hour_utc"], copy["hours"]) == ("Sunday", 2, 3)
    assert copy["next_start"] == "2026-12-06T02:00:00Z"
    assert copy["figures"] == {"cpu_percent_avg": round((6 + 5 + 6) / 3, 2), "connections_avg": round(5 / 3, 2),
                               "write_iops_max": 2.0}
    assert (cut["weekday"], cut["hour_utc"], cut["hours"]) == ("Sunday", 3, 1)
    assert cut["next_start"] == "2026-12-13T03:00:00Z"  # after the copy's window ends
    assert "estimated copy duration" in copy["basis"] and "assumed" in cut["basis"]
    assert windows["data"]["complete_hours"] == 14 * 24


def test_too_little_data_is_said() -> None:
    windows = suggest_windows(_series(5), copy_seconds=3600, now=NOW)
    assert windows["copy_start"] is None and windows["cutover"] is None
    assert windows["too_little_data"].startswith("too little data to suggest windows: 120 hours")
    assert suggest_windows(None, 3600, NOW)["too_little_data"].startswith("too little data")


def test_plan_json_carries_the_windows_and_their_basis(sandbox: SandboxClient, tmp_path: Path) -> None:
    source = f"win-{uuid.uuid4().hex[:6]}"
    sandbox.create_seeded_cluster(source, tables=2, rows=20, seed=3)
    now = datetime.now(UTC)
    series = _series(14, now)
    data = [{"MetricName": name, "Dimensions": [{"Name": "ClusterIdentifier", "Value": source}], "Timestamp": hour,
             "Value": series[key][hour], "Unit": unit}
            for key, name, unit in (("cpu", "CPUUtilization", "Percent"), ("connections", "DatabaseConnections", "Count"),
                                    ("write_iops", "WriteIOPS", "Count/Second"))
            for hour in series[key]]
    cloudwatch = sandbox.client("cloudwatch")
    for start in range(0, len(data), 1000):
        cloudwatch.put_metric_data(Namespace="AWS/Redshift", MetricData=data[start:start + 1000])
    info = sandbox.cluster_info(source)
    config = write_config(tmp_path / "migrator.toml", sandbox=sandbox,
                          migration={"name": "windows", "strategy": "unload-copy"},
                          source={"cluster_id": source, "user": info.user, "password_env": "WIN_PW"},
                          target={"cluster_id": f"{source}-enc", "password_env": "WIN_PW"},
                          staging={"s3_uri": f"s3://{sandbox.info.bucket}/migrator/"})
    env = {**sandbox.env(), "WIN_PW": info.password}
    proc = cli("plan", "-c", str(config), "--json", cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    windows = json.loads(proc.stdout)["windows"]
    assert windows["too_little_data"] is None
    assert windows["copy_start"]["weekday"] == "Sunday" and 1 <= windows["copy_start"]["hour_utc"] <= 3
    assert windows["cutover"]["starts"] == "Sunday 03:00 UTC"
    assert windows["cutover"]["figures"]["write_iops_max"] == 2.0
    assert "CPUUtilization" in windows["data"]["metrics"]
    people = cli("plan", "-c", str(config), cwd=tmp_path, env=env)
    assert "cut over: Sunday 03:00 UTC" in people.stdout

    fresh = f"win-{uuid.uuid4().hex[:6]}"
    sandbox.create_seeded_cluster(fresh, tables=1, rows=5, seed=4)
    config2 = write_config(tmp_path / "fresh.toml", sandbox=sandbox, migration={"name": "fresh", "strategy": "unload-copy"},
                           source={"cluster_id": fresh, "user": info.user, "password_env": "WIN_PW2"},
                           target={"cluster_id": f"{fresh}-enc", "password_env": "WIN_PW2"},
                           staging={"s3_uri": f"s3://{sandbox.info.bucket}/migrator/"})
    proc = cli("plan", "-c", str(config2), "--json", cwd=tmp_path,
               env={**sandbox.env(), "WIN_PW2": sandbox.cluster_info(fresh).password})
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(proc.stdout)
    assert plan["windows"]["too_little_data"].startswith("too little data")
    assert any(w.startswith("too little data") for w in plan["warnings"])
