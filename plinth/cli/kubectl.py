"""How commands read Plinth's objects from a cluster: `kubectl get`, as an operator would."""
from __future__ import annotations

import json
import subprocess
from typing import Any

from plinth.cli.output import UserError
from plinth.localenv.tools import ToolMissing, find_tool, tool_env


def list_plinth_objects(kubeconfig: str | None, namespace: str | None, plural: str
                        ) -> list[dict[str, Any]]:
    """Every `<plural>.plinth.dev` object in `namespace` (all namespaces when None)."""
    try:
        argv = [str(find_tool("kubectl")), "get", f"{plural}.plinth.dev", "-o", "json",
                *(["-n", namespace] if namespace else ["-A"]),
                *(["--kubeconfig", kubeconfig] if kubeconfig else [])]
    except ToolMissing as err:
        raise UserError(str(err)) from None
    proc = subprocess.run(argv, capture_output=True, text=True, env=tool_env(), timeout=60)
    if proc.returncode != 0:
        raise UserError(f"kubectl get {plural}.plinth.dev: {proc.stderr.strip()}")
    return list(json.loads(proc.stdout).get("items") or [])
