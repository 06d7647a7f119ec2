"""How commands read and poke Plinth's objects in a cluster: kubectl, as an operator would."""
from __future__ import annotations

import json
import subprocess
from typing import Any

from plinth.cli.output import UserError
from plinth.localenv.tools import ToolMissing, find_tool, tool_env


def _kubectl(kubeconfig: str | None, *args: str) -> subprocess.CompletedProcess[str]:
    try:
        argv = [str(find_tool("kubectl")), *args,
                *(["--kubeconfig", kubeconfig] if kubeconfig else [])]
    except ToolMissing as err:
        raise UserError(str(err)) from None
    return subprocess.run(argv, capture_output=True, text=True, env=tool_env(), timeout=60)


def list_plinth_objects(kubeconfig: str | None, namespace: str | None, *plurals: str
                        ) -> list[dict[str, Any]]:
    """Every `<plural>.plinth.dev` object of the plurals in `namespace` (all namespaces when
    None), in one request per kind but one kubectl run."""
    kinds = ",".join(f"{plural}.plinth.dev" for plural in plurals)
    proc = _kubectl(kubeconfig, "get", kinds, "-o", "json",
                    *(["-n", namespace] if namespace else ["-A"]))
    if proc.returncode != 0:
        raise UserError(f"kubectl get {kinds}: {proc.stderr.strip()}")
    return list(json.loads(proc.stdout).get("items") or [])


def get_plinth_object(kubeconfig: str | None, namespace: str, plural: str, name: str
                      ) -> dict[str, Any] | None:
    """The object, or None when it does not exist."""
    proc = _kubectl(kubeconfig, "get", f"{plural}.plinth.dev", name, "-n", namespace,
                    "-o", "json", "--ignore-not-found")
    if proc.returncode != 0:
        raise UserError(f"kubectl get {plural}.plinth.dev {name}: {proc.stderr.strip()}")
    return dict(json.loads(proc.stdout)) if proc.stdout.strip() else None


def annotate(kubeconfig: str | None, namespace: str, plural: str, name: str, key: str,
             value: str) -> None:
    proc = _kubectl(kubeconfig, "annotate", "--overwrite", f"{plural}.plinth.dev", name,
                    "-n", namespace, f"{key}={value}")
    if proc.returncode != 0:
        raise UserError(f"kubectl annotate {plural}.plinth.dev {name}: {proc.stderr.strip()}")
