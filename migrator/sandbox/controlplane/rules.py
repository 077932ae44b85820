"""Parameter rules for new and changed clusters, from the botocore Redshift model's docs: cluster
identifiers, node types and counts, ports, master credentials, referenced groups/roles/IPs/schedules,
tags and retention periods."""

from __future__ import annotations

import re

from moto.ec2.models import ec2_backends
from moto.iam.models import iam_backends

from migrator.sandbox.controlplane.core import ControlPlaneCore
from migrator.sandbox.controlplane.model import ApiError
from migrator.sandbox.controlplane.params import as_bool, member_list, tag_list


# botocore model, CreateCluster NodeType "Valid Values" (dc1/ds2 are retired and no longer listed).
_NODE_TYPES = frozenset({"dc2.large", "dc2.8xlarge", "rg.large", "rg.xlarge", "rg.4xlarge", "rg.12xlarge",
                         "ra3.large", "ra3.xlplus", "ra3.4xlarge", "ra3.16xlarge"})
_CLUSTER_ID = re.compile(r"[a-z](?!.*--)[a-z0-9-]{0,62}(?<!-)")


def check_cluster_id(cid: str) -> None:
    """ClusterIdentifier / NewClusterIdentifier rules (botocore redshift model docs)."""
    if not _CLUSTER_ID.fullmatch(cid):
        raise ApiError("InvalidParameterValue",
                       f"Invalid cluster identifier '{cid}': 1-63 lowercase letters, digits or hyphens, "
                       f"starting with a letter, no trailing or double hyphen.")


_MASTER_USER = re.compile(r"[a-z][a-z0-9_+.@-]{0,127}")
_DB_NAME = re.compile(r"[a-z0-9]{1,64}")
_MAX_TAGS = 50
_MAX_IAM_ROLES = 50
MAINTENANCE_TRACKS = frozenset({"current", "trailing"})


class ValidationRules(ControlPlaneCore):
    """Checks that raise the ApiError Redshift answers a request breaking a rule with."""

    def _check_new_cluster(self, region: str, params: dict[str, str], *, creating: bool) -> None:
        """CreateCluster / RestoreFromClusterSnapshot parameter rules from the botocore model's docs."""
        cid = params.get("ClusterIdentifier", "")
        check_cluster_id(cid)
        if cid in self._backend(region).clusters:
            raise ApiError("ClusterAlreadyExists", f"Cluster {cid} already exists.")
        node_type = params.get("NodeType")
        if node_type is not None and node_type not in _NODE_TYPES:
            raise ApiError("InvalidParameterValue",
                           f"Invalid node type '{node_type}'; valid node types: {', '.join(sorted(_NODE_TYPES))}.")
        self._check_nodes(params, creating=creating)
        # botocore's model: IpAddressType "ipv4 | dualstack"; MasterPasswordSecretKmsKeyId "only if
        # ManageMasterPassword is true"; AvailabilityZoneRelocation only for RA3.
        if params.get("IpAddressType") and params["IpAddressType"] not in ("ipv4", "dualstack"):
            raise ApiError("InvalidParameterValue", f"Invalid IpAddressType '{params['IpAddressType']}': use ipv4 or "
                                                    "dualstack.")
        if params.get("MasterPasswordSecretKmsKeyId") and as_bool(params.get("ManageMasterPassword")) is not True:
            raise ApiError("InvalidParameterCombination",
                           "MasterPasswordSecretKmsKeyId can only be given when ManageMasterPassword is true.")
        if as_bool(params.get("AvailabilityZoneRelocation")) is True and node_type and not node_type.startswith("ra3."):
            raise ApiError("InvalidParameterCombination",
                           "Availability Zone relocation is supported only for RA3 node types.")
        if params.get("Port"):
            self._check_port(int(params["Port"]), node_type or "")
        if creating:
            self._check_credentials(params)
        self._check_references(region, params)
        self._check_tags(params)
        self._check_retention(params)
        track = params.get("MaintenanceTrackName")
        if track and track not in MAINTENANCE_TRACKS:
            raise ApiError("InvalidClusterTrack", f"Maintenance track '{track}' does not exist.")

    @staticmethod
    def _check_nodes(params: dict[str, str], *, creating: bool) -> None:
        # CreateCluster ClusterType "Default: multi-node" (then NumberOfNodes is required).
        kind = params.get("ClusterType") or ("multi-node" if creating else None)
        nodes = int(params["NumberOfNodes"]) if params.get("NumberOfNodes") else None
        if nodes is not None and not 1 <= nodes <= 100:
            raise ApiError("InvalidParameterValue", f"NumberOfNodes must be 1 to 100, not {nodes}.")
        if kind is not None and kind not in ("single-node", "multi-node"):
            raise ApiError("InvalidParameterValue", f"ClusterType must be single-node or multi-node, not '{kind}'.")
        if kind == "multi-node" and (nodes is None or nodes < 2):
            raise ApiError("InvalidParameterCombination", "A multi-node cluster needs NumberOfNodes of 2 or more.")
        if kind == "single-node" and nodes not in (None, 1):
            raise ApiError("InvalidParameterCombination", "A single-node cluster cannot have NumberOfNodes > 1.")

    @staticmethod
    def _check_port(port: int, node_type: str) -> None:
        if node_type.startswith(("ra3.", "rg.")) or not node_type:
            if not (5431 <= port <= 5455 or 8191 <= port <= 8215):
                raise ApiError("InvalidParameterValue",
                               f"Port {port} is not allowed for {node_type or 'RA3'} nodes: choose 5431-5455 "
                               f"or 8191-8215.")
        elif not 1150 <= port <= 65535:
            raise ApiError("InvalidParameterValue", f"Port {port} is not allowed: choose 1150-65535.")

    @staticmethod
    def _check_credentials(params: dict[str, str]) -> None:
        user = params.get("MasterUsername", "")
        if not _MASTER_USER.fullmatch(user) or user == "public":
            raise ApiError("InvalidParameterValue",
                           f"Invalid master user name '{user}': 1-128 lowercase letters, digits or _+.@-, "
                           f"starting with a letter, not PUBLIC.")
        db_name = params.get("DBName")
        if db_name is not None and not _DB_NAME.fullmatch(db_name):
            raise ApiError("InvalidParameterValue",
                           f"Invalid database name '{db_name}': 1-64 lowercase letters or digits.")
        managed = as_bool(params.get("ManageMasterPassword")) is True
        password = params.get("MasterUserPassword")
        if managed and password:
            raise ApiError("InvalidParameterCombination",
                           "MasterUserPassword cannot be given when ManageMasterPassword is true.")
        if managed:
            return
        if not password:
            raise ApiError("MissingParameter", "The request must contain the parameter MasterUserPassword.")
        if not (8 <= len(password) <= 64 and re.search(r"[A-Z]", password) and re.search(r"[a-z]", password)
                and re.search(r"[0-9]", password)
                and all(33 <= ord(ch) <= 126 and ch not in "'\"\\/@" for ch in password)):
            # Never echo the password itself.
            raise ApiError("InvalidParameterValue",
                           "The master user password must be 8-64 printable ASCII characters with an upper case "
                           "letter, a lower case letter and a digit, and no ' \" \\ / @ or space.")

    def _check_references(self, region: str, params: dict[str, str]) -> None:
        backend = self._backend(region)
        group = params.get("ClusterParameterGroupName")
        if group and group not in backend.parameter_groups:
            raise ApiError("ClusterParameterGroupNotFound", f"Cluster parameter group {group} not found.")
        subnet = params.get("ClusterSubnetGroupName")
        if subnet and subnet not in backend.subnet_groups:
            raise ApiError("ClusterSubnetGroupNotFoundFault", f"Cluster subnet group {subnet} not found.")
        for name in member_list(params, "ClusterSecurityGroups", "ClusterSecurityGroupName"):
            if name not in backend.security_groups:
                raise ApiError("ClusterSecurityGroupNotFound", f"Cluster security group {name} not found.")
        ec2 = ec2_backends[self.account_id][region]
        for group_id in member_list(params, "VpcSecurityGroupIds", "VpcSecurityGroupId"):
            if ec2.get_security_group_from_id(group_id) is None:
                raise ApiError("InvalidParameterValue", f"VPC security group {group_id} does not exist.")
        roles = member_list(params, "IamRoles", "IamRoleArn")
        if len(roles) > _MAX_IAM_ROLES:
            raise ApiError("LimitExceededFault", f"At most {_MAX_IAM_ROLES} IAM roles can be associated.")
        default_role = params.get("DefaultIamRoleArn")
        if default_role and default_role not in roles:
            raise ApiError("InvalidParameterValue", "DefaultIamRoleArn must be one of the IamRoles given.")
        iam = iam_backends[self.account_id]["global"]
        for arn in roles:
            try:
                iam.get_role_by_arn(arn)
            except Exception as exc:  # moto raises IAMNotFoundException
                raise ApiError("InvalidParameterValue", f"IAM role {arn} does not exist.") from exc
        elastic_ip = params.get("ElasticIp")
        if elastic_ip:
            if as_bool(params.get("PubliclyAccessible")) is not True:
                raise ApiError("InvalidParameterCombination", "ElasticIp requires PubliclyAccessible=true.")
            try:
                ec2.address_by_ip([elastic_ip])
            except Exception as exc:
                raise ApiError("InvalidElasticIpFault", f"Elastic IP {elastic_ip} is not allocated.") from exc
        schedule = params.get("SnapshotScheduleIdentifier")
        if schedule and schedule not in self._snapshot_schedules:
            raise ApiError("SnapshotScheduleNotFound", f"Snapshot schedule {schedule} not found.")

    @staticmethod
    def _check_tags(params: dict[str, str]) -> None:
        tags = tag_list(params)
        if len(tags) > _MAX_TAGS:
            raise ApiError("TagLimitExceededFault", f"At most {_MAX_TAGS} tags per resource; {len(tags)} given.")
        for tag in tags:
            if tag.get("Key", "").lower().startswith("aws:"):
                raise ApiError("InvalidTagFault", f"Tag key '{tag['Key']}' uses the reserved prefix aws:.")

    @staticmethod
    def _check_retention(params: dict[str, str]) -> None:
        automated = params.get("AutomatedSnapshotRetentionPeriod")
        node_type = params.get("NodeType", "")
        if automated is not None:
            days = int(automated)
            if not 0 <= days <= 35:
                raise ApiError("InvalidRetentionPeriodFault", "AutomatedSnapshotRetentionPeriod must be 0 to 35.")
            if days == 0 and node_type.startswith(("ra3.", "rg.")):
                raise ApiError("InvalidParameterValue",
                               "Automated snapshots cannot be disabled for RA3 node types (1 to 35 days).")
        manual = params.get("ManualSnapshotRetentionPeriod")
        if manual is not None and not (int(manual) == -1 or 1 <= int(manual) <= 3653):
            raise ApiError("InvalidRetentionPeriodFault", "ManualSnapshotRetentionPeriod must be -1 or 1 to 3653.")
