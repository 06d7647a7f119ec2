"""Promotion: move apps' image tags from one environment's overlay to the next by pull request.

The tags live in `apps/overlays/<env>/kustomization.yaml`, one `images:` entry per app. A
promotion copies the source environment's `newTag`s into the target's, as one commit on a
branch named for the pair (`plinth/promote-dev-to-prod`), and opens a pull request whose body
is the `plinth diff` of the target overlay before and after: what the cluster will get.

Both environments are read from the base branch, so a promotion always proposes "the target as
the source is now". Re-running reuses the branch: when the base moved on, the base is merged
into it first (its tree taken whole, since the branch holds nothing but tags a new commit sets
again), so the pull request never lags behind and is never duplicated, and nothing is
force-pushed.

Only the `newTag` scalars change, each in its own quoting style; comments (the image
automation markers among them) and layout stay byte for byte: a YAML round trip would reflow
files people wrote.
"""
from __future__ import annotations

import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import git
import yaml

from plinth.yaml_scalars import render_scalar
from plinth.diff import ObjectDiff, diff_objects, text_lines
from plinth.forge import ForgeClient, ForgeKind, PullRequest, RepoRef
from plinth.git_auth import Credentials, git_env
from plinth.git_push import PLINTH_AUTHOR, push_change
from plinth.manifest_yaml import yaml_problem
from plinth.render import render

OVERLAYS = "apps/overlays"
# GitHub refuses a pull request body over 65536 characters; Gitea stores more, but a diff that
# long is read on no forge, so both are cut at the same length.
BODY_LIMITS: dict[ForgeKind, int] = {"github": 65536, "gitea": 65536}
_MARKER = re.compile(r'#[ \t]*\{"\$imagepolicy":[ \t]*"(?P<ref>[^"]+)"\}')


class PromoteError(Exception):
    """The promotion cannot be made as asked; the message says what to change."""


@dataclass(frozen=True)
class ImageEntry:
    """One `images:` item with a `newTag`, and where its tag sits in the file."""

    app: str
    image: str
    tag: str
    start: int
    end: int
    style: str | None


@dataclass(frozen=True)
class Move:
    app: str
    image: str
    old: str
    new: str


@dataclass(frozen=True)
class Staged:
    """What a promotion changes: the tag moves, and the target overlay's rendered diff."""

    moves: list[Move]
    diffs: list[ObjectDiff]


@dataclass(frozen=True)
class Request:
    source: str
    target: str
    apps: tuple[str, ...] = ()

    @property
    def branch(self) -> str:
        return f"plinth/promote-{self.source}-to-{self.target}"


def overlay_file(env: str) -> str:
    return f"{OVERLAYS}/{env}/kustomization.yaml"


def image_entries(text: str, file: str) -> dict[str, ImageEntry]:
    """The overlay's tagged images by app. An entry's app is the ImagePolicy its marker names
    (as `plinth new` writes them), else the last part of its image name."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as err:
        raise PromoteError(f"{file}: not YAML: {yaml_problem(err)}") from None
    images = _value(root, "images") if isinstance(root, yaml.MappingNode) else None
    if not isinstance(images, yaml.SequenceNode):
        return {}
    entries: dict[str, ImageEntry] = {}
    for item in images.value:
        name, tag = _value(item, "name"), _value(item, "newTag")
        if not isinstance(name, yaml.ScalarNode) or not isinstance(tag, yaml.ScalarNode):
            continue
        line_end = text.find("\n", tag.end_mark.index)
        marker = _MARKER.search(text, tag.end_mark.index,
                                len(text) if line_end < 0 else line_end)
        policy = marker.group("ref").split(":") if marker else []
        app = policy[1] if len(policy) > 1 else str(name.value).rsplit("/", 1)[-1]
        entries[app] = ImageEntry(app, str(name.value), str(tag.value), tag.start_mark.index,
                                  tag.end_mark.index, tag.style)
    return entries


def _value(node: yaml.Node | None, key: str) -> yaml.Node | None:
    if not isinstance(node, yaml.MappingNode):
        return None
    return next((v for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == key),
                None)


def plan(source_text: str, target_text: str, request: Request) -> list[Move]:
    """The tags to move: of `request.apps`, or of every app whose tags differ."""
    source = image_entries(source_text, overlay_file(request.source))
    target = image_entries(target_text, overlay_file(request.target))
    for app in request.apps:
        for env, entries in ((request.source, source), (request.target, target)):
            if app not in entries:
                known = ", ".join(sorted(entries)) or "none"
                raise PromoteError(f"app {app!r} has no image tag in {overlay_file(env)} "
                                   f"(apps there: {known})")
    apps = request.apps or tuple(sorted(a for a in source if a in target))
    return [Move(app, target[app].image, target[app].tag, source[app].tag)
            for app in apps if source[app].tag != target[app].tag]


def set_tags(text: str, tags: dict[str, str], file: str) -> str:
    """`text` with the `newTag` of each app in `tags` replaced, every other byte kept."""
    entries = image_entries(text, file)
    pieces, done = [], 0
    for entry in sorted((entries[a] for a in tags if a in entries), key=lambda e: e.start):
        pieces += [text[done:entry.start], render_scalar(tags[entry.app], entry.style)]
        done = entry.end
    return "".join(pieces) + text[done:]


def stage(work: Path, base: str, request: Request) -> Staged:
    """In git work tree `work`: set the target overlay's tags to what `base` (a commit) says
    they should become, and diff the rendered target overlay at `base` against the work tree."""
    repo = git.Repo(work)
    texts = {}
    for env in (request.source, request.target):
        try:
            texts[env] = repo.git.show(f"{base}:{overlay_file(env)}")
        except git.GitCommandError:
            raise PromoteError(f"no environment {env!r}: {overlay_file(env)} is not in "
                               "the repository") from None
    moves = plan(texts[request.source], texts[request.target], request)
    if not moves:
        return Staged([], [])
    path = work / overlay_file(request.target)
    path.write_bytes(set_tags(path.read_bytes().decode(), {m.app: m.new for m in moves},
                              overlay_file(request.target)).encode())
    overlay = work / OVERLAYS / request.target
    before = render(overlay, repo_root=work, rev=base).objects
    after = render(overlay, repo_root=work).objects
    return Staged(moves, diff_objects(before, after))


def title(request: Request, moves: Sequence[Move]) -> str:
    tags = ", ".join(f"{m.app} {m.new}" for m in moves)
    return f"Promote {request.source} to {request.target}: {tags}"


def body(request: Request, staged: Staged, limit: int) -> str:
    """Markdown: the moves, then the target's rendered diff, cut to `limit` characters with a
    note saying so."""
    rows = "".join(f"| {m.app} | `{m.image}` | `{m.old}` | `{m.new}` |\n" for m in staged.moves)
    head = (f"Promotes image tags from **{request.source}** to **{request.target}**.\n\n"
            f"| app | image | {request.target} now | from {request.source} |\n"
            f"|---|---|---|---|\n{rows}\n"
            f"### What {request.target} will run (`plinth diff`, secrets redacted)\n\n")
    foot = (f"\n_Opened by `plinth promote --from {request.source} --to {request.target}`; "
            "re-running it updates this pull request._\n")
    lines = text_lines(staged.diffs)
    fence = "`" * max(3, 1 + max((len(r) for r in re.findall(r"`+", "\n".join(lines))),
                                 default=0))
    kept = list(lines)
    note = ""
    while True:
        text = f"{head}{fence}text\n" + "".join(f"{line}\n" for line in kept) + \
            f"{fence}\n{note}{foot}"
        if len(text) <= limit or not kept:
            return text[:limit]
        cut = max(1, (len(text) - limit) // 40)  # whole lines, a few at a time
        kept = kept[:-cut]
        note = (f"\n**The diff is cut to {len(kept)} of {len(lines)} lines** to fit the "
                f"forge's limit of {limit} characters; `plinth diff` of the target overlay "
                "shows all of it.\n")


@dataclass(frozen=True)
class Remote:
    """Where the promotion goes: a git URL and its credentials; with a forge, the repository
    the pull request is opened in."""

    url: str
    credentials: Credentials
    base: str
    forge: ForgeClient | None = None
    repo: RepoRef | None = None


@dataclass(frozen=True)
class Promotion:
    staged: Staged
    branch: str
    commit: str  # the branch tip; "" when nothing was promoted
    pull: PullRequest | None


def forge_remote(client: ForgeClient, repo: RepoRef, token: str) -> Remote:
    found = client.get_repository(repo)
    if found is None:
        raise PromoteError(f"repository {repo} not found on the forge (or the token cannot "
                           "read it)")
    return Remote(found.clone_url, Credentials(username=client.login, password=token),
                  found.default_branch, client, repo)


def local_remote(directory: Path) -> Remote:
    """A local repository: the branch is pushed into it, no pull request is opened."""
    try:
        repo = git.Repo(directory)
        base = repo.active_branch.name
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise PromoteError(f"{directory}: not a git repository") from None
    except TypeError:
        raise PromoteError(f"{directory}: HEAD is detached; check out the branch to promote "
                           "on") from None
    return Remote(str(directory.resolve()), Credentials(), base)


def promote(remote: Remote, request: Request, *, dry_run: bool = False,
            body_limit: int | None = None) -> Promotion:
    """Push the promotion branch and ensure its one pull request (with a forge)."""
    if request.source == request.target:
        raise PromoteError(f"--from and --to are both {request.source!r}")
    if dry_run:
        return Promotion(_dry_run(remote, request), request.branch, "", None)
    found: list[Staged] = []

    def change(work: Path) -> str | None:
        base = _fetch_base(work, remote)
        _catch_up(work, base)
        found[:] = [stage(work, base, request)]
        return title(request, found[0].moves) if found[0].moves else None

    pushed = push_change(remote.url, remote.credentials, remote.base, change,
                         push_branch=request.branch)
    staged = found[-1]
    if not staged.moves:
        return Promotion(staged, request.branch, "", None)
    pull = None
    if remote.forge is not None and remote.repo is not None:
        limit = body_limit or BODY_LIMITS[remote.forge.kind]
        pull = remote.forge.ensure_pull_request(remote.repo, request.branch, remote.base,
                                                title(request, staged.moves),
                                                body(request, staged, limit))
    return Promotion(staged, request.branch, pushed.commit, pull)


def _dry_run(remote: Remote, request: Request) -> Staged:
    with tempfile.TemporaryDirectory(prefix="plinth-promote-") as tmp, \
            git_env(remote.credentials) as env:
        work = Path(tmp) / "repo"
        repo = git.Repo.init(work, initial_branch=request.branch)
        repo.create_remote("origin", remote.url)
        repo.git.fetch("origin", remote.base, env=env)
        repo.git.checkout("-f", "FETCH_HEAD")
        return stage(work, "HEAD", request)


def _fetch_base(work: Path, remote: Remote) -> str:
    """The base branch's tip, fetched into the work tree's repository."""
    repo = git.Repo(work)
    with git_env(remote.credentials) as env:
        repo.git.fetch("origin", remote.base, env=env)
    return str(repo.rev_parse("FETCH_HEAD").hexsha)


def _catch_up(work: Path, base: str) -> None:
    """Make an existing promotion branch hold the base's tree: fast-forwarded when the base
    contains it (it was merged), else as a merge of the base."""
    repo = git.Repo(work)
    tip, head = repo.commit(base), repo.head.commit
    if repo.is_ancestor(tip, head):
        return
    if repo.is_ancestor(head, tip):
        repo.git.reset("--hard", base)
        return
    repo.git.read_tree("-u", "--reset", base)
    repo.index.commit(f"Merge {base[:12]} into {repo.active_branch.name}",
                      parent_commits=[head, tip],
                      author=PLINTH_AUTHOR, committer=PLINTH_AUTHOR)
