"""Every stack's resource graph under Pulumi's mocks: the key properties of each component,
every Kubernetes manifest valid against the Kubernetes and Plinth schemas, secrets secret, and
bad config refused before any resource is registered. (AWS is only ever reached like this.)"""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml

from components import config
from components.platform import Platform, PlatformArgs
from plinth.repospec import RepoSpec
from plinth.scaffold import render_template
from plinth.schemas import load_crds, validate_objects
from plinth.stack_config import StackConfigError

PROJECT = Path(__file__).resolve().parents[2]


class Mocks(pulumi.runtime.Mocks):
    def __init__(self) -> None:
        self.resources: list[pulumi.runtime.MockResourceArgs] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        self.resources.append(args)
        outputs = dict(args.inputs)
        typ, name = args.typ, args.name
        if typ == "aws:eks/cluster:Cluster":
            outputs.update(endpoint="https://eks.example", certificateAuthority={"data": "Q0E="},
                           identities=[{"oidcs": [{"issuer":
                                                   "https://oidc.eks.example/id/ABC"}]}])
        elif typ == "aws:ecr/repository:Repository":
            outputs.update(registryId="123456789012", repositoryUrl=
                           f"123456789012.dkr.ecr.eu-west-1.amazonaws.com/{args.inputs['name']}")
        elif typ == "aws:codecommit/repository:Repository":
            outputs.update(cloneUrlHttp="https://git-codecommit.eu-west-1.amazonaws.com/v1/"
                                        f"repos/{args.inputs['repositoryName']}",
                           arn=f"arn:aws:codecommit:eu-west-1:123456789012:{name}")
        elif typ == "aws:iam/serviceSpecificCredential:ServiceSpecificCredential":
            outputs.update(serviceUserName="git-user", servicePassword="s3cret-git-password")
        elif typ == "pulumi-python:dynamic:Resource" and "server_state_dir" in args.inputs:
            outputs["url"] = f"http://127.0.0.1:8418/{args.inputs['name']}"  # a bare repo
        elif typ == "pulumi-python:dynamic:Resource" and "organization" in args.inputs:
            web = f"http://10.244.0.1:3000/{args.inputs['organization']}/{args.inputs['name']}"
            outputs.update(url=f"{web}.git", web_url=web)  # a repository on the forge
        elif typ.startswith("aws:iam/"):
            outputs.setdefault("arn", f"arn:aws:iam::123456789012:role/{name}")
            outputs.setdefault("name", name)
        return f"{name}-id", outputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:
        if args.token == "kubernetes:yaml:decode":
            return {"result": [d for d in yaml.safe_load_all(args.args["text"]) if d]}
        if args.token == "aws:index/getRegion:getRegion":
            return {"name": "eu-west-1", "region": "eu-west-1"}
        if args.token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            return {"names": ["eu-west-1a", "eu-west-1b"], "zoneIds": ["a", "b"]}
        if args.token == "aws:ecr/getAuthorizationToken:getAuthorizationToken":
            return {"userName": "AWS", "password": "ecr-token", "authorizationToken": "x",
                    "proxyEndpoint": "https://123456789012.dkr.ecr.eu-west-1.amazonaws.com"}
        return {}


def _stack_config(stack: str) -> dict[str, str]:
    doc = yaml.safe_load((PROJECT / "stacks" / f"Pulumi.{stack}.yaml").read_text())
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in doc["config"].items()}


def build(stack: str, tmp_path: Path, overrides: dict[str, Any] | None = None,
          check: Callable[[Platform], pulumi.Output[Any]] | None = None,
          mocks: Mocks | None = None, forge_token: str | None = None) -> Mocks:
    """Run the program of `stack` under `mocks` (which record every resource registered, even
    when the program fails)."""
    mocks = Mocks() if mocks is None else mocks
    pulumi.runtime.set_mocks(mocks, project="plinth", stack=stack, preview=False)
    values = _stack_config(stack)
    values.update({k: v if isinstance(v, str) else json.dumps(v)
                   for k, v in (overrides or {}).items()})
    pulumi.runtime.set_all_config(values)

    @pulumi.runtime.test
    def program() -> pulumi.Output[Any]:
        token = pulumi.Output.secret(forge_token) if forge_token else None
        platform = Platform("platform", PlatformArgs(config.load(), stack, tmp_path / "state",
                                                     forge_token=token))
        return check(platform) if check else platform.gitops_repo.url

    program()
    return mocks


def of_type(mocks: Mocks, typ: str) -> list[pulumi.runtime.MockResourceArgs]:
    return [r for r in mocks.resources if r.typ == typ]


SECRET_SIG = "4dabf18193072939515e22adb298388d"  # Pulumi's wire marker of a secret value


def unwrap(value: Any) -> Any:
    """Plain values, secret markers removed (whether a value is secret is tested apart)."""
    if isinstance(value, dict):
        if SECRET_SIG in value:
            return unwrap(value["value"])
        return {k: unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap(v) for v in value]
    return value


def kubernetes_objects(mocks: Mocks) -> list[dict[str, Any]]:
    return [unwrap({k: v for k, v in r.inputs.items() if not k.startswith("__")})
            for r in mocks.resources
            if r.typ.startswith("kubernetes:") and "apiVersion" in r.inputs]


@pytest.mark.parametrize("stack", ["local", "dev", "prod"])
def test_every_kubernetes_manifest_validates(stack: str, tmp_path: Path) -> None:
    objects = kubernetes_objects(build(stack, tmp_path))
    kinds = sorted(o["kind"] for o in objects)
    assert {"Namespace", "Secret", "CustomResourceDefinition", "ServiceAccount",
            "ClusterRoleBinding", "Deployment", "Service", "GitRepository",
            "Kustomization"} <= set(kinds)
    assert validate_objects(objects, f"stack {stack}", load_crds()) == []


def test_controller_deployment_is_locked_down(tmp_path: Path) -> None:
    (deployment,) = [o for o in kubernetes_objects(build("dev", tmp_path))
                     if o["kind"] == "Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    container = pod["containers"][0]
    assert container["securityContext"] == {"allowPrivilegeEscalation": False,
                                            "readOnlyRootFilesystem": True,
                                            "capabilities": {"drop": ["ALL"]}}
    assert {p["httpGet"]["path"] for p in (container["livenessProbe"],
                                            container["readinessProbe"])} == {"/healthz", "/readyz"}
    assert pod["imagePullSecrets"] == [{"name": "plinth-registry"}]
    (binding,) = [o for o in kubernetes_objects(build("dev", tmp_path))
                  if o["kind"] == "ClusterRoleBinding"]
    # It applies whatever git holds, so it is cluster-admin (as Flux's kustomize-controller).
    assert binding["roleRef"]["name"] == "cluster-admin"
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "plinth-controller",
                                    "namespace": "plinth-system"}]


def test_root_objects_point_at_the_cluster_folder(tmp_path: Path) -> None:
    objects = kubernetes_objects(build("local", tmp_path))
    (root,) = [o for o in objects if o["kind"] == "Kustomization"]
    (source,) = [o for o in objects if o["kind"] == "GitRepository"]
    assert root["spec"]["path"] == "./clusters/local" and root["spec"]["prune"] is True
    assert root["spec"]["sourceRef"]["name"] == source["metadata"]["name"] == "gitops"
    assert source["spec"]["secretRef"] == {"name": "gitops-auth"}


@pytest.mark.parametrize(("stack", "nodes", "protected"), [("dev", 2, False), ("prod", 3, True)])
def test_aws_stacks(stack: str, nodes: int, protected: bool, tmp_path: Path) -> None:
    mocks = build(stack, tmp_path)
    (cluster,) = of_type(mocks, "aws:eks/cluster:Cluster")
    assert cluster.inputs["deletionProtection"] is protected
    assert cluster.inputs["accessConfig"]["authenticationMode"] == "API"
    (group,) = of_type(mocks, "aws:eks/nodeGroup:NodeGroup")
    assert group.inputs["scalingConfig"]["desiredSize"] == nodes
    assert len(of_type(mocks, "aws:ec2/subnet:Subnet")) == 2

    repos = of_type(mocks, "aws:ecr/repository:Repository")
    assert sorted(r.inputs["name"] for r in repos) == ["api", "plinth-controller", "web"]
    for repo in repos:
        assert repo.inputs["imageTagMutability"] == "IMMUTABLE"
        assert repo.inputs["imageScanningConfiguration"] == {"scanOnPush": True}
    # One lifecycle policy per repository, keeping as many images as the stack says.
    keep = json.loads(_stack_config(stack)["plinth:registry"])["keep_images"]
    policies = of_type(mocks, "aws:ecr/lifecyclePolicy:LifecyclePolicy")
    assert sorted(p.inputs["repository"] for p in policies) == ["api", "plinth-controller", "web"]
    for policy in policies:
        assert json.loads(policy.inputs["policy"]) == {"rules": [{
            "rulePriority": 1, "description": f"keep the newest {keep} images",
            "selection": {"tagStatus": "any", "countType": "imageCountMoreThan",
                          "countNumber": keep},
            "action": {"type": "expire"}}]}

    names = sorted(r.inputs["repositoryName"]
                   for r in of_type(mocks, "aws:codecommit/repository:Repository"))
    assert names == [f"{stack}-app", f"{stack}-gitops"]
    (https,) = of_type(mocks, "aws:iam/serviceSpecificCredential:ServiceSpecificCredential")
    assert https.inputs["serviceName"] == "codecommit.amazonaws.com"

    (oidc,) = of_type(mocks, "aws:iam/openIdConnectProvider:OpenIdConnectProvider")
    assert oidc.inputs["clientIdLists"] == ["sts.amazonaws.com"]
    roles = {r.name: r for r in of_type(mocks, "aws:iam/role:Role")}
    trust = json.loads(roles["credentials-controller"].inputs["assumeRolePolicy"])
    condition = trust["Statement"][0]["Condition"]["StringEquals"]
    assert condition["oidc.eks.example/id/ABC:sub"] == \
        "system:serviceaccount:plinth-system:plinth-controller"
    (admin,) = of_type(mocks, "aws:eks/accessPolicyAssociation:AccessPolicyAssociation")
    assert admin.inputs["principalArn"] == "arn:aws:iam::123456789012:role/platform-admins"
    assert admin.inputs["policyArn"].endswith("AmazonEKSClusterAdminPolicy")


def test_secrets_stay_secret(tmp_path: Path) -> None:
    seen: dict[str, bool] = {}

    def check(platform: Platform) -> pulumi.Output[Any]:
        outputs = {"kubeconfig": platform.cluster.kubeconfig,
                   "git_password": platform.credentials.git_password,
                   "registry_password": platform.registry.password}

        async def record() -> None:
            for key, output in outputs.items():
                seen[key] = await output.is_secret()
        return pulumi.Output.from_input(record())

    build("dev", tmp_path, check=check)
    assert seen == {"kubeconfig": True, "git_password": True, "registry_password": True}


@pytest.mark.parametrize(("overrides", "message"), [
    ({"plinth:cluster": {"kind": "gke"}}, "plinth:cluster.kind='gke'"),
    ({"plinth:cluster": {"kind": "eks", "node_count": "many"}}, "plinth:cluster.node_count"),
    ({"plinth:registry": {"kind": "external"}}, "needs url"),
    ({"plinth:colour": "blue"}, "plinth:colour='blue': Extra inputs are not permitted"),
])
def test_bad_config_stops_before_any_resource(overrides: dict[str, Any], message: str,
                                              tmp_path: Path) -> None:
    mocks = Mocks()
    with pytest.raises(StackConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        build("dev", tmp_path, overrides, mocks=mocks)
    assert [f"{r.typ} {r.name}" for r in mocks.resources] == []


def _dynamic(mocks: Mocks, key: str) -> list[dict[str, Any]]:
    return [r.inputs for r in of_type(mocks, "pulumi-python:dynamic:Resource")
            if key in r.inputs]


def test_local_stack_runs_a_node_and_builds_what_it_runs(tmp_path: Path) -> None:
    mocks = build("local", tmp_path)
    (cluster,) = [i for i in _dynamic(mocks, "kind") if i["kind"] == "control-plane"]
    assert cluster["node"] is True
    images = sorted((i["definition"], i["version"]) for i in _dynamic(mocks, "definition"))
    assert images == [("controller", "0.1.0"), ("sample-app", "1.0.0")]
    assert not [i for i in _dynamic(mocks, "kind") if i["kind"] == "controller"]
    (registry,) = [i for i in _dynamic(mocks, "kind") if i["kind"] == "registry"]
    assert registry["cluster_state_dir"] == cluster["state_dir"]  # the node trusts it


def test_local_stack_proposes_new_images_by_pull_request_on_its_forge(tmp_path: Path) -> None:
    """The scaffolded automation scans the stack's plain-HTTP registry with the pull Secret
    and opens its pull requests through the Provider the stack makes."""
    mocks = build("local", tmp_path)
    (gitops,) = [unwrap(i["spec"]) for i in _dynamic(mocks, "spec") if "branch" in i]
    assert gitops["image_automation"] == {
        "range": ">=1.0.0", "interval": "10s", "branch": "plinth/images",
        "pull_request_provider": "forge", "insecure": True}
    # (the mocks build no image: the digest the controller image is pinned by is None)
    files = render_template(RepoSpec.model_validate({**gitops, "controller_image": None}))
    assert b"insecure: true" in files["clusters/local/images.yaml"]
    assert f"name: {gitops['pull_secret']}".encode() in files["clusters/local/images.yaml"]
    providers = [o for o in kubernetes_objects(mocks) if o["kind"] == "Provider"]
    assert [p["metadata"]["name"] for p in providers] == ["forge"]


def test_local_stack_without_a_node_runs_the_controller_as_a_process(tmp_path: Path) -> None:
    mocks = build("local", tmp_path, {"plinth:cluster": {"kind": "local", "node": False}})
    (cluster,) = [i for i in _dynamic(mocks, "kind") if i["kind"] == "control-plane"]
    assert cluster["node"] is False
    assert not _dynamic(mocks, "definition")  # nothing to build: no pod would run it
    assert [i for i in _dynamic(mocks, "kind") if i["kind"] == "controller"]


def test_repositories_on_github_get_commit_statuses_and_a_webhook_only_with_a_url(
        tmp_path: Path) -> None:
    github = {"plinth:repositories": {"kind": "github", "organization": "acme"}}
    mocks = build("dev", tmp_path, github, forge_token="ghp_s3cret")
    repos = [r for r in of_type(mocks, "pulumi-python:dynamic:Resource")
             if "organization" in r.inputs]
    assert {(r.inputs["forge_kind"], r.inputs["forge_url"], r.inputs["name"]) for r in repos} \
        == {("github", "https://api.github.com", "app"), ("github", "https://api.github.com",
                                                          "gitops")}
    objects = kubernetes_objects(mocks)
    (provider,) = [o for o in objects if o["kind"] == "Provider"]
    assert provider["spec"]["type"] == "github"
    assert provider["spec"]["address"] == "http://10.244.0.1:3000/acme/gitops"  # the mock's
    assert not [o for o in objects if o["kind"] == "Receiver"]  # GitHub cannot reach it
    assert all(isinstance(r.inputs["token"], dict) and SECRET_SIG in r.inputs["token"]
               for r in repos)  # the token stays a secret
    with_hook = build("dev", tmp_path, {"plinth:repositories": {
        "kind": "github", "organization": "acme",
        "receiver_url": "https://hooks.acme.example"}}, forge_token="ghp_s3cret")
    hooks = [r for r in of_type(with_hook, "pulumi-python:dynamic:Resource")
             if "hook_url" in r.inputs]
    assert len(hooks) == 1 and any(o["kind"] == "Receiver"
                                   for o in kubernetes_objects(with_hook))


def test_github_without_a_token_stops_before_any_resource(tmp_path: Path) -> None:
    mocks = Mocks()
    with pytest.raises(Exception, match="plinth:forgeToken"):
        build("dev", tmp_path, {"plinth:repositories": {"kind": "github",
                                                        "organization": "acme"}}, mocks=mocks)
    assert [f"{r.typ} {r.name}" for r in mocks.resources] == []
