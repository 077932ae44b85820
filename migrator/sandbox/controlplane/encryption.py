"""Which KMS key or encryption a new, restored or modified cluster gets, and the errors Redshift gives
for a key it cannot use or a combination it refuses."""

from __future__ import annotations

from typing import Any

from moto.kms.models import kms_backends
from moto.redshift.models import Cluster as MotoCluster

from migrator.sandbox.controlplane.core import ControlPlaneCore
from migrator.sandbox.controlplane.model import ApiError, cluster_state
from migrator.sandbox.controlplane.params import as_bool


class EncryptionRules(ControlPlaneCore):
    """KMS key resolution and the encryption each request asks for."""

    def _check_kms_for_new_cluster(self, region: str, params: dict[str, str], hsm: str | None) -> str | None:
        key_ref = params.get("KmsKeyId")
        if not key_ref:
            return None
        if hsm:
            raise ApiError("InvalidParameterCombination", "A cluster uses either a KMS key or an HSM, not both.")
        if as_bool(params.get("Encrypted")) is False:
            raise ApiError("InvalidParameterCombination", "KmsKeyId requires Encrypted=true.")
        return self._resolve_kms_key(region, key_ref)

    def _resolve_kms_key(self, region: str, key_ref: str) -> str:
        """The key's ARN if Redshift could use it in ``region``; the error Redshift gives otherwise."""
        key_region = key_ref.split(":")[3] if key_ref.startswith("arn:") and key_ref.count(":") >= 5 else region
        if key_region != region:
            raise ApiError("InvalidParameterValue",
                           f"The KMS key {key_ref} is in region {key_region}; it must be in the cluster's "
                           f"region {region}.")
        backend = kms_backends[self.account_id][region]
        try:
            key = backend.keys[backend.any_id_to_key_id(key_ref)]
        except Exception as exc:  # moto raises KeyError/AttributeError for unknown ids and aliases
            raise ApiError("InvalidParameterValue",
                           f"The KMS key '{key_ref}' does not exist or Amazon Redshift is not allowed to use it."
                           ) from exc
        if key.key_state != "Enabled":
            raise ApiError("InvalidParameterValue",
                           f"The KMS key {key.arn} is not enabled (state {key.key_state}); "
                           f"Amazon Redshift cannot use it.")
        arn: str = key.arn
        return arn

    def _restore_encryption(self, region: str, snapshot: Any, params: dict[str, str], node_type: str,
                            hsm: bool) -> tuple[bool, str | None]:
        """(encrypted, key ARN) of the restored cluster, per RestoreFromClusterSnapshot's Encrypted/KmsKeyId."""
        wanted = as_bool(params.get("Encrypted"))
        key_ref = params.get("KmsKeyId")
        own_key: str | None = getattr(snapshot, "kms_key_id", None)
        if hsm:
            if key_ref:
                raise ApiError("InvalidParameterCombination", "A cluster uses either a KMS key or an HSM, not both.")
            return True, None
        if snapshot.encrypted:
            if wanted is False:
                raise ApiError("InvalidParameterCombination",
                               "An encrypted snapshot cannot be restored to an unencrypted cluster.")
            # A new key for an encrypted snapshot of this account re-encrypts the restored cluster with it.
            return True, self._resolve_kms_key(region, key_ref) if key_ref else own_key
        if wanted is not True:
            if key_ref:
                raise ApiError("InvalidParameterCombination",
                               "Restoring an unencrypted snapshot with a KmsKeyId requires Encrypted=true.")
            return False, None
        if not key_ref:
            raise ApiError("InvalidParameterCombination",
                           "Restoring an unencrypted snapshot to an encrypted cluster requires a customer managed "
                           "KmsKeyId.")
        if not node_type.startswith("ra3."):
            raise ApiError("InvalidRestore",
                           f"An unencrypted snapshot can be restored to a KMS-encrypted cluster only on RA3 node "
                           f"types, not {node_type}.")
        return True, self._resolve_kms_key(region, key_ref)

    def _encryption_change(self, region: str, cluster: MotoCluster, params: dict[str, str]) -> dict[str, Any] | None:
        """What an encryption-related modify asks for, or None when it changes nothing."""
        wanted = as_bool(params.get("Encrypted"))
        key_ref = params.get("KmsKeyId")
        encrypted = bool(cluster.encrypted)
        if wanted is False:
            if key_ref:
                raise ApiError("InvalidParameterCombination", "KmsKeyId cannot be given with Encrypted=false.")
            return {"encrypted": False, "kms_key_id": None} if encrypted else None
        if wanted is None and not key_ref:
            return None
        if wanted is None and not encrypted:
            raise ApiError("InvalidParameterCombination",
                           "KmsKeyId requires Encrypted=true for a cluster that is not encrypted.")
        key_arn = self._resolve_kms_key(region, key_ref) if key_ref else None
        if encrypted and key_arn == cluster.kms_key_id and not cluster_state(cluster).hsm_certificate:
            return None
        return {"encrypted": True, "kms_key_id": key_arn}
