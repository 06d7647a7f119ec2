"""What a node changes on the host, recorded before it starts and undone when it goes.

A kubelet, containerd, the CNI plugins and kube-proxy change the host well outside the node's
state folder: sysctls, iptables chains, mounts, cgroups, network namespaces, a bridge and veths,
and a few fixed paths. `kind delete` gets this for free from Docker; here the node must undo it
itself, so `pulumi destroy` leaves the host as it was.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path

# Sysctls the node sets (bridge traffic through iptables, forwarding) or kubelet sets
# (protectKernelDefaults: false lets it tune these three).
SYSCTLS = (
    "net.ipv4.ip_forward",
    "net.bridge.bridge-nf-call-iptables",
    "vm.overcommit_memory",
    "kernel.panic",
    "kernel.panic_on_oops",
)
NETNS = Path("/run/netns")
# Paths kubelet, containerd and the CNI plugins use whatever their configuration says.
FIXED_PATHS = (
    Path("/var/lib/kubelet"),
    Path("/var/log/containers"),
    Path("/var/log/pods"),
    Path("/var/lib/cni"),
    Path("/run/containerd"),
    NETNS,
    Path("/etc/cni"),
    Path("/opt/cni"),
)
CHAIN_PREFIXES = ("KUBE-", "CNI-")
CNI_NETNS_PREFIX = "cni-"  # containerd names a pod's network namespace cni-<uuid>
CGROUP_ROOT = Path("/sys/fs/cgroup")
POD_CGROUP = "kubepods"


def _sysctl_path(name: str) -> Path:
    return Path("/proc/sys") / name.replace(".", "/")


def read_sysctl(name: str) -> str | None:
    try:
        return _sysctl_path(name).read_text().strip()
    except OSError:
        return None


def write_sysctl(name: str, value: str) -> None:
    _sysctl_path(name).write_text(value)


class HostChanges:
    """The host as it was before the node, kept in `record_file` until the node is gone.

    Recording is idempotent: a restarted node keeps the first record, which is the host before
    any node ran.
    """

    def __init__(self, record_file: Path) -> None:
        self.record_file = record_file

    def record(self) -> None:
        if self.record_file.exists():
            return
        self.record_file.parent.mkdir(parents=True, exist_ok=True)
        record = {
            "sysctls": {name: read_sysctl(name) for name in SYSCTLS},
            "existing_paths": [str(p) for p in FIXED_PATHS if p.exists()],
            "netns": sorted(_netns_names()),
        }
        self.record_file.write_text(json.dumps(record, indent=1))

    def undo(self, *, state_dirs: Iterable[Path], bridge: str) -> None:
        """Unmount, delete the network, restore sysctls and paths (after `kill_workloads`).

        Without a record (a dead node's state folder was removed) what the node certainly made
        goes (its mounts, bridge, chains, cgroups and the CNI's namespaces); sysctls and
        fixed paths stay, since what they were before is unknown."""
        record = json.loads(self.record_file.read_text()) if self.record_file.exists() else None
        netns_before = set((record or {}).get("netns", []))
        unmount_under([*state_dirs, *(p for p in FIXED_PATHS if p != NETNS)])
        for name in _netns_names() - netns_before:
            if name.startswith(CNI_NETNS_PREFIX):  # other namespaces there are not the node's
                unmount_under([NETNS / name])
                (NETNS / name).unlink(missing_ok=True)
        delete_bridge(bridge)
        remove_chains(CHAIN_PREFIXES)
        remove_cgroups(POD_CGROUP)
        if record is None:
            return
        for name, value in record["sysctls"].items():
            if value is not None and read_sysctl(name) != value:
                write_sysctl(name, value)
        existing = set(record["existing_paths"])
        for path in FIXED_PATHS:
            if str(path) in existing:
                continue
            if path == NETNS and _netns_names():
                continue  # namespaces of others, made while the node ran: theirs to remove
            unmount_under([path])
            shutil.rmtree(path, ignore_errors=True)
        self.record_file.unlink(missing_ok=True)


def kill_workloads(containerd_socket: Path) -> None:
    """Every container process, then the shims of that containerd (they name its socket)."""
    kill_pod_processes()
    kill_matching(str(containerd_socket))


def _netns_names() -> set[str]:
    try:
        return {p.name for p in NETNS.iterdir()}
    except FileNotFoundError:
        return set()


def _cgroup_dirs(name: str) -> list[Path]:
    """`name` at the top of every cgroup hierarchy (v1: one per controller; v2: one)."""
    tops = [CGROUP_ROOT / name]
    if CGROUP_ROOT.exists():
        tops += [d / name for d in CGROUP_ROOT.iterdir() if d.is_dir()]
    return [t for t in tops if t.is_dir()]


def kill_pod_processes(timeout: float = 10.0) -> None:
    """SIGKILL every process in the pods' cgroups until none is left."""
    deadline = time.monotonic() + timeout
    while True:
        pids = set()
        for top in _cgroup_dirs(POD_CGROUP):
            for procs in top.rglob("cgroup.procs"):
                try:
                    pids |= {int(p) for p in procs.read_text().split()}
                except OSError:
                    continue
        if not pids or time.monotonic() > deadline:
            return
        for pid in pids:
            _kill(pid)
        time.sleep(0.2)


def kill_matching(fragment: str) -> None:
    """SIGKILL processes whose command line holds `fragment` (containerd shims name their
    containerd's socket in theirs)."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if fragment in cmdline:
            _kill(int(proc.name))


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def mounts_under(roots: Iterable[Path]) -> list[str]:
    """Mount points at or below any of `roots`, deepest first."""
    prefixes = [str(r.resolve()) if r.exists() else str(r) for r in roots]
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].encode().decode("unicode_escape")
        if any(point == p or point.startswith(p.rstrip("/") + "/") for p in prefixes):
            found.append(point)
    return sorted(set(found), key=lambda p: p.count("/"), reverse=True)


def unmount_under(roots: Iterable[Path]) -> None:
    roots = list(roots)
    for _ in range(5):  # shared mounts propagate: repeat until nothing is left
        points = mounts_under(roots)
        if not points:
            return
        for point in points:
            if subprocess.run(["umount", point], capture_output=True).returncode != 0:
                subprocess.run(["umount", "-l", point], capture_output=True)


def delete_bridge(bridge: str) -> None:
    links = subprocess.run(["ip", "-o", "link", "show", "master", bridge],
                           capture_output=True, text=True).stdout
    for line in links.splitlines():
        veth = line.split(":")[1].strip().split("@")[0]
        subprocess.run(["ip", "link", "delete", veth], capture_output=True)
    subprocess.run(["ip", "link", "delete", bridge], capture_output=True)


def remove_chains(prefixes: tuple[str, ...]) -> None:
    """Drop every chain named with one of `prefixes`, and every rule that jumps to one, from
    the filter, nat and mangle tables of iptables and ip6tables; all other rules stay."""
    for tool in ("iptables", "ip6tables"):
        for table in ("filter", "nat", "mangle"):
            saved = subprocess.run([f"{tool}-save", "-t", table], capture_output=True, text=True)
            if saved.returncode != 0 or not any(p in saved.stdout for p in prefixes):
                continue
            kept = [line for line in saved.stdout.splitlines()
                    if not any(p in line for p in prefixes)]
            subprocess.run([f"{tool}-restore", "-w"], input="\n".join(kept) + "\n", text=True,
                           capture_output=True, check=True)


def remove_cgroups(name: str) -> None:
    for top in _cgroup_dirs(name):
        for directory in sorted((d for d in top.rglob("*") if d.is_dir()),
                                key=lambda d: len(d.parts), reverse=True):
            _rmdir(directory)
        _rmdir(top)


def _rmdir(directory: Path) -> None:
    try:
        directory.rmdir()
    except OSError:
        pass
