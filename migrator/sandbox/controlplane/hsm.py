"""HSM client certificates and configurations (moto has neither): their calls, and the check that a
new cluster names both, existing ones, with Encrypted=true."""

from __future__ import annotations

import secrets

from migrator.sandbox.controlplane.core import ControlPlaneCore
from migrator.sandbox.controlplane.model import ApiError, Forward, Reply, cluster_state
from migrator.sandbox.controlplane.params import as_bool, tag_list


class HsmObjects(ControlPlaneCore):
    """The HSM objects of this account and their use by clusters."""

    def _check_hsm(self, params: dict[str, str]) -> tuple[str | None, str | None]:
        cert = params.get("HsmClientCertificateIdentifier") or None
        conf = params.get("HsmConfigurationIdentifier") or None
        if cert and cert not in self._hsm_certificates:
            raise ApiError("HsmClientCertificateNotFoundFault", f"HSM client certificate {cert} not found.")
        if conf and conf not in self._hsm_configurations:
            raise ApiError("HsmConfigurationNotFoundFault", f"HSM configuration {conf} not found.")
        if bool(cert) != bool(conf):
            raise ApiError("InvalidParameterCombination",
                           "HsmClientCertificateIdentifier and HsmConfigurationIdentifier must be given together.")
        if cert and as_bool(params.get("Encrypted")) is not True:
            raise ApiError("InvalidParameterCombination", "An HSM-encrypted cluster requires Encrypted=true.")
        return cert, conf

    def _do_CreateHsmClientCertificate(self, region: str, params: dict[str, str], forward: Forward) -> Reply:
        name = params.get("HsmClientCertificateIdentifier", "")
        if name in self._hsm_certificates:
            raise ApiError("HsmClientCertificateAlreadyExistsFault",
                           f"HSM client certificate {name} already exists.")
        body = "\n".join(secrets.token_urlsafe(48)[:64] for _ in range(4))
        cert = {"HsmClientCertificateIdentifier": name,
                "HsmClientCertificatePublicKey": f"-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n",
                "Tags": tag_list(params)}
        self._hsm_certificates[name] = cert
        return self._render("CreateHsmClientCertificate", {"HsmClientCertificate": cert})

    def _do_DescribeHsmClientCertificates(self, region: str, params: dict[str, str], forward: Forward) -> Reply:
        name = params.get("HsmClientCertificateIdentifier")
        if name and name not in self._hsm_certificates:
            raise ApiError("HsmClientCertificateNotFoundFault", f"HSM client certificate {name} not found.")
        found = [self._hsm_certificates[name]] if name else list(self._hsm_certificates.values())
        return self._render("DescribeHsmClientCertificates", {"HsmClientCertificates": found})

    def _do_DeleteHsmClientCertificate(self, region: str, params: dict[str, str], forward: Forward) -> Reply:
        name = params.get("HsmClientCertificateIdentifier", "")
        if name not in self._hsm_certificates:
            raise ApiError("HsmClientCertificateNotFoundFault", f"HSM client certificate {name} not found.")
        if any(cluster_state(c).hsm_certificate == name for c in self._all_clusters()):
            raise ApiError("InvalidHsmClientCertificateStateFault",
                           f"HSM client certificate {name} is in use by a cluster.")
        del self._hsm_certificates[name]
        return self._render("DeleteHsmClientCertificate", None)

    def _do_CreateHsmConfiguration(self, region: str, params: dict[str, str], forward: Forward) -> Reply:
        name = params.get("HsmConfigurationIdentifier", "")
        if name in self._hsm_configurations:
            raise ApiError("HsmConfigurationAlreadyExistsFault", f"HSM configuration {name} already exists.")
        for required in ("Description", "HsmIpAddress", "HsmPartitionName", "HsmPartitionPassword",
                         "HsmServerPublicCertificate"):
            if not params.get(required):
                raise ApiError("MissingParameter", f"The request must contain the parameter {required}.")
        conf = {"HsmConfigurationIdentifier": name, "Description": params["Description"],
                "HsmIpAddress": params["HsmIpAddress"], "HsmPartitionName": params["HsmPartitionName"],
                "Tags": tag_list(params)}
        self._hsm_configurations[name] = conf
        return self._render("CreateHsmConfiguration", {"HsmConfiguration": conf})

    def _do_DescribeHsmConfigurations(self, region: str, params: dict[str, str], forward: Forward) -> Reply:
        name = params.get("HsmConfigurationIdentifier")
        if name and name not in self._hsm_configurations:
            raise ApiError("HsmConfigurationNotFoundFault", f"HSM configuration {name} not found.")
        found = [self._hsm_configurations[name]] if name else list(self._hsm_configurations.values())
        return self._render("DescribeHsmConfigurations", {"HsmConfigurations": found})

    def _do_DeleteHsmConfiguration(self, region: str, params: dict[str, str], forward: Forward) -> Reply:
        name = params.get("HsmConfigurationIdentifier", "")
        if name not in self._hsm_configurations:
            raise ApiError("HsmConfigurationNotFoundFault", f"HSM configuration {name} not found.")
        if any(cluster_state(c).hsm_configuration == name for c in self._all_clusters()):
            raise ApiError("InvalidHsmConfigurationStateFault", f"HSM configuration {name} is in use by a cluster.")
        del self._hsm_configurations[name]
        return self._render("DeleteHsmConfiguration", None)
