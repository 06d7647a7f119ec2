"""`--stack` of the CD commands: a real Pulumi stack's outputs (its secret token included) name
the forge and repository; a stack that has none, or does not exist, is one line, exit 2."""
from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from plinth.cli import cli
from plinth.stack_outputs import StackOutputError, StackOutputs, pulumi_env, read_outputs
from tests.fixtures.output_stack import stack_with_outputs
from tests.fixtures.servers import PulumiBackend

TOKEN = "a-token-nobody-may-print-0123456789"


def test_outputs_of_a_real_stack_carry_the_secret_token(pulumi_backend: PulumiBackend,
                                                        tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    forge = {"kind": "gitea", "url": "http://127.0.0.1:3000", "repository": "plinth/gitops"}
    project = stack_with_outputs(pulumi_backend, tmp_path / "p", "ci", {"forge": forge}, TOKEN)
    for key, value in pulumi_backend.env.items():
        monkeypatch.setenv(key, value)
    read = read_outputs(project, "ci").forge()
    assert (read.kind, read.url, read.repository, read.token) == (
        "gitea", "http://127.0.0.1:3000", "plinth/gitops", TOKEN)
    with pytest.raises(StackOutputError, match="stack 'ci' has no kubeconfig output"):
        read_outputs(project, "ci").kubeconfig()


def test_a_stack_without_a_forge_or_a_missing_stack_is_one_line(
        pulumi_backend: PulumiBackend, tmp_path: Path) -> None:
    project = stack_with_outputs(pulumi_backend, tmp_path / "p", "plain", {"cluster": "x"})
    runner = CliRunner(env=pulumi_backend.env)
    for stack, expected in (("plain", "stack 'plain' has no forge"),
                            ("nowhere", "stack 'nowhere' in ")):
        result = runner.invoke(cli, ["promote", "--from", "dev", "--to", "prod", "--stack",
                                     stack, "--project", str(project)])
        assert result.exit_code == 2, result.output
        assert expected in result.output and "Traceback" not in result.output, result.output
        assert len(result.output.strip().splitlines()) == 1, result.output


def test_stack_and_forge_options_together_are_refused(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["wait", "--revision", "abcdef0", "--stack", "x",
                                      "--repository", "a/b", "--context", "plinth/x/y"])
    assert result.exit_code == 2 and "leave out --forge-url and --repository" in result.output


def test_a_folder_without_pulumi_yaml_is_named(tmp_path: Path) -> None:
    with pytest.raises(StackOutputError, match=f"{tmp_path}: no Pulumi.yaml"):
        read_outputs(tmp_path, "local")


def test_the_projects_own_backend_is_used_only_when_none_is_named(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What `scripts/main-job` makes (.plinth/pulumi-state and a passphrase file) is found
    from the project; a backend the caller names wins."""
    (tmp_path / ".plinth" / "pulumi-state").mkdir(parents=True)
    (tmp_path / ".plinth" / "passphrase").write_text("p\n")
    for name in ("PULUMI_BACKEND_URL", "PULUMI_CONFIG_PASSPHRASE",
                 "PULUMI_CONFIG_PASSPHRASE_FILE"):
        monkeypatch.delenv(name, raising=False)
    env = pulumi_env(tmp_path)
    assert env["PULUMI_BACKEND_URL"] == f"file://{tmp_path.resolve()}/.plinth/pulumi-state"
    assert env["PULUMI_CONFIG_PASSPHRASE_FILE"] == str(tmp_path.resolve() / ".plinth/passphrase")
    monkeypatch.setenv("PULUMI_BACKEND_URL", "file:///elsewhere")
    env = pulumi_env(tmp_path)
    assert env["PULUMI_BACKEND_URL"] == "file:///elsewhere"
    assert "PULUMI_CONFIG_PASSPHRASE_FILE" not in env


def test_a_forge_output_without_its_fields_is_named() -> None:
    outputs = StackOutputs("s", {"forge": {"kind": "gitea"}, "forge_token": TOKEN})
    with pytest.raises(StackOutputError, match="output forge has no 'url'") as err:
        outputs.forge()
    assert TOKEN not in str(err.value)
