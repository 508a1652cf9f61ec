"""The scenario's hosts, reached through molecule's inventory."""

import os

import testinfra

CONTROLLER = "mlpipe-mol-slurm-ctl"
NODES = ["mlpipe-mol-slurm-node1", "mlpipe-mol-slurm-node2"]  # node2 joined in side_effect


def member(name):
    return testinfra.get_host(
        f"ansible://{name}", ansible_inventory=os.environ["MOLECULE_INVENTORY_FILE"]
    )
