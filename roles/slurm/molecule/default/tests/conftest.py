"""Fixtures for the controller and each compute node."""

import pytest
from cluster import CONTROLLER, NODES, member


@pytest.fixture(scope="module")
def controller():
    return member(CONTROLLER)


@pytest.fixture(scope="module", params=NODES)
def node(request):
    return member(request.param)
