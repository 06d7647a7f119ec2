"""Forges (Gitea, GitHub): one typed REST client, its answers as values, webhook signatures."""
from plinth.forge.client import ForgeClient
from plinth.forge.models import (
    Branch,
    BranchProtection,
    CombinedStatus,
    Comment,
    CommitStatus,
    MergeMethod,
    Organization,
    PullRequest,
    Repository,
    RepoRef,
    StatusState,
    Webhook,
)
from plinth.forge.transport import ForgeError, ForgeKind, forge_kind

__all__ = [
    "Branch", "BranchProtection", "CombinedStatus", "Comment", "CommitStatus", "ForgeClient",
    "ForgeError", "ForgeKind", "MergeMethod", "Organization", "PullRequest", "RepoRef",
    "Repository", "StatusState", "Webhook", "forge_kind",
]
