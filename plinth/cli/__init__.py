"""The `plinth` command line: one click group, one module per command family."""
from __future__ import annotations

from importlib.metadata import entry_points

import click

from plinth import __version__
from plinth.cli.audit import audit_command
from plinth.cli.diff import diff_command
from plinth.cli.images import images_command
from plinth.cli.local import local
from plinth.cli.new import new
from plinth.cli.promote import promote_command
from plinth.cli.reconcile import reconcile_command
from plinth.cli.render import render_command, validate
from plinth.cli.status import status_command
from plinth.cli.wait import wait_command


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="plinth")
def cli() -> None:
    """Plinth bootstraps and versions a whole GitOps environment from code."""


for command in (new, render_command, validate, diff_command, local, images_command,
                promote_command, wait_command, status_command, reconcile_command,
                audit_command):
    cli.add_command(command)
for plugin in entry_points(group="plinth.commands"):
    cli.add_command(plugin.load(), plugin.name)


def main() -> None:
    cli()
