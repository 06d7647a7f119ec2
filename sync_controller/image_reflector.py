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

from plinth.kinds import GROUP, VERSION
from sync_controller import conditions as cond
from sync_controller.api import ImagePolicySpec, ImageRepositorySpec, spec_of
from sync_controller.ecr_login import EcrLogins
from sync_controller.image_policy import Policy, PolicyError
from sync_controller.inventory import ObjectRef
from sync_controller.kube import Cluster
from sync_controller.outcome import ReconcileError, Result, Stalling, Waiting
from sync_controller.registry_client import ImageName, Login, RegistryClient, RegistryError



@dataclass(frozen=True)
class Scan:
    image: str
    tags: list[str]
    time: str


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

    async def client(self, spec: ImageRepositorySpec, namespace: str) -> RegistryClient:
        image = ImageName.parse(spec.image)
        login = Login()
        secret_name = spec.secret_ref.name if spec.secret_ref else None
        if spec.provider == "aws":
            login = await asyncio.to_thread(self.ecr.login, image.host)
        elif secret_name:
            secret = await self.cluster.get(ObjectRef("", "Secret", namespace, secret_name, "v1"))
            data = (secret or {}).get("data") or {}
            if ".dockerconfigjson" not in data:
                raise RegistryError(f"secret {namespace}/{secret_name} (spec.secretRef) not "
                                    "found or has no .dockerconfigjson")
            login = Login.from_dockerconfigjson(
                base64.b64decode(data[".dockerconfigjson"]).decode(), image.host)
        return RegistryClient(self._http(), image, login, spec.insecure, spec.timeout)

    def forget(self, namespace: str, name: str) -> None:
        """A deleted ImageRepository's tags: its policies must not choose from them."""
        self.scans.pop((namespace, name), None)

    async def scan(self, repo: dict[str, Any], spec: ImageRepositorySpec,
                   status: dict[str, Any]) -> Result:
        key = (repo["metadata"]["namespace"], repo["metadata"]["name"])
        try:
            tags = sorted(await (await self.client(spec, key[0])).tags())
        except RegistryError as err:
            raise ReconcileError("ScanFailed", str(err)) from None
        previous = self.scans.get(key)
        scan = Scan(spec.image, tags, cond.now())
        self.scans[key] = scan
        status.update(lastScanResult={"tagCount": len(tags), "scanTime": scan.time,
                                      "latestTags": tags[-10:]},
                      canonicalImageName=spec.image)
        changed = previous is None or previous.tags != tags or previous.image != scan.image
        return Result("Succeeded", f"found {len(tags)} tags", spec.interval, changed)

    async def choose(self, policy_obj: dict[str, Any], spec: ImagePolicySpec,
                     status: dict[str, Any]) -> Result:
        repo_key = spec.image_repository_ref.key(policy_obj["metadata"]["namespace"])
        where = f"ImageRepository {'/'.join(repo_key)}"
        try:
            policy = Policy.from_spec(policy_obj.get("spec") or {})
        except PolicyError as err:
            raise Stalling("InvalidPolicy", str(err)) from None
        scan = self.scans.get(repo_key)
        repo = await self.cluster.get(ObjectRef(GROUP, "ImageRepository", repo_key[0],
                                                repo_key[1], VERSION))
        if repo is None or repo["metadata"].get("deletionTimestamp"):
            raise Waiting("DependencyNotReady", f"{where} (spec.imageRepositoryRef) not found")
        if scan is None:
            raise Waiting("DependencyNotReady", f"{where} not scanned yet",
                          retry_after=min(spec.interval, 5.0))
        tag = policy.latest(scan.tags)
        if tag is None:
            raise ReconcileError("NoMatchingTag", f"no tag of {scan.image} "
                                 f"({len(scan.tags)} scanned) matches the policy")
        latest: dict[str, str] = {"name": scan.image, "tag": tag}
        if spec.digest_reflection_policy == "Always":
            try:
                repo_spec = spec_of(repo)
                assert isinstance(repo_spec, ImageRepositorySpec)
                latest["digest"] = await (await self.client(repo_spec, repo_key[0])).digest(tag)
            except (RegistryError, Stalling) as err:
                raise ReconcileError("DigestFailed", str(err)) from None
        changed = status.get("latestRef") != latest
        if changed and status.get("latestRef"):
            status["observedPreviousRef"] = status["latestRef"]
        chosen = f"{latest['name']}:{tag}" + (f"@{latest['digest']}" if "digest" in latest
                                              else "")
        status["latestRef"] = latest
        return Result("Succeeded", f"latest image {chosen}", spec.interval, changed)
