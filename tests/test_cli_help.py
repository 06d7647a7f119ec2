"""`plinth --help` lists every command without importing them, by summaries that say what
each command's own help says."""
from __future__ import annotations

import importlib
import json
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from plinth.cli import COMMANDS, cli


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_summary_is_the_first_sentence_of_the_commands_help(name: str) -> None:
    target, summary = COMMANDS[name]
    module, attribute = target.split(":")
    command = getattr(importlib.import_module(module), attribute)
    stand_in = click.Command(name, help=summary)
    for limit in (20, 45, 60, 300):
        assert stand_in.get_short_help_str(limit) == command.get_short_help_str(limit), limit


def test_help_lists_every_command_and_imports_none_of_the_built_in_ones() -> None:
    probe = ("import json, sys\n"
             "from plinth.cli import cli\n"
             "try:\n"
             "    cli(['--help'])\n"
             "except SystemExit:\n"
             "    pass\n"
             "print(json.dumps(sorted(m for m in sys.modules if m.startswith('plinth.'))))\n")
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          check=True)
    *listing, loaded = proc.stdout.splitlines()
    shown = {line.split()[0] for line in listing[listing.index("Commands:") + 1:] if line.strip()}
    assert shown == {*COMMANDS, "controller"}
    command_modules = {target.split(":")[0] for target, _ in COMMANDS.values()}
    assert command_modules & set(json.loads(loaded)) == set()


def test_a_listed_command_runs_as_itself() -> None:
    result = CliRunner().invoke(cli, ["diff", "--help"])
    assert result.exit_code == 0
    assert "Compare A and B object by object" in result.output
    assert "Usage: " in result.output and "diff [OPTIONS]" in result.output
