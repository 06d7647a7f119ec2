"""The benchmark's GitOps controllers, driven through the same API: Plinth's sync controller and
Flux (source-controller + kustomize-controller v1.9.6, built by `scripts/setup --only
flux-bench`), each as local processes against one API server.

Both speak GitRepository/Kustomization with the same spec fields, Ready conditions,
`lastAppliedRevision` and `lastHandledReconcileAt`; only the API groups and the annotation
that asks for a reconcile differ, so one class drives either.
"""
from __future__ import annotations

import json
import signal
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plinth.localenv.process import free_port
from plinth.localenv.tools import ToolMissing, find_tool, tool_env
from tests.controller.harness import ControllerProcess, Kube


@dataclass(frozen=True)
class Api:
    source_group: str  # of GitRepository (v1)
    kustomize_group: str  # of Kustomization (v1)
    requested_at: str  # the annotation that asks for a reconcile now

    def group(self, kind: str) -> str:
        return self.source_group if kind == "GitRepository" else self.kustomize_group

    def plural(self, kind: str) -> str:
        return {"GitRepository": "gitrepositories", "Kustomization": "kustomizations"}[kind]


PLINTH_API = Api("plinth.dev", "plinth.dev", "reconcile.plinth.dev/requestedAt")
FLUX_API = Api("source.toolkit.fluxcd.io", "kustomize.toolkit.fluxcd.io",
               "reconcile.fluxcd.io/requestedAt")


class StatusReader:
    """Reads objects through one `kubectl proxy`: polling costs a loopback HTTP request, not a
    kubectl process, so the benchmark's own polling barely loads the machine it measures."""

    def __init__(self, kubeconfig: Path, workdir: Path) -> None:
        self.port = free_port()
        workdir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [str(find_tool("kubectl")), "--kubeconfig", str(kubeconfig), "proxy",
             f"--port={self.port}", "--address=127.0.0.1"],
            stdout=subprocess.DEVNULL, stderr=(workdir / "proxy.log").open("ab"), env=tool_env())
        deadline = time.monotonic() + 30
        while self.get("/version") is None:
            if time.monotonic() > deadline:
                raise RuntimeError("kubectl proxy did not answer within 30 s")
            time.sleep(0.05)

    def send(self, method: str, path: str, body: dict[str, Any]) -> None:
        """POST an object, or PATCH one with a JSON merge patch."""
        kind = "application/merge-patch+json" if method == "PATCH" else "application/json"
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}", data=json.dumps(body).encode(),
            method=method, headers={"Content-Type": kind})
        with urllib.request.urlopen(request, timeout=10):
            pass

    def get(self, path: str) -> dict[str, Any] | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=10) as r:
                return dict(json.load(r))
        except (urllib.error.URLError, OSError):
            return None

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait()


def ready_condition(obj: dict[str, Any] | None) -> dict[str, Any]:
    for condition in ((obj or {}).get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return dict(condition)
    return {}


class Controller:
    """One GitOps controller under test: processes to start and stop, and its objects."""

    name: str
    api: Api

    def __init__(self, kube: Kube, reader: StatusReader, workdir: Path) -> None:
        self.kube, self.reader, self.workdir = kube, reader, workdir
        self.procs: list[subprocess.Popen[bytes]] = []
        self.probes: list[str] = []  # readiness URLs, all must answer 200

    @property
    def pids(self) -> tuple[int, ...]:
        return tuple(p.pid for p in self.procs)

    def start(self, timeout: float = 120.0) -> float:
        """Launch; seconds from the first spawn until every readiness probe answers 200."""
        started = time.monotonic()
        self.launch()
        while not all(_answers(url) for url in self.probes):
            if any(p.poll() is not None for p in self.procs):
                logs = "".join(log.read_text()[-3000:] for log in self.workdir.glob("*.log"))
                raise RuntimeError(f"{self.name} exited while starting:\n{logs}")
            if time.monotonic() - started > timeout:
                raise RuntimeError(f"{self.name} not ready within {timeout} s")
            time.sleep(0.01)
        return time.monotonic() - started

    def launch(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs = []

    def source(self, namespace: str, url: str, branch: str, secret: str) -> None:
        self.kube.apply({
            "apiVersion": f"{self.api.source_group}/v1", "kind": "GitRepository",
            "metadata": {"name": "repo", "namespace": namespace},
            "spec": {"url": url, "interval": "1h", "ref": {"branch": branch},
                     "secretRef": {"name": secret}}})

    def kustomization(self, namespace: str, path: str) -> None:
        """Created through the proxy: the step it starts is measured."""
        self.reader.send("POST", self._path("Kustomization", namespace, ""), {
            "apiVersion": f"{self.api.kustomize_group}/v1", "kind": "Kustomization",
            "metadata": {"name": "app", "namespace": namespace},
            "spec": {"sourceRef": {"kind": "GitRepository", "name": "repo"}, "path": path,
                     "interval": "1h", "prune": True, "targetNamespace": namespace,
                     # Plinth bounds kustomize by it, and a build of 10,000 objects outlasts
                     # the default 5 minutes on a slow machine (kustomize's accumulation of
                     # resources is quadratic)
                     "timeout": "30m"}})

    def suspend(self, namespace: str) -> None:
        """Its objects rest once measured: a controller started later (the next peer's turn
        comes after a restart) would otherwise reconcile every earlier round's objects too."""
        for kind, name in (("Kustomization", "app"), ("GitRepository", "repo")):
            self.kube.run("patch", "-n", namespace,
                          f"{self.api.plural(kind)}.{self.api.group(kind)}", name,
                          "--type=merge", "-p", '{"spec": {"suspend": true}}')

    def request_reconcile(self, kind: str, namespace: str, name: str) -> str:
        """Annotate through the proxy: a kubectl process would add its own start-up to the
        step measured."""
        token = f"{time.time():.6f}"
        self.reader.send("PATCH", self._path(kind, namespace, name), {
            "metadata": {"annotations": {self.api.requested_at: token}}})
        return token

    def _path(self, kind: str, namespace: str, name: str) -> str:
        """The object's URL path, or its collection's when `name` is empty."""
        return (f"/apis/{self.api.group(kind)}/v1/namespaces/{namespace}/"
                f"{self.api.plural(kind)}/{name}").rstrip("/")

    def _object(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        return self.reader.get(self._path(kind, namespace, name))

    def artifact_revision(self, namespace: str) -> str:
        obj = self._object("GitRepository", namespace, "repo") or {}
        return str(((obj.get("status") or {}).get("artifact") or {}).get("revision", ""))

    def applied(self, namespace: str, sha: str, handled: str | None = None) -> bool:
        """The Kustomization is Ready at `sha` (and has handled reconcile request `handled`)."""
        obj = self._object("Kustomization", namespace, "app")
        status = (obj or {}).get("status") or {}
        return (ready_condition(obj).get("status") == "True"
                and str(status.get("lastAppliedRevision", "")).endswith(sha)
                and (handled is None or status.get("lastHandledReconcileAt") == handled))


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as r:
            return bool(r.status == 200)
    except (urllib.error.URLError, OSError):
        return False


class Plinth(Controller):
    name, api = "plinth", PLINTH_API

    def launch(self) -> None:
        """As the controller tests run it, logging at info (as Flux does by default)."""
        process = ControllerProcess(self.kube.kubeconfig, self.workdir, [],
                                    ("--log-level", "info"))
        process.launch()
        assert process.proc is not None
        self.procs = [process.proc]
        self.probes = [f"http://127.0.0.1:{process.port}/readyz"]


FLUX_BINARIES = ("source-controller", "kustomize-controller")


def flux_installed() -> str | None:
    """Why Flux cannot run here, or None."""
    try:
        for binary in FLUX_BINARIES:
            find_tool(binary)
    except ToolMissing as err:
        return f"{err} (scripts/setup --only flux-bench builds Flux v1.9.6)"
    return None


def flux_crds() -> list[Path]:
    """The CRD folders the setup step copied beside each binary (static/crds)."""
    return [find_tool(b).resolve().parent.parent / "static" / "crds" for b in FLUX_BINARIES]


class Flux(Controller):
    name, api = "flux", FLUX_API

    def launch(self) -> None:
        (self.workdir / "storage").mkdir(parents=True, exist_ok=True)
        storage = free_port()
        env = tool_env({"KUBECONFIG": str(self.kube.kubeconfig)})  # they have no flag for it
        flags = {
            "source-controller": [f"--storage-path={self.workdir / 'storage'}",
                                  f"--storage-addr=127.0.0.1:{storage}",
                                  f"--storage-adv-addr=127.0.0.1:{storage}"],
            "kustomize-controller": [],
        }
        self.procs, self.probes = [], []
        for binary in FLUX_BINARIES:
            health = free_port()
            self.probes.append(f"http://127.0.0.1:{health}/readyz")
            argv = [str(find_tool(binary)), f"--metrics-addr=127.0.0.1:{free_port()}",
                    f"--health-addr=127.0.0.1:{health}", "--enable-leader-election=false",
                    "--log-level=info", *flags[binary]]
            with (self.workdir / f"{binary}.log").open("ab") as log:
                self.procs.append(subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                                   env=env, cwd=self.workdir))


def install_flux_crds(kube: Kube) -> None:
    for folder in flux_crds():
        kube.run("apply", "--server-side", "-f", str(folder))
        kube.run("wait", "--for=condition=Established", "-f", str(folder))
