"""What encryption the configuration asks of the new cluster, and the check that refuses to go on
without it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from migrator.aws import clusters as aws
from migrator.aws.clients import AwsClients
from migrator.config import Settings
from migrator.errors import RemoteError, SecurityError
from migrator.strategies.recorded import clients, cluster_summary

if TYPE_CHECKING:
    from migrator.engine.context import PhaseContext


@dataclass(frozen=True)
class EncryptionWanted:
    """What the configuration asks of the new cluster, with the key resolved to its ARN."""

    kind: str  # "kms", "hsm" or "none"
    kms_key_arn: str | None = None
    hsm_certificate: str | None = None
    hsm_configuration: str | None = None

    def describe(self) -> str:
        if self.kind == "hsm":
            return f"HSM {self.hsm_configuration} / {self.hsm_certificate} (status active)"
        if self.kind == "kms":
            return f"Encrypted=true KmsKeyId={self.kms_key_arn or '(any KMS key)'}"
        return "Encrypted=false"


def encryption_wanted(settings: Settings, client_set: AwsClients) -> EncryptionWanted:
    target = settings.target
    if target.encryption == "hsm":
        return EncryptionWanted("hsm", hsm_certificate=target.hsm_client_certificate,
                                hsm_configuration=target.hsm_configuration)
    if target.encryption == "none":
        return EncryptionWanted("none")
    if not target.kms_key_id:
        return EncryptionWanted("kms")
    key, problems = aws.resolve_kms_key(client_set, target.kms_key_id, settings.migration.region)
    if key is None:
        raise SecurityError(f"cannot check the new cluster's encryption: {'; '.join(problems)}",
                            hint="make target.kms_key_id readable (kms:DescribeKey), then re-run")
    return EncryptionWanted("kms", kms_key_arn=key.arn)


def encryption_mismatch(cluster: Mapping[str, Any], want: EncryptionWanted) -> str | None:
    """Why ``cluster`` (a DescribeClusters answer) is not encrypted as wanted, naming both sides; or None."""
    encrypted, key = aws.encryption_of(dict(cluster))
    hsm = cluster.get("HsmStatus") or {}
    found = f"Encrypted={str(encrypted).lower()} KmsKeyId={key or '(none)'}"
    if want.kind == "hsm":
        if not (encrypted and hsm.get("Status") == "active"
                and hsm.get("HsmConfigurationIdentifier") == want.hsm_configuration
                and hsm.get("HsmClientCertificateIdentifier") == want.hsm_certificate):
            return (f"reports {found} HSM configuration {hsm.get('HsmConfigurationIdentifier') or '(none)'} / "
                    f"certificate {hsm.get('HsmClientCertificateIdentifier') or '(none)'} status "
                    f"{hsm.get('Status') or '(none)'}, not {want.describe()}")
        return None
    if want.kind == "none":
        return None if not encrypted else f"reports {found}, not {want.describe()}"
    if not encrypted or hsm.get("Status") or (want.kms_key_arn and key != want.kms_key_arn):
        return f"reports {found}, not {want.describe()}"
    return None


def new_cluster_id(ctx: "PhaseContext") -> str:
    """Where the new cluster is now: its own name, or (after cutover renamed it) the source's name,
    which it then holds with this migration's owner tag."""
    settings = ctx.config.settings
    client_set = clients(ctx)
    target_id, source_id = settings.target.cluster_id, settings.source.cluster_id
    if aws.describe_cluster(client_set, target_id) is not None:
        return target_id
    renamed = aws.describe_cluster(client_set, source_id)
    if renamed is not None and aws.tag_value(renamed, aws.OWNER_TAG) == ctx.migration.name:
        return source_id
    raise RemoteError(f"the new cluster {target_id} does not exist (nor under the name {source_id} with the tag "
                      f"{aws.OWNER_TAG}={ctx.migration.name})", hint="`migrator status` and `migrator history` "
                      "show what happened to it")


def check_new_cluster_encryption(ctx: "PhaseContext", when: str, cluster_id: str | None = None) -> dict[str, Any]:
    """Refuse (SecurityError, exit 11) to go on unless the new cluster is encrypted as configured: the
    resolved key ARN equal to the configured key's, or the configured HSM active. Called when the new
    cluster is ready (before any data moves) and again before cutover."""
    client_set = clients(ctx)
    cluster_id = cluster_id or new_cluster_id(ctx)
    want = encryption_wanted(ctx.config.settings, client_set)
    cluster = aws.require_cluster(client_set, cluster_id)
    mismatch = encryption_mismatch(cluster, want)
    detail = {"cluster_id": cluster_id, "when": when, "wanted": want.describe(),
              "found": cluster_summary(cluster), "ok": mismatch is None}
    ctx.store.add_event(ctx.migration, "migration", "encryption_checked", detail, state=ctx.migration.phase)
    if mismatch is not None:
        raise SecurityError(f"{when}: new cluster {cluster_id} {mismatch}",
                            hint="nothing was moved past this point; delete the new cluster "
                                 "(`migrator rollback --delete-target`) and check the key or HSM settings")
    return detail
