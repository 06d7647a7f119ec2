"""Plinth: bootstrap and version a whole GitOps environment from code.

This package is the shared core (scaffolding, rendering, diffing, local servers) used by the
Pulumi components, the sync controller and the `plinth` CLI.
"""

__version__ = "0.1.0"
