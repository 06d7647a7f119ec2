"""Image automation end to end: the real registry (htpasswd), real git, the real API server.
A tag pushed to the registry becomes a commit of only the marked field, and the controller then
applies the new image."""
from __future__ import annotations

import base64
import json
from typing import Any

import git
from click.testing import CliRunner

from plinth.cli import cli as cli_main
from plinth.localenv.forge import LocalForge
from plinth.localenv.gitdaemon import GitDaemon
from plinth.localenv.process import free_port
from plinth.localenv.registry import LocalRegistry
from tests.controller.harness import Scenario, wait_for
from tests.controller.images import push_image
from tests.controller.forge_repo import ForgeRepo


def _deployment(image: str) -> dict[str, Any]:
    labels = {"app": "web"}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"replicas": 0, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "web", "image": image}]}}}}


def _registry_secret(scenario: Scenario, registry: LocalRegistry, password: str) -> None:
    user, _ = registry.credentials()
    config = json.dumps({"auths": {registry.host: {"username": user, "password": password}}})
    scenario.kube.apply({"apiVersion": "v1", "kind": "Secret", "type":
                         "kubernetes.io/dockerconfigjson",
                         "metadata": {"name": "registry", "namespace": scenario.namespace},
                         "data": {".dockerconfigjson": base64.b64encode(config.encode()).decode()}})


def _image_objects(scenario: Scenario, image: str, **policy: Any) -> None:
    ns = scenario.namespace
    scenario.kube.apply(
        {"apiVersion": "plinth.dev/v1", "kind": "ImageRepository",
         "metadata": {"name": "web", "namespace": ns},
         "spec": {"image": image, "interval": "1s", "secretRef": {"name": "registry"}}},
        {"apiVersion": "plinth.dev/v1", "kind": "ImagePolicy",
         "metadata": {"name": "web", "namespace": ns},
         "spec": {"imageRepositoryRef": {"name": "web"}, "interval": "1s",
                  **(policy or {"policy": {"semver": {"range": ">=1.0.0"}}})}})


OVERLAY = """\
# Marked: the automation owns newTag, nothing else.
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - deployment.yaml
images:
  - name: {image}
    newTag: 1.0.0 # {{"$imagepolicy": "{ns}:web:tag"}}
"""


def _marked_repo(scenario: Scenario, registry: LocalRegistry, tag: str) -> tuple[str, str]:
    """An image with one tag, and a GitOps repo whose overlay marks its tag; (image, commit)."""
    ns = scenario.namespace
    image = f"{registry.host}/{ns}/web"
    push_image(registry, f"{ns}/web", tag)
    head = scenario.repo.commit({"app/kustomization.yaml": OVERLAY.format(image=image, ns=ns),
                                 "app/deployment.yaml": _deployment(f"{image}:0.0.1")})
    scenario.git_repository()
    return image, head


def test_new_tag_is_committed_and_applied(scenario: Scenario, oci_registry: LocalRegistry,
                                          git_server: GitDaemon) -> None:
    ns = scenario.namespace
    image = f"{oci_registry.host}/{ns}/web"
    for tag in ("1.0.0", "1.1.0", "2.0.0-rc.1"):
        push_image(oci_registry, f"{ns}/web", tag)
    overlay = OVERLAY.format(image=image, ns=ns)
    scenario.sync({"app/kustomization.yaml": overlay,
                   "app/deployment.yaml": _deployment(f"{image}:0.0.1")},
                  targetNamespace=ns)
    _registry_secret(scenario, oci_registry, oci_registry.credentials()[1])
    _image_objects(scenario, image)
    scenario.kube.apply({
        "apiVersion": "plinth.dev/v1", "kind": "ImageUpdateAutomation",
        "metadata": {"name": "images", "namespace": ns},
        "spec": {"sourceRef": {"name": "repo"}, "interval": "1s", "update": {"path": "./app"},
                 "git": {"commit": {"author": {"name": "bot", "email": "bot@example.com"}}}}})

    def deployed() -> str:
        live = scenario.kube.get("deployment", "web", ns) or {}
        return str(live.get("spec", {}).get("template", {}).get("spec", {})
                   .get("containers", [{}])[0].get("image"))
    wait_for(lambda: deployed() == f"{image}:1.1.0", 60, "1.1.0 to be committed and applied")
    bare = git.Repo(git_server.repos / f"{ns}.git")
    tip = bare.commit("main")
    assert tip.author.email == "bot@example.com"
    assert f"app/kustomization.yaml:8 {ns}:web: 1.0.0 -> 1.1.0" in tip.message
    committed = (tip.tree / "app" / "kustomization.yaml").data_stream.read().decode()
    assert committed == overlay.replace("newTag: 1.0.0", "newTag: 1.1.0")

    push_image(oci_registry, f"{ns}/web", "1.2.0")  # CI pushes a new release later
    wait_for(lambda: deployed() == f"{image}:1.2.0", 60, "1.2.0 to follow")
    policy = scenario.status("web", "imagepolicies.plinth.dev")
    assert policy["latestRef"]["tag"] == "1.2.0"
    assert policy["observedPreviousRef"]["tag"] == "1.1.0"

    cli = CliRunner()
    listed = cli.invoke(cli_main, ["images", "--kubeconfig", str(scenario.kube.kubeconfig),
                                   "-n", ns, "-o", "json"])
    assert listed.exit_code == 0, listed.output
    (row,) = json.loads(listed.output)
    assert (row["policy"], row["image"], row["tags"], row["latest"], row["previous"],
            row["ready"]) == ("web", image, 4, "1.2.0", "1.1.0", "True")
    table = cli.invoke(cli_main, ["images", "--kubeconfig", str(scenario.kube.kubeconfig),
                                  "-n", ns])
    assert table.exit_code == 0 and "1.2.0" in table.output and image in table.output


def test_wrong_registry_credentials_say_so_and_commit_nothing(
        scenario: Scenario, oci_registry: LocalRegistry, git_server: GitDaemon) -> None:
    ns = scenario.namespace
    image, head = _marked_repo(scenario, oci_registry, "1.5.0")
    _registry_secret(scenario, oci_registry, "wrong-s3cret")
    _image_objects(scenario, image)
    scenario.kube.apply({
        "apiVersion": "plinth.dev/v1", "kind": "ImageUpdateAutomation",
        "metadata": {"name": "images", "namespace": ns},
        "spec": {"sourceRef": {"name": "repo"}, "interval": "1s", "update": {"path": "./app"},
                 "git": {"commit": {"author": {"email": "bot@example.com"}}}}})
    ready = wait_for(lambda: (c := scenario.ready("web", "imagerepositories.plinth.dev"))
                     .get("status") == "False" and c, 30, "the scan to fail")
    assert "unauthorized" in ready["message"] and "wrong-s3cret" not in ready["message"]
    wait_for(lambda: scenario.ready("images", "imageupdateautomations.plinth.dev")
             .get("status") == "True", 30, "the automation to run")
    assert git.Repo(git_server.repos / f"{ns}.git").commit("main").hexsha == head


def test_digest_pinning_follows_a_repushed_mutable_tag(
        scenario: Scenario, oci_registry: LocalRegistry) -> None:
    ns = scenario.namespace
    image = f"{oci_registry.host}/{ns}/app"
    first = push_image(oci_registry, f"{ns}/app", "main", "build 1")
    _registry_secret(scenario, oci_registry, oci_registry.credentials()[1])
    _image_objects(scenario, image, policy={"alphabetical": {}},
                   filterTags={"pattern": "^main$"}, digestReflectionPolicy="Always")

    def digest() -> str:
        return str(scenario.status("web", "imagepolicies.plinth.dev")
                   .get("latestRef", {}).get("digest"))
    wait_for(lambda: digest() == first, 30, "the digest of main")
    second = push_image(oci_registry, f"{ns}/app", "main", "build 2")
    wait_for(lambda: digest() == second, 30, "the new digest of main")


def test_registry_down_is_reported(scenario: Scenario) -> None:
    dead = f"127.0.0.1:{free_port()}"
    scenario.kube.apply({"apiVersion": "plinth.dev/v1", "kind": "ImageRepository",
                         "metadata": {"name": "gone", "namespace": scenario.namespace},
                         "spec": {"image": f"{dead}/team/app", "interval": "1s",
                                  "timeout": "2s"}})
    ready = wait_for(lambda: (c := scenario.ready("gone", "imagerepositories.plinth.dev"))
                     .get("status") == "False" and c, 30, "the scan to fail")
    assert ready["reason"] == "ScanFailed" and dead in ready["message"]


def test_push_branch_and_message_template(scenario: Scenario, oci_registry: LocalRegistry,
                                          git_server: GitDaemon) -> None:
    """A pull-request flow: commits go to their own branch, main stays as it is."""
    ns = scenario.namespace
    image, head = _marked_repo(scenario, oci_registry, "1.3.0")
    _registry_secret(scenario, oci_registry, oci_registry.credentials()[1])
    _image_objects(scenario, image)
    template = "images: {% for c in changes %}{{ c.policy }}={{ c.new }}{% endfor %}"
    scenario.kube.apply({
        "apiVersion": "plinth.dev/v1", "kind": "ImageUpdateAutomation",
        "metadata": {"name": "images", "namespace": ns},
        "spec": {"sourceRef": {"name": "repo"}, "interval": "1s", "update": {"path": "./app"},
                 "git": {"push": {"branch": "image-updates"},
                         "commit": {"author": {"email": "bot@example.com"},
                                    "messageTemplate": template}}}})
    bare = git.Repo(git_server.repos / f"{ns}.git")
    wait_for(lambda: "image-updates" in [h.name for h in bare.heads], 30,
             "the image-updates branch")
    assert bare.commit("image-updates").message == f"images: {ns}:web=1.3.0"
    assert bare.commit("image-updates").parents[0].hexsha == head
    assert bare.commit("main").hexsha == head


def test_a_deleted_image_repository_stops_its_policies(scenario: Scenario,
                                                       oci_registry: LocalRegistry) -> None:
    ns = scenario.namespace
    image = f"{oci_registry.host}/{ns}/web"
    push_image(oci_registry, f"{ns}/web", "1.0.0")
    _registry_secret(scenario, oci_registry, oci_registry.credentials()[1])
    _image_objects(scenario, image)
    wait_for(lambda: scenario.ready("web", "imagepolicies.plinth.dev").get("status") == "True",
             60, "the policy to choose 1.0.0")
    scenario.kube.delete("imagerepositories.plinth.dev", "web", ns, wait=True)

    def refused() -> dict[str, Any] | None:
        ready = scenario.ready("web", "imagepolicies.plinth.dev")
        return ready if ready.get("status") == "False" else None
    ready = wait_for(refused, 30, "the policy to stop choosing from a deleted repository")
    assert ready["reason"] == "DependencyNotReady"
    assert f"ImageRepository {ns}/web (spec.imageRepositoryRef) not found" in ready["message"]


def _pull_request_flow(scenario: Scenario, on_forge: ForgeRepo, oci_registry: LocalRegistry,
                       tags: tuple[str, ...]) -> str:
    """Images with `tags`, a GitOps repository on the forge marking tag 1.0.0, and an
    automation that pushes to plinth/images with pull requests; returns the image."""
    ns = scenario.namespace
    image = f"{oci_registry.host}/{ns}/web"
    for tag in tags:
        push_image(oci_registry, f"{ns}/web", tag)
    on_forge.repo.commit({"app/kustomization.yaml": OVERLAY.format(image=image, ns=ns),
                          "app/deployment.yaml": _deployment(f"{image}:0.0.1")})
    login = {"username": LocalForge.admin, "password": on_forge.forge.token()}
    scenario.kube.apply({"apiVersion": "v1", "kind": "Secret",
                         "metadata": {"name": "git-login", "namespace": ns},
                         "stringData": login})
    scenario.git_repository(url=on_forge.forge.clone_url(ns, "gitops"),
                            secretRef={"name": "git-login"})
    _registry_secret(scenario, oci_registry, oci_registry.credentials()[1])
    _image_objects(scenario, image)
    scenario.kube.apply({
        "apiVersion": "plinth.dev/v1", "kind": "ImageUpdateAutomation",
        "metadata": {"name": "images", "namespace": ns},
        "spec": {"sourceRef": {"name": "repo"}, "interval": "1s", "update": {"path": "./app"},
                 "git": {"commit": {"author": {"name": "bot", "email": "bot@example.com"}},
                         "push": {"branch": "plinth/images", "providerRef": {"name": "forge"}}}}})
    return image


def test_a_pushed_branch_gets_one_pull_request(scenario: Scenario, on_forge: ForgeRepo,
                                               oci_registry: LocalRegistry) -> None:
    """The pull-request flow: the automation pushes to a branch of its own and keeps one pull
    request from it open on the forge, whose body says what changed."""
    ns = scenario.namespace
    _pull_request_flow(scenario, on_forge, oci_registry, ("1.0.0", "1.1.0"))
    client = on_forge.forge.client()

    def pull_request(moved: str) -> Any:
        pull = client.find_pull_request(on_forge.ref, "plinth/images", "main")
        return pull if pull is not None and moved in pull.body else None
    first = wait_for(lambda: pull_request("1.0.0 -> 1.1.0"), 90, "the pull request")
    assert "app/kustomization.yaml:8" in first.body and first.title.startswith("plinth: ")
    status = scenario.status("images", "imageupdateautomations.plinth.dev")
    assert status["pullRequest"] == first.html_url
    push_image(oci_registry, f"{ns}/web", "1.2.0")
    second = wait_for(lambda: pull_request("1.1.0 -> 1.2.0"), 90, "the pull request to follow")
    assert second.number == first.number  # the same pull request, updated
    assert client.get_branch(on_forge.ref, "main").sha == \
        git.Repo(on_forge.repo.work).head.commit.hexsha  # main itself is left alone


def test_nothing_to_change_opens_no_pull_request_and_is_ready(
        scenario: Scenario, on_forge: ForgeRepo, oci_registry: LocalRegistry) -> None:
    """Before the first new tag there is no branch to propose: no pull request is asked for
    (the forge would answer 404), and the automation is Ready. Found on a fresh local stack."""
    _pull_request_flow(scenario, on_forge, oci_registry, ("1.0.0",))
    ready = wait_for(lambda: scenario.ready("images", "imageupdateautomations.plinth.dev")
                     or None, 60, "the automation to run")
    wait_for(lambda: scenario.ready("images", "imageupdateautomations.plinth.dev")
             .get("status") == "True", 60, f"the automation to be Ready; was {ready}")
    message = scenario.ready("images", "imageupdateautomations.plinth.dev")["message"]
    assert "no marked field needed a change" in message and "pull request" not in message
    client = on_forge.forge.client()
    assert client.get_branch(on_forge.ref, "plinth/images") is None
    assert client.find_pull_request(on_forge.ref, "plinth/images", "main") is None
