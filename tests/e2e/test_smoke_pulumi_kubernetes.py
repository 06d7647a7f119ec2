"""The whole toolchain at once: Pulumi engine + Python language host + Kubernetes provider
against the real control plane, read back with kubectl."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from plinth.localenv.controlplane import LocalControlPlane
from plinth.localenv.tools import find_tool, tool_env
from tests.fixtures.servers import PulumiBackend

SMOKE = Path(__file__).resolve().parent.parent / "data" / "smoke"
pytestmark = pytest.mark.e2e


def kubectl(plane: LocalControlPlane, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(find_tool("kubectl")), f"--kubeconfig={plane.kubeconfig}", *args],
        text=True, capture_output=True, check=check, env=tool_env(),
    )


def test_up_is_idempotent_and_destroy_removes_everything(
    control_plane: LocalControlPlane, pulumi_backend: PulumiBackend, tmp_path: Path
) -> None:
    project = tmp_path / "smoke"
    shutil.copytree(SMOKE, project)
    run = pulumi_backend.run
    run("stack", "init", "smoke", cwd=project)
    subprocess.run(
        [str(find_tool("pulumi")), "config", "set", "--secret", "kubeconfig"],
        input=control_plane.kubeconfig.read_text(), cwd=project, env=pulumi_backend.env,
        text=True, capture_output=True, check=True,
    )

    first = run("up", "--yes", "--skip-preview", cwd=project)
    client_key = yaml.safe_load(control_plane.kubeconfig.read_text())["users"][0]["user"][
        "client-key-data"]
    assert client_key not in first.stdout + first.stderr

    cm = json.loads(kubectl(control_plane, "-n", "plinth-smoke", "get", "configmap",
                            "greeting", "-o", "json", "--show-managed-fields").stdout)
    assert cm["data"] == {"message": "hello from pulumi"}
    assert any(f["manager"] == "pulumi-kubernetes" or f["manager"].startswith("pulumi")
               for f in cm["metadata"]["managedFields"])

    # --expect-no-changes makes pulumi exit non-zero if the second up would change anything.
    run("up", "--yes", "--expect-no-changes", cwd=project)

    run("destroy", "--yes", "--skip-preview", cwd=project)
    gone = kubectl(control_plane, "get", "namespace", "plinth-smoke", check=False)
    assert gone.returncode != 0 and "NotFound" in gone.stderr
