"""A node whose processes were killed (its stack never destroyed) leaves the bridge, pod network
namespaces and iptables chains behind; the next node clears them before it records the host."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from plinth.localenv.hostchanges import HostChanges
from plinth.localenv.node import BRIDGE, HOST_CLAIM, HOST_RECORD, clear_dead_node

pytestmark = pytest.mark.e2e


def _run(*argv: str) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout


@pytest.fixture
def root() -> None:
    if os.geteuid() != 0:
        if os.environ.get("CI"):
            pytest.fail("CI must run the node tests as root")
        pytest.skip("needs root: makes a bridge, a network namespace and iptables chains")
    assert not HOST_CLAIM.exists(), f"a node is claimed on this host: {HOST_CLAIM.read_text()}"


@pytest.mark.parametrize("record_kept", [True, False])
def test_a_dead_nodes_debris_is_cleared_and_the_host_claim_freed(
        root: None, tmp_path: Path, record_kept: bool) -> None:
    state = tmp_path / "dead-node"
    state.mkdir()
    HostChanges(state / HOST_RECORD).record()
    if not record_kept:  # its state folder was wiped: what is certainly the node's still goes
        (state / HOST_RECORD).unlink()
    HOST_CLAIM.write_text(json.dumps({"state_dir": str(state.resolve())}))
    _run("ip", "link", "add", BRIDGE, "type", "bridge")
    _run("ip", "netns", "add", "cni-0000dead")
    _run("ip", "netns", "add", "someone-elses")
    _run("iptables", "-t", "nat", "-N", "KUBE-DEAD-NODE")
    try:
        assert clear_dead_node() is None
        assert not HOST_CLAIM.exists()
        assert subprocess.run(["ip", "link", "show", BRIDGE], capture_output=True).returncode
        namespaces = _run("ip", "netns", "list")
        assert "cni-0000dead" not in namespaces
        assert "KUBE-DEAD-NODE" not in _run("iptables-save", "-t", "nat")
        assert "someone-elses" in namespaces  # not the CNI's: not the node's
    finally:
        HOST_CLAIM.unlink(missing_ok=True)
        for argv in (("ip", "link", "delete", BRIDGE), ("ip", "netns", "delete", "cni-0000dead"),
                     ("ip", "netns", "delete", "someone-elses"),
                     ("iptables", "-t", "nat", "-X", "KUBE-DEAD-NODE")):
            subprocess.run(argv, capture_output=True)
