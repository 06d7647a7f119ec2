"""EKS: a VPC (or the given subnets), the cluster, a managed node group, the OIDC provider for
IRSA, and cluster-admin access entries for the configured principals.

The kubeconfig authenticates with `aws eks get-token`, so it holds no long-lived secret; it is
still exported as a secret, like every kubeconfig.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Sequence

import pulumi
import pulumi_aws as aws
import yaml

from plinth.stack_config import ClusterConfig

ADMIN_POLICY = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
NODE_POLICIES = ("AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy",
                 "AmazonEC2ContainerRegistryReadOnly")


def assume_role_policy(service: str) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}]})


def kubeconfig(name: str, endpoint: str, ca_data: str, region: str) -> str:
    return yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": name,
        "clusters": [{"name": name, "cluster": {"server": endpoint,
                                                "certificate-authority-data": ca_data}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
        "users": [{"name": name, "user": {"exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1", "command": "aws",
            "args": ["eks", "get-token", "--cluster-name", name, "--region", region]}}}]})


def _issuer(identities: Sequence[aws.eks.outputs.ClusterIdentity]) -> str:
    oidcs = identities[0].oidcs or []
    return str(oidcs[0].issuer)


def _nth(index: int) -> Callable[[Sequence[str]], str]:
    return lambda names: names[index]


class EksCluster(pulumi.ComponentResource):
    kubeconfig: pulumi.Output[str]
    oidc_provider_arn: pulumi.Output[str]
    oidc_issuer: pulumi.Output[str]

    def __init__(self, name: str, cluster_name: str, config: ClusterConfig,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("plinth:eks:EksCluster", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        subnet_ids = config.subnet_ids or self._vpc(name, cluster_name, config.vpc_cidr)

        cluster_role = aws.iam.Role(f"{name}-cluster", path="/plinth/",
                                    assume_role_policy=assume_role_policy("eks.amazonaws.com"),
                                    opts=child)
        cluster_policy = aws.iam.RolePolicyAttachment(
            f"{name}-cluster", role=cluster_role.name,
            policy_arn="arn:aws:iam::aws:policy/AmazonEKSClusterPolicy", opts=child)
        self.cluster = aws.eks.Cluster(
            f"{name}-cluster", name=cluster_name, version=config.kubernetes_version,
            role_arn=cluster_role.arn, vpc_config={"subnet_ids": subnet_ids},
            access_config={"authentication_mode": "API"},
            deletion_protection=config.deletion_protection,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[cluster_policy]))

        node_role = aws.iam.Role(f"{name}-nodes", path="/plinth/",
                                 assume_role_policy=assume_role_policy("ec2.amazonaws.com"),
                                 opts=child)
        attachments = [aws.iam.RolePolicyAttachment(
            f"{name}-nodes-{policy}", role=node_role.name,
            policy_arn=f"arn:aws:iam::aws:policy/{policy}", opts=child)
            for policy in NODE_POLICIES]
        self.node_group = aws.eks.NodeGroup(
            f"{name}-nodes", cluster_name=self.cluster.name, node_role_arn=node_role.arn,
            subnet_ids=subnet_ids, instance_types=[config.instance_type],
            scaling_config={"desired_size": config.node_count, "min_size": config.node_count,
                            "max_size": config.node_max},
            opts=pulumi.ResourceOptions(parent=self, depends_on=attachments))

        self.oidc_issuer = self.cluster.identities.apply(_issuer)
        self.oidc_provider = aws.iam.OpenIdConnectProvider(
            f"{name}-oidc", url=self.oidc_issuer, client_id_lists=["sts.amazonaws.com"],
            opts=child)
        self.oidc_provider_arn = self.oidc_provider.arn

        for index, principal in enumerate(config.admins):
            entry = aws.eks.AccessEntry(f"{name}-admin-{index}", cluster_name=self.cluster.name,
                                        principal_arn=principal, opts=child)
            aws.eks.AccessPolicyAssociation(
                f"{name}-admin-{index}", cluster_name=self.cluster.name,
                principal_arn=principal, policy_arn=ADMIN_POLICY,
                access_scope={"type": "cluster"},
                opts=pulumi.ResourceOptions(parent=self, depends_on=[entry]))

        region = aws.get_region_output(opts=pulumi.InvokeOptions(parent=self)).region
        self.kubeconfig = pulumi.Output.secret(pulumi.Output.all(
            self.cluster.name, self.cluster.endpoint,
            self.cluster.certificate_authority.data, region).apply(
                lambda v: kubeconfig(v[0], v[1], v[2], v[3])))
        self.register_outputs({"name": self.cluster.name})

    def _vpc(self, name: str, cluster_name: str, cidr: str) -> list[pulumi.Output[str]]:
        """Two public subnets in two zones, tagged for load balancers."""
        child = pulumi.ResourceOptions(parent=self)
        vpc = aws.ec2.Vpc(f"{name}-vpc", cidr_block=cidr, enable_dns_hostnames=True,
                          enable_dns_support=True, tags={"Name": cluster_name}, opts=child)
        gateway = aws.ec2.InternetGateway(f"{name}-igw", vpc_id=vpc.id, opts=child)
        routes = aws.ec2.RouteTable(f"{name}-public", vpc_id=vpc.id, routes=[{
            "cidr_block": "0.0.0.0/0", "gateway_id": gateway.id}], opts=child)
        zones = aws.get_availability_zones_output(state="available",
                                                  opts=pulumi.InvokeOptions(parent=self))
        prefix = cidr.split("/")[0].rsplit(".", 2)[0]  # "10.0" of 10.0.0.0/16
        subnets = []
        for index in range(2):
            subnet = aws.ec2.Subnet(
                f"{name}-public-{index}", vpc_id=vpc.id,
                cidr_block=f"{prefix}.{index * 64}.0/18",
                availability_zone=zones.names.apply(_nth(index)),
                map_public_ip_on_launch=True,
                tags={"kubernetes.io/role/elb": "1",
                      f"kubernetes.io/cluster/{cluster_name}": "shared"}, opts=child)
            aws.ec2.RouteTableAssociation(f"{name}-public-{index}", subnet_id=subnet.id,
                                          route_table_id=routes.id, opts=child)
            subnets.append(subnet.id)
        return subnets
