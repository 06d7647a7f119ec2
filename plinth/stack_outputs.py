"""What the CD commands (`promote`, `wait`) know of a stack: its outputs, read with
`pulumi stack output` in its project, so a pipeline names the stack instead of copying the
forge's URL, the repository, a token and a kubeconfig into its own settings.

The program exports `forge` ({kind, url, repository}), `forge_token` (a secret) and
`kubeconfig` (a secret). Secrets are read with --show-secrets into this process only; no
message quotes them.
"""
from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plinth.localenv.tools import ToolMissing, find_tool, tool_env


class StackOutputError(Exception):
    """The stack's outputs cannot be read or lack what the command needs."""


@dataclass(frozen=True)
class StackForge:
    kind: str
    url: str
    repository: str
    token: str


@dataclass(frozen=True)
class StackOutputs:
    stack: str
    values: dict[str, Any]

    def forge(self) -> StackForge:
        forge, token = self.values.get("forge"), self.values.get("forge_token")
        if not isinstance(forge, dict) or not isinstance(token, str) or not token:
            raise StackOutputError(
                f"stack {self.stack!r} has no forge (outputs forge and forge_token): its "
                "repositories are not of kind gitea or github")
        try:
            return StackForge(str(forge["kind"]), str(forge["url"]), str(forge["repository"]),
                              token)
        except KeyError as err:
            raise StackOutputError(f"stack {self.stack!r}: output forge has no {err}") from None

    def kubeconfig(self) -> str:
        value = self.values.get("kubeconfig")
        if not isinstance(value, str) or not value:
            raise StackOutputError(f"stack {self.stack!r} has no kubeconfig output: "
                                   "has it been deployed (pulumi up)?")
        return value


def pulumi_env(project: Path) -> dict[str, str]:
    """The caller's environment; for a project whose stacks live in its own file backend (what
    `scripts/main-job` makes under .plinth/), that backend and passphrase unless the caller
    names others."""
    env = tool_env({"PULUMI_SKIP_UPDATE_CHECK": "true"})
    plinth_dir = project.resolve() / ".plinth"
    if "PULUMI_BACKEND_URL" not in env and (plinth_dir / "pulumi-state").is_dir():
        env["PULUMI_BACKEND_URL"] = f"file://{plinth_dir / 'pulumi-state'}"
        passphrase = plinth_dir / "passphrase"
        if passphrase.is_file() and not {"PULUMI_CONFIG_PASSPHRASE",
                                         "PULUMI_CONFIG_PASSPHRASE_FILE"} & env.keys():
            env["PULUMI_CONFIG_PASSPHRASE_FILE"] = str(passphrase)
    return env


def config_file_args(project: Path, stack: str) -> list[str]:
    """`--config-file` of the stack's config with this machine's salt, where `scripts/main-job`
    keeps it (.plinth/Pulumi.<stack>.yaml), so a preview leaves the tracked stack file as it
    is; none elsewhere."""
    config = project.resolve() / ".plinth" / f"Pulumi.{stack}.yaml"
    return ["--config-file", str(config)] if config.is_file() else []


def run_pulumi(project: Path, stack: str, *args: str, timeout: float = 120) -> str:
    """`pulumi ARGS --stack STACK` in the project; its stdout, or StackOutputError with the
    first error line."""
    if not (project / "Pulumi.yaml").is_file():
        raise StackOutputError(f"{project}: no Pulumi.yaml: name the project with --project")
    try:
        pulumi = find_tool("pulumi")
    except ToolMissing as err:
        raise StackOutputError(str(err)) from None
    proc = subprocess.run([str(pulumi), *args, "--stack", stack, "--non-interactive"],
                          cwd=project, env=pulumi_env(project), capture_output=True, text=True,
                          timeout=timeout)
    if proc.returncode != 0:
        lines = [line.strip() for line in (proc.stderr + proc.stdout).splitlines()
                 if line.strip()]
        reason = next((line for line in lines if line.startswith("error:")),
                      lines[0] if lines else f"exit {proc.returncode}")
        raise StackOutputError(f"stack {stack!r} in {project}: {reason}")
    return proc.stdout


def read_outputs(project: Path, stack: str) -> StackOutputs:
    values = json.loads(run_pulumi(project, stack, "stack", "output", "--json",
                                   "--show-secrets") or "{}")
    return StackOutputs(stack, values if isinstance(values, dict) else {})
