"""`plinth promote`: a scaffolded GitOps repository on a real Gitea; promoting dev to prod
opens one pull request whose body is the rendered diff of prod, a re-run updates it, a
promotion with nothing to move says so, and errors are one line without the token."""
from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import git
import pytest
from click.testing import CliRunner, Result

from plinth.cli import cli
from plinth.diff import diff_objects
from plinth.forge import ForgeClient, RepoRef
from plinth.localenv.forge import LocalForge
from plinth.promote import PromoteError, Request, Staged, body, plan, set_tags
from tests.fixtures.output_stack import stack_with_outputs
from tests.fixtures.servers import PulumiBackend

ORG = "plinth-promote"
DEV = "apps/overlays/dev/kustomization.yaml"
PROD = "apps/overlays/prod/kustomization.yaml"
TOKEN_ENV = "PLINTH_TEST_FORGE_TOKEN"
OVERLAY = """\
# The prod environment.
images:
  - name: ghcr.io/acme/web   # the web app
    newTag: 1.2.3 # {"$imagepolicy": "plinth-system:web:tag"}
  - name: registry.local/acme/backend
    newTag: 'v2' # {"$imagepolicy": "plinth-system:api:tag"}
  - {name: acme/worker, newTag: "7"}
"""


def scaffold(directory: Path) -> git.Repo:
    """`plinth new` with dev and prod, then a dev commit that moves web to 1.2.4."""
    result = CliRunner().invoke(cli, [
        "new", str(directory), "--cluster", "local", "--env", "dev", "--env", "prod",
        "--app", "web=ghcr.io/acme/web:1.2.3", "--app", "api=acme/api:v2"])
    assert result.exit_code == 0, result.output
    return bump(git.Repo(directory), "web", "1.2.4")


def bump(repo: git.Repo, app: str, tag: str) -> git.Repo:
    path = Path(repo.working_tree_dir or ".") / DEV
    path.write_text(set_tags(path.read_text(), {app: tag}, DEV))
    repo.index.add([DEV])
    repo.index.commit(f"dev: {app} {tag}")
    return repo


# -- the overlay edit and the plan ------------------------------------------------------------


def test_set_tags_changes_only_the_tags_and_keeps_comments_quotes_and_layout() -> None:
    new = set_tags(OVERLAY, {"web": "1.3.0", "api": "v3", "worker": "8"}, PROD)
    assert new == OVERLAY.replace("1.2.3", "1.3.0").replace("'v2'", "'v3'") \
        .replace('"7"', '"8"')


def test_a_tag_yaml_would_read_as_a_number_is_quoted() -> None:
    new = set_tags(OVERLAY, {"web": "2.0"}, PROD)
    assert 'newTag: "2.0" # {"$imagepolicy": "plinth-system:web:tag"}' in new


def test_plan_moves_only_the_tags_that_differ_named_by_their_policy() -> None:
    source = set_tags(OVERLAY, {"web": "1.3.0"}, DEV)
    moves = plan(source, OVERLAY, Request("dev", "prod"))
    assert [(m.app, m.image, m.old, m.new) for m in moves] == \
        [("web", "ghcr.io/acme/web", "1.2.3", "1.3.0")]
    assert plan(source, OVERLAY, Request("dev", "prod", ("api",))) == []


def test_plan_refuses_an_app_the_overlays_do_not_have() -> None:
    with pytest.raises(PromoteError, match=r"app 'db' has no image tag in "
                       r"apps/overlays/dev/kustomization\.yaml \(apps there: api, web, worker\)"):
        plan(OVERLAY, OVERLAY, Request("dev", "prod", ("db",)))


def test_body_redacts_secrets_and_is_cut_to_the_limit_with_a_note() -> None:
    def secret(value: str, n: int) -> dict[str, object]:
        return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": f"s{n}"},
                "data": {"password": value}}
    diffs = diff_objects([secret("b2xk", n) for n in range(200)],
                         [secret("bmV3", n) for n in range(200)])
    staged = Staged(plan(set_tags(OVERLAY, {"web": "1.3.0"}, DEV), OVERLAY,
                         Request("dev", "prod")), diffs)
    whole = body(Request("dev", "prod"), staged, 1_000_000)
    assert "b2xk" not in whole and "bmV3" not in whole and '"(redacted)"' in whole
    assert "200 objects differ: 200 changed" in whole and "cut" not in whole
    cut = body(Request("dev", "prod"), staged, 4000)
    assert len(cut) <= 4000
    assert re.search(r"The diff is cut to \d+ of 401 lines\*\* to fit the forge's limit of "
                     r"4000 characters", cut), cut
    assert cut.count("```") == 2  # the fence still closes


# -- against a real Gitea ---------------------------------------------------------------------


@dataclass
class OnForge:
    forge: LocalForge
    client: ForgeClient
    ref: RepoRef
    local: git.Repo

    @property
    def url(self) -> str:
        return self.forge.clone_url(self.ref.owner, self.ref.name).replace(
            "://", f"://{LocalForge.admin}:{self.forge.token()}@", 1)

    def push(self) -> None:
        self.local.git.push(self.url, "HEAD:refs/heads/main")

    def pull(self) -> None:
        self.local.git.fetch(self.url, "main")
        self.local.git.reset("--hard", "FETCH_HEAD")

    def promote(self, *extra: str, token: str | None = None) -> Result:
        env = {TOKEN_ENV: token if token is not None else self.forge.token()}
        return CliRunner(env=env).invoke(cli, [
            "promote", "--from", "dev", "--to", "prod", "--forge-url", self.forge.url,
            "--repository", str(self.ref), "--token-env", TOKEN_ENV, *extra])

    def open_pulls(self) -> list[int]:
        pull = self.client.find_pull_request(self.ref, "plinth/promote-dev-to-prod", "main")
        return [pull.number] if pull else []


@pytest.fixture
def on_forge(forge: LocalForge, tmp_path: Path, request: pytest.FixtureRequest
             ) -> Iterator[OnForge]:
    client = forge.client()
    client.ensure_organization(ORG)
    ref = RepoRef(ORG, re.sub(r"[^A-Za-z0-9_.-]", "-", request.node.name)[:80])
    client.delete_repository(ref)
    client.create_repository(ref)
    repo = OnForge(forge, client, ref, scaffold(tmp_path / "gitops"))
    repo.push()
    yield repo
    client.delete_repository(ref)


def test_promote_opens_one_pull_request_with_the_rendered_diff(on_forge: OnForge) -> None:
    result = on_forge.promote()
    assert result.exit_code == 0, result.output
    pull = on_forge.client.find_pull_request(on_forge.ref, "plinth/promote-dev-to-prod", "main")
    assert pull is not None and f"pull request #{pull.number}" in result.output
    assert pull.title == "Promote dev to prod: web 1.2.4"
    assert "| web | `ghcr.io/acme/web` | `1.2.3` | `1.2.4` |" in pull.body
    assert "~ changed Deployment.apps apps/web\n    spec.template.spec.containers[name=web]" \
        '.image: "ghcr.io/acme/web:1.2.3" -> "ghcr.io/acme/web:1.2.4"\n' in pull.body
    head = on_forge.client.get_branch(on_forge.ref, "plinth/promote-dev-to-prod")
    assert head is not None and head.sha == pull.head_sha


def test_promote_against_a_stack_takes_forge_repository_and_token_from_its_outputs(
        on_forge: OnForge, pulumi_backend: PulumiBackend, tmp_path: Path) -> None:
    token = on_forge.forge.token()
    forge = {"kind": "gitea", "url": on_forge.forge.url, "repository": str(on_forge.ref)}
    project = stack_with_outputs(pulumi_backend, tmp_path / "project", "ci", {"forge": forge},
                                 token)
    result = CliRunner(env=pulumi_backend.env).invoke(cli, [
        "promote", "--from", "dev", "--to", "prod", "--stack", "ci", "--project", str(project)])
    assert result.exit_code == 0, result.output
    assert on_forge.open_pulls() and token not in result.output


def test_rerun_updates_the_same_branch_and_pull_request(on_forge: OnForge) -> None:
    assert on_forge.promote().exit_code == 0
    [first] = on_forge.open_pulls()
    bump(on_forge.local, "api", "v3")
    on_forge.push()
    result = on_forge.promote()
    assert result.exit_code == 0, result.output
    assert on_forge.open_pulls() == [first]
    pull = on_forge.client.get_pull_request(on_forge.ref, first)
    assert pull.title == "Promote dev to prod: api v3, web 1.2.4"
    assert "`v2` | `v3`" in pull.body and "`1.2.3` | `1.2.4`" in pull.body
    again = on_forge.promote()
    assert again.exit_code == 0 and on_forge.open_pulls() == [first]
    assert on_forge.client.get_pull_request(on_forge.ref, first).head_sha == pull.head_sha


def test_a_merged_promotion_leaves_nothing_to_promote_until_dev_moves_again(on_forge: OnForge) -> None:
    assert on_forge.promote().exit_code == 0
    [number] = on_forge.open_pulls()
    merged = on_forge.client.merge_pull_request(on_forge.ref, number)
    assert merged.merged
    prod = on_forge.client.resolve(on_forge.ref, "main")
    result = on_forge.promote()
    assert result.exit_code == 0, result.output
    assert "nothing to promote: prod already runs dev's image tags" in result.output
    assert on_forge.open_pulls() == [] and on_forge.client.resolve(on_forge.ref, "main") == prod
    on_forge.pull()
    bump(on_forge.local, "api", "v3")  # the next promotion reuses the merged branch
    on_forge.push()
    assert on_forge.promote().exit_code == 0
    [following] = on_forge.open_pulls()
    pull = on_forge.client.get_pull_request(on_forge.ref, following)
    assert following != number and pull.title == "Promote dev to prod: api v3"
    assert "web" not in pull.title and "`v2` | `v3`" in pull.body


def test_dry_run_shows_the_diff_and_pushes_nothing(on_forge: OnForge) -> None:
    result = on_forge.promote("--dry-run")
    assert result.exit_code == 0, result.output
    assert "web: ghcr.io/acme/web 1.2.3 -> 1.2.4" in result.output
    assert "1 objects differ: 1 changed" in result.output
    assert on_forge.client.get_branch(on_forge.ref, "plinth/promote-dev-to-prod") is None


@pytest.mark.parametrize("extra, message", [
    (("--app", "db"), "error: app 'db' has no image tag in apps/overlays/dev/"),
    (("--to", "qa"), "error: no environment 'qa': apps/overlays/qa/kustomization.yaml is not"),
])
def test_a_wrong_app_or_environment_is_one_line_and_exit_2(
        on_forge: OnForge, extra: tuple[str, ...], message: str) -> None:
    result = on_forge.promote(*extra)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(message) and result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.output


def test_a_forge_refusal_is_one_line_without_the_token(on_forge: OnForge) -> None:
    token = "f" * 40
    result = on_forge.promote(token=token)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert token not in result.output and "Traceback" not in result.output
    assert on_forge.open_pulls() == []


def test_without_a_forge_the_branch_goes_into_the_local_repository(tmp_path: Path) -> None:
    repo = scaffold(tmp_path / "gitops")
    main = repo.head.commit.hexsha
    result = CliRunner().invoke(cli, ["promote", "--from", "dev", "--to", "prod",
                                      "--repo", str(tmp_path / "gitops")])
    assert result.exit_code == 0, result.output
    branch = repo.commit("plinth/promote-dev-to-prod")
    assert branch.parents[0].hexsha == main and repo.head.commit.hexsha == main
    assert list(branch.stats.files) == [PROD]
    assert "newTag: 1.2.4 # {\"$imagepolicy\": \"plinth-system:web:tag\"}" in \
        repo.git.show(f"plinth/promote-dev-to-prod:{PROD}")

