"""A Namespace and a ConfigMap through pulumi-kubernetes, against the kubeconfig in config."""
import pulumi
import pulumi_kubernetes as k8s

config = pulumi.Config()
provider = k8s.Provider("local", kubeconfig=config.require_secret("kubeconfig"))
opts = pulumi.ResourceOptions(provider=provider)

namespace = k8s.core.v1.Namespace(
    "smoke", metadata={"name": "plinth-smoke"}, opts=opts
)
config_map = k8s.core.v1.ConfigMap(
    "greeting",
    metadata={"name": "greeting", "namespace": namespace.metadata["name"]},
    data={"message": config.get("message") or "hello from pulumi"},
    opts=opts,
)
pulumi.export("namespace", namespace.metadata["name"])
pulumi.export("configmap", config_map.metadata["name"])
