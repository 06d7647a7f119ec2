"""The options every command that talks to a forge takes, and the client they make.

The token comes only from an environment variable named on the command line, or from the
secret output of the stack `--stack` names, never from an argument (argv is visible to every
user of the machine), and commands scrub it from what they print.
"""
from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import click

from plinth.cli.output import UserError
from plinth.forge import ForgeClient, RepoRef, forge_kind
from plinth.forge.client import GITHUB_API
from plinth.stack_outputs import StackOutputError, StackOutputs, read_outputs

F = TypeVar("F", bound=Callable[..., object])


@dataclass(frozen=True)
class ForgeTarget:
    client: ForgeClient
    repo: RepoRef
    token: str

    def scrub(self, text: str) -> str:
        return text.replace(self.token, "***")


def forge_options(command: F) -> F:
    """--stack, --project, --forge-url, --forge-kind, --repository, --token-env (as `stack`,
    `project`, `forge_url`, `forge_kind`, `repository`, `token_env`)."""
    for option in reversed((
        click.option("--stack", metavar="NAME",
                     help="Take the forge, repository, token (and kubeconfig) from this Pulumi "
                          "stack's outputs instead of the options below."),
        click.option("--project", type=click.Path(file_okay=False, path_type=Path),
                     default=Path("."), show_default=True,
                     help="The Pulumi project of --stack (its own .plinth/ backend is used "
                          "when PULUMI_BACKEND_URL is unset)."),
        click.option("--forge-url", help="Gitea's root URL, or GitHub's API root "
                     "(default for --forge-kind github: https://api.github.com)."),
        click.option("--forge-kind", type=click.Choice(["gitea", "github"]), default="gitea",
                     show_default=True),
        click.option("--repository", metavar="OWNER/NAME",
                     help="The GitOps repository on the forge."),
        click.option("--token-env", default="PLINTH_FORGE_TOKEN", show_default=True,
                     metavar="VAR", help="The environment variable holding the forge token."),
    )):
        command = option(command)
    return command


@functools.cache
def stack_outputs(project: Path, stack: str) -> StackOutputs:
    """Read once per command (pulumi takes about a second)."""
    try:
        return read_outputs(project, stack)
    except StackOutputError as err:
        raise UserError(str(err)) from None


def forge_target(forge_url: str | None, kind: str, repository: str | None,
                 token_env: str, stack: str | None, project: Path) -> ForgeTarget | None:
    """The forge repository the options name; None when they name none."""
    if stack is not None:
        if forge_url is not None or repository is not None:
            raise UserError("--stack names the forge and repository: leave out --forge-url "
                            "and --repository")
        try:
            forge = stack_outputs(project, stack).forge()
            ref = RepoRef.parse(forge.repository)
        except (StackOutputError, ValueError) as err:
            raise UserError(str(err)) from None
        return ForgeTarget(ForgeClient(forge_kind(forge.kind), forge.url, forge.token), ref,
                           forge.token)
    if forge_url is None and repository is None:
        return None
    if repository is None or (forge_url is None and kind != "github"):
        raise UserError("a forge needs --repository OWNER/NAME and --forge-url "
                        "(--forge-url may be left out for GitHub)")
    token = os.environ.get(token_env, "")
    if not token:
        raise UserError(f"no forge token: set the environment variable {token_env} "
                        "(or name another with --token-env)")
    try:
        ref = RepoRef.parse(repository)
    except ValueError as err:
        raise UserError(f"--repository: {err}") from None
    return ForgeTarget(ForgeClient(forge_kind(kind), forge_url or GITHUB_API, token), ref, token)
