"""The `plinth` command line: one click group, one module per command family.

Commands load when they run: `plinth render` imports what rendering needs and nothing of the
forge, Pulumi or the controller, so a command costs what it does (and `--help` stays quick).
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

import click

from plinth import __version__

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

# name -> ("module:attribute" of the click command, the first sentence of its help). `--help`
# lists commands by these summaries and imports none of them; a test holds each summary to its
# command's own help text.
COMMANDS = {
    "new": ("plinth.cli.new:new",
            "Scaffold a GitOps repository in DIRECTORY and commit it (git init if needed)."),
    "render": ("plinth.cli.render:render_command",
               "Build the kustomization at PATH with the real kustomize and validate every "
               "object."),
    "validate": ("plinth.cli.render:validate",
                 "Render and validate every kustomization of the repository REPO (for PR "
                 "pipelines)."),
    "diff": ("plinth.cli.diff:diff_command",
             "Compare A and B object by object and field by field."),
    "local": ("plinth.cli.local:local",
              "Run a local cluster: etcd + kube-apiserver + kube-controller-manager + "
              "kube-scheduler, and one node (kubelet, containerd, bridge CNI, kube-proxy, "
              "CoreDNS) that runs pods."),
    "images": ("plinth.cli.images:images_command",
               "List image policies: the repository scanned, its tag count, the rule, the "
               "chosen tag."),
    "promote": ("plinth.cli.promote:promote_command",
                "Move image tags from one environment's overlay to the next, by pull request."),
    "wait": ("plinth.cli.wait:wait_command",
             "Wait until revision SHA is applied and healthy: exit 0, or 1 with the reason."),
    "status": ("plinth.cli.status:status_command",
               "Every GitRepository, Kustomization, image, receiver and notification object of "
               "the cluster: Ready, the revision (or image, or tag count) it is at, age and "
               "message."),
    "reconcile": ("plinth.cli.reconcile:reconcile_command",
                  "Reconcile KIND NAME now (not at its interval) and wait for the outcome: exit "
                  "0 when it is Ready, 1 with the controller's reason when it failed or the "
                  "timeout passed."),
    "audit": ("plinth.cli.audit:audit_command",
              "Report what a change to stack NAME would do and what its cluster runs now."),
}


def _plugins() -> dict[str, EntryPoint]:
    """Command families from other packages of the project (the controller's), by entry point,
    so that `plinth` never imports `sync_controller` by name. Only plinth's own distribution is
    read: scanning every installed one took longer than the rest of `--help`."""
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        declared = distribution("plinth").entry_points.select(group="plinth.commands")
    except PackageNotFoundError:  # a checkout on sys.path, not installed: no plugins
        return {}
    return {plugin.name: plugin for plugin in declared}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*COMMANDS, *sorted(_plugins())]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in COMMANDS:
            module, attribute = COMMANDS[cmd_name][0].split(":")
            command = getattr(importlib.import_module(module), attribute)
        else:
            plugin = _plugins().get(cmd_name)
            if plugin is None:
                return None
            command = plugin.load()
        assert isinstance(command, click.Command), cmd_name
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """Click's listing, with each built-in command stood in for by its summary."""
        listed: list[tuple[str, click.Command | None]] = [
            (name, click.Command(name, help=summary)) for name, (_, summary) in COMMANDS.items()]
        listed += [(name, self.get_command(ctx, name)) for name in sorted(_plugins())]
        shown = [(name, command) for name, command in listed
                 if command is not None and not command.hidden]
        limit = formatter.width - 6 - max(len(name) for name, _ in shown)
        with formatter.section("Commands"):
            formatter.write_dl([(name, command.get_short_help_str(limit))
                                for name, command in shown])


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="plinth")
def cli() -> None:
    """Plinth bootstraps and versions a whole GitOps environment from code."""


def main() -> None:
    cli()
