"""GitSource against real git servers: every kind of ref, auth, and errors without secrets."""
from __future__ import annotations

from pathlib import Path

import git
import pytest

from plinth.localenv.gitdaemon import GitDaemon
from plinth.localenv.githttp import GitHttpServer
from plinth.git_auth import Credentials
from sync_controller.source import GitSource, Ref, SourceError


def publish(url: str, work: Path, env: dict[str, str] | None = None) -> dict[str, str]:
    """A repo with three commits on main, tags v1.0.0 (annotated), v1.1.0, v2.0.0-rc.1."""
    repo = git.Repo.init(work, initial_branch="main")
    shas = {}
    for version in ("1.0.0", "1.1.0", "2.0.0-rc.1"):
        (work / "version.txt").write_text(version + "\n")
        repo.index.add(["version.txt"])
        shas[version] = repo.index.commit(f"release {version}").hexsha
        if version == "1.0.0":
            repo.create_tag(f"v{version}", message="first release")
        else:
            repo.create_tag(f"v{version}")
    repo.git.push(url, "main", "--tags", env=env)
    return shas


@pytest.fixture(scope="module")
def daemon_repo(git_server: GitDaemon, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, str]]:
    git_server.create_repository("refs.git")
    url = git_server.url("refs.git")
    return url, publish(url, tmp_path_factory.mktemp("work"))


def content(artifact_path: Path) -> str:
    return (artifact_path / "version.txt").read_text().strip()


@pytest.mark.parametrize(("ref", "version", "revision"), [
    (Ref(branch="main"), "2.0.0-rc.1", "main@sha1:"),
    (Ref(tag="v1.0.0"), "1.0.0", "v1.0.0@sha1:"),
    (Ref(tag="v1.1.0"), "1.1.0", "v1.1.0@sha1:"),
    (Ref(semver=">=1.0.0 <2.0.0"), "1.1.0", "v1.1.0@sha1:"),
    (Ref(semver="~1.0"), "1.0.0", "v1.0.0@sha1:"),
])
def test_ref_kinds(daemon_repo: tuple[str, dict[str, str]], tmp_path: Path, ref: Ref,
                   version: str, revision: str) -> None:
    url, shas = daemon_repo
    artifact = GitSource(tmp_path, url).fetch(ref)
    assert content(artifact.path) == version
    assert artifact.revision == f"{revision}{shas[version]}"
    assert artifact.commit == shas[version]


def test_exact_commit_behind_the_branch_tip(daemon_repo: tuple[str, dict[str, str]],
                                            tmp_path: Path) -> None:
    url, shas = daemon_repo
    for ref in (Ref(branch="main", commit=shas["1.0.0"]), Ref(commit=shas["1.0.0"])):
        artifact = GitSource(tmp_path / str(ref.branch), url).fetch(ref)
        assert content(artifact.path) == "1.0.0"
        assert artifact.revision.endswith(f"sha1:{shas['1.0.0']}")


def test_artifacts_are_cached_per_revision(daemon_repo: tuple[str, dict[str, str]],
                                           tmp_path: Path) -> None:
    url, _ = daemon_repo
    source = GitSource(tmp_path, url)
    first = source.fetch(Ref(tag="v1.0.0"))
    marker = first.path / "marker"
    marker.write_text("kept")
    assert source.fetch(Ref(tag="v1.0.0")).path == first.path and marker.exists()
    source.fetch(Ref(tag="v1.1.0"))
    source.fetch(Ref(branch="main"))
    assert len(list((tmp_path / "artifacts").iterdir())) == 2  # old revisions are dropped


def test_changed_paths_between_two_shallow_fetches(git_server: GitDaemon,
                                                    tmp_path: Path) -> None:
    """Tip fetches are shallow: the paths a new commit changed come from the two trees alone;
    a changed link, or a commit not fetched, cannot be told (None)."""
    git_server.create_repository("changes.git")
    url, work = git_server.url("changes.git"), tmp_path / "work"
    repo = git.Repo.init(work, initial_branch="main")

    def commit(files: dict[str, str], remove: tuple[str, ...] = (), link: str | None = None
               ) -> str:
        for rel, text in files.items():
            (work / rel).parent.mkdir(parents=True, exist_ok=True)
            (work / rel).write_text(text)
        for rel in remove:
            (work / rel).unlink()
        if link:
            (work / "current").unlink(missing_ok=True)
            (work / "current").symlink_to(link)
        repo.git.add(A=True)
        sha = repo.index.commit("change").hexsha
        repo.git.push(url, "main")
        return sha

    first = commit({"a/x.yaml": "1", "b/y.yaml": "1", "b/z.yaml": "1"}, link="a")
    source = GitSource(tmp_path / "cache", url)
    source.fetch(Ref(branch="main"))
    commit({"b/y.yaml": "2"})  # never fetched: only the tips are
    second = commit({"c/new.yaml": "1"}, remove=("b/z.yaml",))
    source.fetch(Ref(branch="main"))
    assert source.changed_paths(first, second) == {"b/y.yaml", "b/z.yaml", "c/new.yaml"}
    assert source.changed_paths(second, second) == frozenset()
    third = commit({}, link="b")
    source.fetch(Ref(branch="main"))
    assert source.changed_paths(second, third) is None
    assert source.changed_paths(first, "0" * 40) is None


@pytest.mark.usefixtures("python_without_tar_filters")
def test_a_commit_linking_out_of_the_tree_is_refused_and_leaves_no_artifact(
        git_server: GitDaemon, tmp_path: Path) -> None:
    git_server.create_repository("links.git")
    url = git_server.url("links.git")
    work = tmp_path / "work"
    repo = git.Repo.init(work, initial_branch="main")
    (work / "version.txt").write_text("1.0.0\n")
    repo.git.add(A=True)
    good = repo.index.commit("plain files").hexsha
    (work / "passwd").symlink_to("/etc/passwd")
    repo.git.add(A=True)
    bad = repo.index.commit("a link to /etc/passwd").hexsha
    repo.git.push(url, "main")
    source = GitSource(tmp_path / "cache", url)
    assert content(source.fetch(Ref(commit=good)).path) == "1.0.0"
    with pytest.raises(SourceError) as err:
        source.fetch(Ref(branch="main"))
    assert str(err.value) == (f"commit {bad[:12]}: passwd: links to the absolute path "
                              "'/etc/passwd'")
    assert [p.name for p in (tmp_path / "cache" / "artifacts").iterdir()] == [good]


def test_missing_ref_and_unmatched_semver(daemon_repo: tuple[str, dict[str, str]],
                                          tmp_path: Path) -> None:
    url, _ = daemon_repo
    with pytest.raises(SourceError, match="nope not found"):
        GitSource(tmp_path, url).fetch(Ref(branch="nope"))
    with pytest.raises(SourceError, match="no tag matches semver '>=3.0.0'"):
        GitSource(tmp_path, url).fetch(Ref(semver=">=3.0.0"))


@pytest.fixture(scope="module")
def http_repo(git_http_server: GitHttpServer,
              tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, str]]:
    git_http_server.create_repository("auth.git")
    url = git_http_server.url("auth.git")
    env = {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "http.extraHeader",
           "GIT_CONFIG_VALUE_0": f"Authorization: Bearer {git_http_server.token()}"}
    return url, publish(url, tmp_path_factory.mktemp("work"), env)


def test_https_basic_auth_and_token(git_http_server: GitHttpServer,
                                    http_repo: tuple[str, dict[str, str]], tmp_path: Path) -> None:
    url, shas = http_repo
    user, password = git_http_server.credentials()
    basic = GitSource(tmp_path / "basic", url, Credentials(username=user, password=password))
    assert basic.fetch(Ref(branch="main")).commit == shas["2.0.0-rc.1"]
    bearer = GitSource(tmp_path / "bearer", url, Credentials(bearer_token=git_http_server.token()))
    assert bearer.fetch(Ref(tag="v1.0.0")).commit == shas["1.0.0"]


def test_wrong_credentials_fail_without_leaking_them(
        http_repo: tuple[str, dict[str, str]], tmp_path: Path) -> None:
    url, _ = http_repo
    wrong = Credentials(username="plinth", password="not-the-password-s3cr3t")
    with pytest.raises(SourceError) as err:
        GitSource(tmp_path, url, wrong).fetch(Ref(branch="main"))
    assert "s3cr3t" not in str(err.value)
    with pytest.raises(SourceError):
        GitSource(tmp_path, url).fetch(Ref(branch="main"))  # no credentials at all


def test_password_in_url_is_scrubbed(http_repo: tuple[str, dict[str, str]], tmp_path: Path) -> None:
    url, _ = http_repo
    leaky = url.replace("http://", "http://plinth:hunter2@").replace("auth.git", "missing.git")
    with pytest.raises(SourceError) as err:
        GitSource(tmp_path, leaky).fetch(Ref(branch="main"))
    assert "hunter2" not in str(err.value)


def test_unreachable_server_times_out_cleanly(tmp_path: Path) -> None:
    from plinth.localenv.process import free_port

    url = f"git://127.0.0.1:{free_port()}/gone.git"
    with pytest.raises(SourceError, match="ls-remote failed"):
        GitSource(tmp_path, url, timeout=5).fetch(Ref(branch="main"))
