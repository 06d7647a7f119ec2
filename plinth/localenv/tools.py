"""Locate the pinned toolchain binaries that `scripts/setup` links into `.tools/bin`."""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


class ToolMissing(Exception):
    """A required binary is neither in the toolchain folder nor on PATH."""

    def __init__(self, name: str) -> None:
        super().__init__(
            f"{name} not found in {tools_bin()} or on PATH; run scripts/setup to install it"
        )
        self.name = name


def tools_bin() -> Path:
    """`PLINTH_TOOLS_BIN` wins, so an installed plinth can point at any toolchain folder."""
    return Path(os.environ.get("PLINTH_TOOLS_BIN", REPO_ROOT / ".tools" / "bin"))


def find_tool(name: str) -> Path:
    local = tools_bin() / name
    if local.exists():
        return local
    found = shutil.which(name)
    if found is None:
        raise ToolMissing(name)
    return Path(found)


def tool_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for running a tool: the toolchain folder, then this Python's bin, on PATH.

    Pulumi finds its language host and plugins on PATH, and the language host runs the program
    with the first `python3` there: the interpreter (virtualenv) that runs Plinth itself.
    """
    env = dict(os.environ)
    path = [str(tools_bin()), str(Path(sys.executable).parent), env.get("PATH", "")]
    env["PATH"] = os.pathsep.join(path)
    env.update(extra or {})
    return env
