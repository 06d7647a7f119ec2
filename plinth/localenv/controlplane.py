"""A local Kubernetes control plane: etcd + kube-apiserver + kube-controller-manager.

Alone (on loopback) it stores, validates, admits, garbage-collects and finalizes objects for real,
but no container ever starts: enough for a GitOps controller and pulumi-kubernetes. Given a node
address (`plinth.localenv.node`), it also runs kube-scheduler and serves on that address, which
pods reach as the `kubernetes` Service, with the Node authorizer and kubelet client certificates.
"""
from __future__ import annotations

import base64
import json
import shutil
import ssl
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

from plinth.localenv.pki import CertificateAuthority, KeyPair, service_account_keys
from plinth.localenv.process import ManagedProcess, free_port, port_open
from plinth.localenv.tools import find_tool

_SERVICE_CIDR = "10.96.0.0/16"
_KUBERNETES_SERVICE_IP = "10.96.0.1"


@dataclass(frozen=True)
class Ports:
    etcd_client: int
    etcd_peer: int
    apiserver: int

    @classmethod
    def pick(cls) -> Ports:
        return cls(free_port(), free_port(), free_port())


class LocalControlPlane:
    """All state (data, certs, logs, pid files, kubeconfig) lives in `state_dir`.

    `start()` is idempotent: a running control plane is reused, a stopped one restarts on its old
    ports (when free) with its etcd data, so objects survive a reboot of the machine.
    """

    def __init__(self, state_dir: Path, *, durable: bool = True,
                 node_ip: str | None = None) -> None:
        self.state_dir = state_dir
        self.durable = durable  # False skips etcd fsync: a test cluster need not survive a crash
        self.node_ip = node_ip  # set: serve there (pods reach it), schedule pods, trust kubelets
        self.address = node_ip or "127.0.0.1"
        self.etcd = ManagedProcess("etcd", state_dir)
        self.apiserver = ManagedProcess("kube-apiserver", state_dir)
        self.controller_manager = ManagedProcess("kube-controller-manager", state_dir)
        self.scheduler = ManagedProcess("kube-scheduler", state_dir)
        self.kubeconfig = state_dir / "admin.kubeconfig"
        self.pki = state_dir / "pki"
        self._ports_file = state_dir / "ports.json"

    @property
    def server(self) -> str:
        return f"https://{self.address}:{self._ports().apiserver}"

    def _processes(self) -> tuple[ManagedProcess, ...]:
        base = (self.etcd, self.apiserver, self.controller_manager)
        return (*base, self.scheduler) if self.node_ip else base

    def running(self) -> bool:
        return all(p.running() for p in self._processes())

    def client_kubeconfig(self, name: str, user: str, group: str | None = None) -> Path:
        """A kubeconfig for one more client of this API server (a kubelet, kube-proxy), signed
        by the cluster CA: `<name>.kubeconfig` in the state folder, mode 0600."""
        ca = CertificateAuthority(self.pki)
        pair = ca.issue(name, user, organization=group)
        path = self.state_dir / f"{name}.kubeconfig"
        self._write_kubeconfig(path, ca.pair, pair, self._ports())
        return path

    def start(self, timeout: float = 90.0) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        ports = self._choose_ports()
        pki = self.pki
        ca = CertificateAuthority(pki)
        serving = ca.issue("apiserver", "kube-apiserver", server_hosts=self._serving_hosts())
        admin = ca.issue("admin", "plinth-admin", organization="system:masters")
        # Controllers act with this identity (no per-controller service accounts locally).
        kcm = ca.issue("controller-manager", "system:kube-controller-manager",
                       organization="system:masters")
        sa = service_account_keys(pki)
        self._write_kubeconfig(self.kubeconfig, ca.pair, admin, ports)
        kcm_kubeconfig = self.state_dir / "controller-manager.kubeconfig"
        self._write_kubeconfig(kcm_kubeconfig, ca.pair, kcm, ports)

        self.etcd.start(self._etcd_argv(ports))
        self.etcd.wait_ready(lambda: port_open(ports.etcd_client), timeout)
        self.apiserver.start(self._apiserver_argv(ports, ca.pair, serving, sa))
        self.apiserver.wait_ready(lambda: self._readyz(ca.pair, admin), timeout)
        if not self.controller_manager.running():
            kcm_port = free_port()
            self.controller_manager.start(
                self._controller_manager_argv(kcm_kubeconfig, ca.pair, sa, kcm_port)
            )
            self.controller_manager.wait_ready(lambda: port_open(kcm_port), timeout)
        if self.node_ip and not self.scheduler.running():
            scheduler_kubeconfig = self.client_kubeconfig("scheduler", "system:kube-scheduler")
            port = free_port()
            self.scheduler.start(self._scheduler_argv(scheduler_kubeconfig, port))
            self.scheduler.wait_ready(lambda: port_open(port), timeout)

    def stop(self) -> None:
        for proc in reversed(self._processes()):
            proc.stop()

    def destroy(self) -> None:
        """Stop and remove every trace, data included."""
        self.stop()
        shutil.rmtree(self.state_dir, ignore_errors=True)

    def _ports(self) -> Ports:
        return Ports(**json.loads(self._ports_file.read_text()))

    def _choose_ports(self) -> Ports:
        """The old ports while any of our servers runs or while nobody else took them."""
        if self._ports_file.exists():
            ports = self._ports()
            ours = any(p.running() for p in self._processes())
            if ours or not any(port_open(p) for p in asdict(ports).values()):
                return ports
        ports = Ports.pick()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._ports_file.write_text(json.dumps(asdict(ports)))
        return ports

    def _etcd_argv(self, ports: Ports) -> list[str]:
        client = f"http://127.0.0.1:{ports.etcd_client}"
        peer = f"http://127.0.0.1:{ports.etcd_peer}"
        argv = [
            str(find_tool("etcd")),
            "--name=plinth",
            f"--data-dir={self.state_dir / 'etcd'}",
            f"--listen-client-urls={client}",
            f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=plinth={peer}",
            "--log-level=warn",
        ]
        if not self.durable:
            argv.append("--unsafe-no-fsync")
        return argv

    def _serving_hosts(self) -> tuple[str, ...]:
        hosts: tuple[str, ...] = ("127.0.0.1", "localhost", "kubernetes", "kubernetes.default",
                                  "kubernetes.default.svc", "kubernetes.default.svc.cluster.local")
        if self.node_ip:
            hosts += (_KUBERNETES_SERVICE_IP, self.node_ip)
        return hosts

    def _apiserver_argv(
        self, ports: Ports, ca: KeyPair, serving: KeyPair, sa: KeyPair
    ) -> list[str]:
        argv = [
            str(find_tool("kube-apiserver")),
            f"--etcd-servers=http://127.0.0.1:{ports.etcd_client}",
            f"--bind-address={self.address}",
            f"--advertise-address={self.address}",
            f"--secure-port={ports.apiserver}",
            f"--cert-dir={self.state_dir / 'pki'}",
            f"--tls-cert-file={serving.cert}",
            f"--tls-private-key-file={serving.key}",
            f"--client-ca-file={ca.cert}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={sa.cert}",
            f"--service-account-signing-key-file={sa.key}",
            f"--service-cluster-ip-range={_SERVICE_CIDR}",
            "--allow-privileged=true",
            "--profiling=false",
            "--v=0",
        ]
        if not self.node_ip:
            # A loopback address cannot be an endpoint of the `kubernetes` Service.
            return [*argv, "--authorization-mode=RBAC", "--endpoint-reconciler-type=none"]
        kubelet_client = CertificateAuthority(self.pki).issue(
            "apiserver-kubelet-client", "kube-apiserver-kubelet-client",
            organization="system:masters")
        return [
            *argv,
            "--authorization-mode=Node,RBAC",
            "--enable-admission-plugins=NodeRestriction",
            f"--kubelet-client-certificate={kubelet_client.cert}",
            f"--kubelet-client-key={kubelet_client.key}",
            f"--kubelet-certificate-authority={ca.cert}",
            "--kubelet-preferred-address-types=InternalIP",
        ]

    def _scheduler_argv(self, kubeconfig: Path, port: int) -> list[str]:
        return [
            str(find_tool("kube-scheduler")),
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            "--bind-address=127.0.0.1",
            f"--secure-port={port}",
            "--leader-elect=false",
            "--profiling=false",
            "--v=0",
        ]

    def _controller_manager_argv(
        self, kubeconfig: Path, ca: KeyPair, sa: KeyPair, port: int
    ) -> list[str]:
        return [
            str(find_tool("kube-controller-manager")),
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            "--bind-address=127.0.0.1",
            f"--secure-port={port}",
            f"--cert-dir={self.state_dir / 'pki' / 'kcm'}",
            f"--root-ca-file={ca.cert}",
            f"--service-account-private-key-file={sa.key}",
            f"--service-cluster-ip-range={_SERVICE_CIDR}",
            "--leader-elect=false",
            "--use-service-account-credentials=false",
            "--profiling=false",
            "--v=0",
        ]

    def _readyz(self, ca: KeyPair, client: KeyPair) -> bool:
        context = ssl.create_default_context(cafile=str(ca.cert))
        context.load_cert_chain(str(client.cert), str(client.key))
        with urllib.request.urlopen(f"{self.server}/readyz", context=context, timeout=5) as resp:
            return bool(resp.status == 200)

    def _write_kubeconfig(self, path: Path, ca: KeyPair, client: KeyPair, ports: Ports) -> None:
        """Certs are embedded so the kubeconfig alone is enough (it is a secret: mode 0600)."""

        def b64(file: Path) -> str:
            return base64.b64encode(file.read_bytes()).decode()

        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "plinth-local", "cluster": {
                "server": f"https://{self.address}:{ports.apiserver}",
                "certificate-authority-data": b64(ca.cert)}}],
            "users": [{"name": "plinth-local", "user": {
                "client-certificate-data": b64(client.cert),
                "client-key-data": b64(client.key)}}],
            "contexts": [{"name": "plinth-local", "context": {
                "cluster": "plinth-local", "user": "plinth-local"}}],
            "current-context": "plinth-local",
        }
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        path.chmod(0o600)
