"""extract_tree: a git archive unpacks byte for byte; anything a plain tree cannot hold is refused,
on any Python 3.11 (tarfile's own `filter=` is 3.11.4+ and is not used)."""
from __future__ import annotations

import io
import tarfile
from collections.abc import Callable
from pathlib import Path

import git
import pytest

from plinth.commit_tree import CommitTree
from plinth.tree_archive import (LeavesTree, TreeError, UnsafeArchiveError, WorkTree,
                                  copy_part, extract_tree, resolve)


def member(name: str, kind: bytes = tarfile.REGTYPE, *, linkname: str = "",
           data: bytes = b"") -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    return info, data


def archive(*members: tuple[tarfile.TarInfo, bytes]) -> tarfile.TarFile:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    buffer.seek(0)
    return tarfile.open(fileobj=buffer)


def files_under(root: Path) -> dict[str, bytes | str]:
    """Every file's bytes and every link's target, by path relative to `root`."""
    return {p.relative_to(root).as_posix(): (str(p.readlink()) if p.is_symlink()
                                             else p.read_bytes())
            for p in sorted(root.rglob("*")) if p.is_symlink() or p.is_file()}


@pytest.mark.usefixtures("python_without_tar_filters")
def test_git_archive_of_a_tree_extracts_byte_equal(tmp_path: Path) -> None:
    work = tmp_path / "work"
    repo = git.Repo.init(work, initial_branch="main")
    (work / "apps" / "web").mkdir(parents=True)
    (work / "apps" / "web" / "deploy.yaml").write_bytes(b"kind: Deployment\n\x00\xff")
    (work / "empty").write_bytes(b"")
    (work / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (work / "run.sh").chmod(0o755)
    (work / "apps" / "current").symlink_to("web")
    repo.git.add(A=True)
    commit = repo.index.commit("tree").hexsha
    buffer = io.BytesIO()
    repo.archive(buffer, treeish=commit, format="tar")
    buffer.seek(0)
    dest = tmp_path / "dest"
    dest.mkdir()

    with tarfile.open(fileobj=buffer) as tar:
        extract_tree(tar, dest)

    assert files_under(dest) == {key: value for key, value in files_under(work).items()
                                 if not key.startswith(".git/")}
    assert (dest / "run.sh").stat().st_mode & 0o777 == 0o755
    assert (dest / "empty").stat().st_mode & 0o777 == 0o644
    assert (dest / "apps" / "current" / "deploy.yaml").read_bytes().startswith(b"kind:")


def test_a_hard_link_inside_the_tree_becomes_a_copy(tmp_path: Path) -> None:
    with archive(member("a.yaml", data=b"x: 1\n"),
                 member("b.yaml", tarfile.LNKTYPE, linkname="a.yaml")) as tar:
        extract_tree(tar, tmp_path)
    assert files_under(tmp_path) == {"a.yaml": b"x: 1\n", "b.yaml": b"x: 1\n"}


HOSTILE: dict[str, tuple[Callable[[], tarfile.TarFile], str]] = {
    "absolute_path": (lambda: archive(member("/tmp/plinth-owned", data=b"x")),
                      "/tmp/plinth-owned: absolute path"),
    "dot_dot": (lambda: archive(member("ok/../../x", data=b"x")),
                "ok/../../x: path leaves the tree (..)"),
    "symlink_to_etc": (lambda: archive(member("etc", tarfile.SYMTYPE, linkname="/etc")),
                       "etc: links to the absolute path '/etc'"),
    "symlink_up_and_out": (lambda: archive(
        member("a/up", tarfile.SYMTYPE, linkname="../../outside")),
        "a/up: links outside the tree (to ../../outside)"),
    "symlink_chain_out": (lambda: archive(
        member("up", tarfile.SYMTYPE, linkname="here/.."),
        member("here", tarfile.SYMTYPE, linkname=".")),
        "up: links outside the tree (to here/.., through other links)"),
    "file_through_a_symlink": (lambda: archive(
        member("sub", tarfile.DIRTYPE), member("link", tarfile.SYMTYPE, linkname="sub"),
        member("link/x", data=b"x")),
        "link/x: lies beneath link, which is not a folder"),
    "hard_link_outside": (lambda: archive(
        member("passwd", tarfile.LNKTYPE, linkname="../../etc/passwd")),
        "passwd: hard link to ../../etc/passwd, which is not a file earlier in the archive"),
    "hard_link_absolute": (lambda: archive(
        member("passwd", tarfile.LNKTYPE, linkname="/etc/passwd")),
        "passwd: hard link to /etc/passwd, which is not a file earlier in the archive"),
    "character_device": (lambda: archive(member("null", tarfile.CHRTYPE)),
                         "null: is a character device, not a file, folder or link"),
    "block_device": (lambda: archive(member("sda", tarfile.BLKTYPE)),
                     "sda: is a block device, not a file, folder or link"),
    "fifo": (lambda: archive(member("pipe", tarfile.FIFOTYPE)),
             "pipe: is a fifo, not a file, folder or link"),
    "duplicate": (lambda: archive(member("a", data=b"1"), member("a", data=b"2")),
                  "a: appears twice in the archive"),
}


@pytest.mark.usefixtures("python_without_tar_filters")
@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_member_is_refused_with_its_name_and_reason(case: str, tmp_path: Path) -> None:
    make, message = HOSTILE[case]
    dest = tmp_path / "a" / "b" / "dest"
    dest.mkdir(parents=True)
    with make() as tar, pytest.raises(UnsafeArchiveError) as err:
        extract_tree(tar, dest)
    assert str(err.value) == message
    written_outside = [p for p in tmp_path.rglob("*") if p != dest and dest not in p.parents
                       and p not in dest.parents]
    assert written_outside == [] and not Path("/tmp/plinth-owned").exists()


def test_a_bad_member_late_in_the_archive_stops_it_before_any_file_is_written(
        tmp_path: Path) -> None:
    with archive(member("good.yaml", data=b"x"), member("null", tarfile.CHRTYPE)) as tar, \
            pytest.raises(UnsafeArchiveError):
        extract_tree(tar, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_part_of_a_commit_is_copied_with_where_its_links_lead_and_nothing_else(
        tmp_path: Path) -> None:
    work = tmp_path / "work"
    repo = git.Repo.init(work, initial_branch="main")
    for rel, text in {"a/x.yaml": "x: 1\n", "b/y.yaml": "y: 2\n", "c/z.yaml": "z: 3\n"}.items():
        (work / rel).parent.mkdir(parents=True, exist_ok=True)
        (work / rel).write_text(text)
    (work / "a" / "shared").symlink_to("../b")
    repo.git.add(A=True)
    commit = repo.index.commit("tree")
    unrelated = commit.tree["c/z.yaml"].hexsha
    (work / ".git" / "objects" / unrelated[:2] / unrelated[2:]).unlink()
    dest = tmp_path / "dest"
    dest.mkdir()

    copy_part(CommitTree(commit), ["a"], dest)

    assert files_under(dest) == {"a/x.yaml": b"x: 1\n", "a/shared": "../b", "b/y.yaml": b"y: 2\n"}


LINKS_OUT = {"absolute": ({"l": "/etc"}, "l/passwd", "l: links to the absolute path '/etc'"),
             "up": ({"d/l": "../../x"}, "d/l", "d/l: links outside the repository (to ../../x)"),
             "chain": ({"up": "here/..", "here": "."}, "up/x",
                       "up: links outside the repository (to here/..)"),
             "loop": ({"a": "b", "b": "a"}, "a", "a: more than 40 links in a row (a loop)")}


@pytest.mark.parametrize("case", sorted(LINKS_OUT))
def test_resolving_through_a_link_out_of_the_tree_names_that_link(case: str,
                                                                   tmp_path: Path) -> None:
    links, path, message = LINKS_OUT[case]
    for rel, target in links.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).symlink_to(target)
    with pytest.raises(TreeError) as err:
        resolve(WorkTree(tmp_path), path)
    assert str(err.value) == message


def test_a_path_climbing_out_by_itself_is_told_apart_from_a_link(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "in").symlink_to("..")
    assert resolve(WorkTree(tmp_path), "d/in/d/../d") == "d"
    with pytest.raises(LeavesTree):
        resolve(WorkTree(tmp_path), "d/../..")
