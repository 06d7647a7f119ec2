"""Platform: the whole environment of one stack, composed from the typed stack config.

config -> Cluster -> Registry, (forge,) GitRepository x2, Credentials -> GitOpsRepo (scaffolded,
pushed) -> SyncController (installed, pointed at clusters/<cluster>/ of the GitOps repo; on a
forge, with commit statuses out and push webhooks in).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_kubernetes as k8s

from components.cluster import Cluster, ClusterArgs
from components.credentials import Credentials, CredentialsArgs
from components.git_repository import Forge, GitRepository, GitRepositoryArgs
from components.gitops_repo import GitOpsRepo
from components.images import ContainerImage, ContainerImageArgs
from components.local_servers import LocalServer
from components.registry import Registry, RegistryArgs
from components.sync_controller import ForgeLoop, SyncController, SyncControllerArgs
from plinth import controller_manifests
from plinth.forge.client import GITHUB_API
from plinth.repospec import AppSpec, ImageAutomationSpec, RepoSpec
from plinth.stack_config import StackConfig


@dataclass(frozen=True)
class PlatformArgs:
    config: StackConfig
    stack: str
    state_dir: Path  # where the local stack's servers keep their state
    registry_password: pulumi.Output[str] | None = None
    forge_token: pulumi.Output[str] | None = None


class Platform(pulumi.ComponentResource):
    def __init__(self, name: str, args: PlatformArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        config = args.config
        repos = config.repositories
        if args.forge_token is None and (repos.kind == "github" or repos.kind == "gitea"
                                         and repos.url is not None):
            # before any resource: a half-made stack is worse than none
            raise ValueError(f"plinth:forgeToken: repositories of kind {repos.kind} on "
                             f"{repos.url or 'GitHub'} need it "
                             "(pulumi config set --secret plinth:forgeToken ...)")
        super().__init__("plinth:platform:Platform", name, None, opts)
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
            namespace.metadata.name, self.cluster.provider, args.registry_password,
            address=self.cluster.host_address, cluster_state_dir=self.cluster.local_state_dir),
            opts=child)
        tagged = self.registry.host.apply(lambda host: self.controller_image_ref(config, host))
        images = self._local_images(config, tagged, child)
        # An image Plinth built is pinned by digest too: a rebuilt image under the same tag is
        # a new reference, so the controller's own Deployment rolls through git.
        self.controller_image: pulumi.Output[str] = (
            pulumi.Output.all(tagged, images[0].digest).apply(lambda v: f"{v[0]}@{v[1]}")
            if images else tagged)

        repos = config.repositories
        git_server = None
        forge, forge_login = self._forge(config, args, child)
        self.forge = forge
        if repos.kind == "local":
            git_server = LocalServer("git-server", "git", str(args.state_dir / "git"),
                                     address=self.cluster.host_address, opts=child)
        self.app_repo = GitRepository("app-repo", GitRepositoryArgs(
            repos.kind, repos.app, repos.branch, "Application code", git_server, forge),
            opts=child)
        self.gitops_repo = GitRepository("gitops-repo", GitRepositoryArgs(
            repos.kind, repos.gitops, repos.branch, "GitOps configuration", git_server, forge),
            opts=child)
        eks = self.cluster.eks
        self.credentials = Credentials("credentials", CredentialsArgs(
            repos.kind, self.cluster.provider, namespace.metadata.name, git_server,
            self.gitops_repo.arn, eks.oidc_provider_arn if eks else None,
            eks.oidc_issuer if eks else None, forge_login), opts=child)
        forge_loop = None
        if forge is not None and self.gitops_repo.web_url is not None:
            # the stack's own forge reaches the controller's Service; another one needs a URL
            own_forge = repos.kind == "gitea" and repos.url is None
            forge_loop = ForgeLoop(forge, pulumi.Output.from_input(
                f"{repos.organization}/{repos.gitops}"), self.gitops_repo.web_url,
                "service" if own_forge else repos.receiver_url)

        spec = self._repo_spec(config, self.credentials.controller_role_arn)
        self.gitops = GitOpsRepo("gitops", spec, self.gitops_repo.url, repos.branch,
                                 self.credentials.git_username, self.credentials.git_password,
                                 opts=child)
        run_locally = config.controller.run_locally
        if run_locally is None:
            run_locally = not self.runs_pods(config)
        self.controller = SyncController("controller", SyncControllerArgs(
            provider=self.cluster.provider, cluster_name=config.gitops.cluster,
            image=self.controller_image, pull_secret=self.registry.pull_secret_name,
            gitops_url=self.gitops_repo.url, branch=repos.branch,
            source_name=config.gitops.source_name,
            git_secret_name=self.credentials.git_secret_name,
            local_kubeconfig_path=self.cluster.local_kubeconfig_path if run_locally else None,
            state_dir=args.state_dir, forge_loop=forge_loop), opts=pulumi.ResourceOptions(
                parent=self, depends_on=[self.gitops, namespace, self.credentials,
                                         self.registry, *images]))
        self.register_outputs({"controller_image": self.controller_image})

    def _forge(self, config: StackConfig, args: PlatformArgs, opts: pulumi.ResourceOptions
               ) -> tuple[Forge | None, tuple[pulumi.Output[str], pulumi.Output[str]] | None]:
        """The forge the repositories live on, and the git login (user, token): the stack's
        own Gitea on a local cluster, a team's Gitea at plinth:repositories.url, or GitHub."""
        repos = config.repositories
        if repos.kind not in ("gitea", "github"):
            return None, None
        if repos.kind == "gitea" and repos.url is None:
            if config.cluster.kind != "local":
                raise ValueError("plinth:repositories: kind gitea needs url (a team's Gitea) "
                                 "outside a local cluster")
            server = LocalServer("forge", "forge", str(args.state_dir / "forge"),
                                 address=self.cluster.host_address, opts=opts)
            token: pulumi.Output[str] = server.password.apply(pulumi.Output.secret)
            return Forge(server.endpoint, token, repos.organization), (server.username, token)
        assert args.forge_token is not None  # checked before any resource
        if repos.kind == "github":
            # GitHub takes a token as the password of this user name for git over HTTPS
            return (Forge(GITHUB_API, args.forge_token, repos.organization, "github"),
                    (pulumi.Output.from_input("x-access-token"), args.forge_token))
        assert repos.url is not None and repos.user is not None  # the model requires them
        return (Forge(repos.url, args.forge_token, repos.organization),
                (pulumi.Output.from_input(repos.user), args.forge_token))

    @staticmethod
    def runs_pods(config: StackConfig) -> bool:
        """Every cluster but the local one without a node runs pods."""
        return config.cluster.kind != "local" or config.cluster.node

    @staticmethod
    def controller_image_ref(config: StackConfig, registry_host: str) -> str:
        """The stack's controller image: `plinth:controller.image/tag` when set, else under
        the GitOps registry (the stack's own registry when the config names none)."""
        gitops = Platform._gitops_on(config, registry_host)
        controller = config.controller
        if controller.image is None and controller.tag is None:
            return gitops.controller_image_ref
        repository = controller.image or gitops.controller_image_ref.rsplit(":", 1)[0]
        return f"{repository}:{controller.tag or config.gitops.controller_version}"

    @staticmethod
    def _gitops_on(config: StackConfig, registry_host: str) -> RepoSpec:
        """The GitOps repo's spec with its registry filled in: the stack's own, unless the
        config names one."""
        return config.gitops.model_copy(
            update={"registry": config.gitops.registry or registry_host})

    @staticmethod
    def _app_image_ref(config: StackConfig, app: AppSpec, registry_host: str) -> str:
        return f"{Platform._gitops_on(config, registry_host).image_of(app)}:{app.tag}"

    def _local_images(self, config: StackConfig, controller_ref: pulumi.Output[str],
                      opts: pulumi.ResourceOptions) -> list[ContainerImage]:
        """On a local registry Plinth builds what the stack runs: the controller image, and
        the sample app for every app whose image lives in that registry (no CI pushes there)."""
        if config.registry.kind != "local" or not self.runs_pods(config):
            return []
        registry = self.registry
        images = [ContainerImage("controller-image", ContainerImageArgs(
            "controller", config.gitops.controller_version, controller_ref,
            registry.username, registry.password), opts=opts)]
        for app in config.gitops.apps:
            ref = registry.host.apply(functools.partial(self._app_image_ref, config, app))
            images.append(ContainerImage(f"app-image-{app.name}", ContainerImageArgs(
                "sample-app", app.tag, ref, registry.username, registry.password), opts=opts))
        return images

    def _repo_spec(self, config: StackConfig,
                   role_arn: pulumi.Output[str] | None) -> pulumi.Output[dict[str, object]]:
        """The GitOps repo's variables: the stack's, with the registry host filled in."""
        return pulumi.Output.all(self.registry.host, role_arn, self.controller_image).apply(
            lambda values: config.gitops.model_copy(update={
                "registry": config.gitops.registry or values[0],
                "pull_secret": self.registry.pull_secret_name,
                "controller_image": values[2],
                "controller_role_arn": values[1],
                # nothing becomes Available where no pod runs: waiting would never end
                "health_wait": config.gitops.health_wait and self.runs_pods(config),
                "image_automation": self._image_automation(config),
            }).model_dump(mode="json"))

    @staticmethod
    def _image_automation(config: StackConfig) -> ImageAutomationSpec | None:
        """The stack's own registry speaks plain HTTP: its scans say so."""
        automation = config.gitops.image_automation
        if automation is None or config.registry.kind != "local":
            return automation
        return automation.model_copy(update={"insecure": True})
