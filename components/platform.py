"""Platform: the whole environment of one stack, composed from the typed stack config.

config -> Cluster -> Registry, GitRepository x2, Credentials -> GitOpsRepo (scaffolded, pushed)
-> SyncController (installed, pointed at clusters/<cluster>/ of the GitOps repo).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_kubernetes as k8s

from components.cluster import Cluster, ClusterArgs
from components.credentials import Credentials, CredentialsArgs
from components.git_repository import GitRepository, GitRepositoryArgs
from components.gitops_repo import GitOpsRepo
from components.local_servers import LocalServer
from components.registry import Registry, RegistryArgs
from components.sync_controller import SyncController, SyncControllerArgs
from plinth import controller_manifests
from plinth.stack_config import StackConfig


@dataclass(frozen=True)
class PlatformArgs:
    config: StackConfig
    stack: str
    state_dir: Path  # where the local stack's servers keep their state
    registry_password: pulumi.Output[str] | None = None


class Platform(pulumi.ComponentResource):
    def __init__(self, name: str, args: PlatformArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("plinth:platform:Platform", name, None, opts)
        config = args.config
        child = pulumi.ResourceOptions(parent=self)
        self.cluster = Cluster("cluster", ClusterArgs(config.gitops.cluster, config.cluster,
                                                      args.state_dir), opts=child)
        k8s_opts = pulumi.ResourceOptions(parent=self, provider=self.cluster.provider)
        # Pulumi-owned secrets live in plinth-system before the controller's install does.
        namespace = k8s.core.v1.Namespace(
            "plinth-system", metadata=controller_manifests.namespace()["metadata"],
            opts=k8s_opts)
        self.registry = Registry("registry", RegistryArgs(
            config.registry, args.state_dir, [a.name for a in config.gitops.apps],
            namespace.metadata.name, self.cluster.provider, args.registry_password), opts=child)

        repos = config.repositories
        git_server = None
        if repos.kind == "local":
            git_server = LocalServer("git-server", "git", str(args.state_dir / "git"),
                                     opts=child)
        self.app_repo = GitRepository("app-repo", GitRepositoryArgs(
            repos.kind, repos.app, repos.branch, "Application code", git_server), opts=child)
        self.gitops_repo = GitRepository("gitops-repo", GitRepositoryArgs(
            repos.kind, repos.gitops, repos.branch, "GitOps configuration", git_server),
            opts=child)
        eks = self.cluster.eks
        self.credentials = Credentials("credentials", CredentialsArgs(
            repos.kind, self.cluster.provider, namespace.metadata.name, git_server,
            self.gitops_repo.arn, eks.oidc_provider_arn if eks else None,
            eks.oidc_issuer if eks else None), opts=child)

        spec = self._repo_spec(config, self.credentials.controller_role_arn)
        self.gitops = GitOpsRepo("gitops", spec, self.gitops_repo.url, repos.branch,
                                 self.credentials.git_username, self.credentials.git_password,
                                 opts=child)
        run_locally = config.controller.run_locally
        if run_locally is None:
            run_locally = config.cluster.kind == "local"
        self.controller = SyncController("controller", SyncControllerArgs(
            provider=self.cluster.provider, cluster_name=config.gitops.cluster,
            image=self.controller_image(config), pull_secret=self.registry.pull_secret_name,
            gitops_url=self.gitops_repo.url, branch=repos.branch,
            source_name=config.gitops.source_name,
            git_secret_name=self.credentials.git_secret_name,
            local_kubeconfig_path=self.cluster.local_kubeconfig_path if run_locally else None,
            state_dir=args.state_dir), opts=pulumi.ResourceOptions(
                parent=self, depends_on=[self.gitops, namespace, self.credentials,
                                         self.registry]))
        self.register_outputs({})

    @staticmethod
    def controller_image(config: StackConfig) -> str:
        controller = config.controller
        if controller.image is None and controller.tag is None:
            return config.gitops.controller_image_ref
        repository = controller.image or config.gitops.controller_image_ref.rsplit(":", 1)[0]
        return f"{repository}:{controller.tag or config.gitops.controller_version}"

    def _repo_spec(self, config: StackConfig,
                   role_arn: pulumi.Output[str] | None) -> pulumi.Output[dict[str, object]]:
        """The GitOps repo's variables: the stack's, with the registry host filled in."""
        return pulumi.Output.all(self.registry.host, role_arn).apply(
            lambda values: config.gitops.model_copy(update={
                "registry": config.gitops.registry or values[0],
                "pull_secret": self.registry.pull_secret_name,
                "controller_image": self.controller_image(config),
                "controller_role_arn": values[1],
                # nothing becomes Available without a kubelet: waiting would never end
                "health_wait": config.gitops.health_wait and config.cluster.kind != "local",
            }).model_dump(mode="json"))
