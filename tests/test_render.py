"""`plinth render` / `validate`: the real kustomize's bytes, strict schemas, hermetic sources."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from plinth.cli import cli
from plinth.cli.render import find_roots
from plinth.localenv.tools import tool_env
from tests.gitops_repos import commit_all, configmap, kustomization, write_tree

pytestmark = pytest.mark.usefixtures("kustomize")


@pytest.fixture(scope="module")
def scaffolded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = tmp_path_factory.mktemp("scaffolded") / "gitops"
    result = CliRunner().invoke(cli, [
        "new", str(repo), "--cluster", "local", "--env", "dev", "--env", "staging", "--env",
        "prod", "--app", "web=ghcr.io/acme/web:1.2.3", "--app", "api=acme/api:2.0.0",
        "--registry", "registry.acme.test:5000"])
    assert result.exit_code == 0, result.output
    return repo


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_every_overlay_of_a_fresh_scaffold_renders_and_validates(scaffolded: Path) -> None:
    roots = [p.relative_to(scaffolded.resolve()).as_posix() for p in find_roots(scaffolded)]
    assert roots == ["apps/base/api", "apps/base/web", "apps/overlays/dev", "apps/overlays/prod",
                     "apps/overlays/staging", "clusters/local", "clusters/local/plinth-system",
                     "infrastructure/base", "infrastructure/overlays/dev",
                     "infrastructure/overlays/prod", "infrastructure/overlays/staging"]
    code, out, _ = run("validate", str(scaffolded))
    assert code == 0, out
    assert "11 of 11 valid" in out


def test_render_output_is_exactly_kubectl_kustomize(scaffolded: Path, kubectl: Path) -> None:
    overlay = scaffolded / "apps/overlays/prod"
    expected = subprocess.run([str(kubectl), "kustomize", str(overlay)], capture_output=True,
                              text=True, check=True, env=tool_env()).stdout
    code, out, _ = run("render", str(overlay))
    assert code == 0
    assert out == expected
    assert "image: registry.acme.test:5000/acme/api:2.0.0" in out


def test_a_bare_equals_sign_reads_as_the_string_kustomize_reads(tmp_path: Path,
                                                               kubectl: Path) -> None:
    """Go's YAML reads a plain `=` as a string; PyYAML's safe loader could not load it at all
    (prometheus-operator's CRDs have the enum `[ '!=', =, =~ ]`)."""
    crd = widget_crd({"type": "object", "properties": {"spec": {"type": "object", "properties": {
        "op": {"type": "string", "enum": ["!=", "=", "=~"]}}}}})
    repo = write_tree(tmp_path / "repo", {
        "o/kustomization.yaml": "resources: [crd.yaml, w.yaml]\ncommonAnnotations: {op: =}\n",
        "o/crd.yaml": crd,
        "o/w.yaml": "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n"
                    "spec: {op: =}\n"})
    expected = subprocess.run([str(kubectl), "kustomize", str(repo / "o")], capture_output=True,
                              text=True, check=True, env=tool_env()).stdout
    assert "op: =\n" in expected
    code, out, err = run("render", str(repo / "o"))
    assert (code, err) == (0, "")
    assert out == expected
    write_tree(repo, {"o/w.yaml": "apiVersion: example.com/v1\nkind: Widget\n"
                                  "metadata: {name: w}\nspec: {op: ==}\n"})
    code, _, err = run("render", str(repo / "o"))
    assert code == 2 and 'w.yaml: Widget w: spec.op: "==" is not one of "!=", "=" or' in err


def test_local_paths_with_dots_are_read_from_the_tree_as_kustomize_reads_them(
        tmp_path: Path, kubectl: Path) -> None:
    """Only a scheme, a `user@` or github.com makes an entry remote for kustomize."""
    repo = write_tree(tmp_path / "repo", {
        "o/kustomization.yaml": kustomization("app.example.com/cm.yaml", "base.v2"),
        "o/app.example.com/cm.yaml": configmap("dotted", {"a": "1"}),
        "o/base.v2/kustomization.yaml": kustomization("cm.yaml"),
        "o/base.v2/cm.yaml": configmap("versioned", {"b": "2"}),
        "plain/dir.golden/cm.yaml": configmap("golden", {"c": "3"})})
    commit_all(repo, "dots")
    expected = subprocess.run([str(kubectl), "kustomize", str(repo / "o")], capture_output=True,
                              text=True, check=True, env=tool_env()).stdout
    assert run("render", str(repo / "o")) == (0, expected, "")
    code, out, err = run("render", str(repo / "plain"))
    assert (code, err) == (0, "") and "name: golden" in out


@pytest.mark.usefixtures("python_without_tar_filters")
def test_render_a_git_revision(tmp_path: Path) -> None:
    repo = write_tree(tmp_path / "repo", {
        "app/kustomization.yaml": kustomization("cm.yaml"),
        "app/cm.yaml": configmap("settings", {"colour": "blue"})})
    first = commit_all(repo, "blue")
    write_tree(repo, {"app/cm.yaml": configmap("settings", {"colour": "green"})})
    commit_all(repo, "green")
    write_tree(repo, {"app/cm.yaml": configmap("settings", {"colour": "uncommitted"})})
    assert "colour: blue" in run("render", str(repo / "app"), "--rev", first)[1]
    assert "colour: green" in run("render", str(repo / "app"), "--rev", "HEAD")[1]
    assert "colour: uncommitted" in run("render", str(repo / "app"))[1]
    code, _, err = run("render", str(repo / "app"), "--rev", "no-such-rev")
    assert code == 2 and "unknown revision 'no-such-rev'" in err


@pytest.mark.usefixtures("python_without_tar_filters")
def test_a_revision_with_a_link_out_of_the_repo_is_refused_in_one_line(tmp_path: Path) -> None:
    repo = write_tree(tmp_path / "repo", {"app/kustomization.yaml": kustomization("cm.yaml"),
                                          "app/cm.yaml": configmap("settings", {"a": "b"})})
    (repo / "app" / "passwd").symlink_to("/etc/passwd")
    commit_all(repo, "a link to /etc/passwd")
    code, out, err = run("render", str(repo / "app"), "--rev", "HEAD")
    assert code == 2 and out == ""
    assert err.strip().endswith(
        "revision 'HEAD': app/passwd: links to the absolute path '/etc/passwd'")
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def widget_crd(schema: object) -> dict[str, object]:
    """The CRD of example.com/v1 Widget, with `schema` as its openAPIV3Schema."""
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"},
            "spec": {"group": "example.com", "scope": "Namespaced",
                     "names": {"kind": "Widget", "plural": "widgets"},
                     "versions": [{"name": "v1", "served": True, "storage": True,
                                   "schema": {"openAPIV3Schema": schema}}]}}


BAD_INPUTS = {
    "malformed_yaml": ({"o/kustomization.yaml": kustomization("cm.yaml"),
                        "o/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: [\n"},
                       "o: kustomize:"),
    "missing_base": ({"o/kustomization.yaml": kustomization("../base")}, "o: kustomize:"),
    "path_escape": ({"o/kustomization.yaml": kustomization("../../outside")},
                    "o/kustomization.yaml: resources entry '../../outside' resolves outside"),
    "symlink_escape": ({"o/kustomization.yaml": kustomization("link.yaml")},
                       "o/kustomization.yaml: resources entry 'link.yaml': o/link.yaml: links to "
                       "the absolute path"),
    "malformed_kustomization": ({"o/kustomization.yaml": "resources: [../nope\n"},
                                "o/kustomization.yaml: not valid YAML: line 2, column 1: while "
                                "parsing a flow sequence, did not find expected ',' or ']'"),
    "empty_kustomization": ({"o/kustomization.yaml": ""},
                            "o/kustomization.yaml: expected a mapping of kustomization fields, "
                            "got an empty file"),
    "list_kustomization": ({"o/kustomization.yaml": "- cm.yaml\n"},
                           "o/kustomization.yaml: expected a mapping of kustomization fields, "
                           "got a list"),
    "remote_base": ({"o/kustomization.yaml": kustomization(
        "https://github.com/acme/gitops//base?ref=v1")},
        "remote reference; remote bases are disabled"),
    "remote_base_github_shorthand": ({"o/kustomization.yaml": kustomization(
        "GitHub.com/acme/gitops/base?ref=v1")}, "remote reference; remote bases are disabled"),
    "remote_base_scp_style": ({"o/kustomization.yaml": kustomization(
        "deploy@git.acme.test:gitops/base")}, "remote reference; remote bases are disabled"),
    "helm_chart": ({"o/kustomization.yaml": kustomization(
        helmCharts=[{"name": "redis", "repo": "https://charts.example"}])},
        "helmCharts pull charts from the network"),
    "unknown_crd_field": ({"o/kustomization.yaml": kustomization("ks.yaml"), "o/ks.yaml": {
        "apiVersion": "plinth.dev/v1", "kind": "Kustomization",
        "metadata": {"name": "apps", "namespace": "plinth-system"},
        "spec": {"sourceRef": {"name": "gitops"}, "path": "./apps", "prunes": True}}},
        "  o/ks.yaml: Kustomization plinth-system/apps: spec: Additional properties are not "
        "allowed ('prunes' was unexpected)"),
    "wrong_field_type": ({"o/kustomization.yaml": kustomization("deploy.yaml"),
                          "o/deploy.yaml": {"apiVersion": "apps/v1", "kind": "Deployment",
                                            "metadata": {"name": "web"},
                                            "spec": {"replicas": "two", "selector": {},
                                                     "template": {}}}},
                         '  o/deploy.yaml: Deployment web: spec.replicas: "two" is not of types'),
    "invalid_object_in_a_base": ({"o/kustomization.yaml": kustomization("../base"),
                                  "base/kustomization.yaml": kustomization("deploy.yaml"),
                                  "base/deploy.yaml": {"apiVersion": "apps/v1",
                                                       "kind": "Deployment",
                                                       "metadata": {"name": "web"},
                                                       "spec": {"replicas": "two",
                                                                "selector": {},
                                                                "template": {}}}},
                                 "  base/deploy.yaml: Deployment web: spec.replicas"),
    # A repository's CRD is input too: its schema may point anywhere, and nothing is fetched.
    "crd_schema_reaching_out": ({"o/kustomization.yaml": kustomization("crd.yaml", "w.yaml"),
                                 "o/crd.yaml": widget_crd({"type": "object", "properties": {
                                     "spec": {"$ref": "file:///etc/passwd"}}}),
                                 "o/w.yaml": {"apiVersion": "example.com/v1", "kind": "Widget",
                                              "metadata": {"name": "w"}, "spec": {}}},
                                "  o/w.yaml: Widget w: the CRD schema of example.com/v1 Widget is "
                                "not a usable JSON schema: Resource 'file:///etc/passwd' is not "
                                "present in a registry and retrieving it failed: Retrieval is "
                                "disabled"),
    "crd_schema_malformed": ({"o/kustomization.yaml": kustomization("crd.yaml", "w.yaml"),
                              "o/crd.yaml": widget_crd({"type": "object",
                                                        "properties": "spec"}),
                              "o/w.yaml": {"apiVersion": "example.com/v1", "kind": "Widget",
                                           "metadata": {"name": "w"}}},
                             "  o/w.yaml: Widget w: the CRD schema of example.com/v1 Widget is not "
                             'a usable JSON schema: "spec" is not of type "object"'),
    "crd_not_shaped_as_one": ({"o/kustomization.yaml": kustomization("crd.yaml"),
                               "o/crd.yaml": {"apiVersion": "apiextensions.k8s.io/v1",
                                              "kind": "CustomResourceDefinition",
                                              "metadata": {"name": "widgets.example.com"},
                                              "spec": {"group": "example.com",
                                                       "names": "Widget", "versions": ["v1"]}}},
                              "  o/crd.yaml: CustomResourceDefinition widgets.example.com: "
                              'spec.names: "Widget" is not of types "null", "object"'),
    "nul_in_a_path": ({"o/kustomization.yaml": kustomization("cm.yaml\0"),
                       "o/cm.yaml": configmap("c", {"k": "v"})},
                      "o/kustomization.yaml: resources entry 'cm.yaml\\x00': holds a NUL byte"),
    "unknown_kind": ({"o/kustomization.yaml": kustomization("x.yaml"),
                      "o/x.yaml": {"apiVersion": "example.com/v1", "kind": "Widget",
                                   "metadata": {"name": "w"}}},
                     "no schema for example.com/v1 Widget"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_fails_clearly_and_writes_nothing(case: str, tmp_path: Path) -> None:
    files, message = BAD_INPUTS[case]
    repo = write_tree(tmp_path / "repo", files)
    if case == "symlink_escape":
        (tmp_path / "outside").mkdir()
        (tmp_path / "outside" / "kustomization.yaml").write_text("resources: []\n")
        (repo / "o" / "link.yaml").symlink_to(tmp_path / "outside" / "kustomization.yaml")
    commit_all(repo, case)
    out_file = tmp_path / "out.yaml"
    code, out, err = run("render", str(repo / "o"), "-o", str(out_file))
    assert code == 2
    assert message in err
    assert len(err.splitlines()) == 1 or err.startswith("error: invalid objects:\n"), err
    assert "Traceback" not in err and out == ""
    assert not out_file.exists()
    assert list(tmp_path.glob(".out.yaml*")) == []


def test_crd_and_its_custom_resource_in_one_render_validate(tmp_path: Path) -> None:
    crd = widget_crd({"type": "object", "properties": {
        "spec": {"type": "object", "properties": {"size": {"type": "integer"}}}}})
    widget = {"apiVersion": "example.com/v1", "kind": "Widget",
              "metadata": {"name": "w", "namespace": "apps"}, "spec": {"size": 3}}
    repo = write_tree(tmp_path / "repo", {"o/kustomization.yaml": kustomization("crd.yaml", "w.yaml"),
                                          "o/crd.yaml": crd, "o/w.yaml": widget})
    assert run("render", str(repo / "o"))[0] == 0
    write_tree(repo, {"o/w.yaml": {**widget, "spec": {"size": "big"}}})
    code, _, err = run("render", str(repo / "o"))
    assert code == 2 and 'Widget apps/w: spec.size: "big" is not of type "integer"' in err


def test_an_api_kubernetes_no_longer_serves_fails_even_when_unknown_kinds_are_skipped(
        tmp_path: Path) -> None:
    """No CRD can serve a built-in group, so a removed API is an error, not an unknown kind."""
    ingress = {"apiVersion": "extensions/v1beta1", "kind": "Ingress",
               "metadata": {"name": "web", "namespace": "apps"}, "spec": {}}
    widget = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    repo = write_tree(tmp_path / "repo", {"o/kustomization.yaml": kustomization("i.yaml", "w.yaml"),
                                          "o/i.yaml": ingress, "o/w.yaml": widget})
    code, _, err = run("render", str(repo / "o"), "--skip-unknown")
    assert code == 2
    assert ("Ingress apps/web: Kubernetes 1.33 does not serve extensions/v1beta1 Ingress; it "
            "serves Ingress as networking.k8s.io/v1") in err
    assert "Widget" not in err


def test_a_crd_schema_is_read_in_openapi_and_go_terms_as_the_api_server_reads_it(
        tmp_path: Path) -> None:
    """prometheus-operator's PrometheusRule has `pattern: ^(?i)(abort|warn)?$`, Go regex syntax
    that ECMA's does not have; OpenAPI 3.0 has `exclusiveMinimum: true` and `nullable`."""
    crd = widget_crd({"type": "object", "properties": {"spec": {"type": "object", "properties": {
        "mode": {"type": "string", "pattern": "^(?i)(abort|warn)?$"},
        "size": {"type": "integer", "minimum": 0, "exclusiveMinimum": True},
        "note": {"type": "string", "nullable": True}}}}})
    widget = {"apiVersion": "example.com/v1", "kind": "Widget",
              "metadata": {"name": "w", "namespace": "apps"},
              "spec": {"mode": "ABORT", "size": 1, "note": None}}
    repo = write_tree(tmp_path / "repo", {"o/kustomization.yaml": kustomization("crd.yaml",
                                                                                 "w.yaml"),
                                          "o/crd.yaml": crd, "o/w.yaml": widget})
    assert run("render", str(repo / "o"))[0] == 0
    write_tree(repo, {"o/w.yaml": {**widget, "spec": {"mode": "stop", "size": 0, "note": 3}}})
    code, _, err = run("render", str(repo / "o"))
    assert code == 2
    assert [line.split(": ", 3)[-1] for line in err.splitlines()[1:]] == [
        '"stop" does not match "^(?i)(abort|warn)?$"', "3 is not of types \"null\", \"string\"",
        "0 is less than or equal to the minimum of 0"], err


def test_every_problem_of_an_object_is_listed_in_path_order(tmp_path: Path) -> None:
    deploy = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
              "spec": {"replicas": "two", "paused": "no", "bogus": 1, "selector": {},
                       "template": {}}}
    repo = write_tree(tmp_path / "repo", {"o/kustomization.yaml": kustomization("d.yaml"),
                                          "o/d.yaml": deploy})
    commit_all(repo, "three problems")
    code, _, err = run("render", str(repo / "o"))
    assert code == 2
    listed = [line.strip() for line in err.splitlines() if line.startswith("  ")]
    assert listed == [
        "o/d.yaml: Deployment web: spec: Additional properties are not allowed ('bogus' was "
        "unexpected)",
        'o/d.yaml: Deployment web: spec.paused: "no" is not of types "null", "boolean"',
        'o/d.yaml: Deployment web: spec.replicas: "two" is not of types "null", "integer"',
    ], err


def test_validate_reports_each_broken_overlay(scaffolded: Path, tmp_path: Path) -> None:
    repo = tmp_path / "gitops"
    shutil.copytree(scaffolded, repo)
    (repo / "apps/overlays/staging/kustomization.yaml").write_text("resources: [../../nope\n")
    code, out, _ = run("validate", str(repo))
    assert code == 1
    assert "FAIL apps/overlays/staging" in out and "10 of 11 valid" in out


def test_render_a_revision_of_a_path_gone_from_the_work_tree(tmp_path: Path) -> None:
    repo = write_tree(tmp_path / "repo", {"app/kustomization.yaml": kustomization("cm.yaml"),
                                          "app/cm.yaml": configmap("settings", {"colour": "blue"})})
    first = commit_all(repo, "blue")
    shutil.rmtree(repo / "app")
    commit_all(repo, "retired")
    code, out, _ = run("render", str(repo / "app"), "--rev", first)
    assert code == 0 and "colour: blue" in out
    code, _, err = run("render", str(repo / "app"))
    assert code == 2 and err.strip() == f"error: {repo / 'app'}: no such overlay directory"


def test_a_render_names_its_inputs_and_what_touches_them(tmp_path: Path) -> None:
    """What kustomize was given: the folders it builds (with all beneath), the files and links
    it reads and their targets; another folder of the repository is not among them."""
    from plinth.render import reads_any, render

    repo = write_tree(tmp_path / "repo", {
        "apps/web/kustomization.yaml": kustomization("cm.yaml", "../../base", "shared"),
        "apps/web/cm.yaml": configmap("web", {"a": "1"}),
        "base/kustomization.yaml": kustomization("base.yaml"),
        "base/base.yaml": configmap("base", {"a": "1"}),
        "common/kustomization.yaml": kustomization("shared.yaml"),
        "common/shared.yaml": configmap("shared", {"a": "1"}),
        "apps/other/kustomization.yaml": kustomization("cm.yaml"),
        "apps/other/cm.yaml": configmap("other", {"a": "1"}),
        "README.md": "# repo\n"})
    (repo / "apps/web/shared").symlink_to("../../common")
    rendered = render(repo / "apps/web", repo_root=repo)
    assert {"apps/web", "apps/web/shared", "base", "common"} <= rendered.inputs
    assert len(rendered.objects) == 3
    for touched in ("apps/web/cm.yaml", "apps/web/added.yaml", "base/base.yaml",
                    "common/shared.yaml", "apps/web/shared"):
        assert reads_any(rendered.inputs, [touched]), touched
    for untouched in ("apps/other/cm.yaml", "README.md", "commons/x.yaml", "base2/x.yaml"):
        assert not reads_any(rendered.inputs, [untouched]), untouched
    root = render(write_tree(tmp_path / "flat", {"kustomization.yaml": kustomization("a.yaml"),
                                                 "a.yaml": configmap("a", {})}),
                  repo_root=tmp_path / "flat")
    assert reads_any(root.inputs, ["anything/at/all.yaml"])
