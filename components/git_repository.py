"""GitRepository: one of the platform's two repositories (application code, GitOps config).

- `local`: a bare repository (dynamic provider, GitPython) in the stack's git server, served
  over smart HTTP with basic auth.
- `codecommit`: an AWS CodeCommit repository, cloned over HTTPS with git credentials.
"""
from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.local_servers import BareRepository, LocalServer


@dataclass(frozen=True)
class GitRepositoryArgs:
    kind: str  # local | codecommit
    repo_name: str
    branch: str
    description: str
    local_server: LocalServer | None = None


class GitRepository(pulumi.ComponentResource):
    url: pulumi.Output[str]
    arn: pulumi.Output[str] | None

    def __init__(self, name: str, args: GitRepositoryArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("plinth:git_repository:GitRepository", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.arn = None
        if args.kind == "local":
            if args.local_server is None:
                raise ValueError("a local GitRepository needs the stack's local git server")
            bare = BareRepository(f"{name}-bare", args.local_server.state_dir,
                                  args.repo_name, args.branch,
                                  opts=pulumi.ResourceOptions(parent=self,
                                                              depends_on=[args.local_server]))
            self.url = bare.url
        else:
            repo = aws.codecommit.Repository(
                f"{name}-codecommit", repository_name=args.repo_name,
                description=args.description, default_branch=args.branch, opts=child)
            self.url = repo.clone_url_http
            self.arn = repo.arn
        self.register_outputs({"url": self.url})
