"""Unpack a tar of a source tree (what `git archive` writes) into a directory, refusing anything
a plain tree of files cannot hold.

`TarFile.extractall(filter="data")` does this from Python 3.11.4 on, but the controller image
runs Debian bookworm's 3.11.2, where `filter` does not exist and tarfile trusts an archive
fully. So tarfile only reads here: every member is checked before anything is written, files
and folders are written by this module, and symbolic links come last, when each is checked
again against the real tree (a chain of links can escape where every single one looks inside).
"""
from __future__ import annotations

import os
import posixpath
import shutil
import tarfile
from pathlib import Path, PurePosixPath

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

