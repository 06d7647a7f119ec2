"""ContainerImage: an image Plinth builds without a Docker engine and pushes to the stack's
registry (the controller, the sample app), as a Python dynamic provider over `plinth.oci`.

Builds are reproducible, so the image's digest is its identity: a later `up` rebuilds from the
cache, and only a different digest (changed sources, another version) or a tag missing from the
registry is an update. Delete leaves the registry alone: tags are history, and the local
registry goes with its stack.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ReadResult, Resource, ResourceProvider
from pulumi.dynamic import UpdateResult

from plinth.oci import builds
from plinth.oci.push import Registry


def _registry(props: dict[str, Any]) -> tuple[Registry, str]:
    """The repository of `host:port/repo/path:tag`, and the tag. The stack's own registry
    speaks plain HTTP (it is on the node's address)."""
    name, _, tag = str(props["ref"]).rpartition(":")
    host, _, repository = name.partition("/")
    return Registry(host, repository, props["username"], props["password"],
                    insecure=True), tag


def _build_and_push(props: dict[str, Any]) -> dict[str, Any]:
    registry, tag = _registry(props)
    digest = registry.push(builds.build(props["definition"], props["version"]), tag)
    return {**props, "digest": digest}


class ContainerImageProvider(ResourceProvider):
    def create(self, props: dict[str, Any]) -> CreateResult:
        outs = _build_and_push(props)
        return CreateResult(id_=props["ref"], outs=outs)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        keys = ("definition", "version", "ref")
        changed = [k for k in keys if olds.get(k) != news.get(k)]
        if not changed:
            built = builds.build(news["definition"], news["version"]).digest
            registry, tag = _registry(news)
            if built != olds.get("digest") or registry.digest(tag) != built:
                changed = ["digest"]
        return DiffResult(changes=bool(changed), replaces=[k for k in changed if k == "ref"])

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(outs=_build_and_push(news))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        return ReadResult(id_=id_, outs=props)

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        """Nothing: a pushed tag stays in its registry (see the module's docstring)."""


@dataclass(frozen=True)
class ContainerImageArgs:
    definition: str  # an image `plinth.oci.builds` knows how to build: controller, sample-app
    version: str
    ref: pulumi.Input[str]  # registry host/repository:tag
    username: pulumi.Input[str]
    password: pulumi.Input[str]


class ContainerImage(Resource):
    digest: pulumi.Output[str]
    ref: pulumi.Output[str]

    def __init__(self, name: str, args: ContainerImageArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        props = {"definition": args.definition, "version": args.version, "ref": args.ref,
                 "username": args.username, "password": args.password, "digest": None}
        super().__init__(ContainerImageProvider(), name, props, pulumi.ResourceOptions.merge(
            opts, pulumi.ResourceOptions(additional_secret_outputs=["password"])))
