"""How a table with no column to cut into ranges is cut into groups of its UNLOAD's files."""

from __future__ import annotations

from migrator.warehouse.parts import group_manifest_url, plan_file_groups
from migrator.warehouse.sql import files_per_slice, max_file_size


def test_groups_are_runs_of_equal_file_counts_covering_every_file_once() -> None:
    files = [(1000 + i, 10 + i) for i in range(16)]
    groups = plan_file_groups(files, 4)
    assert [(g.first, g.end) for g in groups] == [(0, 4), (4, 8), (8, 12), (12, 16)]
    assert [g.part_no for g in groups] == [0, 1, 2, 3] and {g.parts_total for g in groups} == {4}
    assert sum(g.rows for g in groups) == sum(r for _, r in files)
    assert sum(g.bytes for g in groups) == sum(b for b, _ in files)


def test_fewer_files_than_groups_gives_one_file_a_group_and_one_file_no_groups() -> None:
    assert [(g.first, g.end) for g in plan_file_groups([(1, 1)] * 3, 8)] == [(0, 1), (1, 2), (2, 3)]
    assert plan_file_groups([(1, 1)], 8) == []
    assert plan_file_groups([], 8) == []


def test_the_unload_for_groups_aims_at_a_file_count_of_groups_times_target_slices() -> None:
    # 64 GB over a 16-slice source, 8 groups for a 16-slice target: each source slice writes
    # files_per_slice(16, 8 * 16) = 8 files, 128 in all = 8 groups of 16 (the target's slices).
    gb = 1024 ** 3
    k = files_per_slice(16, 8 * 16)
    size = max_file_size(64 * gb, 16, 8 * 16)
    assert k == 8 and size is not None
    per_slice = 64 * gb / 16
    assert -(-per_slice // size) == k
    groups = plan_file_groups([(size, 1)] * (16 * k), 8)
    assert all((g.end - g.first) % 16 == 0 for g in groups)


def test_each_group_and_attempt_has_its_own_manifest_beside_the_unload() -> None:
    table = "s3://bucket/stage/m/public.notes/attempt-3/manifest"
    assert group_manifest_url(table, 2, 1) == "s3://bucket/stage/m/public.notes/attempt-3/groups/part-00002/attempt-1/manifest"
    assert group_manifest_url(table, 2, 2) != group_manifest_url(table, 2, 1)


def test_the_operator_may_write_group_manifests_under_the_staging_prefix_only_while_parts_are_on() -> None:
    from pathlib import Path

    from migrator.config import parse_config
    from migrator.iam_policy import operator_policy

    def policy(part_size: str) -> list[dict]:  # type: ignore[type-arg]
        data = {"migration": {"name": "m", "strategy": "unload-copy", "region": "eu-west-1"},
                "source": {"cluster_id": "analytics", "password_env": "SRC_PW"},
                "target": {"cluster_id": "analytics-enc", "kms_key_id": "alias/prod"},
                "staging": {"s3_uri": "s3://stage-bucket/migrator/", "kms_key_id": "alias/staging",
                            "iam_role_arn": "arn:aws:iam::123456789012:role/RedshiftCopy"},
                "tables": {"part_size": part_size}}
        return list(operator_policy(parse_config(data, Path("m.toml")).settings)["Statement"])

    puts = [s for s in policy("2GB") if "s3:PutObject" in s["Action"]]
    assert [s["Resource"] for s in puts] == [["arn:aws:s3:::stage-bucket/migrator/*"]]
    def manifests_key(statements: list[dict]) -> list[dict]:  # type: ignore[type-arg]
        return [s for s in statements if s["Sid"].startswith("EncryptFileGroupManifests")]

    assert [s["Action"] for s in manifests_key(policy("2GB"))] == [["kms:GenerateDataKey"]]
    assert not [s for s in policy("0") if "s3:PutObject" in s["Action"]] and not manifests_key(policy("0"))
