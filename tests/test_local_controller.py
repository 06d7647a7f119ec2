"""The controller as a local process (stacks without a node): the program the image runs,
with ports of its own, so it never collides with another controller on the host."""
from __future__ import annotations

import socket
from pathlib import Path

from plinth.localenv.controlplane import LocalControlPlane
from plinth.localenv.controller import LocalController
from plinth.localenv.process import port_open


def test_a_local_controller_serves_probes_and_receivers_on_its_own_ports(
        control_plane: LocalControlPlane, tmp_path: Path) -> None:
    taken = socket.socket()
    try:  # 9292 taken, as another controller on this host would take it
        taken.bind(("127.0.0.1", 9292))
    except OSError:
        pass  # taken already
    try:
        controller = LocalController(tmp_path / "controller", control_plane.kubeconfig)
        controller.start()
        try:
            assert controller.receiver_port != 9292 and port_open(controller.receiver_port)
            assert controller.running()
        finally:
            controller.stop()
        again = LocalController(tmp_path / "controller", control_plane.kubeconfig)
        assert (again.port, again.receiver_port) == (controller.port, controller.receiver_port)
    finally:
        taken.close()
