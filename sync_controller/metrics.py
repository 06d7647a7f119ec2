"""Prometheus metrics and the probe endpoints (/metrics, /healthz, /readyz) on one HTTP port."""
from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client import generate_latest

from sync_controller.readiness import Readiness

_LABELS = ("kind", "namespace", "name")


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.reconcile_duration = Histogram(
            "plinth_reconcile_duration_seconds", "Duration of one reconcile.", _LABELS,
            registry=self.registry, buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300))
        self.ready = Gauge("plinth_ready", "1 when the object's Ready condition is True.",
                           _LABELS, registry=self.registry)
        self.applied = Counter("plinth_objects_applied_total",
                               "Objects created or changed by server-side apply.", _LABELS,
                               registry=self.registry)
        self.pruned = Counter("plinth_objects_pruned_total",
                              "Objects deleted because they left the source.", _LABELS,
                              registry=self.registry)
        self.renders = Counter("plinth_renders_total",
                               "kustomize builds by successful reconciles (none while nothing "
                               "the last build read changes).", _LABELS, registry=self.registry)

    def forget(self, kind: str, namespace: str, name: str) -> None:
        for metric in (self.reconcile_duration, self.ready, self.applied, self.pruned,
                       self.renders):
            try:
                metric.remove(kind, namespace, name)
            except KeyError:
                pass


class ProbeServer:
    """Liveness answers while the event loop turns; readiness while the controller can do its
    job (see `Readiness`)."""

    def __init__(self, metrics: Metrics, readiness: Readiness, host: str, port: int) -> None:
        self.metrics, self.readiness, self.host, self.port = metrics, readiness, host, port
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _metrics(self, _: web.Request) -> web.Response:
        return web.Response(body=generate_latest(self.metrics.registry),
                            headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _healthz(self, _: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def _readyz(self, _: web.Request) -> web.Response:
        problem = await self.readiness.problem()
        if problem is None:
            return web.Response(text="ok")
        return web.Response(status=503, text=problem)
