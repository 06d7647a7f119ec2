"""One Kubernetes node on this machine: containerd + runc, bridge CNI, kubelet, kube-proxy.

The node joins a `LocalControlPlane` started with `node_ip=NODE_IP`. Pods live on the bridge
`plinth0` (10.244.0.0/24); the bridge's own address is the node IP, which is also where the
control plane, the git server and the registry listen, so the host and the pods reach them at
one address (inside a pod, 127.0.0.1 is the pod). Only one node runs per host: kube-proxy's
iptables chains and kubelet's fixed paths are host-wide. What it changes on the host is
recorded first and undone by `destroy` (`plinth.localenv.hostchanges`).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from plinth.localenv import registry_login
from plinth.localenv.controlplane import LocalControlPlane
from plinth.localenv.hostchanges import HostChanges, kill_workloads, write_sysctl
from plinth.localenv.pki import CertificateAuthority
from plinth.localenv.process import ManagedProcess, ServerStartError, free_port, port_open
from plinth.localenv.tools import ToolMissing, find_tool

NODE_NAME = "plinth-node"
BRIDGE = "plinth0"
POD_CIDR = "10.244.0.0/24"
NODE_IP = "10.244.0.1"
CLUSTER_DNS_IP = "10.96.0.10"
CLUSTER_DOMAIN = "cluster.local"
CNI_BIN = Path("/usr/lib/cni")
CNI_PLUGINS = ("bridge", "host-local", "loopback", "portmap")
SHORT_ROOT = Path("/var/lib/plinth-node")
HOST_CLAIM = Path("/run/plinth-node.json")  # tmpfs: gone after a reboot, as the bridge is
HOST_RECORD = "host-before-node.json"
# The node's own images, preloaded into containerd (they exist before any registry does).
SYSTEM_IMAGES = {"pause": "plinth.local/pause:1.0", "coredns": "plinth.local/coredns:1.12.4"}
LOGIN_PROVIDER = "plinth-registry-login"
_NODE_TOOLS = ("containerd", "containerd-shim-runc-v2", "runc", "ctr", "kubelet", "kube-proxy",
               "kube-scheduler", "iptables", "ip", "umount")


class NodeUnavailable(Exception):
    """This host cannot run a node; the message says what is missing and what to do."""


def preflight() -> list[str]:
    """What keeps this host from running a node, one line each (empty: it can)."""
    problems = []
    if os.geteuid() != 0:
        problems.append("not root: kubelet, containerd and the pod network need root "
                        "(run as root, or set plinth:cluster.node: false)")
    if not Path("/sys/fs/cgroup/memory").is_dir() and not Path(
            "/sys/fs/cgroup/cgroup.controllers").exists():
        problems.append("no cgroup filesystem with the memory controller at /sys/fs/cgroup")
    if not Path("/dev/kmsg").exists():
        problems.append("no /dev/kmsg (kubelet watches it for OOM kills)")
    for tool in _NODE_TOOLS:
        try:
            find_tool(tool)
        except ToolMissing:
            problems.append(f"{tool} is not installed (run scripts/setup)")
    problems += [f"CNI plugin {CNI_BIN / p} is missing (Debian: containernetworking-plugins)"
                 for p in CNI_PLUGINS if not (CNI_BIN / p).exists()]
    return problems


class LocalNode:
    """State (containerd's images and containers, kubelet's pods, logs, configs) lives in
    `state_dir`; `start()` is idempotent and `stop()` undoes every host change but keeps it."""

    def __init__(self, state_dir: Path, plane: LocalControlPlane) -> None:
        self.state_dir = state_dir
        self.plane = plane
        self.containerd = ManagedProcess("containerd", state_dir)
        self.kubelet = ManagedProcess("kubelet", state_dir)
        self.kube_proxy = ManagedProcess("kube-proxy", state_dir)
        self.short_dir = _short_dir(state_dir)
        self.socket = self.short_dir / "containerd.sock"
        self.host = HostChanges(state_dir / HOST_RECORD)
        self.certs_d = state_dir / "containerd" / "certs.d"
        self.logins = state_dir / "registry-logins.json"

    def running(self) -> bool:
        return all(p.running() for p in (self.containerd, self.kubelet, self.kube_proxy))

    def prepare_network(self) -> None:
        """Claim the host, record it, and bring up the bridge whose address the control plane
        serves on: before the control plane starts."""
        problems = preflight()
        if problems:
            raise NodeUnavailable("this host cannot run a Kubernetes node:\n- "
                                  + "\n- ".join(problems))
        self._claim_host()
        self.host.record()
        if subprocess.run(["ip", "link", "show", BRIDGE], capture_output=True).returncode:
            _ip("link", "add", BRIDGE, "type", "bridge")
        addresses = subprocess.run(["ip", "-o", "-4", "addr", "show", "dev", BRIDGE],
                                   capture_output=True, text=True).stdout
        if f" {NODE_IP}/" not in addresses:
            _ip("addr", "add", f"{NODE_IP}/24", "dev", BRIDGE)
        _ip("link", "set", BRIDGE, "up")
        # Pod-to-Service traffic between pods on one bridge must pass kube-proxy's iptables.
        write_sysctl("net.ipv4.ip_forward", "1")
        write_sysctl("net.bridge.bridge-nf-call-iptables", "1")

    def start(self, timeout: float = 120.0) -> None:
        """Start containerd, kubelet and kube-proxy against the running control plane."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._write_cni_config()
        self.containerd.start([str(find_tool("containerd")), "--config",
                               str(self._write_containerd_config())])
        self.containerd.wait_ready(self.socket.exists, timeout)
        self.kubelet.start(self._kubelet_argv())
        self.kube_proxy.start([str(find_tool("kube-proxy")),
                               f"--config={self._write_kube_proxy_config()}"])
        self.kube_proxy.wait_ready(lambda: port_open(self._ports()["proxy_healthz"]), timeout)
        self.kubelet.wait_ready(lambda: port_open(self._ports()["kubelet_healthz"]), timeout)

    def import_image(self, archive: Path) -> None:
        """Preload an OCI archive into the CRI's image store (system images: no registry yet)."""
        proc = subprocess.run([str(find_tool("ctr")), "--address", str(self.socket),
                               "--namespace", "k8s.io", "images", "import",
                               str(archive)], capture_output=True, text=True)
        if proc.returncode != 0:
            raise ServerStartError(f"ctr images import {archive.name}: {proc.stderr.strip()}")

    def trust_registry(self, host: str, username: str, password: str) -> None:
        """Let the node pull from `host` (host:port, the stack's registry): over plain HTTP
        (containerd reads certs.d at each pull) and logged in (kubelet asks our credential
        provider), so no namespace needs a pull Secret."""
        directory = self.certs_d / host
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "hosts.toml").write_text(
            f'server = "http://{host}"\n\n[host."http://{host}"]\n'
            '  capabilities = ["pull", "resolve"]\n')
        known = registry_login.hosts(self.logins)
        registry_login.add_login(self.logins, host, username, password)
        if host not in known and self.kubelet.running():
            # kubelet reads which images its provider serves (host:port) only at start; its
            # pods run on while it restarts
            self.kubelet.stop(timeout=3)
            self.kubelet.start(self._kubelet_argv())
            self.kubelet.wait_ready(lambda: port_open(self._ports()["kubelet_healthz"]))

    def stop(self) -> None:
        """Stop the node and undo every host change; images stay for a restart (pods are
        recreated from the API server's objects)."""
        _stop_node(self.state_dir)

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.state_dir, ignore_errors=True)

    def _claim_host(self) -> None:
        owner = clear_dead_node()
        if owner is not None and owner != self.state_dir.resolve():
            raise NodeUnavailable(
                f"a Plinth node already runs on this host (state {owner}); only one can: "
                f"stop it first (`pulumi destroy` of its stack or `plinth local stop`)")
        HOST_CLAIM.write_text(json.dumps({"state_dir": str(self.state_dir.resolve())}))

    def _ports(self) -> dict[str, int]:
        path = self.state_dir / "ports.json"
        if not path.exists():
            self.state_dir.mkdir(parents=True, exist_ok=True)
            names = ("kubelet", "kubelet_healthz", "proxy_healthz", "proxy_metrics")
            path.write_text(json.dumps({name: free_port() for name in names}))
        ports: dict[str, int] = json.loads(path.read_text())
        return ports

    def _write_containerd_config(self) -> Path:
        config = f"""version = 2
root = "{self.state_dir / 'containerd' / 'root'}"
state = "{self.state_dir / 'containerd' / 'state'}"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
                    "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.devmapper",
                    "io.containerd.internal.v1.opt", "io.containerd.tracing.processor.v1.otlp"]

[grpc]
  address = "{self.socket}"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{SYSTEM_IMAGES['pause']}"
  # The VM's capability bounding set lacks CAP_SYS_RESOURCE: without this runc fails every
  # sandbox writing oom_score_adj (see shared notes, real-node.md).
  restrict_oom_score_adj = true
  enable_selinux = false
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{CNI_BIN}"
    conf_dir = "{self.state_dir / 'cni' / 'net.d'}"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "{self.certs_d}"
"""
        self.socket.parent.mkdir(parents=True, exist_ok=True)
        self.certs_d.mkdir(parents=True, exist_ok=True)
        path = self.state_dir / "containerd.toml"
        path.write_text(config)
        return path

    def _write_cni_config(self) -> None:
        conf_dir = self.state_dir / "cni" / "net.d"
        conf_dir.mkdir(parents=True, exist_ok=True)
        conflist = {
            "cniVersion": "0.4.0",
            "name": "plinth",
            "plugins": [
                {"type": "bridge", "bridge": BRIDGE, "isGateway": True, "ipMasq": True,
                 "hairpinMode": True,
                 "ipam": {"type": "host-local", "ranges": [[{"subnet": POD_CIDR,
                                                              "gateway": NODE_IP}]],
                          "routes": [{"dst": "0.0.0.0/0"}],
                          "dataDir": str(self.state_dir / "cni" / "ipam")}},
                {"type": "portmap", "capabilities": {"portMappings": True}},
            ],
        }
        (conf_dir / "10-plinth.conflist").write_text(json.dumps(conflist, indent=1))

    def _kubelet_argv(self) -> list[str]:
        ca = CertificateAuthority(self.plane.pki)
        serving = ca.issue("kubelet-serving", f"system:node:{NODE_NAME}",
                           server_hosts=(NODE_IP, NODE_NAME, "127.0.0.1", "localhost"))
        kubeconfig = self.plane.client_kubeconfig("kubelet", f"system:node:{NODE_NAME}",
                                                  "system:nodes")
        ports = self._ports()
        config = {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            "address": NODE_IP,
            "port": ports["kubelet"],
            "readOnlyPort": 0,
            "healthzBindAddress": "127.0.0.1",
            "healthzPort": ports["kubelet_healthz"],
            "tlsCertFile": str(serving.cert),
            "tlsPrivateKeyFile": str(serving.key),
            "authentication": {"anonymous": {"enabled": False}, "webhook": {"enabled": True},
                               "x509": {"clientCAFile": str(ca.pair.cert)}},
            "authorization": {"mode": "Webhook"},
            "cgroupDriver": "cgroupfs",
            "failCgroupV1": False,  # these hosts run cgroup v1
            "failSwapOn": False,
            "containerRuntimeEndpoint": f"unix://{self.socket}",
            "clusterDNS": [CLUSTER_DNS_IP],
            "clusterDomain": CLUSTER_DOMAIN,
            "resolvConf": "/etc/resolv.conf",
            "podLogsDir": str(self.state_dir / "pod-logs"),
            "maxPods": 60,
            "serializeImagePulls": False,
            "evictionHard": {"memory.available": "50Mi", "nodefs.available": "1%",
                             "nodefs.inodesFree": "1%", "imagefs.available": "1%"},
            "imageGCHighThresholdPercent": 99,
            "imageGCLowThresholdPercent": 98,
            "rotateCertificates": False,
            "serverTLSBootstrap": False,
            "protectKernelDefaults": False,
            "registerNode": True,
        }
        path = self.state_dir / "kubelet.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        providers = self._write_credential_provider()
        return [
            str(find_tool("kubelet")),
            f"--config={path}",
            f"--kubeconfig={kubeconfig}",
            f"--root-dir={self.short_dir / 'kubelet'}",
            f"--cert-dir={self.state_dir / 'kubelet-pki'}",
            f"--hostname-override={NODE_NAME}",
            f"--node-ip={NODE_IP}",
            f"--image-credential-provider-config={providers}",
            f"--image-credential-provider-bin-dir={providers.parent / 'bin'}",
            "--v=1",
        ]

    def _write_credential_provider(self) -> Path:
        """kubelet's exec plugin for images on the node IP: `plinth.localenv.registry_login`."""
        bin_dir = self.state_dir / "bin"
        bin_dir.mkdir(parents=True, exist_ok=True)
        script = bin_dir / LOGIN_PROVIDER
        script.write_text(f"#!/bin/sh\nexec '{sys.executable}' -m plinth.localenv.registry_login "
                          f"'{self.logins}'\n")
        script.chmod(0o755)
        config = {"apiVersion": "kubelet.config.k8s.io/v1", "kind": "CredentialProviderConfig",
                  "providers": [{"name": LOGIN_PROVIDER,
                                 "matchImages": registry_login.hosts(self.logins) or [NODE_IP],
                                 "defaultCacheDuration": "5m",
                                 "apiVersion": registry_login.API_VERSION}]}
        path = self.state_dir / "credential-providers.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return path

    def _write_kube_proxy_config(self) -> Path:
        kubeconfig = self.plane.client_kubeconfig("kube-proxy", "system:kube-proxy")
        ports = self._ports()
        config = {
            "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
            "kind": "KubeProxyConfiguration",
            "clientConnection": {"kubeconfig": str(kubeconfig)},
            "mode": "iptables",
            "clusterCIDR": POD_CIDR,
            "hostnameOverride": NODE_NAME,
            "healthzBindAddress": f"127.0.0.1:{ports['proxy_healthz']}",
            "metricsBindAddress": f"127.0.0.1:{ports['proxy_metrics']}",
            "nodePortAddresses": [f"{NODE_IP}/32"],
            "conntrack": {"maxPerCore": 0},  # leave the host's conntrack limit alone
            "iptables": {"localhostNodePorts": False},
        }
        path = self.state_dir / "kube-proxy.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return path


def _short_dir(state_dir: Path) -> Path:
    """A unix socket path has at most 104 bytes, and containerd and kubelet (in its root
    folder) make sockets: the state folder may be deep, so these live in a short folder named
    after it, removed with the node."""
    return SHORT_ROOT / hashlib.sha256(str(state_dir.resolve()).encode()).hexdigest()[:12]


def _stop_node(state_dir: Path) -> None:
    """Stop the node whose state is `state_dir`, kill its pods and undo its host changes. Only
    the state folder is needed, so this also clears a node whose processes died without it."""
    for name in ("kube-proxy", "kubelet"):  # no state to save: the API server has it
        ManagedProcess(name, state_dir).stop(timeout=3)
    short_dir = _short_dir(state_dir)
    kill_workloads(short_dir / "containerd.sock")
    ManagedProcess("containerd", state_dir).stop()
    HostChanges(state_dir / HOST_RECORD).undo(state_dirs=[state_dir, short_dir], bridge=BRIDGE)
    shutil.rmtree(short_dir, ignore_errors=True)
    _remove_if_empty(SHORT_ROOT)
    if HOST_CLAIM.exists() and json.loads(HOST_CLAIM.read_text())["state_dir"] == str(
            state_dir.resolve()):
        HOST_CLAIM.unlink()


def clear_dead_node() -> Path | None:
    """The state folder of the node that runs on this host, or None. A node whose kubelet is
    gone (its stack killed, not destroyed) still holds the bridge, pod network namespaces,
    mounts and iptables chains: those are undone here, with the dead node's record of the host
    before it, so the next node records the host as it was."""
    if not HOST_CLAIM.exists():
        return None
    owner = Path(json.loads(HOST_CLAIM.read_text())["state_dir"])
    if ManagedProcess("kubelet", owner).running():
        return owner
    _stop_node(owner)
    HOST_CLAIM.unlink(missing_ok=True)
    return None


def _remove_if_empty(directory: Path) -> None:
    try:
        directory.rmdir()
    except OSError:
        pass


def _ip(*args: str) -> None:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise NodeUnavailable(f"ip {' '.join(args)}: {proc.stderr.strip()}")
