"""A picture of what a node changes on the host, to compare before `up` and after `destroy`."""
from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from plinth.localenv.hostchanges import CGROUP_ROOT, FIXED_PATHS, POD_CGROUP, SYSCTLS, read_sysctl

# A table's built-in chains are listed once anything has loaded the table (the kernel keeps it
# loaded): on a fresh host the node's first use of ip6tables makes them appear for good. Only
# chains someone created can be left behind; a rule left in a built-in chain jumps to one.
BUILTIN_CHAINS = frozenset({":INPUT", ":OUTPUT", ":FORWARD", ":PREROUTING", ":POSTROUTING"})
NODE_PROGRAMS = ("kubelet", "kube-proxy", "containerd", "containerd-shim", "kube-scheduler",
                 "coredns", "/pause")


@dataclass(frozen=True)
class HostState:
    processes: frozenset[str]
    mounts: frozenset[str]
    cgroups: frozenset[str]
    chains: frozenset[str]
    links: frozenset[str]
    sysctls: tuple[tuple[str, str | None], ...]
    paths: frozenset[str]

    def differences(self, other: HostState) -> dict[str, object]:
        """Field -> (only before, only after), for the fields that differ."""
        diff: dict[str, object] = {}
        for name in self.__dataclass_fields__:
            mine, theirs = getattr(self, name), getattr(other, name)
            if mine != theirs:
                if isinstance(mine, frozenset):
                    diff[name] = (sorted(mine - theirs), sorted(theirs - mine))
                else:
                    diff[name] = (mine, theirs)
        return diff


def snapshot(state_dir: Path) -> HostState:
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    processes = {line for line in ps.splitlines()[1:]
                 if str(state_dir) in line or any(line.split(" ")[0].endswith(p)
                                                  for p in NODE_PROGRAMS)}
    mounts = {line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()}
    cgroups = {str(d) for d in CGROUP_ROOT.glob(f"*/{POD_CGROUP}")} | {
        str(d) for d in CGROUP_ROOT.glob(POD_CGROUP)}
    chains = set()
    for tool in ("iptables-save", "ip6tables-save"):
        out = subprocess.run([tool], capture_output=True, text=True).stdout
        chains |= {f"{tool}:{line.split()[0]}" for line in out.splitlines()
                   if line.startswith(":") and line.split()[0] not in BUILTIN_CHAINS}
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    return HostState(
        processes=frozenset(processes),
        mounts=frozenset(mounts),
        cgroups=frozenset(cgroups),
        chains=frozenset(chains),
        links=frozenset(line.split(":")[1].strip().split("@")[0]
                        for line in links.splitlines()),
        sysctls=tuple((name, read_sysctl(name)) for name in SYSCTLS),
        paths=frozenset(str(p) for p in FIXED_PATHS if p.exists()),
    )
