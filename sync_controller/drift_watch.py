"""Drift is healed within seconds of the edit, not at the next interval: after each successful
reconcile, the kinds and namespaces a Kustomization applied are watched (one stream each, by
the Kustomization's owner labels), and an object of it deleted, or written by anyone but the
controller (a status aside), wakes the Kustomization at once. The wake only asks for a
reconcile; what is healed, and how, is the reconcile's to decide (`applied_memory`).

While a Kustomization reconciles, its events are held, the last per object, and judged when
it succeeds, against the versions it left: its own writes are not drift, an edit made
meanwhile (during a long health check, say) is. A stream starts with every object there is (an edit made before it opened
counts too). When the server ends it, or it breaks, it starts again after a short pause from
the last version it saw (bookmarks keep that recent), so an unchanged cluster sends nothing;
only when the server no longer has that version (410) does it start from everything again. A
watch that cannot start at all costs nothing but the interval's delay.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, NamedTuple

from sync_controller.applied_memory import edited
from sync_controller.inventory import OWNER_NAME_LABEL, OWNER_NAMESPACE_LABEL, ObjectRef
from sync_controller.kube import Cluster, KubeError

log = logging.getLogger("plinth.controller")
Owner = tuple[str, str]  # the Kustomization's namespace and name
Stream = tuple[str, str, str]  # apiVersion, kind, namespace ("" for cluster-scoped objects)
MAX_PAUSE = 30.0
WATCH_SECONDS = 300  # the API server ends a watch; it is resumed where it ended


class _Event(NamedTuple):
    """What judging a watch event needs of it (not the object, which may be large)."""
    type: str
    object: str  # ObjectRef's str, for the log
    version: str
    edited: bool


class DriftWatch:
    def __init__(self, cluster: Cluster, versions_of: Callable[[Owner], dict[str, str] | None],
                 wake: Callable[[Owner], None]) -> None:
        self.cluster = cluster
        self.versions_of = versions_of  # None while the Kustomization reconciles
        self.wake = wake
        self.streams: dict[Owner, dict[Stream, asyncio.Task[None]]] = {}
        # the last event of each object while its owner reconciled, judged when it is done
        self.held: dict[Owner, dict[str, _Event]] = {}

    def follow(self, owner: Owner, refs: list[ObjectRef]) -> None:
        """Watch what `owner` applied now: new streams start, streams no longer needed end.
        What the streams saw while it reconciled is judged now: an edit made meanwhile is
        drift too."""
        wanted = {(r.api_version, r.kind, r.namespace) for r in refs}
        current = self.streams.setdefault(owner, {})
        for stream in set(current) - wanted:
            current.pop(stream).cancel()
        for stream in sorted(wanted - set(current)):
            current[stream] = asyncio.create_task(self._watch(owner, stream))
        versions = self.versions_of(owner)
        drifted = [event for ref_id, event in self.held.pop(owner, {}).items()
                   if versions is not None and self._drift(versions, ref_id, event)]
        if drifted:
            self._wake(owner, drifted[0])

    def forget(self, owner: Owner) -> None:
        for task in self.streams.pop(owner, {}).values():
            task.cancel()
        self.held.pop(owner, None)

    def close(self) -> None:
        for owner in list(self.streams):
            self.forget(owner)

    def seen(self, owner: Owner, event: str, obj: dict[str, Any]) -> None:
        """One watch event: wake the owner when it is drift; while it reconciles, hold it."""
        ref = ObjectRef.of(obj)
        judged = _Event(event, str(ref),
                        str((obj.get("metadata") or {}).get("resourceVersion") or ""),
                        edited(obj))
        versions = self.versions_of(owner)
        if versions is None:
            self.held.setdefault(owner, {})[ref.id] = judged
        elif self._drift(versions, ref.id, judged):
            self._wake(owner, judged)

    @staticmethod
    def _drift(versions: dict[str, str], ref_id: str, event: _Event) -> bool:
        """An object the owner applied, deleted or written by someone else since."""
        return ref_id in versions and (event.type == "DELETED" or (
            event.version != versions[ref_id] and event.edited))

    def _wake(self, owner: Owner, event: _Event) -> None:
        log.info("drift", extra={"object": event.object, "kustomization": "/".join(owner),
                                 "event": event.type})
        self.wake(owner)

    async def _watch(self, owner: Owner, stream: Stream) -> None:
        api_version, kind, namespace = stream
        selector = f"{OWNER_NAME_LABEL}={owner[1]},{OWNER_NAMESPACE_LABEL}={owner[0]}"
        pause = 1.0
        version: str | None = None  # where the next stream resumes; None: from everything
        while True:
            started = time.monotonic()
            try:
                async for event, obj in self.cluster.watch(api_version, kind, namespace,
                                                           selector, WATCH_SECONDS, version):
                    at = (obj.get("metadata") or {}).get("resourceVersion")
                    version = str(at) if at else version
                    if event != "BOOKMARK":
                        self.seen(owner, event, obj)
            except asyncio.CancelledError:
                raise
            except Exception as err:  # the API server away, a version it no longer has
                if isinstance(err, KubeError) and err.status == 410:
                    version = None
                log.debug("drift watch restarts", extra={
                    "kustomization": "/".join(owner), "kind": kind, "error": str(err)})
            if time.monotonic() - started < MAX_PAUSE:  # a stream that ends at once: slow down
                await asyncio.sleep(pause)
                pause = min(pause * 2, MAX_PAUSE)
            else:
                pause = 1.0
