"""ImageRepository scans and ImagePolicy choices (Flux's image-reflector-controller).

Scanned tags live in memory, keyed by ImageRepository; the status keeps the count, the scan
time and a sample. After a restart the repositories rescan before policies can choose.
"""
from __future__ import annotations

import asyncio
import base64
from dataclasses import dataclass
from typing import Any

import aiohttp

from sync_controller import conditions as cond
from sync_controller.durations import DurationError, parse_duration
from sync_controller.ecr_login import EcrLogins
from sync_controller.image_policy import Policy, PolicyError
from sync_controller.inventory import ObjectRef
from sync_controller.kube import Cluster
from sync_controller.registry_client import ImageName, Login, RegistryClient, RegistryError

GROUP, VERSION = "plinth.dev", "v1"


@dataclass(frozen=True)
class Scan:
    image: str
    tags: list[str]
    time: str


@dataclass(frozen=True)
class ImageOutcome:
    ready: bool
    message: str
    interval: float
    changed: bool


class ImageReflector:
    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.scans: dict[tuple[str, str], Scan] = {}
        self.ecr = EcrLogins()
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    async def client(self, repo: dict[str, Any]) -> RegistryClient:
        spec, namespace = repo.get("spec") or {}, repo["metadata"]["namespace"]
        image = ImageName.parse(spec["image"])
        login = Login()
        secret_name = (spec.get("secretRef") or {}).get("name")
        if spec.get("provider") == "aws":
            login = await asyncio.to_thread(self.ecr.login, image.host)
        elif secret_name:
            secret = await self.cluster.get(ObjectRef("", "Secret", namespace, secret_name, "v1"))
            data = (secret or {}).get("data") or {}
            if ".dockerconfigjson" not in data:
                raise RegistryError(f"secret {namespace}/{secret_name} (spec.secretRef) not "
                                    "found or has no .dockerconfigjson")
            login = Login.from_dockerconfigjson(
                base64.b64decode(data[".dockerconfigjson"]).decode(), image.host)
        timeout = parse_duration(spec.get("timeout", "30s"), "spec.timeout")
        return RegistryClient(self._http(), image, login, bool(spec.get("insecure")), timeout)

    async def scan(self, repo: dict[str, Any]) -> ImageOutcome:
        ref, key = ObjectRef.of(repo), (repo["metadata"]["namespace"], repo["metadata"]["name"])
        status = dict(repo.get("status") or {})
        generation = int(repo["metadata"].get("generation") or 0)
        interval = 300.0
        try:
            interval = parse_duration((repo.get("spec") or {}).get("interval", "5m"),
                                      "spec.interval")
            tags = sorted(await (await self.client(repo)).tags())
        except (RegistryError, DurationError) as err:
            return await self._failed(ref, status, generation, "ScanFailed", str(err), interval)
        previous = self.scans.get(key)
        scan = Scan(repo["spec"]["image"], tags, cond.now())
        self.scans[key] = scan
        message = f"found {len(tags)} tags"
        status.update(lastScanResult={"tagCount": len(tags), "scanTime": scan.time,
                                      "latestTags": tags[-10:]},
                      canonicalImageName=repo["spec"]["image"])
        cond.set_ready(status, True, "Succeeded", message, generation)
        await self.cluster.patch_status(ref, status)
        changed = previous is None or previous.tags != tags or previous.image != scan.image
        return ImageOutcome(True, message, interval, changed)

    async def choose(self, policy_obj: dict[str, Any]) -> ImageOutcome:
        ref, meta = ObjectRef.of(policy_obj), policy_obj["metadata"]
        spec, status = policy_obj.get("spec") or {}, dict(policy_obj.get("status") or {})
        generation = int(meta.get("generation") or 0)
        repo_ref = spec.get("imageRepositoryRef") or {}
        repo_key = (repo_ref.get("namespace") or meta["namespace"], repo_ref.get("name", ""))
        interval = 60.0
        try:
            interval = parse_duration(spec.get("interval", "1m"), "spec.interval")
            policy = Policy.from_spec(spec)
        except (PolicyError, DurationError) as err:
            return await self._failed(ref, status, generation, "InvalidPolicy", str(err),
                                      interval)
        scan = self.scans.get(repo_key)
        if scan is None:
            return await self._failed(ref, status, generation, "DependencyNotReady",
                                      f"ImageRepository {'/'.join(repo_key)} not scanned yet",
                                      min(interval, 5.0))
        tag = policy.latest(scan.tags)
        if tag is None:
            return await self._failed(ref, status, generation, "NoMatchingTag",
                                      f"no tag of {scan.image} ({len(scan.tags)} scanned) "
                                      "matches the policy", interval)
        latest: dict[str, str] = {"name": scan.image, "tag": tag}
        if spec.get("digestReflectionPolicy") == "Always":
            repo = await self.cluster.get(ObjectRef(GROUP, "ImageRepository", repo_key[0],
                                                    repo_key[1], VERSION))
            try:
                latest["digest"] = await (await self.client(repo or {})).digest(tag)
            except (RegistryError, KeyError) as err:
                return await self._failed(ref, status, generation, "DigestFailed", str(err),
                                          interval)
        changed = status.get("latestRef") != latest
        if changed and status.get("latestRef"):
            status["observedPreviousRef"] = status["latestRef"]
        chosen = f"{latest['name']}:{tag}" + (f"@{latest['digest']}" if "digest" in latest
                                              else "")
        status["latestRef"] = latest
        cond.set_ready(status, True, "Succeeded", f"latest image {chosen}", generation)
        await self.cluster.patch_status(ref, status)
        return ImageOutcome(True, chosen, interval, changed)

    async def _failed(self, ref: ObjectRef, status: dict[str, Any], generation: int,
                      reason: str, message: str, interval: float) -> ImageOutcome:
        cond.set_ready(status, False, reason, message, generation)
        await self.cluster.patch_status(ref, status)
        return ImageOutcome(False, message, interval, False)
