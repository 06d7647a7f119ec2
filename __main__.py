"""The Plinth Pulumi program: load the stack's typed config, build the Platform, export."""
from pathlib import Path
import os

import pulumi

from components import config
from components.platform import Platform, PlatformArgs

stack = pulumi.get_stack()
settings = config.load()  # a bad key stops here, before any resource is registered
state_dir = Path(os.environ.get("PLINTH_STATE_DIR") or
                 Path(__file__).resolve().parent / ".plinth" / "stacks" / stack)
platform = Platform("platform", PlatformArgs(settings, stack, state_dir,
                                             config.secret("registryPassword"),
                                             config.secret("forgeToken")))

pulumi.export("cluster", settings.gitops.cluster)
pulumi.export("kubeconfig", platform.cluster.kubeconfig)
pulumi.export("registry", platform.registry.host)
pulumi.export("app_repo", platform.app_repo.url)
pulumi.export("gitops_repo", platform.gitops_repo.url)
pulumi.export("gitops_commit", platform.gitops.commit)
pulumi.export("controller_image", platform.controller_image)
if platform.forge is not None:  # what `plinth promote/wait --stack` read
    repos = settings.repositories
    pulumi.export("forge", {"kind": platform.forge.kind, "url": platform.forge.url,
                            "repository": f"{repos.organization}/{repos.gitops}"})
    pulumi.export("forge_token", platform.forge.token)  # a secret, as the config key is
