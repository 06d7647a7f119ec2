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

# name -> "module:attribute" of the click command
COMMANDS = {
    "new": "plinth.cli.new:new",
    "render": "plinth.cli.render:render_command",
    "validate": "plinth.cli.render:validate",
    "diff": "plinth.cli.diff:diff_command",
    "local": "plinth.cli.local:local",
    "images": "plinth.cli.images:images_command",
    "promote": "plinth.cli.promote:promote_command",
    "wait": "plinth.cli.wait:wait_command",
    "status": "plinth.cli.status:status_command",
    "reconcile": "plinth.cli.reconcile:reconcile_command",
    "audit": "plinth.cli.audit:audit_command",
}


def _plugins() -> dict[str, EntryPoint]:
    """Command families from other packages of the project (the controller's), by entry point,
    so that `plinth` never imports `sync_controller` by name."""
    from importlib.metadata import entry_points

    return {plugin.name: plugin for plugin in entry_points(group="plinth.commands")}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*COMMANDS, *sorted(_plugins())]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in COMMANDS:
            module, attribute = COMMANDS[cmd_name].split(":")
            command = getattr(importlib.import_module(module), attribute)
        else:
            plugin = _plugins().get(cmd_name)
            if plugin is None:
                return None
            command = plugin.load()
        assert isinstance(command, click.Command), cmd_name
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="plinth")
def cli() -> None:
    """Plinth bootstraps and versions a whole GitOps environment from code."""


def main() -> None:
    cli()
