"""Credentials: how the controller (and the GitOpsRepo push) reach git, and, on EKS, the IRSA
role that lets the controller read ECR. Secret outputs end to end; the git credentials are
materialised as the Secret the root GitRepository references.

- gitea, github: the forge user and its token (HTTP basic auth takes a token as the password).
- local git: HTTP basic auth of the stack's git server (its generated password).
- codecommit: an IAM user limited to the GitOps repository, with HTTPS git credentials.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.local_servers import LocalServer
from plinth.controller_manifests import NAME as CONTROLLER_SA
from plinth.controller_manifests import NAMESPACE

GIT_SECRET = "gitops-auth"


@dataclass(frozen=True)
class CredentialsArgs:
    git_kind: str  # gitea | github | local | codecommit
    provider: k8s.Provider
    namespace: pulumi.Input[str]
    local_git_server: LocalServer | None = None
    gitops_repo_arn: pulumi.Output[str] | None = None
    oidc_provider_arn: pulumi.Output[str] | None = None  # eks: for the IRSA role
    oidc_issuer: pulumi.Output[str] | None = None
    forge_login: tuple[pulumi.Output[str], pulumi.Output[str]] | None = None  # gitea: user, token


def irsa_trust_policy(provider_arn: str, issuer: str) -> str:
    """Only the controller's ServiceAccount may assume the role, only for STS."""
    host = issuer.removeprefix("https://")
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Federated": provider_arn},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {"StringEquals": {
            f"{host}:sub": f"system:serviceaccount:{NAMESPACE}:{CONTROLLER_SA}",
            f"{host}:aud": "sts.amazonaws.com"}}}]})


class Credentials(pulumi.ComponentResource):
    git_username: pulumi.Output[str]
    git_password: pulumi.Output[str]
    git_secret_name: str
    controller_role_arn: pulumi.Output[str] | None

    def __init__(self, name: str, args: CredentialsArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("plinth:credentials:Credentials", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        if args.git_kind in ("gitea", "github"):
            if args.forge_login is None:
                raise ValueError("forge credentials need the forge's user and token")
            username, password = args.forge_login
        elif args.git_kind == "local":
            if args.local_git_server is None:
                raise ValueError("local git credentials need the stack's local git server")
            username, password = args.local_git_server.username, args.local_git_server.password
        else:
            if args.gitops_repo_arn is None:
                raise ValueError("codecommit credentials need the GitOps repository's ARN")
            user = aws.iam.User(f"{name}-git", path="/plinth/", opts=child)
            aws.iam.UserPolicy(
                f"{name}-git", user=user.name,
                policy=args.gitops_repo_arn.apply(lambda arn: json.dumps({
                    "Version": "2012-10-17", "Statement": [{
                        "Effect": "Allow", "Action": ["codecommit:GitPull", "codecommit:GitPush"],
                        "Resource": arn}]})), opts=child)
            https = aws.iam.ServiceSpecificCredential(
                f"{name}-git-https", service_name="codecommit.amazonaws.com",
                user_name=user.name, opts=child)
            username, password = https.service_user_name, https.service_password
        self.git_username = username
        self.git_password = pulumi.Output.secret(password)
        self.git_secret_name = GIT_SECRET
        self.git_secret = k8s.core.v1.Secret(
            f"{name}-git", metadata={"name": GIT_SECRET, "namespace": args.namespace},
            string_data={"username": username, "password": self.git_password},
            opts=pulumi.ResourceOptions(parent=self, provider=args.provider))
        self.controller_role_arn = None
        if args.oidc_provider_arn is not None and args.oidc_issuer is not None:
            role = aws.iam.Role(
                f"{name}-controller", path="/plinth/",
                assume_role_policy=pulumi.Output.all(args.oidc_provider_arn, args.oidc_issuer)
                .apply(lambda v: irsa_trust_policy(v[0], v[1])), opts=child)
            aws.iam.RolePolicyAttachment(
                f"{name}-controller-ecr", role=role.name,
                policy_arn="arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly",
                opts=child)
            self.controller_role_arn = role.arn
        self.register_outputs({"git_username": self.git_username})
