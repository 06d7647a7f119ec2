"""How commands talk to people and machines: rich on a TTY, plain text otherwise.

User errors end with a one-line message and exit code 2 (as `diff` does), never a traceback.
`console` and `err_console` are made on first use: a command that only writes YAML never
loads rich.
"""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from rich.console import Console

    console: Console
    err_console: Console


def __getattr__(name: str) -> Any:
    if name not in ("console", "err_console"):
        raise AttributeError(name)
    if name in globals():
        return globals()[name]
    from rich.console import Console

    made = Console(stderr=name == "err_console", soft_wrap=True, highlight=False)
    globals()[name] = made
    return made


class UserError(click.ClickException):
    exit_code = 2

    def show(self, file: object = None) -> None:
        from rich.markup import escape

        __getattr__("err_console").print(f"[bold red]error:[/] {escape(self.format_message())}")


def write_atomically(path: Path, text: str) -> None:
    """Write all or nothing: a failure leaves no partial output file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as out:
            out.write(text)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def echo_raw(text: str) -> None:
    """Machine output (YAML, JSON) goes to stdout untouched by rich."""
    sys.stdout.write(text)
    sys.stdout.flush()
