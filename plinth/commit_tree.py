"""A SourceTree over one git commit: `plinth render --rev` reads the tree kustomize needs from
git objects, never from the work tree."""
from __future__ import annotations

import os
import posixpath
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import git

from plinth.tree_archive import TreeEntry, TreeError

_T = TypeVar("_T")
_LINK_MODE = 0o120000


class CommitTree:
    """The tree of one commit, read object by object as asked: what is never asked for is never
    read, however large, and may even be missing from the repository."""

    def __init__(self, commit: git.Commit) -> None:
        self._commit = commit
        self._listings: dict[str, dict[str, git.Tree | git.Blob | git.Submodule] | None] = {}

    def entry(self, rel: str) -> TreeEntry | None:
        item = self._item(rel)
        if isinstance(item, git.Tree):
            return TreeEntry("dir")
        if isinstance(item, git.Blob):
            if item.mode & 0o170000 == _LINK_MODE:
                return TreeEntry("link")
            return TreeEntry("file", self._guard(rel, item, lambda: item.size))
        return None if item is None else TreeEntry("other")

    def read(self, rel: str) -> bytes:
        blob = self._blob(rel)
        data: bytes = self._guard(rel, blob, lambda: blob.data_stream.read())
        return data

    def link_target(self, rel: str) -> str:
        return os.fsdecode(self.read(rel))

    def names(self, rel: str) -> list[str]:
        return sorted(self._listing(rel) or {})

    def copy_file(self, rel: str, target: Path) -> None:
        blob = self._blob(rel)
        with target.open("xb") as out:
            self._guard(rel, blob, lambda: shutil.copyfileobj(blob.data_stream, out))

    def _blob(self, rel: str) -> git.Blob:
        item = self._item(rel)
        if not isinstance(item, git.Blob):
            raise TreeError(f"{rel}: not a file")
        return item

    def _item(self, rel: str) -> git.Tree | git.Blob | git.Submodule | None:
        if rel == ".":
            return self._commit.tree
        parent, name = posixpath.split(rel)
        return (self._listing(parent or ".") or {}).get(name)

    def _listing(self, rel: str) -> dict[str, git.Tree | git.Blob | git.Submodule] | None:
        if rel not in self._listings:
            tree = self._item(rel)
            self._listings[rel] = {item.name: item for item in self._guard(
                rel, tree, lambda: list(tree))} if isinstance(tree, git.Tree) else None
        return self._listings[rel]

    @staticmethod
    def _guard(rel: str, item: git.Object, read: Callable[[], _T]) -> _T:
        """git reports a missing or corrupt object as ValueError (GitPython's cat-file reader)
        or as a failed git command."""
        try:
            return read()
        except (ValueError, OSError, git.GitError) as err:
            raise TreeError(f"{rel}: git cannot read its object {item.hexsha} "
                            "(missing or corrupt in this repository)") from err
