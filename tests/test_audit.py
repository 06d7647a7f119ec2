"""`plinth audit`: a stack change under review, in a real git project. The GitOps section is the
stack's rendered output at the base revision against the working tree; the three formats say
the same; a part that cannot be read says why and the rest is still reported; the HTML page
renders in headless Chromium with every section."""
from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
from pathlib import Path

import git
import pytest
from click.testing import CliRunner

from plinth.audit import LiveEdit, LiveKustomization, Report, ResourceChange, Update, audit
from plinth.audit_report import to_html, to_json, to_markdown
from plinth.cli import cli
from plinth.diff import diff_objects

ROOT = Path(__file__).resolve().parents[1]
SECRET = "s3cr3t-value-nobody-may-read"


def project(tmp_path: Path) -> Path:
    """A git project holding the repository's local stack file, committed."""
    work = tmp_path / "project"
    (work / "stacks").mkdir(parents=True)
    shutil.copy(ROOT / "stacks" / "Pulumi.local.yaml", work / "stacks")
    repo = git.Repo.init(work, initial_branch="main")
    repo.index.add(["stacks/Pulumi.local.yaml"])
    repo.index.commit("the local stack")
    return work


def edit(work: Path, old: str, new: str) -> None:
    path = work / "stacks" / "Pulumi.local.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def test_a_config_edit_shows_as_the_objects_it_changes(tmp_path: Path) -> None:
    work = project(tmp_path)
    edit(work, "        tag: 1.0.0", "        tag: 1.0.2")
    report = audit(work, "local", "HEAD")
    changed = {str(d.key): d for d in report.gitops}
    web = changed["Deployment.apps apps/web"]
    assert [(c.path, c.old, c.new) for c in web.changes] == [
        ("spec.template.spec.containers[name=web].image", "plinth/web:1.0.0",
         "plinth/web:1.0.2")]
    assert report.changed and report.infrastructure_error and "no Pulumi.yaml" in \
        report.infrastructure_error
    assert report.commits and report.commits[0].subject == "the local stack"


def test_an_unchanged_stack_exits_0_and_a_changed_one_1(tmp_path: Path) -> None:
    work = project(tmp_path)
    args = ["audit", "--stack", "local", "--project", str(work), "--format", "json"]
    same = CliRunner().invoke(cli, args)
    assert same.exit_code == 0, same.output
    assert json.loads(same.stdout)["gitops"]["changes"] == []
    edit(work, "        replicas: 1", "        replicas: 3")
    changed = CliRunner().invoke(cli, args)
    assert changed.exit_code == 1, changed.output
    body = json.loads(changed.stdout)
    assert {c["object"] for c in body["gitops"]["changes"]} >= {"Deployment.apps apps/web"}
    missing = CliRunner().invoke(cli, ["audit", "--stack", "nope", "--project", str(work)])
    assert missing.exit_code == 2 and "no such stack file" in missing.output


def sample() -> Report:
    secret_old = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db",
                                                                      "namespace": "apps"},
                  "stringData": {"password": SECRET}}
    secret_new = {**secret_old, "stringData": {"password": SECRET + "2"}}
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a|b",
                                                                    "namespace": "apps"},
              "data": {"html": "<b>plain</b>"}}
    scripted = {**config, "data": {"html": "<script>alert(1)</script>"}}
    report = Report("dev", "origin/main")
    report.infrastructure = [
        ResourceChange("update", "plinth:gitops:GitOpsRepo", "gitops", ["spec"]),
        ResourceChange("create", "pulumi-python:dynamic:Resource", "app-image-api", [])]
    report.gitops = diff_objects([secret_old, config], [secret_new, scripted])
    report.live = [LiveKustomization("plinth-system/apps", "True", "main@sha1:abc", "ok", 3,
                                     ["ConfigMap/apps/gone"],
                                     [LiveEdit("Deployment/apps/web", "kubectl-edit",
                                               "Update", "2026-11-24T10:00:00Z")])]
    report.updates = [Update(7, "update", "succeeded", "2026-11-24T09:00:00Z",
                             {"same": 40, "update": 1})]
    return report


def test_the_three_formats_say_the_same_and_never_a_secret() -> None:
    report = sample()
    body = json.loads(to_json(report))
    markdown, page = to_markdown(report), to_html(report)
    assert body["changed"] and body["drifted"]
    for change in body["infrastructure"]["changes"]:
        assert f"| {change['type']} | {change['name']} |" in markdown
        assert f"<td>{change['name']}</td>" in page
    for change in body["gitops"]["changes"]:
        assert change["object"].replace("|", "\\|") in markdown.replace("|", "\\|")
    for kustomization in body["live"]["kustomizations"]:
        assert kustomization["name"] in markdown and kustomization["name"] in page
        for missing in kustomization["missing"]:
            assert f"missing {missing}" in markdown and f"missing {missing}" in page
    assert "edited by kubectl-edit" in markdown and "pulumi update #7" in markdown
    for text in (json.dumps(body), markdown, page):
        assert SECRET not in text
    assert "<script>" not in page and "&lt;script&gt;" in page


def _chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        message = "no chromium: scripts/setup installs Debian's package"
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the browser test: {message}")
        pytest.skip(message)
    return found


def test_the_html_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    chromium = _chromium()
    page = tmp_path / "audit.html"
    page.write_text(to_html(sample()))
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([chromium, *flags, "--dump-dom", page.as_uri()], capture_output=True,
                         text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    for title in ("Infrastructure plan", "GitOps change (against origin/main)", "Live state",
                  "Who changed what"):
        assert f"<h2>{title}</h2>" in dom.stdout, title
    shot = tmp_path / "audit.png"
    subprocess.run([chromium, *flags, f"--screenshot={shot}", "--window-size=1280,1400",
                    page.as_uri()], capture_output=True, timeout=120, check=True)
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1280, 1400) and len(data) > 20_000  # a page, not a blank
