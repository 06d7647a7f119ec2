"""Pulumi ComponentResources that provision a Plinth platform, one module per concern."""
