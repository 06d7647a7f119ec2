"""The local cluster: a control plane, and (unless asked for objects only) one node running pods
with cluster DNS, as kind or minikube give on a machine with Docker.

Start order matters: the node's bridge carries the address the API server binds, the node
registers with the running API server, and CoreDNS runs as a pod of that node.
"""
from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from plinth.localenv import cluster_dns
from plinth.localenv.controlplane import LocalControlPlane
from plinth.localenv.node import (CLUSTER_DNS_IP, CLUSTER_DOMAIN, NODE_IP, NODE_NAME,
                                  SYSTEM_IMAGES, LocalNode, NodeUnavailable)
from plinth.localenv.tools import find_tool
from plinth.oci import builds


class LocalCluster:
    """`state_dir` holds the control plane's state (its `admin.kubeconfig` among it) and, in
    `node/`, the node's."""

    def __init__(self, state_dir: Path, *, node: bool = True, durable: bool = True) -> None:
        self.state_dir = state_dir
        self.plane = LocalControlPlane(state_dir, durable=durable,
                                       node_ip=NODE_IP if node else None)
        self.node = LocalNode(state_dir / "node", self.plane) if node else None

    @property
    def kubeconfig(self) -> Path:
        return self.plane.kubeconfig

    @property
    def server(self) -> str:
        return self.plane.server

    @property
    def host_address(self) -> str:
        """Where servers that pods must reach (git, registry) listen: the node IP, or loopback
        when no node runs."""
        return self.plane.address

    def running(self) -> bool:
        return self.plane.running() and (self.node is None or self.node.running())

    def start(self, timeout: float = 180.0) -> None:
        if self.node is None:
            self.plane.start()
            return
        self.node.prepare_network()
        self.plane.start()
        self.node.start()
        for name, ref in SYSTEM_IMAGES.items():
            self.node.import_image(_system_image_archive(name, ref, self.node.state_dir))
        self._wait_node_ready(timeout)
        cluster_dns.install(self.kubeconfig, SYSTEM_IMAGES["coredns"], CLUSTER_DNS_IP,
                            CLUSTER_DOMAIN, timeout)

    def stop(self) -> None:
        if self.node is not None:
            self.node.stop()
        self.plane.stop()

    def destroy(self) -> None:
        if self.node is not None:
            self.node.destroy()
        self.plane.destroy()

    def _wait_node_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last = "not registered"
        while time.monotonic() < deadline:
            proc = subprocess.run([str(find_tool("kubectl")), f"--kubeconfig={self.kubeconfig}",
                                   "get", "node", NODE_NAME, "-o", "json"],
                                  capture_output=True, text=True)
            if proc.returncode == 0:
                conditions = json.loads(proc.stdout)["status"].get("conditions", [])
                ready = [c for c in conditions if c["type"] == "Ready"]
                if ready and ready[0]["status"] == "True":
                    return
                last = ready[0].get("message", "not ready") if ready else "no Ready condition"
            time.sleep(0.5)
        assert self.node is not None
        raise NodeUnavailable(f"node {NODE_NAME} not Ready after {timeout:.0f}s: {last}\n"
                              f"{self.node.kubelet.log_tail(15)}")


def _system_image_archive(name: str, ref: str, directory: Path) -> Path:
    """Build one of the node's own images (cached, reproducible) as an OCI archive."""
    path = directory / "images" / f"{name}.tar"
    builds.build(name, ref.rsplit(":", 1)[1]).write_archive(ref, path)
    return path
