"""`pulumi up -s local` through the real engine, on a real node: control plane, kubelet,
containerd, kube-proxy and CoreDNS start, the controller and sample-app images are built without
Docker and pushed, the controller runs as a pod of its own image and syncs the scaffolded repo,
and the apps run and answer. One stack serves the whole module (one node per host); the tests
run in order and the last one destroys it and checks that the host is as it was."""
from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import git
import pytest

from plinth.localenv.forge import LocalForge
from plinth.forge import RepoRef
from plinth.localenv.node import NODE_NAME, clear_dead_node, preflight
from plinth.localenv.tools import find_tool
from tests.controller.harness import Kube, wait_for
from tests.e2e.host_state import HostState, snapshot
from tests.fixtures.servers import PulumiBackend, require_tools

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.e2e
NS = "plinth-system"


@dataclass
class LocalStack:
    project: Path
    state: Path
    kube: Kube
    outputs: dict[str, Any]
    backend: PulumiBackend
    before: HostState
    destroyed: bool = False

    def pulumi(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.backend.run(*args, cwd=self.project)

    def destroy(self) -> None:
        if not self.destroyed:
            self.destroyed = True
            self.pulumi("destroy", "--yes", "--skip-preview")


def _project(tmp_path: Path) -> Path:
    """The program, its Pulumi.yaml and stacks, in a scratch folder (the stack file gets an
    encryption salt, which must not land in the checkout)."""
    project = tmp_path / "project"
    project.mkdir()
    for name in ("Pulumi.yaml", "__main__.py"):
        shutil.copy(ROOT / name, project / name)
    shutil.copytree(ROOT / "stacks", project / "stacks")
    (project / ".venv").symlink_to(ROOT / ".venv")  # Pulumi.yaml's virtualenv option
    (project / ".tools").symlink_to(ROOT / ".tools")  # and its plugins
    stack_file = project / "stacks" / "Pulumi.local.yaml"
    lines = stack_file.read_text().splitlines(keepends=True)
    stack_file.write_text("".join(l for l in lines if not l.startswith("encryptionsalt:")))
    return project


def _require_node() -> None:
    problems = preflight()
    if problems:
        message = "this host cannot run the local node: " + "; ".join(problems)
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the node tests: {message}")
        pytest.skip(message)


@pytest.fixture(scope="module")
def stack(pulumi_backend: PulumiBackend, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[LocalStack]:
    require_tools("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler",
                  "kubelet", "kube-proxy", "kubectl", "docker-registry", "pause", "coredns",
                  "pulumi-resource-pulumi-python")
    _require_node()
    project = _project(tmp_path_factory.mktemp("local-stack"))
    state = project / ".plinth" / "stacks" / "local"
    # An earlier run killed mid-way leaves its dead node's network; `up` would clear it, so the
    # host "as it was" is the host without it.
    clear_dead_node()
    before = snapshot(state)
    pulumi_backend.run("stack", "init", "local", cwd=project)
    kube = Kube(find_tool("kubectl"), state / "control-plane" / "admin.kubeconfig")
    local = LocalStack(project, state, kube, {}, pulumi_backend, before)
    try:
        up = local.pulumi("up", "--yes", "--skip-preview")
        assert "kubeconfig" in up.stdout and "[secret]" in up.stdout
        assert "from $PATH" not in up.stdout + up.stderr  # Pulumi.yaml names the plugins
        local.outputs = json.loads(local.pulumi("stack", "output", "--json").stdout)
        yield local
    finally:
        local.destroy()


def _ready(obj: dict[str, Any] | None) -> bool:
    conditions = ((obj or {}).get("status") or {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def _available(kube: Kube, name: str, namespace: str) -> bool:
    deploy = kube.get("deployment", name, namespace) or {}
    status = deploy.get("status") or {}
    return bool(status.get("availableReplicas")) and status.get("updatedReplicas") == status.get(
        "replicas") and status.get("observedGeneration") == deploy["metadata"]["generation"]


def _pods(kube: Kube, namespace: str, selector: str) -> list[dict[str, Any]]:
    out = kube.run("get", "pods", "-n", namespace, "-l", selector, "-o", "json").stdout
    return list(json.loads(out)["items"])


def _web(kube: Kube) -> dict[str, Any]:
    """What the web app answers through its Service, from the host; {} while nothing answers
    (kube-proxy writes a new endpoint's rules a moment after the pod is ready)."""
    spec = (kube.get("service", "web", "apps") or {})["spec"]
    url = f"http://{spec['clusterIP']}:{spec['ports'][0]['port']}/"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return dict(json.loads(response.read()))
    except OSError:
        return {}


def test_node_runs_the_apps_and_serves_dns(stack: LocalStack) -> None:
    kube = stack.kube
    assert _ready(kube.get("node", NODE_NAME))
    wait_for(lambda: _available(kube, "web", "apps"), 240, "the web Deployment to be Available")
    # Through kube-proxy's Service rules, from the host.
    answer = wait_for(lambda: _web(kube), 30, "the web Service to answer")
    assert answer == {"app": "web", "version": "1.0.0"}, answer
    # From inside a pod: cluster DNS resolves the Service, and the Service answers.
    probe = ("import json, socket, urllib.request; "
             "ip = socket.gethostbyname('web.apps.svc.cluster.local'); "
             "body = urllib.request.urlopen('http://web.apps.svc.cluster.local/').read(); "
             "print(ip, json.loads(body)['version'])")
    out = kube.run("exec", "-n", "apps", "deploy/web", "--", "python3", "-c", probe).stdout
    service_ip = (kube.get("service", "web", "apps") or {})["spec"]["clusterIP"]
    assert out.split() == [service_ip, "1.0.0"], out


def test_controller_runs_as_a_pod_and_resumes_after_its_pod_is_deleted(stack: LocalStack
                                                                        ) -> None:
    kube = stack.kube
    selector = "app.kubernetes.io/name=plinth-controller"
    wait_for(lambda: _available(kube, "plinth-controller", NS), 180, "the controller pod")
    (pod,) = _pods(kube, NS, selector)
    assert pod["spec"]["containers"][0]["image"] == stack.outputs["controller_image"]
    names = ("plinth-system", "infrastructure", "apps")
    wait_for(lambda: all(_ready(kube.get("kustomizations.plinth.dev", n, NS)) for n in names),
             180, "every Kustomization to be Ready")
    web_before = kube.get("deployment", "web", "apps") or {}
    inventory = (kube.get("kustomizations.plinth.dev", "apps", NS) or {})["status"]["inventory"]

    kube.run("delete", "pod", "-n", NS, pod["metadata"]["name"], "--wait=true")
    wait_for(lambda: [p for p in _pods(kube, NS, selector)
                      if p["metadata"]["name"] != pod["metadata"]["name"]
                      and any(c["type"] == "Ready" and c["status"] == "True"
                              for c in p["status"].get("conditions", []))], 180,
             "a new controller pod to be Ready")
    assert len(_pods(kube, NS, selector)) == 1
    def apps_ready() -> dict[str, Any]:
        apps = kube.get("kustomizations.plinth.dev", "apps", NS) or {}
        return apps if _ready(apps) else {}
    assert wait_for(apps_ready, 120, "apps to be Ready again")["status"]["inventory"] == inventory
    web_after = kube.get("deployment", "web", "apps") or {}
    # The new pod applied nothing new: the same object, unchanged.
    assert web_after["metadata"]["uid"] == web_before["metadata"]["uid"]
    assert web_after["metadata"]["generation"] == web_before["metadata"]["generation"]


def test_every_plinth_object_of_a_fresh_stack_is_ready(stack: LocalStack) -> None:
    """`plinth status` exits 0: sources, Kustomizations, image automation (with no new tag
    yet: nothing to propose), receiver and notifications all Ready."""
    def status() -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(ROOT / ".venv" / "bin" / "plinth"), "status", "-o", "json",
                               "--kubeconfig", str(stack.kube.kubeconfig)],
                              capture_output=True, text=True, timeout=60)
    last: list[str] = []

    def all_ready() -> bool:
        result = status()
        last[:] = [result.stdout[-3000:]]
        return result.returncode == 0
    try:
        wait_for(all_ready, 120, "every Plinth object to be Ready")
    except AssertionError as err:
        raise AssertionError(f"{err}; plinth status: {last}") from None


def test_a_second_up_changes_nothing(stack: LocalStack) -> None:
    """Even after the controller applied its own install from git, and images were rebuilt
    (from the cache, to the same digests)."""
    stack.pulumi("up", "--yes", "--expect-no-changes")


def test_controller_upgrade_rolls_its_own_pod_through_git(stack: LocalStack) -> None:
    kube = stack.kube
    stack.pulumi("config", "set", "--path", "plinth:gitops.controller_version", "0.1.1")
    stack.pulumi("up", "--yes", "--skip-preview")
    new_image = json.loads(stack.pulumi("stack", "output", "--json").stdout)["controller_image"]
    assert ":0.1.1@sha256:" in new_image

    def rolled() -> bool:
        pods = _pods(kube, NS, "app.kubernetes.io/name=plinth-controller")
        return len(pods) == 1 and pods[0]["spec"]["containers"][0]["image"] == new_image and any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in pods[0]["status"].get("conditions", []))
    wait_for(rolled, 240, "the controller's pod to run the new image")


def _gitops_clone(stack: LocalStack, work: Path) -> tuple[git.Repo, dict[str, str]]:
    """A clone of the GitOps repository, with the controller's own git login."""
    data = (stack.kube.get("secret", "gitops-auth", NS) or {})["data"]
    user, password = (base64.b64decode(data[k]).decode() for k in ("username", "password"))
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    env = {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "http.extraHeader",
           "GIT_CONFIG_VALUE_0": f"Authorization: Basic {token}"}
    repo = git.Repo.clone_from(stack.outputs["gitops_repo"], work, env=env)
    return repo, env


def test_the_forge_shows_the_sync_and_its_pushes_sync_at_once(stack: LocalStack,
                                                               tmp_path: Path) -> None:
    """The GitOps repository lives on the stack's Gitea: every Kustomization posts a commit
    status on the commit it applied, and a push reaches the controller by webhook, well
    before the GitRepository's one-minute interval."""
    client = LocalForge(stack.state / "forge").client("stack")
    gitops = RepoRef("plinth", "gitops")
    sha = stack.outputs["gitops_commit"]

    def statuses() -> dict[str, str]:
        combined = client.combined_status(gitops, sha)
        return {s.context: s.state.value for s in combined.statuses}
    wait_for(lambda: statuses().get("plinth/local/plinth-system") == "success", 120,
             "the root Kustomization's commit status")
    assert {"plinth/local/apps", "plinth/local/infrastructure"} <= set(statuses()), statuses()
    repo, env = _gitops_clone(stack, tmp_path / "gitops")
    (tmp_path / "gitops" / "README.md").write_text("pushed by the forge test\n")
    repo.index.add(["README.md"])
    pushed = repo.index.commit("a push the webhook announces").hexsha
    repo.git.push("origin", "main", env=env)

    def fetched() -> bool:
        source = stack.kube.get("gitrepositories.plinth.dev", "gitops", NS) or {}
        return str(((source.get("status") or {}).get("artifact") or {}).get(
            "revision", "")).endswith(pushed)
    wait_for(fetched, 30, "the GitRepository to fetch the pushed commit")
    logs = stack.kube.run("logs", "-n", NS, "deploy/plinth-controller").stdout
    assert "webhook accepted" in logs
    wait_for(lambda: client.combined_status(gitops, pushed).state.value == "success", 120,
             "the pushed commit to turn green")


def test_missing_image_fails_health_with_the_pods_reason(stack: LocalStack,
                                                         tmp_path: Path) -> None:
    kube = stack.kube
    registry = stack.outputs["registry"]
    repo, env = _gitops_clone(stack, tmp_path / "gitops")
    broken = tmp_path / "gitops" / "broken"
    broken.mkdir()
    labels = {"app": "broken"}
    (broken / "deployment.yaml").write_text(json.dumps({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "broken"},
        "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels}, "spec": {
                     "imagePullSecrets": [{"name": "plinth-registry"}],
                     "containers": [{"name": "broken",
                                     "image": f"{registry}/plinth/missing:0.0.1"}]}}}}))
    (broken / "kustomization.yaml").write_text("resources: [deployment.yaml]\n")
    repo.index.add(["broken/deployment.yaml", "broken/kustomization.yaml"])
    repo.index.commit("a Deployment whose image does not exist")
    repo.git.push("origin", "main", env=env)
    kube.apply({"apiVersion": "plinth.dev/v1", "kind": "Kustomization",
                "metadata": {"name": "broken", "namespace": NS},
                "spec": {"sourceRef": {"kind": "GitRepository", "name": "gitops"},
                         "path": "./broken", "targetNamespace": NS, "interval": "1m",
                         "timeout": "90s", "wait": True, "prune": True}})
    conditions: list[dict[str, Any]] = []
    try:
        def failed() -> str:
            obj = kube.get("kustomizations.plinth.dev", "broken", NS) or {}
            conditions[:] = (obj.get("status") or {}).get("conditions") or []
            ready = [c for c in conditions if c["type"] == "Ready"]
            return ready[0]["message"] if ready and ready[0]["status"] == "False" and (
                "ErrImagePull" in ready[0]["message"]
                or "ImagePullBackOff" in ready[0]["message"]) else ""
        try:  # the source polls every minute, then 60 s of a stuck pull fail the health check
            message = wait_for(failed, 300, "the Kustomization to fail with the pod's reason")
        except AssertionError as err:
            raise AssertionError(f"{err}; conditions: {conditions}") from None
        assert "missing:0.0.1" in message and "broken" in message, message
    finally:
        kube.run("delete", "kustomizations.plinth.dev", "broken", "-n", NS, "--wait=true")
    assert kube.get("deployment", "broken", NS) is None  # pruned with its Kustomization


def _plinth(stack: LocalStack, *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI as a pipeline runs it: `--stack local` in the project, with the stack's backend."""
    return subprocess.run(
        [str(ROOT / ".venv" / "bin" / "plinth"), *args, "--stack", "local",
         "--project", str(stack.project)],
        env=stack.backend.env, capture_output=True, text=True, timeout=600)


def test_the_cd_loop_from_a_new_image_to_production(stack: LocalStack) -> None:
    """The README's walk-through: a new image in the registry -> the scaffolded image
    automation opens a pull request for dev -> merge -> webhook -> sync -> commit status
    green -> `plinth wait --stack local` returns 0, and a pod runs that digest -> `plinth
    promote --stack local` proposes it for prod, the rendered diff in the pull request."""
    kube = stack.kube
    client = LocalForge(stack.state / "forge").client("stack")
    gitops = RepoRef("plinth", "gitops")
    login = json.loads((stack.state / "registry" / "credentials.json").read_text())
    pushed = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "plinth"), "local", "push-image", "sample-app", "1.0.1",
         f"{stack.outputs['registry']}/plinth/web", "--insecure", "--username", "plinth",
         "--password-env", "REGISTRY_PASSWORD"],
        env={**os.environ, "REGISTRY_PASSWORD": login["password"]}, capture_output=True,
        text=True, timeout=600)
    assert pushed.returncode == 0, pushed.stderr
    digest = pushed.stdout.strip().rsplit("@", 1)[1]

    pull = wait_for(lambda: client.find_pull_request(gitops, "plinth/images", "main"), 120,
                    "image automation's pull request for web 1.0.1")
    assert "1.0.1" in f"{pull.title}\n{pull.body}", pull
    merged = client.merge_pull_request(gitops, pull.number).merge_commit_sha
    assert merged, "the merged pull request names no merge commit"

    waited = _plinth(stack, "wait", "--revision", merged, "--kustomization", "apps",
                     "--timeout", "5m")
    assert waited.returncode == 0, waited.stdout + waited.stderr
    assert client.combined_status(gitops, merged).state.value == "success"
    assert any(digest in s.get("imageID", "") and s.get("ready")
               for p in _pods(kube, "apps", "app.kubernetes.io/name=web")
               for s in p["status"].get("containerStatuses", []))
    wait_for(lambda: _web(kube).get("version") == "1.0.1", 60, "the Service to answer 1.0.1")

    promoted = _plinth(stack, "promote", "--from", "dev", "--to", "prod")
    assert promoted.returncode == 0, promoted.stdout + promoted.stderr
    assert "web: " in promoted.stdout and "1.0.0 -> 1.0.1" in promoted.stdout, promoted.stdout
    proposal = client.find_pull_request(gitops, "plinth/promote-dev-to-prod", "main")
    assert proposal is not None and "1.0.1" in proposal.body
    secret = stack.backend.env["PULUMI_CONFIG_PASSPHRASE"]
    assert secret not in promoted.stdout + promoted.stderr


def test_audit_of_a_stack_change_shows_infrastructure_manifests_and_live_state(
        stack: LocalStack, tmp_path: Path) -> None:
    """A config edit that changes both the infrastructure (a new app image to build) and the
    manifests (the Deployment's image), under review in a git work tree of the project."""
    repo = git.Repo.init(stack.project, initial_branch="main")
    repo.git.add("Pulumi.yaml", "__main__.py", "stacks")
    repo.index.commit("the project as deployed")
    stack_file = stack.project / "stacks" / "Pulumi.local.yaml"
    deployed = stack_file.read_text()
    stack_file.write_text(deployed.replace("        tag: 1.0.0", "        tag: 1.0.3", 1))
    try:
        result = subprocess.run(
            [str(ROOT / ".venv" / "bin" / "plinth"), "audit", "--stack", "local", "--project",
             str(stack.project), "--format", "json"],
            env=stack.backend.env, capture_output=True, text=True, timeout=1800)
        markdown = subprocess.run(
            [str(ROOT / ".venv" / "bin" / "plinth"), "audit", "--stack", "local", "--project",
             str(stack.project), "-o", str(tmp_path / "audit.md")],
            env=stack.backend.env, capture_output=True, text=True, timeout=1800)
    finally:
        stack_file.write_text(deployed)
    assert result.returncode == 1 and markdown.returncode == 1, result.stderr + markdown.stderr
    report = json.loads(result.stdout)
    assert report["infrastructure"]["error"] is None, report["infrastructure"]
    infra = {(c["op"], c["name"]) for c in report["infrastructure"]["changes"]}
    assert ("update", "app-image-web") in infra or ("replace", "app-image-web") in infra, infra
    gitops = {c["object"]: c for c in report["gitops"]["changes"]}
    assert [f["new"] for f in gitops["Deployment.apps apps/web"]["changes"]] == [
        "plinth/web:1.0.3"], gitops
    live = {k["name"]: k for k in report["live"]["kustomizations"]}
    assert live["plinth-system/apps"]["ready"] == "True", live
    text = (tmp_path / "audit.md").read_text()
    for change in report["infrastructure"]["changes"]:
        assert f"| {change['type']} | {change['name']} |" in text
    login = json.loads((stack.state / "registry" / "credentials.json").read_text())
    assert login["password"] not in result.stdout + text


def test_destroy_leaves_the_host_as_it_was(stack: LocalStack) -> None:
    stack.destroy()
    after = snapshot(stack.state)
    assert not stack.before.differences(after), stack.before.differences(after)
    assert not (stack.state / "control-plane").exists()
    assert not (stack.state / "forge").exists() and not (stack.state / "registry").exists()
