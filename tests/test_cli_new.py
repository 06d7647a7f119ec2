"""`plinth new`: scaffold + commit; re-runs commit only real changes and protect edits."""
from __future__ import annotations

from pathlib import Path

import git
import pytest
from click.testing import CliRunner

from plinth import schemas
from plinth.cli import cli
from plinth.schemas import SchemasNotInstalled

BASE = ["--cluster", "local", "--env", "dev", "--env", "prod",
        "--app", "web=ghcr.io/acme/web:1.2.3"]


def new(repo: Path, *extra: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["new", str(repo), *BASE, *extra])
    return result.exit_code, result.stdout, result.stderr


def test_new_initialises_and_commits(tmp_path: Path) -> None:
    code, out, _ = new(tmp_path / "gitops")
    assert code == 0, out
    repo = git.Repo(tmp_path / "gitops")
    assert repo.active_branch.name == "main"
    assert not repo.is_dirty(untracked_files=True)
    tracked = repo.git.ls_files().splitlines()
    assert "clusters/local/kustomization.yaml" in tracked and ".plinth/scaffold.json" in tracked


def test_rerun_with_same_input_makes_no_commit(tmp_path: Path) -> None:
    new(tmp_path / "g")
    head = git.Repo(tmp_path / "g").head.commit.hexsha
    code, out, _ = new(tmp_path / "g")
    assert code == 0 and "up to date, nothing to commit" in out
    assert git.Repo(tmp_path / "g").head.commit.hexsha == head


def test_changed_input_makes_one_commit_listing_the_change(tmp_path: Path) -> None:
    new(tmp_path / "g")
    code, out, _ = new(tmp_path / "g", "--app", "api=acme/api:1.0.0")
    assert code == 0
    assert "create apps/base/api/deployment.yaml" in out
    assert len(list(git.Repo(tmp_path / "g").iter_commits())) == 2


def test_edited_file_is_refused_then_forced(tmp_path: Path) -> None:
    new(tmp_path / "g")
    readme = tmp_path / "g" / "README.md"
    readme.write_text("our own words\n")
    git.Repo(tmp_path / "g").git.commit("-am", "docs: our words")
    code, out, err = new(tmp_path / "g", "--env", "qa")
    assert code == 2
    assert "edited README.md" in out and "--force" in err
    assert readme.read_text() == "our own words\n"
    assert not (tmp_path / "g/apps/overlays/qa").exists()
    code, _, _ = new(tmp_path / "g", "--env", "qa", "--force")
    assert code == 0 and "our own words" not in readme.read_text()


def test_dry_run_changes_nothing(tmp_path: Path) -> None:
    code, out, _ = new(tmp_path / "g", "--dry-run")
    assert code == 0 and "create clusters/local/apps.yaml" in out
    assert not (tmp_path / "g").exists()


def test_bad_variable_names_the_key(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["new", str(tmp_path / "g"), "--cluster", "Bad_Name"])
    assert result.exit_code == 2
    assert "cluster='Bad_Name'" in result.stderr and "Traceback" not in result.output
    assert not (tmp_path / "g").exists()


def test_an_install_without_the_crds_is_a_clear_error(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A broken install (no package data) is said as such, exit 2, and writes nothing."""
    def missing() -> list[object]:
        raise SchemasNotInstalled("no Plinth CRDs in /nowhere: is plinth installed without its "
                               "package data (sync_controller/crds/*.yaml)?")
    monkeypatch.setattr("plinth.schemas.plinth_crd_files", missing)
    schemas._plinth_crds.cache_clear()  # parsed by an earlier test of this process
    code, _, err = new(tmp_path / "g")
    assert code == 2 and "no Plinth CRDs" in err and "Traceback" not in err
    assert not (tmp_path / "g").exists()


def test_a_tag_that_reads_as_a_number_stays_a_string(tmp_path: Path) -> None:
    """`2.0` unquoted is a float to YAML, and kustomize refuses a number as newTag."""
    result = CliRunner().invoke(cli, ["new", str(tmp_path / "g"), "--cluster", "local",
                                      "--env", "dev", "--app", "api=acme/api:2.0"])
    assert result.exit_code == 0, result.output
    overlay = (tmp_path / "g" / "apps" / "overlays" / "dev" / "kustomization.yaml").read_text()
    assert 'newTag: "2.0" #' in overlay
    rendered = CliRunner().invoke(cli, ["render", str(tmp_path / "g" / "apps" / "overlays" /
                                                      "dev")])
    assert rendered.exit_code == 0 and "image: acme/api:2.0" in rendered.output, rendered.output
