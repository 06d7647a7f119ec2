"""Drive the real controller in tests: a GitOps repo to commit to, Plinth objects to create,
and kubectl (a peer independent of the controller's own client) to look at the cluster."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import git
import yaml

from plinth.localenv.process import free_port
from plinth.localenv.tools import tool_env
from tests.gitops_repos import write_tree

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[2]


class ControllerProcess:
    """`python -m sync_controller run` as its own process, the way a Deployment runs it."""

    def __init__(self, kubeconfig: Path, workdir: Path, namespaces: list[str],
                 extra_args: tuple[str, ...] = ()) -> None:
        self.kubeconfig, self.workdir, self.namespaces = kubeconfig, workdir, namespaces
        self.extra_args = extra_args
        self.port = free_port()
        self.receiver_port = free_port()
        self.log = workdir / "controller.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> None:
        """Launch and wait until /readyz answers 200."""
        self.launch()
        wait_for(lambda: self.http("/readyz")[0] == 200 or self._died(), timeout,
                 "controller /readyz")
        assert self.proc is not None and self.proc.poll() is None, \
            f"controller exited:\n{self.log.read_text()[-4000:]}"

    def launch(self) -> None:
        """Start the process without waiting for it to be ready."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, "-m", "sync_controller", "run", "--kubeconfig",
                str(self.kubeconfig), "--cache-dir", str(self.workdir / "cache"),
                "--probe-address", "127.0.0.1", "--probe-port", str(self.port),
                "--receiver-port", str(self.receiver_port),
                "--log-level", "debug"]
        for namespace in self.namespaces:
            argv += ["--namespace", namespace]
        argv += self.extra_args
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
                                         env=tool_env())

    def _died(self) -> bool:
        return self.proc is not None and self.proc.poll() is not None

    def http(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=2) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode()
        except OSError:
            return 0, ""

    def stop(self, kill: bool = False) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def wait_for(check: Callable[[], T], timeout: float, what: str, every: float = 0.3) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {value!r}")
        time.sleep(every)


@dataclass
class Kube:
    kubectl: Path
    kubeconfig: Path

    def run(self, *args: str, stdin: str | None = None, check: bool = True
            ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([str(self.kubectl), "--kubeconfig", str(self.kubeconfig), *args],
                              input=stdin, capture_output=True, text=True, env=tool_env())
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)}: {proc.stderr}")
        return proc

    def get(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        args = ["get", kind, name, "-o", "json", "--show-managed-fields"] + (["-n", namespace] if namespace else [])
        proc = self.run(*args, check=False)
        if proc.returncode != 0:
            if "NotFound" in proc.stderr or "not found" in proc.stderr:
                return None
            raise AssertionError(proc.stderr)
        return dict(json.loads(proc.stdout))

    def apply(self, *objects: dict[str, Any]) -> None:
        """As a person would with kubectl (its own field manager, not the controller's)."""
        self.run("apply", "--server-side", "--field-manager=test", "--force-conflicts", "-f",
                 "-", stdin=yaml.safe_dump_all(objects))

    def delete(self, kind: str, name: str, namespace: str, wait: bool = False) -> None:
        self.run("delete", kind, name, "-n", namespace, f"--wait={str(wait).lower()}",
                 "--ignore-not-found")


@dataclass
class GitOpsRepo:
    url: str
    work: Path
    env: dict[str, str] = field(default_factory=dict)  # e.g. GIT_SSH_COMMAND for ssh:// urls

    def commit(self, files: dict[str, Any], message: str = "change",
               remove: tuple[str, ...] = ()) -> str:
        """Write files as `write_tree` does, remove `remove`, commit and push to main."""
        repo = git.Repo(self.work) if (self.work / ".git").exists() else \
            git.Repo.init(self.work, initial_branch="main")
        self.work.mkdir(parents=True, exist_ok=True)
        write_tree(self.work, files)
        for rel in remove:
            (self.work / rel).unlink()
        repo.git.add(A=True)
        sha = repo.index.commit(message).hexsha
        repo.git.push(self.url, "HEAD:refs/heads/main", env={**os.environ, **self.env,
                                                              "GIT_TERMINAL_PROMPT": "0"})
        return str(sha)


@dataclass
class Scenario:
    """One test's namespace, its GitOps repo, and the Plinth objects it creates."""

    kube: Kube
    namespace: str
    repo: GitOpsRepo

    def git_repository(self, name: str = "repo", url: str | None = None,
                       **spec: Any) -> None:
        self.kube.apply({
            "apiVersion": "plinth.dev/v1", "kind": "GitRepository",
            "metadata": {"name": name, "namespace": self.namespace},
            "spec": {"url": url or self.repo.url, "interval": "1s", **spec}})

    def kustomization(self, name: str, path: str, **spec: Any) -> None:
        self.kube.apply({
            "apiVersion": "plinth.dev/v1", "kind": "Kustomization",
            "metadata": {"name": name, "namespace": self.namespace},
            "spec": {"sourceRef": {"kind": "GitRepository", "name": "repo"}, "path": path,
                     "interval": "2s", "retryInterval": "1s", "prune": True, **spec}})

    def sync(self, files: dict[str, Any], name: str = "app", **spec: Any) -> str:
        """Commit `files`, point a GitRepository and Kustomization `name` (path ./app) at
        them, and wait until that commit is applied."""
        sha = self.repo.commit(files)
        self.git_repository()
        self.kustomization(name, "./app", **spec)
        self.wait_applied(name, sha)
        return sha

    def status(self, name: str, kind: str = "kustomizations.plinth.dev") -> dict[str, Any]:
        obj = self.kube.get(kind, name, self.namespace) or {}
        return dict(obj.get("status") or {})

    def ready(self, name: str, kind: str = "kustomizations.plinth.dev") -> dict[str, Any]:
        for condition in self.status(name, kind).get("conditions") or []:
            if condition["type"] == "Ready":
                return dict(condition)
        return {}

    def wait_applied(self, name: str, sha: str, timeout: float = 60.0) -> dict[str, Any]:
        """Until Ready=True at revision `sha`."""
        def done() -> dict[str, Any] | None:
            status = self.status(name)
            ready = self.ready(name)
            if ready.get("status") == "True" and \
                    str(status.get("lastAppliedRevision", "")).endswith(sha):
                return status
            return None
        return wait_for(done, timeout, f"Kustomization {name} to apply {sha[:8]}")

    def wait_failed(self, name: str, reason: str, timeout: float = 60.0) -> dict[str, Any]:
        last: dict[str, Any] = {}

        def failed() -> dict[str, Any] | None:
            last.update(self.ready(name))
            return last if last.get("status") == "False" and last.get("reason") == reason \
                else None
        try:
            return wait_for(failed, timeout, f"Kustomization {name} to fail with {reason}")
        except AssertionError as err:
            raise AssertionError(f"{err}; Ready was {last}") from None

    def configmap(self, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        return self.kube.get("configmap", name, namespace or self.namespace)

    def resource_versions(self) -> dict[str, str]:
        """name -> resourceVersion of what this test can have made: objects of its namespace,
        and Namespaces and CRDs named after it (other tests' come and go meanwhile)."""
        ns, found = self.namespace, {}
        for what in ("namespaces", "crds", f"configmaps,secrets,services -n {ns}"):
            out = self.kube.run("get", *what.split(), "-o", "json").stdout
            for item in json.loads(out)["items"]:
                meta = item["metadata"]
                if ns in f"{meta.get('namespace', '')}/{meta['name']}":
                    found[f"{item['kind']}/{meta.get('namespace', '')}/{meta['name']}"] = \
                        meta["resourceVersion"]
        return found



_REQUESTS = re.compile(r'^apiserver_request_total\{(?P<labels>[^}]*)\} (?P<value>[0-9.e+]+)$',
                       re.MULTILINE)


def api_requests(kube: Kube, resource: str | None = None, scope: str | None = None
                 ) -> dict[str, float]:
    """The API server's own request counters (of `resource`, or of all; of one `scope`, e.g.
    "resource" for requests on one named object), by verb, dry runs apart: what the
    controller costs the API server, counted by the API server."""
    counts: dict[str, float] = {}
    for match in _REQUESTS.finditer(kube.run("get", "--raw", "/metrics").stdout):
        labels = dict(re.findall(r'(\w+)="([^"]*)"', match["labels"]))
        if resource is not None and (labels.get("resource") != resource
                                     or labels.get("subresource")):
            continue
        if scope is not None and labels.get("scope") != scope:
            continue
        verb = labels.get("verb", "") + (" dry-run" if labels.get("dry_run") else "")
        counts[verb] = counts.get(verb, 0) + float(match["value"])
    return counts
