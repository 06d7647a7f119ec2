"""The `plinth` command line: one click group, one module per command family."""
from __future__ import annotations

import click

from plinth import __version__
from plinth.cli.local import local


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="plinth")
def cli() -> None:
    """Plinth bootstraps and versions a whole GitOps environment from code."""


cli.add_command(local)


def main() -> None:
    cli()
