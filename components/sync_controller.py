"""SyncController: installs the Plinth sync controller and points it at the GitOps repo.

Ownership, so Pulumi and the controller never fight:
- Pulumi creates the controller's install (Namespace, CRDs, ServiceAccount, RBAC, Deployment,
  Service) once, from the same generator that writes `clusters/<cluster>/plinth-system/` in git,
  and ignores later changes to them: from then on git owns them and the controller applies
  them (a version bump is a commit; the controller upgrades itself). Pulumi still deletes them
  on destroy.
- Pulumi alone owns what must exist before the controller can read git and is not in git: the
  git credentials Secret, the registry pull Secret, and the root GitRepository + Kustomization.

Where no pod can run (the `local` cluster without a node), the controller runs as a local
process against the same API server instead, so the path from `pulumi up` to synced objects is
still real.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.git_repository import Forge, ForgeWebhook
from components.local_servers import LocalServer
from plinth.forge.signature import receiver_path
from plinth import controller_manifests
from plinth.controller_manifests import NAMESPACE

ROOT = "plinth-system"


@dataclass(frozen=True)
class SyncControllerArgs:
    provider: k8s.Provider
    cluster_name: str
    image: pulumi.Input[str]
    pull_secret: str | None
    gitops_url: pulumi.Input[str]
    branch: str
    source_name: str
    git_secret_name: str
    local_kubeconfig_path: pulumi.Input[str] | None  # set: run the controller locally
    state_dir: Path
    forge_loop: ForgeLoop | None = None


@dataclass(frozen=True)
class ForgeLoop:
    """The GitOps repository on a forge: commit statuses go to it, its pushes come back."""

    forge: Forge
    repository: pulumi.Output[str]  # owner/name
    web_url: pulumi.Output[str]
    # where the forge sends pushes: "service" (the controller's Service, for a forge on the
    # cluster's host), a URL that reaches port 9292 (an Ingress), or None: no webhook
    receiver: str | None


def _bootstrap_only(skip_await: bool) -> pulumi.ResourceTransformation:
    """After creation git owns these objects; Pulumi keeps only create and delete. Without a
    kubelet (local cluster) no pod starts, so Pulumi must not wait for the rollout."""
    def transform(args: pulumi.ResourceTransformationArgs
                  ) -> pulumi.ResourceTransformationResult | None:
        props = args.props
        metadata = props.get("metadata")
        if skip_await and isinstance(metadata, dict):
            annotations = dict(metadata.get("annotations") or {})
            annotations["pulumi.com/skipAwait"] = "true"
            props = {**props, "metadata": {**metadata, "annotations": annotations}}
        keys = [k for k in ("metadata", "spec", "rules", "roleRef", "role_ref", "subjects",
                            "data") if k in props]
        return pulumi.ResourceTransformationResult(props, pulumi.ResourceOptions.merge(
            args.opts, pulumi.ResourceOptions(ignore_changes=keys)))
    return transform


class SyncController(pulumi.ComponentResource):
    def __init__(self, name: str, args: SyncControllerArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("plinth:sync_controller:SyncController", name, None, opts)
        k8s_opts = pulumi.ResourceOptions(parent=self, provider=args.provider)
        # The IRSA annotation (EKS) arrives with the first reconcile from git, which owns it.
        # The image is known once the registry is (the local one has a port of its own), so
        # the Deployment is a resource of its own with that output in it.
        objects = [o for o in controller_manifests.manifests("", args.pull_secret)
                   if o["kind"] not in ("Namespace", "Deployment")]  # Namespace: the Platform's
        install_opts = pulumi.ResourceOptions.merge(k8s_opts, pulumi.ResourceOptions(
            transformations=[_bootstrap_only(args.local_kubeconfig_path is not None)]))
        # CRDs as resources of their own, so that the root objects can depend on them: destroy
        # must delete those objects (their finalizers need the controller and the CRDs) first.
        self.crds = [k8s.apiextensions.v1.CustomResourceDefinition(
            f"{name}-crd-{crd['metadata']['name']}", metadata=crd["metadata"], spec=crd["spec"],
            opts=install_opts) for crd in objects if crd["kind"] == "CustomResourceDefinition"]
        # Every object a resource of its own, so that the root objects depend on each one:
        # Pulumi orders deletes by direct dependencies only, and the controller needs its
        # ServiceAccount, binding and Deployment until their finalizers are done.
        after_crds = pulumi.ResourceOptions.merge(install_opts,
                                                  pulumi.ResourceOptions(depends_on=self.crds))
        self.install: list[pulumi.Resource] = [
            _typed(f"{name}-{o['kind'].lower()}", o, after_crds) for o in objects
            if o["kind"] != "CustomResourceDefinition"]
        deployment = pulumi.Output.from_input(args.image).apply(
            lambda image: controller_manifests.deployment(image, args.pull_secret,
                                                          args.cluster_name))
        self.deployment = k8s.apps.v1.Deployment(
            f"{name}-deployment", metadata=controller_manifests.deployment("", None)["metadata"],
            spec=deployment.apply(lambda d: d["spec"]),
            opts=pulumi.ResourceOptions.merge(install_opts,
                                              pulumi.ResourceOptions(depends_on=self.install)))
        ready: list[pulumi.Resource] = [*self.install, self.deployment, *self.crds]
        if args.local_kubeconfig_path is not None:
            ready.append(LocalServer(
                f"{name}-process", "controller", str(args.state_dir / "controller"),
                kubeconfig_path=args.local_kubeconfig_path,
                opts=pulumi.ResourceOptions(parent=self, depends_on=ready)))
        # The root objects depend on the running controller, so destroy deletes them first,
        # while the controller is still there to prune behind their finalizers.
        root_opts = pulumi.ResourceOptions.merge(k8s_opts,
                                                 pulumi.ResourceOptions(depends_on=ready))
        self.source = k8s.apiextensions.CustomResource(
            f"{name}-source", api_version="plinth.dev/v1", kind="GitRepository",
            metadata={"name": args.source_name, "namespace": NAMESPACE},
            spec={"url": args.gitops_url, "ref": {"branch": args.branch}, "interval": "1m",
                  "secretRef": {"name": args.git_secret_name}}, opts=root_opts)
        self.root = k8s.apiextensions.CustomResource(
            f"{name}-root", api_version="plinth.dev/v1", kind="Kustomization",
            metadata={"name": ROOT, "namespace": NAMESPACE},
            spec=_root_spec(args.cluster_name, args.source_name),
            opts=pulumi.ResourceOptions.merge(root_opts,
                                              pulumi.ResourceOptions(depends_on=[self.source])))
        if args.forge_loop is not None and args.local_kubeconfig_path is None:
            self._forge_loop(name, args.forge_loop, args.source_name, k8s_opts,
                             pulumi.ResourceOptions.merge(root_opts, pulumi.ResourceOptions(
                                 depends_on=[self.source])))
        self.register_outputs({"image": args.image})

    def _forge_loop(self, name: str, loop: ForgeLoop, source_name: str,
                    k8s_opts: pulumi.ResourceOptions, root_opts: pulumi.ResourceOptions) -> None:
        """Statuses out (a Provider and an Alert for every Kustomization) and pushes in (a
        Receiver, and the forge's webhook to it through the controller's Service)."""
        receiver_token = loop.forge.token.apply(
            lambda token: hashlib.sha256(f"plinth-receiver:{token}".encode()).hexdigest())
        secrets = k8s.core.v1.Secret(
            f"{name}-forge-secrets", metadata={"name": "forge-tokens", "namespace": NAMESPACE},
            string_data={"token": loop.forge.token}, opts=k8s_opts)
        hook_secret = k8s.core.v1.Secret(
            f"{name}-receiver-secret", metadata={"name": "receiver-token",
                                                 "namespace": NAMESPACE},
            string_data={"token": receiver_token}, opts=k8s_opts)
        after = pulumi.ResourceOptions.merge(root_opts, pulumi.ResourceOptions(
            depends_on=[secrets, hook_secret]))
        k8s.apiextensions.CustomResource(
            f"{name}-provider", api_version="plinth.dev/v1", kind="Provider",
            metadata={"name": "forge", "namespace": NAMESPACE},
            spec={"type": loop.forge.kind, "address": loop.web_url,
                  "secretRef": {"name": "forge-tokens"}}, opts=after)
        k8s.apiextensions.CustomResource(
            f"{name}-alert", api_version="plinth.dev/v1", kind="Alert",
            metadata={"name": "commit-statuses", "namespace": NAMESPACE},
            spec={"providerRef": {"name": "forge"},
                  "eventSources": [{"kind": "Kustomization", "name": "*"}]}, opts=after)
        if loop.receiver is None:
            return
        receiver = k8s.apiextensions.CustomResource(
            f"{name}-receiver", api_version="plinth.dev/v1", kind="Receiver",
            metadata={"name": "gitops", "namespace": NAMESPACE},
            spec={"type": loop.forge.kind, "secretRef": {"name": "receiver-token"},
                  "resources": [{"kind": "GitRepository", "name": source_name}]}, opts=after)
        if loop.receiver == "service":
            service = next(r for r in self.install if isinstance(r, k8s.core.v1.Service))
            base: pulumi.Output[str] = service.spec.cluster_ip.apply(lambda ip: f"http://{ip}")
        else:
            base = pulumi.Output.from_input(loop.receiver.rstrip("/"))
        hook_url = pulumi.Output.all(base, receiver_token).apply(
            lambda v: f"{v[0]}{receiver_path(v[1], NAMESPACE, 'gitops')}")
        ForgeWebhook(f"{name}-webhook", loop.forge, loop.repository, hook_url, receiver_token,
                     opts=pulumi.ResourceOptions(parent=self, depends_on=[receiver]))


def _typed(name: str, obj: dict[str, Any], opts: pulumi.ResourceOptions) -> pulumi.Resource:
    """The install's ServiceAccount, ClusterRoleBinding and Service as typed resources."""
    kind, meta = obj["kind"], obj["metadata"]
    if kind == "ServiceAccount":
        return k8s.core.v1.ServiceAccount(name, metadata=meta, opts=opts)
    if kind == "ClusterRoleBinding":
        return k8s.rbac.v1.ClusterRoleBinding(name, metadata=meta, role_ref=obj["roleRef"],
                                              subjects=obj["subjects"], opts=opts)
    if kind == "Service":
        return k8s.core.v1.Service(name, metadata=meta, spec=obj["spec"], opts=opts)
    raise ValueError(f"controller install: no Pulumi resource for kind {kind}")


def _root_spec(cluster: str, source_name: str) -> dict[str, Any]:
    return {"sourceRef": {"kind": "GitRepository", "name": source_name},
            "path": f"./clusters/{cluster}", "interval": "10m", "retryInterval": "1m",
            "timeout": "5m", "prune": True}
