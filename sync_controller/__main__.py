"""`python -m sync_controller run ...`: the container image's entry point."""
from sync_controller.cli import controller

controller(prog_name="sync_controller")
