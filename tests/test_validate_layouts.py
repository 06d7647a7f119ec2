"""`plinth validate` and `render` on the layouts real repositories use (small fixtures of our
own in the shape of Flux's, Argo CD's and Google's demo repositories): every kustomization
root and every folder of plain manifests is found, CRDs written in the repository are used as
schemas, unknown kinds are skipped only when asked, and kustomize's warnings are shown."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from plinth.cli import cli
from plinth.cli.render import find_roots
from plinth.schemas import repository_crds
from tests.gitops_repos import commit_all, configmap, kustomization, write_tree

pytestmark = pytest.mark.usefixtures("kustomize")


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def deployment(name: str) -> dict[str, Any]:
    labels = {"app": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"selector": {"matchLabels": labels}, "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": name, "image": f"acme/{name}:1"}]}}}}


def crd(group: str, kind: str, plural: str, spec_properties: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{plural}.{group}"},
            "spec": {"group": group, "scope": "Namespaced",
                     "names": {"kind": kind, "plural": plural, "singular": kind.lower()},
                     "versions": [{"name": "v1", "served": True, "storage": True, "schema": {
                         "openAPIV3Schema": {"type": "object", "properties": {
                             "spec": {"type": "object", "properties": spec_properties}}}}}]}}


FLUX_KUSTOMIZATION = {"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
                      "metadata": {"name": "apps", "namespace": "flux-system"},
                      "spec": {"path": "./apps", "interval": "10m"}}


def flux_layout(root: Path) -> Path:
    """A cluster folder of plain manifests (no kustomization.yaml) holding a Flux
    Kustomization and a flux-system kustomization; apps as kustomize base + overlay."""
    return write_tree(root, {
        "clusters/prod/apps.yaml": FLUX_KUSTOMIZATION,
        "clusters/prod/flux-system/kustomization.yaml": kustomization("gotk.yaml"),
        "clusters/prod/flux-system/gotk.yaml": {"apiVersion": "v1", "kind": "Namespace",
                                                "metadata": {"name": "flux-system"}},
        "apps/base/kustomization.yaml": kustomization("web.yaml"),
        "apps/base/web.yaml": deployment("web"),
        "apps/prod/kustomization.yaml": kustomization("../base", namePrefix="prod-"),
        "README.md": "# fleet\n"})


def test_flux_layout_is_found_whole_and_unknown_kinds_fail_unless_skipped(
        tmp_path: Path) -> None:
    repo = flux_layout(tmp_path / "fleet")
    roots = [r.relative_to(repo.resolve()).as_posix() for r in find_roots(repo)]
    assert roots == ["apps/base", "apps/prod", "clusters/prod", "clusters/prod/flux-system"]
    code, out, _ = run("validate", str(repo))
    assert code == 1, out
    assert "FAIL clusters/prod" in out and \
        "no schema for kustomize.toolkit.fluxcd.io/v1 Kustomization" in out
    assert " ok  apps/prod" in out and "3 of 4 valid" in out
    code, out, _ = run("validate", str(repo), "--skip-unknown")
    assert code == 0, out
    assert "skipped: clusters/prod/apps.yaml: Kustomization flux-system/apps: no schema" in out
    assert "4 of 4 valid; 1 objects of unknown kinds skipped" in out


def test_crds_in_the_repository_are_schemas_without_flags(tmp_path: Path) -> None:
    repo = flux_layout(tmp_path / "fleet")
    write_tree(repo, {"crds/flux.yaml": crd("kustomize.toolkit.fluxcd.io", "Kustomization",
                                            "kustomizations", {"path": {"type": "string"},
                                                               "interval": {"type": "string"}})})
    code, out, _ = run("validate", str(repo))
    assert code == 0, out
    write_tree(repo, {"clusters/prod/apps.yaml": {**FLUX_KUSTOMIZATION, "spec": {
        "path": "./apps", "interval": 10}}})
    code, out, _ = run("validate", str(repo))
    assert code == 1 and 'spec.interval: 10 is not of type "string"' in out, out
    commit_all(repo, "fleet")  # render finds the repository (and its CRDs) by git
    code, _, err = run("render", str(repo / "clusters" / "prod"))
    assert code == 2 and "clusters/prod/apps.yaml: Kustomization flux-system/apps" in err


def test_only_the_crd_documents_of_the_kinds_used_are_read(tmp_path: Path) -> None:
    """A bundle of CRDs is split into documents; only the CRD of a kind the render uses is
    parsed (here another document of the bundle cannot even be parsed)."""
    widget = crd("example.com", "Widget", "widgets", {"size": {"type": "integer"}})
    bundle = "\n---\n".join([
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n"
        "metadata: {name: gadgets.example.com}\nspec: {names: {kind: Gadget}, broken: [\n",
        yaml.safe_dump(widget)])
    repo = write_tree(tmp_path / "r", {
        "crds/bundle.yaml": bundle,
        "app/kustomization.yaml": kustomization("w.yaml"),
        "app/w.yaml": {"apiVersion": "example.com/v1", "kind": "Widget",
                       "metadata": {"name": "w", "namespace": "apps"}, "spec": {"size": "L"}}})
    commit_all(repo, "bundle")
    code, _, err = run("render", str(repo / "app"))
    assert code == 2 and 'Widget apps/w: spec.size: "L" is not of type "integer"' in err, err
    assert [c["metadata"]["name"] for c in repository_crds(
        repo, {("example.com/v1", "Widget")})] == ["widgets.example.com"]
    assert repository_crds(repo, {("example.com/v2", "Widget"), ("example.com/v1", "Gizmo")}) \
        == []


def test_argo_cd_layout_validates_apps_and_manifests_and_leaves_charts_alone(
        tmp_path: Path) -> None:
    application = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
                   "metadata": {"name": "guestbook", "namespace": "argocd"},
                   "spec": {"project": "default", "source": {"path": "guestbook"}}}
    repo = write_tree(tmp_path / "examples", {
        "apps/templates/guestbook.yaml": application,
        "guestbook/ui-deployment.yaml": deployment("ui"),
        "kustomize-guestbook/kustomization.yaml": kustomization("ui.yaml", namePrefix="k-"),
        "kustomize-guestbook/ui.yaml": deployment("ui"),
        "helm-guestbook/Chart.yaml": "apiVersion: v2\nname: guestbook\nversion: 0.1.0\n",
        "helm-guestbook/templates/deployment.yaml":
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ .Release.Name }}\n"})
    roots = [r.relative_to(repo.resolve()).as_posix() for r in find_roots(repo)]
    assert roots == ["apps/templates", "guestbook", "kustomize-guestbook"]
    code, out, _ = run("validate", str(repo), "--skip-unknown")
    assert code == 0, out
    assert "skipped: apps/templates/guestbook.yaml: Application argocd/guestbook" in out


def test_components_and_their_patches_only_count_inside_what_uses_them(tmp_path: Path) -> None:
    """Google's demo: plain manifests, a kustomize base, a Component whose patch is not an
    object on its own, and a skaffold file at the root that is no cluster object."""
    repo = write_tree(tmp_path / "demo", {
        "skaffold.yaml": "apiVersion: skaffold/v4beta6\nkind: Config\n",
        "kubernetes-manifests/frontend.yaml": deployment("frontend"),
        "kustomize/base/kustomization.yaml": kustomization("frontend.yaml"),
        "kustomize/base/frontend.yaml": deployment("frontend"),
        "kustomize/components/replicas/kustomization.yaml": {
            "apiVersion": "kustomize.config.k8s.io/v1alpha1", "kind": "Component",
            "patches": [{"path": "patch.yaml"}]},
        "kustomize/components/replicas/patch.yaml": {
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "frontend"},
            "spec": {"replicas": 3}},
        "kustomize/prod/kustomization.yaml": kustomization(
            "../base", components=["../components/replicas"])})
    roots = [r.relative_to(repo.resolve()).as_posix() for r in find_roots(repo)]
    assert roots == ["kubernetes-manifests", "kustomize/base", "kustomize/prod"]
    code, out, _ = run("validate", str(repo))
    assert code == 0 and "3 of 3 valid" in out, out
    assert "not validated: 1 manifest at the root of the repository, which is no entry point " \
        "(skaffold.yaml)" in " ".join(out.split()), out


def test_a_folder_inside_a_repository_is_validated_with_its_own_manifests(
        tmp_path: Path) -> None:
    """kube-prometheus's `manifests`: objects in the folder itself and CRDs in `setup`."""
    repo = write_tree(tmp_path / "r", {
        "skaffold.yaml": "apiVersion: skaffold/v4beta6\nkind: Config\n",
        "manifests/top.yaml": {**configmap("top", {}), "data": {"count": 1}},
        "manifests/setup/ns.yaml": {"apiVersion": "v1", "kind": "Namespace",
                                    "metadata": {"name": "monitoring"}}})
    commit_all(repo, "manifests")
    roots = [r.relative_to(repo.resolve()).as_posix() for r in find_roots(repo / "manifests")]
    assert roots == ["manifests"]
    code, out, _ = run("validate", str(repo / "manifests"))
    assert code == 1 and "FAIL ." in out and 'data.count: 1 is not of types' in out, out
    assert [r.relative_to(repo.resolve()).as_posix() for r in find_roots(repo)] == ["manifests"]


def test_a_folder_of_plain_manifests_renders_as_flux_would(tmp_path: Path) -> None:
    """Every manifest under it, and each sub-folder with a kustomization as a whole; files
    that are no manifest (values, notes) and hidden ones are left out."""
    repo = write_tree(tmp_path / "r", {
        "cluster/a.yaml": configmap("a", {"k": "1"}),
        "cluster/nested/b.yml": configmap("b", {"k": "2"}),
        "cluster/values.yaml": "replicas: 3\n",
        "cluster/.hidden/c.yaml": configmap("c", {"k": "3"}),
        "cluster/sub/kustomization.yaml": kustomization("d.yaml", namePrefix="p-"),
        "cluster/sub/d.yaml": configmap("d", {"k": "4"}),
        "cluster/sub/ignored.yaml": configmap("ignored", {"k": "5"})})
    sha = commit_all(repo, "plain")
    for args in ((), ("--rev", sha)):
        code, out, err = run("render", str(repo / "cluster"), *args)
        assert code == 0, err
        names = [line.split(": ", 1)[1] for line in out.splitlines()
                 if line.startswith("  name: ")]
        assert names == ["a", "b", "p-d"], out


def test_kustomize_warnings_reach_the_user(tmp_path: Path) -> None:
    repo = write_tree(tmp_path / "r", {
        "app/kustomization.yaml": kustomization("cm.yaml", commonLabels={"team": "a"}),
        "app/cm.yaml": configmap("a", {"k": "1"})})
    commit_all(repo, "deprecated")
    code, _, err = run("render", str(repo / "app"))
    assert code == 0 and "warning: " in err and "commonLabels" in err, err
    code, out, _ = run("validate", str(repo))
    assert code == 0 and "warning: kustomize: " in out and "commonLabels" in out, out
