# The two commands of the README. Both run the idempotent setup first.
.PHONY: setup up test unit

setup:
	scripts/setup

up: setup
	scripts/main-job

test: setup
	.venv/bin/mypy
	.venv/bin/python -m pytest -m "e2e or not e2e"

unit: setup
	.venv/bin/python -m pytest
