"""A source tree as plain files in a private directory, refusing anything a plain tree cannot hold.

Two ways in. `extract_tree` unpacks a tar of a whole tree (what `git archive` writes): the
controller's artifacts. `copy_part` copies only some paths of a `SourceTree` (a work tree on
disk, or a commit read object by object) together with what their links point to: a render
needs a few folders of a large repository, and a commit's other objects are never read, so
they may be large or even unreadable.

`TarFile.extractall(filter="data")` would do the tar checks from Python 3.11.4 on, but the
controller image runs Debian bookworm's 3.11.2, where `filter` does not exist and tarfile trusts
an archive fully. So tarfile only reads here: every member is checked before anything is
written, files and folders are written by this module, and symbolic links come last, when each
is checked again against the real tree (a chain of links can escape where every single one looks
inside). A `SourceTree`'s links are followed by `resolve`, component by component as the
kernel does, so a link that leaves the repository is named before anything reads through it.
"""
from __future__ import annotations

import os
import posixpath
import shutil
import stat
import tarfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal, Protocol, TypeVar

_T = TypeVar("_T")

_SPECIAL = {tarfile.CHRTYPE: "a character device", tarfile.BLKTYPE: "a block device",
            tarfile.FIFOTYPE: "a fifo"}


class UnsafeArchiveError(Exception):
    """A member could write or point outside the tree, or is no plain file, folder or link.

    The message names the member and the reason. Links are checked last, so the destination
    may hold part of the tree by then: the caller discards it."""


def extract_tree(tar: tarfile.TarFile, dest: Path) -> None:
    """Write every member of `tar` under `dest` (an existing, empty directory)."""
    members = tar.getmembers()
    _check_members(members)
    for member in members:
        target = dest.joinpath(*_parts(member.name))
        if member.isdir():
            target.mkdir(parents=True, exist_ok=True)
        elif member.isreg():
            _write_file(tar, member, target)
        elif member.islnk():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(dest.joinpath(*_parts(member.linkname)), target)
            target.chmod(_file_mode(member))
    links = [member for member in members if member.issym()]
    for member in links:
        target = dest.joinpath(*_parts(member.name))
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(member.linkname)
    root = Path(os.path.realpath(dest))
    for member in links:
        if not _inside(Path(os.path.realpath(dest.joinpath(*_parts(member.name)))), root):
            raise UnsafeArchiveError(f"{member.name}: links outside the tree "
                                     f"(to {member.linkname}, through other links)")


def _check_members(members: list[tarfile.TarInfo]) -> None:
    """Refuse the archive before anything is written when one member is out of bounds."""
    kinds: dict[tuple[str, ...], tarfile.TarInfo] = {}
    for member in members:
        parts = _checked_parts(member)
        if parts in kinds:
            raise UnsafeArchiveError(f"{member.name}: appears twice in the archive")
        if member.islnk():
            _check_hard_link(member, kinds)
        elif member.issym():
            _check_symlink(member)
        elif not (member.isreg() or member.isdir()):
            kind = _SPECIAL.get(member.type, f"of tar type {member.type!r}")
            raise UnsafeArchiveError(f"{member.name}: is {kind}, not a file, folder or link")
        kinds[parts] = member
    for parts, member in kinds.items():
        for depth in range(1, len(parts)):
            above = kinds.get(parts[:depth])
            if above is not None and not above.isdir():
                raise UnsafeArchiveError(f"{member.name}: lies beneath {above.name}, "
                                         "which is not a folder")


def _checked_parts(member: tarfile.TarInfo) -> tuple[str, ...]:
    if member.name.startswith("/"):
        raise UnsafeArchiveError(f"{member.name}: absolute path")
    parts = _parts(member.name)
    if ".." in parts:
        raise UnsafeArchiveError(f"{member.name}: path leaves the tree (..)")
    if not parts:
        raise UnsafeArchiveError(f"{member.name!r}: names the tree itself")
    return parts


def _check_hard_link(member: tarfile.TarInfo, kinds: dict[tuple[str, ...], tarfile.TarInfo]
                     ) -> None:
    """A hard link is written as a copy, so it must name a file already in the tree."""
    target = kinds.get(_parts(member.linkname)) if not member.linkname.startswith("/") else None
    if target is None or not target.isreg():
        raise UnsafeArchiveError(f"{member.name}: hard link to {member.linkname}, which is not "
                                 "a file earlier in the archive")


def _check_symlink(member: tarfile.TarInfo) -> None:
    if not member.linkname or member.linkname.startswith("/"):
        raise UnsafeArchiveError(f"{member.name}: links to the absolute path "
                                 f"{member.linkname!r}")
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(member.name),
                                                 member.linkname))
    if resolved == ".." or resolved.startswith("../"):
        raise UnsafeArchiveError(f"{member.name}: links outside the tree (to {member.linkname})")


def _write_file(tar: tarfile.TarFile, member: tarfile.TarInfo, target: Path) -> None:
    source = tar.extractfile(member)
    if source is None:  # only for members that are no regular file, which this is not
        raise UnsafeArchiveError(f"{member.name}: has no content to read")
    target.parent.mkdir(parents=True, exist_ok=True)
    with source, target.open("xb") as out:
        shutil.copyfileobj(source, out)
    target.chmod(_file_mode(member))


def _file_mode(member: tarfile.TarInfo) -> int:
    """What git itself keeps of a mode: executable by its owner or not."""
    return 0o755 if member.mode & 0o100 else 0o644


def _parts(name: str) -> tuple[str, ...]:
    return PurePosixPath(name).parts


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


# Linux gives up on a path after 40 links (ELOOP); a longer chain is a loop in all but name.
MAX_LINK_HOPS = 40


class TreeError(Exception):
    """A path of a source tree cannot be read, or a link in it loops or leads outside it; the
    message names the path."""


class LeavesTree(TreeError):
    """A path climbs above the root by its own `..`, not through a link."""


@dataclass(frozen=True)
class TreeEntry:
    kind: Literal["file", "dir", "link", "other"]  # other: a fifo, device, socket or submodule
    size: int = 0


class SourceTree(Protocol):
    """A repository's files by path from its root ("a/b.yaml"); links are not followed."""

    def entry(self, rel: str) -> TreeEntry | None: ...

    def read(self, rel: str) -> bytes: ...

    def link_target(self, rel: str) -> str: ...

    def names(self, rel: str) -> list[str]: ...

    def copy_file(self, rel: str, target: Path) -> None: ...


class WorkTree:
    """The files on disk under `root`, as they are now (uncommitted changes included)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def entry(self, rel: str) -> TreeEntry | None:
        try:
            mode = os.lstat(self.root / rel)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as err:
            raise TreeError(f"{rel}: cannot be read ({err.strerror})") from err
        if stat.S_ISLNK(mode.st_mode):
            return TreeEntry("link")
        if stat.S_ISDIR(mode.st_mode):
            return TreeEntry("dir")
        return TreeEntry("file", mode.st_size) if stat.S_ISREG(mode.st_mode) else \
            TreeEntry("other")

    def read(self, rel: str) -> bytes:
        return self._guard(rel, (self.root / rel).read_bytes)

    def link_target(self, rel: str) -> str:
        return self._guard(rel, lambda: os.readlink(self.root / rel))

    def names(self, rel: str) -> list[str]:
        return self._guard(rel, lambda: sorted(os.listdir(self.root / rel)))

    def copy_file(self, rel: str, target: Path) -> None:
        self._guard(rel, lambda: shutil.copyfile(self.root / rel, target))

    @staticmethod
    def _guard(rel: str, read: Callable[[], _T]) -> _T:
        try:
            return read()
        except OSError as err:
            raise TreeError(f"{rel}: cannot be read ({err.strerror})") from err


def resolve(tree: SourceTree, rel: str) -> str:
    """`rel` with every link on it followed, as the real path it names from the root.

    A link to an absolute path, or whose `..` climbs above the root, or a chain of more than
    MAX_LINK_HOPS links, is a TreeError naming the link; `rel` climbing out by itself is
    LeavesTree. A missing path resolves to itself: the reader reports it, with its context.
    A NUL byte names no file anywhere, and is a TreeError too.
    """
    if "\0" in rel:
        raise TreeError("holds a NUL byte, which no file name can")
    pending: list[tuple[str, str | None]] = [(part, None) for part in _split(rel)]
    done: list[str] = []
    hops = 0
    while pending:
        name, via = pending.pop(0)
        if name == "..":
            if not done:
                if via is None:
                    raise LeavesTree(f"{rel}: leaves the repository")
                raise TreeError(f"{via}: links outside the repository "
                                f"(to {tree.link_target(via)})")
            done.pop()
            continue
        path = "/".join([*done, name])
        entry = tree.entry(path)
        if entry is None or entry.kind != "link":
            done.append(name)
            continue
        hops += 1
        if hops > MAX_LINK_HOPS:
            raise TreeError(f"{path}: more than {MAX_LINK_HOPS} links in a row (a loop)")
        target = tree.link_target(path)
        if target.startswith("/"):
            raise TreeError(f"{path}: links to the absolute path {target!r}")
        pending[:0] = [(part, path) for part in _split(target)]
    return "/".join(done) or "."


def copy_part(tree: SourceTree, paths: Iterable[str], dest: Path) -> frozenset[str]:
    """Write each of `paths` (real paths, as `resolve` gives them) under `dest`, a folder with
    all it holds. A link is written where it is, as a relative link to its real target, and
    that target is copied too, so the copy reads as the source does; a link leading out of the
    tree is a TreeError naming it. Returns every path written (folders, files and links)."""
    written: set[str] = set()
    pending = list(paths)
    while pending:
        rel = pending.pop()
        if not any(above in written for above in _self_and_above(rel)):
            pending += _copy_entry(tree, rel, dest, written)
    return frozenset(written)


def _copy_entry(tree: SourceTree, rel: str, dest: Path, written: set[str]) -> list[str]:
    """Copy `rel` (a folder with all beneath it); return the real targets of links met."""
    if rel in written:
        return []
    written.add(rel)
    entry = tree.entry(rel)
    target = dest / rel
    if entry is None or entry.kind == "other":
        return []
    if entry.kind == "dir":
        target.mkdir(parents=True, exist_ok=True)
        found: list[str] = []
        for name in tree.names(rel):
            if name != ".git":  # a work tree's repository, never part of the tree
                found += _copy_entry(tree, _join(rel, name), dest, written)
        return found
    target.parent.mkdir(parents=True, exist_ok=True)
    if entry.kind == "file":
        tree.copy_file(rel, target)
        return []
    real = resolve(tree, rel)
    target.symlink_to(posixpath.relpath(real, posixpath.dirname(rel) or "."))
    return [real]


def _split(rel: str) -> list[str]:
    return [part for part in rel.split("/") if part not in ("", ".")]


def _join(rel: str, name: str) -> str:
    return name if rel == "." else f"{rel}/{name}"


def _self_and_above(rel: str) -> list[str]:
    parts = _split(rel)
    return [".", *("/".join(parts[:depth]) for depth in range(1, len(parts) + 1))]
