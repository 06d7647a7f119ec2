"""One client for the forges Plinth writes to: Gitea (the local stack's, or a team's own) and
GitHub. Commit statuses, webhook receivers and promotion pull requests are all built on it.

Both forges share most of GitHub's REST shapes; the differences live in the few methods below
that branch on `kind` (API root, organisations, branch creation, merge, webhook type, branch
protection, pagination), so callers never do.

Gitea processes a push asynchronously: right after the first push into an empty repository,
reading a branch answers 500 for up to ~2 s and pull request calls answer 404 (the repository
is still marked empty); right after a push to a pull request's branch a merge answers 405
"Please try again later" for ~0.5 s. Those calls poll for a bounded time (`settle_timeout`)
while the forge gives exactly those answers; every other failure raises at once. The GitHub paths are tested against a local recorder of requests (api.github.com is not
reachable from where Plinth is tested), everything else against a real Gitea.
"""
from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Literal

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
from plinth.forge.transport import (
    JSON,
    ForgeError,
    ForgeKind,
    Transport,
    forge_kind,
    never_transient,
)

GITHUB_API = "https://api.github.com"
DESCRIPTION_LIMIT = 140  # GitHub refuses longer commit status descriptions
Visibility = Literal["public", "limited", "private"]


def _gitea_settling(status: int, message: str) -> bool:
    """Gitea's answers while a push is still being processed (see the module docstring)."""
    return status == 500


def _merge_settling(status: int, message: str) -> bool:
    return (status == 405 and "try again later" in message.lower()) or \
        (status == 500 and "conflict checking is in progress" in message)


class ForgeClient:
    """A forge's REST API with a token.

    `url` is Gitea's root URL (`http://host:3000`; the API is under `/api/v1`) or GitHub's API
    root (`https://api.github.com`, or `https://HOST/api/v3` for GitHub Enterprise).
    """

    def __init__(self, kind: ForgeKind, url: str, token: str, *, timeout: float = 10.0,
                 settle_timeout: float = 20.0) -> None:
        kind = forge_kind(kind)  # a kind from untyped input fails here, not at the first call
        api_url = url.rstrip("/") + ("/api/v1" if kind == "gitea" else "")
        self.kind: ForgeKind = kind
        self._api = Transport(kind, api_url, token, timeout, settle_timeout)

    @classmethod
    def gitea(cls, url: str, token: str) -> ForgeClient:
        return cls("gitea", url, token)

    @classmethod
    def github(cls, token: str, api_url: str = GITHUB_API) -> ForgeClient:
        return cls("github", api_url, token)

    def __repr__(self) -> str:
        return f"ForgeClient({self.kind!r}, {self._api.api_url!r})"

    # -- identity, organisations, repositories -------------------------------------------------

    @functools.cached_property
    def login(self) -> str:
        """The user the token belongs to."""
        return str(self._api.call("GET", "/user")["login"])

    def get_organization(self, name: str) -> Organization | None:
        data = self._api.call("GET", f"/orgs/{name}", missing_ok=True)
        return Organization.from_api(data) if data else None

    def create_organization(self, name: str, visibility: Visibility = "private") -> Organization:
        """Gitea only: GitHub organisations are made by people on github.com, not by API."""
        if self.kind == "github":
            raise ForgeError(f"github POST /orgs/{name}", None,
                             "GitHub organisations cannot be created through the API")
        return Organization.from_api(self._api.call(
            "POST", "/orgs", {"username": name, "visibility": visibility}))

    def ensure_organization(self, name: str, visibility: Visibility = "private"
                            ) -> Organization:
        """The organisation, made when missing; one made meanwhile by someone else (two
        repositories created at once) is taken as it is."""
        found = self.get_organization(name)
        if found is not None:
            return found
        try:
            return self.create_organization(name, visibility)
        except ForgeError as err:
            found = self.get_organization(name) if err.status == 422 else None
            if found is None:
                raise
            return found

    def delete_organization(self, name: str) -> None:
        """Gitea only, and only once it holds no repository; gone already is fine."""
        self._api.call("DELETE", f"/orgs/{name}", missing_ok=True)

    def get_repository(self, repo: RepoRef) -> Repository | None:
        data = self._api.call("GET", repo.path, missing_ok=True)
        return Repository.from_api(data) if data else None

    def create_repository(self, repo: RepoRef, *, private: bool = True, description: str = "",
                          default_branch: str = "main", auto_init: bool = False) -> Repository:
        """In an organisation, or in the token user's own namespace when `repo.owner` is them.

        GitHub takes no default branch at creation (its default applies); Gitea does."""
        body: JSON = {"name": repo.name, "private": private, "description": description,
                      "auto_init": auto_init}
        if self.kind == "gitea":
            body["default_branch"] = default_branch
        path = "/user/repos" if repo.owner == self.login else f"/orgs/{repo.owner}/repos"
        return Repository.from_api(self._api.call("POST", path, body))

    def ensure_repository(self, repo: RepoRef, *, private: bool = True, description: str = "",
                          default_branch: str = "main") -> Repository:
        return self.get_repository(repo) or self.create_repository(
            repo, private=private, description=description, default_branch=default_branch)

    def delete_repository(self, repo: RepoRef) -> None:
        """Gone already is fine."""
        self._api.call("DELETE", repo.path, missing_ok=True)

    # -- branches --------------------------------------------------------------------------------

    def get_branch(self, repo: RepoRef, name: str) -> Branch | None:
        data = self._api.call("GET", f"{repo.path}/branches/{name}", missing_ok=True,
                              transient=self._settling)
        return Branch.from_api(data) if data else None

    def create_branch(self, repo: RepoRef, name: str, from_ref: str) -> Branch:
        """A new branch at `from_ref` (a branch, tag or commit SHA)."""
        if self.kind == "gitea":
            return Branch.from_api(self._api.call(
                "POST", f"{repo.path}/branches",
                {"new_branch_name": name, "old_ref_name": from_ref}, transient=self._settling))
        sha = self.resolve(repo, from_ref)
        self._api.call("POST", f"{repo.path}/git/refs", {"ref": f"refs/heads/{name}", "sha": sha})
        return Branch(name=name, sha=sha, protected=False)

    def ensure_branch(self, repo: RepoRef, name: str, from_ref: str) -> Branch:
        """The branch as it is when it exists (never moved), else a new one at `from_ref`."""
        return self.get_branch(repo, name) or self.create_branch(repo, name, from_ref)

    def resolve(self, repo: RepoRef, ref: str) -> str:
        """The commit SHA a branch, tag or SHA names."""
        path = f"{repo.path}/git/commits/{ref}" if self.kind == "gitea" \
            else f"{repo.path}/commits/{ref}"
        return str(self._api.call("GET", path, transient=self._settling)["sha"])

    # -- commit statuses ---------------------------------------------------------------------------

    def post_status(self, repo: RepoRef, sha: str, state: StatusState, context: str, *,
                    description: str = "", target_url: str = "") -> CommitStatus:
        """A new status of `context` on commit `sha` (the newest per context counts).

        The description is cut to GitHub's 140 characters on both forges."""
        if self.kind == "github" and state in (StatusState.WARNING, StatusState.SKIPPED):
            raise ValueError(f"GitHub has no commit status state {state.value!r}")
        if len(description) > DESCRIPTION_LIMIT:
            description = description[:DESCRIPTION_LIMIT - 1] + "…"
        body = {"state": state.value, "context": context, "description": description,
                "target_url": target_url}
        return CommitStatus.from_api(self._api.call("POST", f"{repo.path}/statuses/{sha}", body))

    def combined_status(self, repo: RepoRef, ref: str) -> CombinedStatus:
        """The newest status per context on `ref` (a SHA or branch) and their combined state:
        up to 50 contexts on Gitea, 100 on GitHub."""
        size = {"limit": 50} if self.kind == "gitea" else {"per_page": 100}
        return CombinedStatus.from_api(self._api.call(
            "GET", f"{repo.path}/commits/{ref}/status", query=size, transient=self._settling))

    # -- pull requests ---------------------------------------------------------------------------

    def get_pull_request(self, repo: RepoRef, number: int) -> PullRequest:
        return PullRequest.from_api(self._api.call("GET", f"{repo.path}/pulls/{number}"))

    def find_pull_request(self, repo: RepoRef, head: str, base: str) -> PullRequest | None:
        """The open pull request from branch `head` into `base` of the same repository."""
        if self.kind == "github":
            query = {"state": "open", "head": f"{repo.owner}:{head}", "base": base}
            items = self._api.pages(f"{repo.path}/pulls", query)
        else:
            items = self._api.pages(f"{repo.path}/pulls", {"state": "open"},
                                    transient=self._pulls_settling(repo))
        for item in items:
            pull = PullRequest.from_api(item)
            if pull.head == head and pull.base == base and pull.state == "open":
                return pull
        return None

    def create_pull_request(self, repo: RepoRef, head: str, base: str, title: str,
                            body: str = "") -> PullRequest:
        return PullRequest.from_api(self._api.call(
            "POST", f"{repo.path}/pulls",
            {"head": head, "base": base, "title": title, "body": body},
            transient=self._pulls_settling(repo)))

    def update_pull_request(self, repo: RepoRef, number: int, *, title: str | None = None,
                            body: str | None = None) -> PullRequest:
        changes = {k: v for k, v in (("title", title), ("body", body)) if v is not None}
        return PullRequest.from_api(self._api.call(
            "PATCH", f"{repo.path}/pulls/{number}", changes))

    def ensure_pull_request(self, repo: RepoRef, head: str, base: str, title: str,
                            body: str = "") -> PullRequest:
        """The one open pull request `head` -> `base` with this title and body: found and
        updated (only if they differ), or created. Re-running never opens a second one."""
        pull = self.find_pull_request(repo, head, base)
        if pull is None:
            return self.create_pull_request(repo, head, base, title, body)
        if (pull.title, pull.body) == (title, body):
            return pull
        return self.update_pull_request(repo, pull.number, title=title, body=body)

    def merge_pull_request(self, repo: RepoRef, number: int, *, method: MergeMethod = "merge",
                           message: str | None = None) -> PullRequest:
        """Merge, and return the merged pull request (with its merge commit).

        Raises `ForgeError` (status 405 on both forges) when the forge refuses, e.g. while a
        required status check is not `success`."""
        path = f"{repo.path}/pulls/{number}/merge"
        if self.kind == "gitea":
            body: JSON = {"Do": method}
            if message is not None:
                body["MergeMessageField"] = message
            self._api.call("POST", path, body, transient=_merge_settling)
        else:
            body = {"merge_method": method}
            if message is not None:
                body["commit_title"] = message
            self._api.call("PUT", path, body)
        return self.get_pull_request(repo, number)

    # -- comments --------------------------------------------------------------------------------

    def create_comment(self, repo: RepoRef, number: int, body: str) -> Comment:
        """A comment on a pull request or issue."""
        return Comment.from_api(self._api.call(
            "POST", f"{repo.path}/issues/{number}/comments", {"body": body}))

    def list_comments(self, repo: RepoRef, number: int) -> list[Comment]:
        return [Comment.from_api(c)
                for c in self._api.pages(f"{repo.path}/issues/{number}/comments")]

    # -- webhooks --------------------------------------------------------------------------------

    def list_webhooks(self, repo: RepoRef) -> list[Webhook]:
        return [Webhook.from_api(h) for h in self._api.pages(f"{repo.path}/hooks")]

    def create_webhook(self, repo: RepoRef, url: str, secret: str,
                       events: Sequence[str] = ("push",)) -> Webhook:
        """Deliveries carry `X-Hub-Signature-256: sha256=<HMAC-SHA256 of the body>` on both
        forges (see `plinth.forge.signature`)."""
        return Webhook.from_api(self._api.call(
            "POST", f"{repo.path}/hooks", self._hook_body(url, secret, events)))

    def ensure_webhook(self, repo: RepoRef, url: str, secret: str,
                       events: Sequence[str] = ("push",)) -> Webhook:
        """The one hook to `url`, with this secret and these events. A secret cannot be read
        back, so an existing hook is always rewritten: GitHub edits it in place; Gitea's API
        cannot change a hook's secret, so there the hook is replaced (a new id)."""
        found = next((h for h in self.list_webhooks(repo) if h.url == url), None)
        if found is None:
            return self.create_webhook(repo, url, secret, events)
        if self.kind == "gitea":
            self.delete_webhook(repo, found.id)
            return self.create_webhook(repo, url, secret, events)
        body = self._hook_body(url, secret, events)
        del body["name"]
        return Webhook.from_api(self._api.call("PATCH", f"{repo.path}/hooks/{found.id}", body))

    def delete_webhook(self, repo: RepoRef, hook_id: int) -> None:
        self._api.call("DELETE", f"{repo.path}/hooks/{hook_id}", missing_ok=True)

    def _hook_body(self, url: str, secret: str, events: Sequence[str]) -> dict[str, JSON]:
        config = {"url": url, "content_type": "json", "secret": secret}
        body: dict[str, JSON] = {"config": config, "events": list(events), "active": True}
        if self.kind == "gitea":
            body["type"] = "gitea"
        else:
            body["name"] = "web"
            config["insecure_ssl"] = "0"
        return body

    # -- branch protection -----------------------------------------------------------------------

    def get_branch_protection(self, repo: RepoRef, branch: str) -> BranchProtection | None:
        if self.kind == "gitea":
            data = self._api.call("GET", f"{repo.path}/branch_protections/{branch}",
                                  missing_ok=True)
            return BranchProtection.from_gitea(data) if data else None
        data = self._api.call("GET", f"{repo.path}/branches/{branch}/protection",
                              missing_ok=True)
        return BranchProtection.from_github(branch, data) if data else None

    def protect_branch(self, repo: RepoRef, branch: str,
                       required_contexts: Sequence[str]) -> BranchProtection:
        """Merges into `branch` need every context in `required_contexts` at `success`; the
        rule is created or replaced. Direct pushes to the branch are refused too (Gitea's
        `enable_push` off; on GitHub, required checks bind pushes as well), for admins included,
        so changes arrive by pull request."""
        contexts = list(required_contexts)
        if self.kind == "gitea":
            rule: JSON = {"enable_status_check": bool(contexts),
                          "status_check_contexts": contexts, "enable_push": False,
                          "block_admin_merge_override": True}
            if self.get_branch_protection(repo, branch) is None:
                data = self._api.call("POST", f"{repo.path}/branch_protections",
                                      {"rule_name": branch, **rule})
            else:
                data = self._api.call("PATCH", f"{repo.path}/branch_protections/{branch}", rule)
            return BranchProtection.from_gitea(data)
        body = {"required_status_checks": {"strict": False, "contexts": contexts},
                "enforce_admins": True, "required_pull_request_reviews": None,
                "restrictions": None}
        data = self._api.call("PUT", f"{repo.path}/branches/{branch}/protection", body)
        return BranchProtection.from_github(branch, data)

    def unprotect_branch(self, repo: RepoRef, branch: str) -> None:
        path = (f"{repo.path}/branch_protections/{branch}" if self.kind == "gitea"
                else f"{repo.path}/branches/{branch}/protection")
        self._api.call("DELETE", path, missing_ok=True)

    @property
    def _settling(self) -> Callable[[int, str], bool]:
        return _gitea_settling if self.kind == "gitea" else never_transient

    def _pulls_settling(self, repo: RepoRef) -> Callable[[int, str], bool]:
        """Gitea hides pull requests of a repository it still marks empty after a push. The
        push may settle between its 404 and the look at the repository, so the first 404 of a
        repository found no longer empty is asked once more."""
        if self.kind != "gitea":
            return never_transient
        asked_settled = False

        def still_empty(status: int, message: str) -> bool:
            nonlocal asked_settled
            if status != 404:
                return False
            found = self.get_repository(repo)
            if found is None:
                return False
            if found.empty:
                return True
            if asked_settled:
                return False
            asked_settled = True
            return True

        return still_empty
