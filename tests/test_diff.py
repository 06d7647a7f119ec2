"""`plinth diff` on crafted pairs: what changed, where, and never a Secret's value."""
from __future__ import annotations

import base64
import json
from pathlib import Path

import git
import pytest
from click.testing import CliRunner

from plinth.cli import cli
from plinth.diff import REDACTED, diff_objects
from tests.gitops_repos import commit_all, configmap, kustomization, write_tree

pytestmark = pytest.mark.usefixtures("kustomize")


def deployment(name: str = "web", namespace: str = "apps", replicas: int = 1,
               env: list[dict[str, str]] | None = None) -> dict[str, object]:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [
                         {"name": name, "image": "acme/web:1.0",
                          "env": env or [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]}
                     ]}}}}


def secret(value: str) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": "apps"},
            "data": {"password": base64.b64encode(value.encode()).decode()},
            "stringData": {"token": value + "-token"}}


def overlays(tmp_path: Path, a: list[dict[str, object]],
             b: list[dict[str, object]]) -> tuple[str, str]:
    write_tree(tmp_path, {"a/kustomization.yaml": kustomization("objects.yaml"), "a/objects.yaml": a,
                          "b/kustomization.yaml": kustomization("objects.yaml"), "b/objects.yaml": b})
    return str(tmp_path / "a"), str(tmp_path / "b")


def diff_json(a: str, b: str) -> tuple[int, dict[str, object]]:
    result = CliRunner().invoke(cli, ["diff", a, b, "--output", "json"])
    assert result.exit_code in (0, 1), result.output
    return result.exit_code, json.loads(result.stdout)


def test_identical_inputs_exit_zero(tmp_path: Path) -> None:
    a, b = overlays(tmp_path, [deployment(), configmap("c", {"k": "v"})],
                    [configmap("c", {"k": "v"}), deployment()])
    code, body = diff_json(a, b)
    assert (code, body) == (0, {"equal": True, "objects": []})
    text = CliRunner().invoke(cli, ["diff", a, b])
    assert text.exit_code == 0 and "no differences" in text.stdout


def test_added_and_removed_objects(tmp_path: Path) -> None:
    a, b = overlays(tmp_path, [configmap("old", {"k": "v"})], [configmap("new", {"k": "v"})])
    code, body = diff_json(a, b)
    assert code == 1
    assert [(o["status"], o["object"]) for o in body["objects"]] == [  # type: ignore[index]
        ("added", "ConfigMap apps/new"), ("removed", "ConfigMap apps/old")]


def test_nested_field_change_has_its_path_and_values(tmp_path: Path) -> None:
    changed_env = [{"name": "A", "value": "1"}, {"name": "B", "value": "3"}]
    a, b = overlays(tmp_path, [deployment()], [deployment(replicas=3, env=changed_env)])
    _, body = diff_json(a, b)
    (obj,) = body["objects"]  # type: ignore[misc]
    assert obj["status"] == "changed" and obj["object"] == "Deployment.apps apps/web"
    assert obj["changes"] == [
        {"path": "spec.replicas", "old": 1, "new": 3},
        {"path": "spec.template.spec.containers[name=web].env[name=B].value",
         "old": "2", "new": "3"}]


def test_named_list_reorder_is_one_order_change(tmp_path: Path) -> None:
    reordered = [{"name": "B", "value": "2"}, {"name": "A", "value": "1"}]
    a, b = overlays(tmp_path, [deployment()], [deployment(env=reordered)])
    _, body = diff_json(a, b)
    (obj,) = body["objects"]  # type: ignore[misc]
    assert obj["changes"] == [{"path": "spec.template.spec.containers[name=web].env (order)",
                               "old": ["A", "B"], "new": ["B", "A"]}]


def test_plain_list_reorder_is_positional() -> None:
    old = [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
            "data": {}, "x": ["a", "b"]}]
    new = [{**old[0], "x": ["b", "a"]}]
    (d,) = diff_objects(old, new)
    assert [(c.path, c.old, c.new) for c in d.changes] == [("x[0]", "a", "b"), ("x[1]", "b", "a")]


def test_namespace_move_is_reported_as_moved(tmp_path: Path) -> None:
    a, b = overlays(tmp_path, [configmap("c", {"k": "v"}, namespace="team-a")],
                    [configmap("c", {"k": "w"}, namespace="team-b")])
    _, body = diff_json(a, b)
    assert body["objects"] == [{
        "status": "moved", "object": "ConfigMap team-b/c", "group": "", "kind": "ConfigMap",
        "namespace": "team-b", "name": "c", "movedFrom": "team-a",
        "changes": [{"path": "data.k", "old": "v", "new": "w"}]}]


def test_secret_change_is_shown_but_never_printed(tmp_path: Path) -> None:
    a, b = overlays(tmp_path, [secret("hunter2-old")], [secret("hunter2-new")])
    for output in ("text", "json"):
        result = CliRunner().invoke(cli, ["diff", a, b, "--output", output])
        assert result.exit_code == 1
        assert "hunter2" not in result.output
        assert base64.b64encode(b"hunter2-old").decode() not in result.output
        assert "data.password" in result.output and "stringData.token" in result.output
    _, body = diff_json(a, b)
    (obj,) = body["objects"]  # type: ignore[misc]
    assert {c["new"] for c in obj["changes"]} == {REDACTED}


def test_revision_against_working_tree(tmp_path: Path) -> None:
    repo = write_tree(tmp_path / "repo", {"o/kustomization.yaml": kustomization("cm.yaml"),
                                          "o/cm.yaml": configmap("c", {"colour": "blue"})})
    commit_all(repo, "blue")
    write_tree(repo, {"o/cm.yaml": configmap("c", {"colour": "green"})})
    _, body = diff_json(f"{repo}/o@HEAD", f"{repo}/o")
    (obj,) = body["objects"]  # type: ignore[misc]
    assert obj["changes"] == [{"path": "data.colour", "old": "blue", "new": "green"}]


def test_two_revisions_of_an_overlay_gone_from_the_work_tree(tmp_path: Path) -> None:
    repo = write_tree(tmp_path / "repo", {"o/kustomization.yaml": kustomization("cm.yaml"),
                                          "o/cm.yaml": configmap("c", {"colour": "blue"})})
    commit_all(repo, "blue")
    write_tree(repo, {"o/cm.yaml": configmap("c", {"colour": "green"})})
    commit_all(repo, "green")
    git.Repo(repo).index.remove(["o"], r=True, working_tree=True)
    commit_all(repo, "o retired")
    assert not (repo / "o").exists()
    _, body = diff_json(f"{repo}/o@HEAD~2", f"{repo}/o@HEAD~1")
    (obj,) = body["objects"]  # type: ignore[misc]
    assert obj["changes"] == [{"path": "data.colour", "old": "blue", "new": "green"}]
    gone = CliRunner().invoke(cli, ["diff", f"{repo}/o@HEAD~1", f"{repo}/o@HEAD"])
    assert gone.exit_code == 2
    assert gone.stderr.strip() == "error: revision 'HEAD': o: no such directory"


def lose_object(repo: Path, path: str) -> None:
    """Delete the git object of `path` at HEAD, as a broken clone or disk would."""
    sha = git.Repo(repo).commit("HEAD").tree[path].hexsha
    (repo / ".git" / "objects" / sha[:2] / sha[2:]).unlink()


def test_a_revision_reads_only_the_objects_its_overlay_reaches(tmp_path: Path) -> None:
    repo = write_tree(tmp_path / "repo", {"o/kustomization.yaml": kustomization("cm.yaml"),
                                          "o/cm.yaml": configmap("c", {"colour": "blue"}),
                                          "elsewhere/big.yaml": configmap("big", {"k": "v"})})
    commit_all(repo, "blue")
    lose_object(repo, "elsewhere/big.yaml")
    code, body = diff_json(f"{repo}/o@HEAD", f"{repo}/o")
    assert (code, body) == (0, {"equal": True, "objects": []})
    lose_object(repo, "o/cm.yaml")
    result = CliRunner().invoke(cli, ["diff", f"{repo}/o@HEAD", f"{repo}/o"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.stderr.startswith("error: revision 'HEAD': ")
    assert "o/cm.yaml: git cannot read its object " in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_error_exits_two_without_traceback(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["diff", str(tmp_path / "nope"), str(tmp_path)])
    assert result.exit_code == 2
    assert "no such overlay directory" in result.stderr and "Traceback" not in result.output


def test_text_output_keeps_bracketed_paths(tmp_path: Path) -> None:
    a, b = overlays(tmp_path, [deployment()], [deployment(replicas=2, env=[
        {"name": "A", "value": "[x]"}, {"name": "B", "value": "2"}])])
    result = CliRunner().invoke(cli, ["diff", a, b])
    assert 'spec.template.spec.containers[name=web].env[name=A].value: "1" -> "[x]"' \
        in result.stdout


STACKS = {
    "one": {"config": {"aws:region": "eu-west-1", "plinth:gitops": {
        "cluster": "c1", "environments": [{"name": "dev"}],
        "apps": [{"name": "web", "image": "acme/web", "tag": "1.0.0"}]}}},
    "two": {"config": {"plinth:gitops": {
        "cluster": "c1", "environments": [{"name": "dev", "replicas": 3}],
        "apps": [{"name": "web", "image": "acme/web", "tag": "1.1.0"}]}}},
    "bad": {"config": {"plinth:gitops": {
        "cluster": "c1", "environments": [{"name": "dev", "replicas": "many"}]}}},
}


def stacks_project(tmp_path: Path) -> Path:
    return write_tree(tmp_path, {f"stacks/Pulumi.{n}.yaml": d for n, d in STACKS.items()})


def test_stacks_diff_by_their_scaffolded_output(tmp_path: Path) -> None:
    project = stacks_project(tmp_path)
    result = CliRunner().invoke(cli, ["diff", "--project", str(project), "--stack", "one",
                                      "--stack", "two", "--output", "json"])
    assert result.exit_code == 1, result.output
    (web,) = [o for o in json.loads(result.stdout)["objects"] if o["kind"] == "Deployment"]
    assert {"path": "spec.replicas", "old": 1, "new": 3} in web["changes"]
    assert {"path": "spec.template.spec.containers[name=web].image", "old": "acme/web:1.0.0",
            "new": "acme/web:1.1.0"} in web["changes"]
    same = CliRunner().invoke(cli, ["diff", "--project", str(project), "--stack", "one",
                                    "--stack", "one"])
    assert same.exit_code == 0


def test_stack_against_an_overlay(tmp_path: Path) -> None:
    project = stacks_project(tmp_path)
    write_tree(tmp_path, {"o/kustomization.yaml": kustomization("cm.yaml"),
                          "o/cm.yaml": configmap("c", {"k": "v"})})
    result = CliRunner().invoke(cli, ["diff", "--project", str(project), "--stack", "one",
                                      str(tmp_path / "o"), "--output", "json"])
    assert result.exit_code == 1
    statuses = {o["status"] for o in json.loads(result.stdout)["objects"]}
    assert statuses == {"added", "removed"}


def test_invalid_stack_config_names_file_and_key(tmp_path: Path) -> None:
    project = stacks_project(tmp_path)
    result = CliRunner().invoke(cli, ["diff", "--project", str(project), "--stack", "bad",
                                      "--stack", "one"])
    assert result.exit_code == 2
    assert "Pulumi.bad.yaml: plinth:gitops.environments.0.replicas='many'" in result.stderr
    missing = CliRunner().invoke(cli, ["diff", "--project", str(project), "--stack", "nope",
                                       "--stack", "one"])
    assert missing.exit_code == 2 and "no such stack file" in missing.stderr
