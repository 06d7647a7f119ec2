"""The Plinth kinds as commands take them: `kustomization`, `gitrepository`, ... (any case)."""
from __future__ import annotations

import click

from plinth.kinds import PLURALS

KINDS = {kind.lower(): plural for plural, kind in PLURALS.items()}

kind_option = click.argument("kind", type=click.Choice(sorted(KINDS), case_sensitive=False),
                             callback=lambda _ctx, _param, value: str(value).lower())
