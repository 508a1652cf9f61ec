"""terraform/ parsed with python-hcl2 against the kit's lint rules (tfcheck.py).

What the code builds is checked by evaluating it (test_tf_wiring.py); these are the
layout and hygiene rules, each also run on a deliberately broken copy
(test_tf_static_broken.py).
"""

from __future__ import annotations

import pytest
import tfcheck


@pytest.mark.parametrize("check", tfcheck.ALL_CHECKS, ids=lambda c: c.__name__)
def test_terraform_tree_passes(check, tf_root):
    assert check(tf_root) == []


def test_every_tf_file_parses(tf_root):
    dirs = tfcheck.load(tf_root)
    assert {
        "modules/network",
        "modules/compute",
        "modules/storage",
        "modules/tiers",
        "environments/prod",
        "bootstrap",
        "examples/minimal",
    } <= set(dirs)


def test_environment_outputs_are_exactly_what_the_generator_reads(tf_root, tf_inventory):
    outputs = set(tfcheck.load(tf_root)["environments/prod"].labelled("output"))
    assert outputs == set(tf_inventory.CONSUMED_OUTPUTS)
