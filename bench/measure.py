"""What every benchmark measures, the same way for every peer, and the servers they all need.

A controller's cost is that of its whole process tree: Plinth's controller runs kustomize and
git as children, Flux runs two processes that do both in-process. CPU counts each process with
the children it waited for; memory is sampled as the sum over the tree, so a short-lived
kustomize counts while it runs. API requests are the API server's own counters.
"""
from __future__ import annotations

import os
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from plinth.localenv.controlplane import LocalControlPlane  # noqa: E402
from plinth.localenv.tools import find_tool  # noqa: E402
from tests.controller.harness import Kube, api_requests  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def _stat(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_seconds(*pids: int) -> float:
    """User + system CPU of each process and of the children it waited for (kustomize, git)."""
    total = 0.0
    for pid in pids:
        fields = _stat(pid)
        total += sum(int(fields[i]) for i in (11, 12, 13, 14)) / TICKS
    return total


def tree(*pids: int) -> list[int]:
    """The processes and all their descendants, alive now."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                children.setdefault(int(_stat(int(entry.name))[1]), []).append(int(entry.name))
            except (OSError, IndexError):
                continue
    found, todo = [], list(pids)
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def rss_mib(*pids: int) -> float:
    """Resident memory of the processes and their descendants, summed."""
    total = 0
    for pid in tree(*pids):
        try:
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
        except (OSError, IndexError):
            continue
    return total / (1 << 20)


class RssSampler:
    """Samples `rss_mib` of a process tree every `every` seconds in a thread; `peak` is the
    highest sum seen (a tree's peak, which no single process's high-water mark gives)."""

    def __init__(self, *pids: int, every: float = 0.05) -> None:
        self.pids, self.every, self.peak = pids, every, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.peak = max(self.peak, rss_mib(*self.pids))

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent busy so far (all cores): a step's share not spent by
    the peer under test is background load, reported beside it."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / TICKS


def requests(kube: Kube, resources: tuple[str, ...]) -> int:
    """Requests the API server counted on the workload's kinds, watches aside."""
    return int(sum(n for resource in resources
                   for verb, n in api_requests(kube, resource).items() if verb != "WATCH"))


@dataclass
class Step:
    """One measured step of one peer: wall time, the peer's CPU, the API requests it made on
    the workload's kinds, and the machine's other load meanwhile."""

    wall_s: float
    cpu_s: float
    requests: int
    background_cpu_s: float

    def as_dict(self) -> dict[str, float | int]:
        return {"wall_s": round(self.wall_s, 3), "cpu_s": round(self.cpu_s, 3),
                "requests": self.requests, "background_cpu_s": round(self.background_cpu_s, 2)}


class StepMeter:
    """Measures what happens between `start` and `stop` for the processes `pids` (none for a
    peer that is a command: then its CPU is what this process's children used)."""

    def __init__(self, kube: Kube, resources: tuple[str, ...], pids: tuple[int, ...]) -> None:
        self.kube, self.resources, self.pids = kube, resources, pids

    def _cpu(self) -> float:
        if self.pids:
            return cpu_seconds(*self.pids)
        usage = os.times()
        return usage.children_user + usage.children_system

    def start(self) -> None:
        self._calls = requests(self.kube, self.resources)
        self._busy, self._cpu0 = machine_busy_seconds(), self._cpu()
        self._started = time.monotonic()

    def stop(self) -> Step:
        wall = time.monotonic() - self._started
        cpu = self._cpu() - self._cpu0
        busy = machine_busy_seconds() - self._busy
        return Step(wall, cpu, requests(self.kube, self.resources) - self._calls,
                    max(busy - cpu, 0.0))


@contextmanager
def control_plane() -> Iterator[tuple[Path, LocalControlPlane, Kube]]:
    """A throwaway etcd + kube-apiserver with Plinth's CRDs established, in a temporary
    folder that is yielded too (for git servers and work trees)."""
    with tempfile.TemporaryDirectory(prefix="plinth-bench-") as tmp_name:
        tmp = Path(tmp_name)
        plane = LocalControlPlane(tmp / "plane", durable=False)
        plane.start()
        try:
            kube = Kube(find_tool("kubectl"), plane.kubeconfig)
            crds = ROOT / "sync_controller" / "crds"
            kube.run("apply", "--server-side", "-f", str(crds))
            kube.run("wait", "--for=condition=Established", "-f", str(crds))
            yield tmp, plane, kube
        finally:
            plane.stop()


def load_average() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])
