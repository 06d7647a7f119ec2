"""Why a workload is not ready, in its pods' own words, as `kubectl describe` shows it.

`health.assess` judges one object from its own status; a Deployment's status only counts
replicas. What went wrong (an image that cannot be pulled, a container that keeps crashing, a
pod no node can take) is written by the kubelet and the scheduler on the pods. So for the few
workloads still not ready, the health wait looks at their pods: one label-selected LIST per
workload, never one per object applied.

Only reasons, exit codes and the kubelet's or scheduler's messages are reported, on one line of
bounded length: never container termination messages (with `FallbackToLogsOnError` they are the
tail of a log) nor anything from the pod spec, where env values live.
"""
from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sync_controller.inventory import ObjectRef
from sync_controller.kube import Cluster, KubeError

# Waiting reasons that do not fix themselves: the kubelet retries, and fails again the same way.
STUCK_REASONS = frozenset({"ImagePullBackOff", "ErrImagePull", "CrashLoopBackOff",
                           "CreateContainerConfigError", "InvalidImageName"})
# A workload whose pods show a stuck reason this long fails the health check before its timeout.
# The kubelet retries a failed pull or a crashed container after 10s, 20s, then 40s: within a
# minute it has failed three times (past a registry blip, or an image pushed a moment after its
# manifest), and a minute is well inside the default 5m timeout that would otherwise be waited.
STUCK_AFTER = 60.0
# The wait polls every couple of seconds; pods change at the kubelet's pace (back-offs of 10s and
# more), so a fresh LIST every few seconds tells the same story with fewer requests.
LIST_EVERY = 5.0
MAX_MESSAGE = 240

_STARTING_REASONS = frozenset({"ContainerCreating", "PodInitializing"})
_WORKLOADS = frozenset({("apps", "Deployment"), ("apps", "ReplicaSet"), ("apps", "StatefulSet"),
                        ("apps", "DaemonSet"), ("batch", "Job")})
_OPERATORS = {"In": "{key} in ({values})", "NotIn": "{key} notin ({values})",
              "Exists": "{key}", "DoesNotExist": "!{key}"}
_URL_CREDENTIALS = re.compile(r"(\w+://)[^/\s@]+@")

# How telling a finding is: the most telling one across a workload's pods is reported.
_FAILING = 2  # cannot run: an error while waiting, a failed exit, unschedulable, evicted
_STARTING = 1  # on its way: creating, initializing, running but not ready yet
_PHASE = 0  # nothing but the pod's phase to go on


@dataclass(frozen=True)
class PodReason:
    text: str
    rank: int
    stuck: bool = False

    def __str__(self) -> str:
        return self.text


def one_line(message: str, limit: int = MAX_MESSAGE) -> str:
    """Whitespace folded, credentials in URLs masked, cut to `limit` characters."""
    text = _URL_CREDENTIALS.sub(r"\1***@", " ".join(message.split()))
    return text if len(text) <= limit else text[:limit - 1] + "…"


def pod_reason(pod: dict[str, Any]) -> PodReason | None:
    """The most telling reason a pod is not ready, or None for a ready, done or leaving pod."""
    meta, status = pod.get("metadata") or {}, pod.get("status") or {}
    if meta.get("deletionTimestamp") or status.get("phase") == "Succeeded" or \
            _condition(status, "Ready").get("status") == "True":
        return None
    name = f"pod {meta.get('name')}"
    findings = [
        *_pod_failures(name, status),
        *(_container(f"{name} init container", c) for c in status.get("initContainerStatuses")
          or []),
        *(_container(f"{name} container", c) for c in status.get("containerStatuses") or []),
        PodReason(f"{name}: {status.get('phase') or 'Pending'}", _PHASE)]
    return max((f for f in findings if f is not None), key=lambda f: f.rank)


def most_telling(pods: Iterable[dict[str, Any]]) -> PodReason | None:
    """Across a workload's pods, by name so the same pods give the same answer."""
    ordered = sorted(pods, key=lambda p: str((p.get("metadata") or {}).get("name")))
    reasons = [r for r in map(pod_reason, ordered) if r is not None]
    return max(reasons, key=lambda r: r.rank, default=None)


def pod_selector(workload: dict[str, Any]) -> str | None:
    """The label selector of a workload kind that owns pods, in LIST query syntax."""
    if (ObjectRef.of(workload).group, workload.get("kind")) not in _WORKLOADS:
        return None
    selector = (workload.get("spec") or {}).get("selector") or {}
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expression in selector.get("matchExpressions") or []:
        template = _OPERATORS.get(expression.get("operator", ""))
        if template is None:
            return None
        parts.append(template.format(key=expression.get("key"),
                                     values=",".join(expression.get("values") or [])))
    # An empty selector selects every pod in the namespace: nothing to learn from those.
    return ",".join(parts) or None


def _condition(status: dict[str, Any], type_: str) -> dict[str, Any]:
    return next((c for c in status.get("conditions") or [] if c.get("type") == type_), {})


def _pod_failures(name: str, status: dict[str, Any]) -> list[PodReason]:
    found = []
    scheduled = _condition(status, "PodScheduled")
    if scheduled.get("status") == "False":
        found.append(PodReason(_said(name, scheduled.get("reason") or "NotScheduled",
                                     scheduled.get("message")), _FAILING))
    if status.get("phase") == "Failed" and status.get("reason"):  # Evicted, DeadlineExceeded
        found.append(PodReason(_said(name, status["reason"], status.get("message")), _FAILING))
    return found


def _container(name: str, container: dict[str, Any]) -> PodReason | None:
    who = f"{name} {container.get('name')}"
    state = container.get("state") or {}
    last = (container.get("lastState") or {}).get("terminated")
    restarts = int(container.get("restartCount") or 0)
    if (waiting := state.get("waiting")) is not None:
        reason = str(waiting.get("reason") or "Waiting")
        if reason == "CrashLoopBackOff":
            # The kubelet's own message only repeats the back-off; the last exit is the news.
            return PodReason(_said(who, reason, _last_exit(last, restarts)), _FAILING, stuck=True)
        rank = _STARTING if reason in _STARTING_REASONS else _FAILING
        return PodReason(_said(who, reason, waiting.get("message")), rank,
                         stuck=reason in STUCK_REASONS)
    terminated = state.get("terminated")
    if terminated is not None and _failed_exit(terminated):
        return PodReason(_said(who, str(terminated.get("reason") or "Terminated"),
                               f"exit code {terminated.get('exitCode')}"), _FAILING)
    if "running" in state and not container.get("ready"):
        if last and _failed_exit(last):
            # Caught between two crashes of a crash loop.
            return PodReason(_said(who, "running, not ready", _last_exit(last, restarts)),
                             _STARTING, stuck=True)
        return PodReason(f"{who}: running, not ready", _STARTING)
    return None


def _failed_exit(terminated: dict[str, Any]) -> bool:
    return int(terminated.get("exitCode") or 0) != 0 or terminated.get("reason") == "OOMKilled"


def _last_exit(last: dict[str, Any] | None, restarts: int) -> str:
    times = f"restarted {restarts} time{'s' if restarts != 1 else ''}"
    if not last:
        return times
    why = f" ({last['reason']})" if last.get("reason") else ""
    return f"last exit code {last.get('exitCode')}{why}, {times}"


def _said(who: str, reason: str, message: str | None) -> str:
    return f"{who}: {reason}: {one_line(message)}" if message else f"{who}: {reason}"


@dataclass(frozen=True)
class _Look:
    at: float
    reason: PodReason | None
    stuck_since: float | None


class PodReasons:
    """One health wait's look at the pods of its workloads that are not ready: the latest
    reason of each, and how long a stuck reason has been seen without a break."""

    def __init__(self, cluster: Cluster, clock: Callable[[], float] = time.monotonic) -> None:
        self._cluster, self._clock = cluster, clock
        self._looks: dict[ObjectRef, _Look] = {}

    async def explain(self, live: dict[str, Any]) -> PodReason | None:
        """Why `live` (a workload or a bare Pod, not ready) is not ready, if its pods say."""
        ref, now = ObjectRef.of(live), self._clock()
        last = self._looks.get(ref)
        if ref.group == "" and live.get("kind") == "Pod":
            reason = pod_reason(live)
        elif last is not None and now - last.at < LIST_EVERY:
            return last.reason
        else:
            reason = await self._from_pods(live, ref.namespace)
        stuck_since = None
        if reason is not None and reason.stuck:
            stuck_since = last.stuck_since if last and last.stuck_since is not None else now
        self._looks[ref] = _Look(now, reason, stuck_since)
        return reason

    def stuck_for(self, ref: ObjectRef) -> float:
        """Seconds the pods of `ref` have shown a stuck reason without a break (0 if not)."""
        look = self._looks.get(ref)
        if look is None or look.stuck_since is None:
            return 0.0
        return self._clock() - look.stuck_since

    async def _from_pods(self, workload: dict[str, Any], namespace: str) -> PodReason | None:
        selector = pod_selector(workload)
        if selector is None:
            return None
        try:
            pods = await self._cluster.list("v1", "Pod", namespace, label_selector=selector)
        except KubeError:
            return None  # the reason is a help, not a health rule: the wait goes on without it
        return most_telling(pods)
