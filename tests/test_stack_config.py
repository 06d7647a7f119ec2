"""Stack config: the committed stacks load; bad config names file, key and expectation."""
from __future__ import annotations

from pathlib import Path

import pytest

from plinth.stack_config import StackConfig, StackConfigError, load_stack

PROJECT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("stack", ["local", "dev", "prod"])
def test_committed_stacks_load(stack: str) -> None:
    assert load_stack(PROJECT, stack).gitops.cluster == stack


@pytest.mark.parametrize(("values", "message"), [
    ({}, "plinth:gitops: Field required"),
    ({"gitops": {"cluster": "c", "environments": [{"name": "dev"}]}, "colour": "blue"},
     "plinth:colour='blue': Extra inputs are not permitted"),
    ({"gitops": {"cluster": "c", "environments": "dev"}},
     "plinth:gitops.environments='dev': Input should be a valid list"),
])
def test_bad_config_is_refused_with_key_and_expectation(values: dict[str, object],
                                                        message: str) -> None:
    with pytest.raises(StackConfigError) as err:
        StackConfig.from_keys(values, "Pulumi.x.yaml")
    assert str(err.value).startswith("Pulumi.x.yaml: ")
    assert message in str(err.value)


def test_broken_stack_yaml(tmp_path: Path) -> None:
    (tmp_path / "stacks").mkdir()
    (tmp_path / "stacks" / "Pulumi.x.yaml").write_text("config: [\n")
    with pytest.raises(StackConfigError, match="Pulumi.x.yaml: not valid YAML"):
        load_stack(tmp_path, "x")
