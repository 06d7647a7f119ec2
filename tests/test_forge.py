"""The forge client against a real Gitea (tests/fixtures/servers.py `forge`), and its GitHub
request shapes against a local recorder of requests: api.github.com is not reachable from here,
so for GitHub the requests the client sends are what can be pinned down.

Pushes go over HTTP with real git (plinth.git_push), the admin token as the password.
"""
from __future__ import annotations

import json
import re
import secrets
import stat
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from plinth.forge import ForgeClient, ForgeError, RepoRef, StatusState, forge_kind
from plinth.forge import signature
from plinth.forge.transport import Transport
from plinth.git_auth import Credentials
from plinth.git_push import PushError, push_change
from plinth.localenv.forge import LocalForge

ORG = "plinth-test"


@pytest.fixture(scope="module")
def client(forge: LocalForge) -> ForgeClient:
    client = forge.client()
    client.ensure_organization(ORG)
    return client


@pytest.fixture
def repo(client: ForgeClient, request: pytest.FixtureRequest) -> Iterator[RepoRef]:
    """An empty repository of its own for each test, named for it."""
    ref = RepoRef(ORG, re.sub(r"[^A-Za-z0-9_.-]", "-", request.node.name)[:80])
    client.delete_repository(ref)
    client.create_repository(ref)
    yield ref
    client.delete_repository(ref)


def push(forge: LocalForge, repo: RepoRef, files: dict[str, str], *, branch: str = "main",
         from_branch: str = "main") -> str:
    """Commit `files` on `branch` (started from `from_branch`) and push it; the new tip."""
    def change(work: Path) -> str:
        for name, text in files.items():
            (work / name).write_text(text)
        return f"change {', '.join(files)}"

    credentials = Credentials(username=LocalForge.admin, password=forge.token())
    pushed = push_change(forge.clone_url(repo.owner, repo.name), credentials, from_branch,
                         change, push_branch=branch)
    return pushed.commit


def test_organisation_and_repository_are_made_once(client: ForgeClient) -> None:
    org = client.ensure_organization(ORG)
    assert client.ensure_organization(ORG) == org
    ref = RepoRef(ORG, "made-once")
    client.delete_repository(ref)
    assert client.get_repository(ref) is None
    made = client.ensure_repository(ref, description="GitOps")
    assert client.ensure_repository(ref) == made
    assert (made.ref, made.private, made.empty, made.default_branch) == (ref, True, True, "main")
    assert made.clone_url.endswith(f"/{ORG}/made-once.git")
    client.delete_repository(ref)
    client.delete_repository(ref)
    assert client.get_repository(ref) is None


def test_push_over_http_with_the_token_then_branches(forge: LocalForge, client: ForgeClient,
                                                     repo: RepoRef) -> None:
    tip = push(forge, repo, {"README.md": "hello\n"})
    # right after a first push Gitea may answer 500 for a moment: the client polls through it
    main = client.get_branch(repo, "main")
    assert main is not None and main.sha == tip
    assert client.get_branch(repo, "absent") is None
    feature = client.create_branch(repo, "feature", from_ref="main")
    assert (feature.name, feature.sha) == ("feature", tip)
    odd = client.create_branch(repo, "fix/#1", from_ref="main")  # quoted in the URL
    assert client.get_branch(repo, "fix/#1") == odd
    later = push(forge, repo, {"more.txt": "x\n"})
    assert client.ensure_branch(repo, "feature", from_ref="main").sha == tip  # never moved
    assert client.resolve(repo, "main") == later


def test_pull_request_is_found_and_updated_never_duplicated(forge: LocalForge,
                                                            client: ForgeClient,
                                                            repo: RepoRef) -> None:
    push(forge, repo, {"app.yaml": "tag: 1\n"})
    branch = "promote/dev-to-prod"
    head = push(forge, repo, {"app.yaml": "tag: 2\n"}, branch=branch)
    assert client.find_pull_request(repo, branch, "main") is None
    first = client.ensure_pull_request(repo, branch, "main", "Promote", "diff 1")
    again = client.ensure_pull_request(repo, branch, "main", "Promote", "diff 1")
    updated = client.ensure_pull_request(repo, branch, "main", "Promote app", "diff 2")
    assert first.number == again.number == updated.number
    assert (first.head, first.base, first.head_sha, first.state) == (branch, "main", head,
                                                                     "open")
    assert (updated.title, updated.body) == ("Promote app", "diff 2")
    branch_now = client.get_branch(repo, branch)
    assert branch_now is not None and branch_now.sha == head
    found = client.find_pull_request(repo, branch, "main")
    assert found is not None and (found.number, found.body) == (first.number, "diff 2")
    assert client.find_pull_request(repo, "other", "main") is None


def test_statuses_go_pending_then_success_and_combine(forge: LocalForge, client: ForgeClient,
                                                      repo: RepoRef) -> None:
    sha = push(forge, repo, {"a.txt": "1\n"})
    context = "plinth/local/apps"
    posted = client.post_status(repo, sha, StatusState.PENDING, context,
                                description="applying", target_url="http://plinth.local/x")
    assert (posted.state, posted.context, posted.description) == (StatusState.PENDING, context,
                                                                  "applying")
    assert client.combined_status(repo, sha).state is StatusState.PENDING
    client.post_status(repo, sha, StatusState.SUCCESS, context, description="x" * 300)
    combined = client.combined_status(repo, "main")
    assert (combined.sha, combined.state) == (sha, StatusState.SUCCESS)
    newest = combined.of(context)
    assert newest is not None and newest.state is StatusState.SUCCESS
    assert len(newest.description) == 140
    client.post_status(repo, sha, StatusState.FAILURE, "plinth/local/infra",
                       description="Deployment web: 0/1 ready")
    combined = client.combined_status(repo, sha)
    assert combined.state is StatusState.FAILURE
    assert {s.context for s in combined.statuses} == {context, "plinth/local/infra"}
    assert combined.of("plinth/none") is None


def test_a_commit_without_statuses_is_pending(forge: LocalForge, client: ForgeClient,
                                              repo: RepoRef) -> None:
    sha = push(forge, repo, {"a.txt": "1\n"})
    combined = client.combined_status(repo, sha)
    assert (combined.state, combined.statuses) == (StatusState.PENDING, ())


def test_protection_refuses_the_merge_until_the_required_status_is_success(
        forge: LocalForge, client: ForgeClient, repo: RepoRef) -> None:
    push(forge, repo, {"app.yaml": "tag: 1\n"})
    head = push(forge, repo, {"app.yaml": "tag: 2\n"}, branch="promote")
    protection = client.protect_branch(repo, "main", ["plinth/ci"])
    assert protection.required_contexts == ("plinth/ci",)
    assert client.protect_branch(repo, "main", ["plinth/ci"]) == protection  # replaced, not doubled
    assert client.get_branch_protection(repo, "main") == protection
    pull = client.ensure_pull_request(repo, "promote", "main", "Promote", "")

    with pytest.raises(ForgeError) as refused:
        client.merge_pull_request(repo, pull.number)
    assert refused.value.status == 405
    assert "status checks" in refused.value.message
    client.post_status(repo, head, StatusState.PENDING, "plinth/ci")
    with pytest.raises(ForgeError):
        client.merge_pull_request(repo, pull.number)
    with pytest.raises(PushError):  # and no way around it by a direct push
        push(forge, repo, {"app.yaml": "tag: 3\n"})

    client.post_status(repo, head, StatusState.SUCCESS, "plinth/ci")
    merged = client.merge_pull_request(repo, pull.number)
    assert merged.merged and merged.state == "closed" and merged.merge_commit_sha
    main = client.get_branch(repo, "main")
    assert main is not None and main.sha == merged.merge_commit_sha and main.protected
    assert client.find_pull_request(repo, "promote", "main") is None
    client.unprotect_branch(repo, "main")
    assert client.get_branch_protection(repo, "main") is None


def test_merge_right_after_a_push_to_the_pull_request(forge: LocalForge, client: ForgeClient,
                                                      repo: RepoRef) -> None:
    push(forge, repo, {"app.yaml": "tag: 1\n"})
    push(forge, repo, {"app.yaml": "tag: 2\n"}, branch="promote")
    pull = client.ensure_pull_request(repo, "promote", "main", "Promote", "")
    head = push(forge, repo, {"app.yaml": "tag: 3\n"}, branch="promote", from_branch="promote")
    merged = client.merge_pull_request(repo, pull.number, method="squash", message="Promote 3")
    assert merged.merged and merged.head_sha == head


def test_comments_on_a_pull_request(forge: LocalForge, client: ForgeClient,
                                    repo: RepoRef) -> None:
    push(forge, repo, {"a.txt": "1\n"})
    push(forge, repo, {"a.txt": "2\n"}, branch="change")
    pull = client.ensure_pull_request(repo, "change", "main", "Change", "")
    comment = client.create_comment(repo, pull.number, "rendered diff: 1 object")
    assert (comment.body, comment.author) == ("rendered diff: 1 object", LocalForge.admin)
    assert [c.id for c in client.list_comments(repo, pull.number)] == [comment.id]


@dataclass
class Listener:
    """An HTTP endpoint on loopback that keeps every request it gets."""

    url: str
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)

    def wait_for(self, count: int, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(self.received) >= count, f"{len(self.received)} of {count} deliveries"


@pytest.fixture
def listener() -> Iterator[Listener]:
    received: list[tuple[dict[str, str], bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            received.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            """Quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Listener(f"http://127.0.0.1:{server.server_address[1]}/hook", received)
    finally:
        server.shutdown()
        server.server_close()


def test_push_webhook_arrives_signed(forge: LocalForge, client: ForgeClient, repo: RepoRef,
                                     listener: Listener) -> None:
    secret = secrets.token_hex(16)
    client.ensure_webhook(repo, listener.url, "an old secret")
    hook = client.ensure_webhook(repo, listener.url, secret, ["push"])
    assert client.list_webhooks(repo) == [hook]
    assert (hook.url, hook.events, hook.active) == (listener.url, ("push",), True)

    tip = push(forge, repo, {"a.txt": "1\n"})
    listener.wait_for(1)
    headers, body = listener.received[0]
    assert signature.verify(secret, body, headers["x-hub-signature-256"])
    assert not signature.verify("an old secret", body, headers["x-hub-signature-256"])
    assert not signature.verify(secret, body + b" ", headers["x-hub-signature-256"])
    assert headers["x-github-event"] == "push"
    payload = json.loads(body)
    assert (payload["ref"], payload["after"]) == ("refs/heads/main", tip)
    client.delete_webhook(repo, hook.id)
    assert client.list_webhooks(repo) == []


def test_errors_name_the_call_and_the_forge_words_never_the_token(
        forge: LocalForge, client: ForgeClient, repo: RepoRef,
        capfd: pytest.CaptureFixture[str]) -> None:
    token = forge.token()
    with pytest.raises(ForgeError) as missing:
        client.get_pull_request(repo, 999)
    assert missing.value.status == 404
    assert f"gitea GET /repos/{repo}/pulls/999 answered 404" in str(missing.value)
    with pytest.raises(ForgeError) as refused:
        ForgeClient.gitea(forge.url, token[::-1]).get_repository(repo)
    assert refused.value.status == 401
    with pytest.raises(ForgeError) as down:
        ForgeClient.gitea("http://127.0.0.1:9", token).get_repository(repo)
    assert down.value.status is None and "did not answer" in str(down.value)
    said = "\n".join([str(missing.value), str(refused.value), str(down.value),
                      repr(client), *capfd.readouterr()])
    logs = "".join(p.read_text(errors="replace") for p in forge.state_dir.rglob("*.log"))
    for secret in (token, token[::-1]):
        assert secret not in said and secret not in logs


def test_local_forge_keeps_its_state_across_restarts(tmp_path: Path) -> None:
    """Its own instance: the session's forge keeps serving the other tests."""
    local = LocalForge(tmp_path / "forge")
    try:
        started = time.monotonic()
        local.start()
        first_start = time.monotonic() - started
        token, url = local.token(), local.url
        local.start()  # running: nothing to do
        ForgeClient.gitea(url, token).ensure_organization("kept")
        local.stop()
        assert not local.running()
        local.start()
        again = LocalForge(tmp_path / "forge")
        assert (again.url, again.token()) == (url, token)
        assert again.client().get_organization("kept") is not None
        narrow = again.token("statuses", ("write:repository",))
        assert narrow != token and again.token("statuses", ("write:repository",)) == narrow
        with pytest.raises(ValueError):
            again.token("statuses", ("write:admin",))
        with pytest.raises(ForgeError) as out_of_scope:  # a repository token makes no org
            again.client("statuses").create_organization("not-made")
        assert out_of_scope.value.status == 403
        for secret_file in (local.state_dir / "forge.json", local.app_ini):
            assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
        assert first_start < 30, f"first start took {first_start:.1f}s"
    finally:
        local.destroy()
    assert not (tmp_path / "forge").exists()


# -- GitHub: request shapes, against a local recorder ------------------------------------------


@dataclass
class Recorder:
    """Answers canned JSON per (method, path) and keeps each request: what GitHub would get."""

    url: str
    routes: dict[tuple[str, str], list[tuple[int, Any]]]
    requests: list[tuple[str, str, dict[str, str], Any]]

    def answer(self, method: str, path: str, *replies: tuple[int, Any]) -> None:
        self.routes[(method, path)] = list(replies)

    def sent(self, method: str, path: str) -> Any:
        """The JSON body of the last such request."""
        bodies = [b for m, p, _, b in self.requests if (m, p.split("?")[0]) == (method, path)]
        assert bodies, f"no {method} {path} among {[(m, p) for m, p, _, _ in self.requests]}"
        return bodies[-1]


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    routes: dict[tuple[str, str], list[tuple[int, Any]]] = {}
    requests: list[tuple[str, str, dict[str, str], Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            requests.append((self.command, self.path,
                             {k.lower(): v for k, v in self.headers.items()},
                             json.loads(raw) if raw else None))
            replies = routes.get((self.command, self.path.split("?")[0])) or [(404, {})]
            status, body = replies.pop(0) if len(replies) > 1 else replies[0]
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

        def log_message(self, format: str, *args: object) -> None:
            """Quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield Recorder(f"http://127.0.0.1:{server.server_address[1]}", routes, requests)
    finally:
        server.shutdown()
        server.server_close()


GH = RepoRef("acme", "gitops")
PULL = {"number": 7, "title": "t", "body": "b", "state": "open", "merged_at": None,
        "head": {"ref": "promote", "sha": "abc"}, "base": {"ref": "main"},
        "html_url": "https://github.com/acme/gitops/pull/7"}


@pytest.fixture
def github(recorder: Recorder) -> ForgeClient:
    return ForgeClient.github("ghp-secret-token", api_url=recorder.url)


def test_github_statuses_read_state_and_send_bearer_auth(github: ForgeClient,
                                                         recorder: Recorder) -> None:
    recorder.answer("POST", "/repos/acme/gitops/statuses/abc",
                    (201, {"state": "pending", "context": "plinth/c", "description": "d"}))
    recorder.answer("GET", "/repos/acme/gitops/commits/main/status",
                    (200, {"sha": "abc", "state": "failure", "statuses": [
                        {"state": "failure", "context": "plinth/c", "description": "bad"}]}))
    posted = github.post_status(GH, "abc", StatusState.PENDING, "plinth/c", description="d")
    assert posted.state is StatusState.PENDING
    assert recorder.sent("POST", "/repos/acme/gitops/statuses/abc") == {
        "state": "pending", "context": "plinth/c", "description": "d", "target_url": ""}
    combined = github.combined_status(GH, "main")
    assert combined.state is StatusState.FAILURE
    assert combined.of("plinth/c") is not None
    _, path, headers, _ = recorder.requests[-1]
    assert path.endswith("?per_page=100")
    assert headers["authorization"] == "Bearer ghp-secret-token"
    assert headers["x-github-api-version"] == "2022-11-28"
    with pytest.raises(ValueError):
        github.post_status(GH, "abc", StatusState.SKIPPED, "plinth/c")


def test_github_pull_requests_are_found_by_head_and_merged_by_put(github: ForgeClient,
                                                                  recorder: Recorder) -> None:
    recorder.answer("GET", "/repos/acme/gitops/pulls", (200, [PULL]))
    recorder.answer("PATCH", "/repos/acme/gitops/pulls/7", (200, {**PULL, "body": "new"}))
    recorder.answer("PUT", "/repos/acme/gitops/pulls/7/merge", (200, {"merged": True}))
    recorder.answer("GET", "/repos/acme/gitops/pulls/7",
                    (200, {**PULL, "state": "closed", "merged_at": "2026-11-24T00:00:00Z",
                           "merge_commit_sha": "def"}))
    pull = github.ensure_pull_request(GH, "promote", "main", "t", "new")
    assert pull.body == "new"
    _, query, _, _ = next(r for r in recorder.requests if r[0] == "GET")
    assert "head=acme%3Apromote" in query and "base=main" in query and "state=open" in query
    assert recorder.sent("PATCH", "/repos/acme/gitops/pulls/7") == {"title": "t", "body": "new"}
    merged = github.merge_pull_request(GH, 7, method="squash")
    assert recorder.sent("PUT", "/repos/acme/gitops/pulls/7/merge") == {"merge_method": "squash"}
    assert merged.merged and merged.merge_commit_sha == "def"


def test_github_branches_hooks_and_protection_take_githubs_shapes(github: ForgeClient,
                                                                  recorder: Recorder) -> None:
    recorder.answer("GET", "/repos/acme/gitops/commits/main", (200, {"sha": "abc"}))
    recorder.answer("POST", "/repos/acme/gitops/git/refs", (201, {"ref": "refs/heads/x"}))
    recorder.answer("POST", "/repos/acme/gitops/hooks",
                    (201, {"id": 1, "config": {"url": "https://r/hook"}, "events": ["push"],
                           "active": True}))
    recorder.answer("PUT", "/repos/acme/gitops/branches/main/protection",
                    (200, {"required_status_checks": {"contexts": ["plinth/ci"]}}))
    assert github.create_branch(GH, "x", from_ref="main").sha == "abc"
    assert recorder.sent("POST", "/repos/acme/gitops/git/refs") == {"ref": "refs/heads/x",
                                                                    "sha": "abc"}
    github.create_webhook(GH, "https://r/hook", "s3cret")
    assert recorder.sent("POST", "/repos/acme/gitops/hooks") == {
        "name": "web", "active": True, "events": ["push"],
        "config": {"url": "https://r/hook", "content_type": "json", "secret": "s3cret",
                   "insecure_ssl": "0"}}
    recorder.answer("GET", "/repos/acme/gitops/hooks",
                    (200, [{"id": 1, "config": {"url": "https://r/hook"}, "events": ["push"]}]))
    recorder.answer("PATCH", "/repos/acme/gitops/hooks/1",
                    (200, {"id": 1, "config": {"url": "https://r/hook"}, "events": ["push"]}))
    assert github.ensure_webhook(GH, "https://r/hook", "new").id == 1  # edited in place
    assert recorder.sent("PATCH", "/repos/acme/gitops/hooks/1")["config"]["secret"] == "new"
    protection = github.protect_branch(GH, "main", ["plinth/ci"])
    assert protection.required_contexts == ("plinth/ci",)
    assert recorder.sent("PUT", "/repos/acme/gitops/branches/main/protection") == {
        "required_status_checks": {"strict": False, "contexts": ["plinth/ci"]},
        "enforce_admins": True, "required_pull_request_reviews": None, "restrictions": None}
    count = len(recorder.requests)
    with pytest.raises(ForgeError, match="cannot be created"):
        github.create_organization("acme")
    assert len(recorder.requests) == count


def test_github_errors_carry_its_message_and_details(github: ForgeClient,
                                                     recorder: Recorder) -> None:
    recorder.answer("POST", "/repos/acme/gitops/pulls", (422, {
        "message": "Validation Failed",
        "errors": [{"message": "A pull request already exists for acme:promote."}]}))
    with pytest.raises(ForgeError) as failed:
        github.create_pull_request(GH, "promote", "main", "t")
    assert str(failed.value) == ("github POST /repos/acme/gitops/pulls answered 422: "
                                 "Validation Failed (A pull request already exists for "
                                 "acme:promote.)")


def test_a_kind_from_untyped_input_is_checked() -> None:
    assert forge_kind("github") == "github"
    with pytest.raises(ValueError, match="gitlab"):
        forge_kind("gitlab")


def test_transient_answers_are_polled_within_a_bound(recorder: Recorder) -> None:
    """The transport's polling, on the answers Gitea gives while it processes a push."""
    settling: Callable[[int, str], bool] = lambda status, message: status == 500
    api = Transport("gitea", recorder.url, "t", settle_timeout=2.0)
    recorder.answer("GET", "/a", (500, {"message": "nil"}), (500, {"message": "nil"}),
                    (200, {"ok": 1}))
    assert api.call("GET", "/a", transient=settling) == {"ok": 1}
    recorder.answer("GET", "/b", (500, {"message": "nil"}))
    started = time.monotonic()
    with pytest.raises(ForgeError, match="answered 500: nil"):
        api.call("GET", "/b", transient=settling)
    assert 1.0 < time.monotonic() - started < 3.0
    with pytest.raises(ForgeError):  # not declared transient: at once
        api.call("GET", "/b")
    assert sum(1 for _, p, _, _ in recorder.requests if p == "/b") < 15


def test_pull_requests_are_asked_again_when_the_push_settled_meanwhile(
        recorder: Recorder) -> None:
    """Gitea answers 404 for the pull requests of a repository still empty after a push; by the
    time the client looks, the repository may already hold the push."""
    client = ForgeClient("gitea", recorder.url, "t", settle_timeout=2.0)
    ref = RepoRef("acme", "gitops")
    pulls = "/api/v1/repos/acme/gitops/pulls"
    settled = {"full_name": "acme/gitops", "id": 1, "clone_url": "u", "html_url": "h",
               "private": True, "empty": False}
    recorder.answer("GET", "/api/v1/repos/acme/gitops", (200, settled))
    recorder.answer("GET", pulls, (404, {"message": "not found"}), (200, []))
    assert client.find_pull_request(ref, "promote", "main") is None
    recorder.answer("GET", pulls, (404, {"message": "not found"}))  # a 404 that stays
    with pytest.raises(ForgeError, match="answered 404"):
        client.find_pull_request(ref, "promote", "main")
    assert sum(1 for m, p, _, _ in recorder.requests if p.startswith(pulls)) == 4
