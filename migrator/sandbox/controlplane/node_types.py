"""Slices per node by node type: what STV_SLICES shows and UNLOAD writes files for.

Amazon Redshift Management Guide, "Amazon Redshift provisioned clusters", "Node type details"
(column "Default slices per node": "the number of slices into which a compute node is
partitioned when a cluster is created or resized with classic resize"): ra3.xlplus 2 (single-
and multi-node), ra3.4xlarge 4, ra3.16xlarge 16, dc2.large 2, dc2.8xlarge 16; the retired
ds2.xlarge 2, ds2.8xlarge 16, dc1.large 2, dc1.8xlarge 32 (for snapshots of old clusters).
ra3.large and the rg.* types are not on the page version cited; they get 2, the smallest
documented count, and FIDELITY.md lists that as a gap.
"""

from __future__ import annotations

SLICES_PER_NODE: dict[str, int] = {
    "ra3.xlplus": 2, "ra3.4xlarge": 4, "ra3.16xlarge": 16,
    "dc2.large": 2, "dc2.8xlarge": 16,
    "ds2.xlarge": 2, "ds2.8xlarge": 16, "dc1.large": 2, "dc1.8xlarge": 32,
}
UNDOCUMENTED_SLICES = 2


def slices_per_node(node_type: str) -> int:
    return SLICES_PER_NODE.get(node_type, UNDOCUMENTED_SLICES)


def cluster_slices(node_type: str, nodes: int) -> int:
    """A new (or classic-resized, or restored) cluster's slices: nodes x the type's default."""
    return max(1, int(nodes)) * slices_per_node(node_type)
