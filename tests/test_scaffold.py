"""The scaffolder: validated variables, the same bytes every time, human edits protected."""
from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from plinth.render import render
from plinth.repospec import AppSpec, EnvironmentSpec, ImageAutomationSpec, RepoSpec
from plinth.scaffold import MANIFEST, ScaffoldConflict, ScaffoldError, plan, render_template, write
from plinth.schemas import load_crds, validate_objects
from sync_controller.api import ImageUpdateAutomationSpec, spec_of
from sync_controller.setters import Image, update_tree


def spec(**overrides: object) -> RepoSpec:
    fields: dict[str, object] = {
        "cluster": "local",
        "environments": [EnvironmentSpec.named("dev"), EnvironmentSpec.named("prod")],
        "apps": [AppSpec.parse("web=ghcr.io/acme/web:1.2.3"), AppSpec.parse("api=acme/api")],
        "registry": "127.0.0.1:5000",
    }
    fields.update(overrides)
    return RepoSpec.model_validate(fields)


def test_layout_has_cluster_entry_point_bases_and_overlays() -> None:
    files = render_template(spec())
    for path in ["clusters/local/kustomization.yaml", "clusters/local/apps.yaml",
                 "clusters/local/infrastructure.yaml", "infrastructure/base/kustomization.yaml",
                 "infrastructure/overlays/dev/kustomization.yaml",
                 "infrastructure/overlays/prod/kustomization.yaml",
                 "apps/base/web/deployment.yaml", "apps/base/api/service.yaml",
                 "apps/overlays/prod/kustomization.yaml", "README.md"]:
        assert path in files, path


def test_same_spec_gives_the_same_bytes() -> None:
    assert render_template(spec()) == render_template(spec())


def test_overlay_carries_image_policy_setter_and_registry_prefix() -> None:
    overlay = render_template(spec())["apps/overlays/prod/kustomization.yaml"].decode()
    assert 'newTag: 1.2.3 # {"$imagepolicy": "plinth-system:web:tag"}' in overlay
    assert "name: 127.0.0.1:5000/acme/api" in overlay  # no registry host: prefixed
    assert "name: ghcr.io/acme/web" in overlay  # own registry host: kept
    assert "count: 2" in overlay


def test_image_automation_is_scaffolded_only_when_asked() -> None:
    plain = render_template(spec())
    assert "clusters/local/images.yaml" not in plain
    assert b"images.yaml" not in plain["clusters/local/kustomization.yaml"]
    automated = render_template(spec(image_automation=ImageAutomationSpec(
        range="^1.2", pull_request_provider="forge", insecure=True), pull_secret="pull"))
    assert b"  - images.yaml" in automated["clusters/local/kustomization.yaml"]
    assert b"images.yaml" in automated["README.md"]


def test_scaffolded_automation_is_valid_and_moves_only_the_cluster_environment(
        tmp_path: Path) -> None:
    """The objects pass the CRD schemas and the controller's own models, follow every app,
    and the automation's path reaches the markers of the cluster's environment (dev) and of
    no other: prod gets its tags by promotion."""
    automation = ImageAutomationSpec(range="^1.2", pull_request_provider="forge", insecure=True)
    write(tmp_path, render_template(spec(image_automation=automation, pull_secret="pull")))
    objects = render(tmp_path / "clusters" / "local", repo_root=tmp_path).objects
    assert not validate_objects(objects, "clusters/local", load_crds())
    images = [o for o in objects if o["apiVersion"] == "plinth.dev/v1" and o["kind"].startswith(
        "Image")]
    for obj in images:
        spec_of(obj)
    by_kind = {(o["kind"], o["metadata"]["name"]): o for o in images}
    assert {("ImageRepository", "web"), ("ImagePolicy", "api"),
            ("ImageUpdateAutomation", "apps")} <= set(by_kind)
    web = by_kind[("ImageRepository", "web")]["spec"]
    assert web == {"image": "ghcr.io/acme/web", "interval": "1m", "insecure": True,
                   "secretRef": {"name": "pull"}}
    assert by_kind[("ImagePolicy", "web")]["spec"]["policy"] == {"semver": {"range": "^1.2"}}
    update = spec_of(by_kind[("ImageUpdateAutomation", "apps")])
    assert isinstance(update, ImageUpdateAutomationSpec)
    assert update.git.push.branch == "plinth/images"
    assert update.git.push.provider_ref is not None
    changes = update_tree(tmp_path, update.update.path,
                          {"plinth-system:web": Image("ghcr.io/acme/web", "1.3.0")})
    assert [c.file for c in changes] == ["apps/overlays/dev/kustomization.yaml"]
    assert b"newTag: 1.2.3" in (tmp_path / "apps/overlays/prod/kustomization.yaml").read_bytes()


def test_an_image_automation_range_that_does_not_parse_is_refused() -> None:
    with pytest.raises(ValidationError, match="range"):
        ImageAutomationSpec(range="one point two")


@pytest.mark.parametrize("bad", [
    {"cluster": "../etc"}, {"cluster": "Local"}, {"cluster": "a/b"},
    {"environments": []}, {"environments": [{"name": "dev"}, {"name": "dev"}]},
    {"apps": [{"name": "web", "image": "acme/web", "tag": "bad tag"}]},
    {"apps": [{"name": "web", "image": "Acme/Web"}]},
    {"apps": [{"name": "web", "image": "acme/web", "port": 70000}]},
    {"registry": "https://registry.example"},
    {"cluster_env": "staging"},
    {"colour": "blue"},
])
def test_invalid_variables_are_refused_with_the_key(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError) as err:
        spec(**bad)
    assert any(str(loc) in str(err.value) for loc in bad)


def test_app_parse_keeps_registry_port_out_of_the_tag() -> None:
    app = AppSpec.parse("web=registry.local:5000/acme/web")
    assert (app.image, app.tag) == ("registry.local:5000/acme/web", "latest")
    with pytest.raises(ValueError, match="NAME=IMAGE"):
        AppSpec.parse("web")


def test_template_rendering_invalid_yaml_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "broken.yaml").write_text("key: {{ cluster }}: [\n")
    with pytest.raises(ScaffoldError, match="broken.yaml: the rendered file is not valid YAML"):
        render_template(spec(), tmp_path)


def test_template_with_unknown_variable_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "x.yaml").write_text("a: {{ nope }}\n")
    with pytest.raises(ScaffoldError, match="template x.yaml"):
        render_template(spec(), tmp_path)


def test_missing_or_empty_template_is_an_error_not_an_empty_repo(tmp_path: Path) -> None:
    for folder in (tmp_path / "absent", tmp_path):
        with pytest.raises(ScaffoldError, match="missing or empty"):
            render_template(spec(), folder)


def test_rewrite_is_idempotent(tmp_path: Path) -> None:
    files = render_template(spec())
    first = write(tmp_path, files)
    assert first.create and not first.update
    again = plan(tmp_path, files)
    assert not again.changes and len(again.unchanged) == len(files)


def test_changed_input_updates_only_unedited_generated_files(tmp_path: Path) -> None:
    write(tmp_path, render_template(spec()))
    changed = render_template(spec(apps=[AppSpec.parse("web=ghcr.io/acme/web:1.3.0")]))
    result = write(tmp_path, changed)
    # README lists the apps and the quota scales with their number, so those change too.
    assert result.update == ["README.md", "apps/overlays/dev/kustomization.yaml",
                             "apps/overlays/prod/kustomization.yaml",
                             "infrastructure/overlays/dev/kustomization.yaml",
                             "infrastructure/overlays/prod/kustomization.yaml"]
    # The api app left the spec: its generated, unedited files go, and so does the empty folder.
    assert "apps/base/api/deployment.yaml" in result.delete
    assert not (tmp_path / "apps/base/api").exists()


def test_human_edit_is_never_overwritten_without_force(tmp_path: Path) -> None:
    write(tmp_path, render_template(spec()))
    edited = tmp_path / "apps/base/web/deployment.yaml"
    edited.write_text(edited.read_text() + "# tuned by hand\n")
    changed = render_template(spec(controller_version="0.2.0", apps=[
        AppSpec.parse("web=ghcr.io/acme/web:1.2.3", port=9090), AppSpec.parse("api=acme/api")]))
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    with pytest.raises(ScaffoldConflict) as err:
        write(tmp_path, changed)
    assert err.value.paths == ["apps/base/web/deployment.yaml"]
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before
    write(tmp_path, changed, force=True)
    assert edited.read_bytes() == changed["apps/base/web/deployment.yaml"]


def test_foreign_file_at_a_generated_path_is_a_conflict(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("my own readme\n")
    assert plan(tmp_path, render_template(spec())).conflicts == ["README.md"]


def test_corrupt_manifest_is_reported(tmp_path: Path) -> None:
    (tmp_path / MANIFEST).parent.mkdir(parents=True)
    (tmp_path / MANIFEST).write_text("[]")
    with pytest.raises(ScaffoldError, match="not a scaffold manifest"):
        plan(tmp_path, render_template(spec()))
