"""Registry: where images live. Outputs the registry host (for image references), push/pull
credentials (secret) and a `kubernetes.io/dockerconfigjson` Secret for pulls in the cluster.

- `local`: registry v2 (Debian's docker-registry) with htpasswd auth, on the cluster's host
  address (the node pulls from it) or loopback.
- `ecr`: see `components/ecr.py`.
- `external`: a registry at `url`, password from the secret config key `plinth:registryPassword`.
"""
from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_kubernetes as k8s

from components.ecr import EcrRegistry
from components.local_servers import LocalServer
from plinth.stack_config import RegistryConfig

PULL_SECRET = "plinth-registry"


@dataclass(frozen=True)
class RegistryArgs:
    config: RegistryConfig
    state_dir: Path
    apps: list[str]
    namespace: pulumi.Input[str]  # where the pull Secret goes (plinth-system)
    provider: k8s.Provider
    registry_password: pulumi.Output[str] | None = None
    address: pulumi.Output[str] | None = None  # local: where to listen
    cluster_state_dir: str | None = None  # local: the node that pulls from it


def dockerconfigjson(host: str, username: str, password: str) -> str:
    auth = base64.b64encode(f"{username}:{password}".encode()).decode()
    return json.dumps({"auths": {host: {"username": username, "password": password,
                                        "auth": auth}}})


class Registry(pulumi.ComponentResource):
    host: pulumi.Output[str]
    username: pulumi.Output[str]
    password: pulumi.Output[str]
    pull_secret_name: str

    def __init__(self, name: str, args: RegistryArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("plinth:registry:Registry", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        kind = args.config.kind
        host: pulumi.Output[str]
        username: pulumi.Output[str]
        password: pulumi.Output[str]
        if kind == "local":
            server = LocalServer(f"{name}-server", "registry", str(args.state_dir / "registry"),
                                 address=args.address, cluster_state_dir=args.cluster_state_dir,
                                 opts=child)
            host, username, password = server.endpoint, server.username, server.password
        elif kind == "external":
            if args.registry_password is None:
                raise ValueError("plinth:registryPassword: registry kind 'external' needs it "
                                 "(pulumi config set --secret plinth:registryPassword ...)")
            host = pulumi.Output.from_input(str(args.config.url))
            username = pulumi.Output.from_input(args.config.username or "")
            password = args.registry_password
        else:
            ecr = EcrRegistry(f"{name}-ecr", args.apps, args.config.keep_images, opts=child)
            host, username, password = ecr.host, ecr.username, ecr.password
        self.host = host
        self.username = username
        self.password = password.apply(pulumi.Output.secret)
        self.pull_secret_name = PULL_SECRET
        config_json = pulumi.Output.all(host, username, self.password).apply(
            lambda values: dockerconfigjson(*values))
        self.pull_secret = k8s.core.v1.Secret(
            f"{name}-pull", metadata={"name": PULL_SECRET, "namespace": args.namespace},
            type="kubernetes.io/dockerconfigjson",
            string_data={".dockerconfigjson": config_json},  # secret: made of the password
            opts=pulumi.ResourceOptions(parent=self, provider=args.provider))
        self.register_outputs({"host": self.host})
