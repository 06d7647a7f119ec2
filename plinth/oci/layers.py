"""Image layers as reproducible tar.gz blobs: same files in, same bytes (and digests) out.

A layer is written in one pass: the tar stream is hashed for the layer's diff_id (what the
image config lists) and, once gzipped, for its digest (what the manifest lists and the registry
stores). Times are zero, names sorted, owners numeric; nothing of the machine that built it
(user names, build times) ends up in the image.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import stat
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

GZIP_LEVEL = 6  # the registry stores what we send: 9 costs twice the time for ~2% less


@dataclass(frozen=True)
class Layer:
    """A compressed layer blob on disk."""

    path: Path
    digest: str  # sha256 of the tar.gz
    diff_id: str  # sha256 of the uncompressed tar
    size: int

    def to_json(self) -> str:
        return json.dumps({"digest": self.digest, "diff_id": self.diff_id, "size": self.size})

    @classmethod
    def load(cls, path: Path, meta: str) -> Layer:
        doc = json.loads(meta)
        return cls(path, doc["digest"], doc["diff_id"], int(doc["size"]))


@dataclass(frozen=True)
class File:
    """One file of a layer given by content: `path` inside the image, without a leading /."""

    path: str
    data: bytes
    mode: int = 0o644
    uid: int = 0
    gid: int = 0


class _Hashing(io.RawIOBase):
    """A write-only stream that hashes what passes through to `target`."""

    def __init__(self, target: BinaryIO) -> None:
        self.target = target
        self.sha = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.sha.update(data)
        self.size += len(data)
        self.target.write(data)
        return len(data)


class _LayerWriter:
    """tar -> sha256 (diff_id) -> gzip (mtime 0, no name) -> sha256 (digest) -> file."""

    def __init__(self, dest: Path) -> None:
        self.dest = dest
        dest.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(dest, "wb")
        self._compressed = _Hashing(self._file)
        self._gzip = gzip.GzipFile(filename="", mode="wb", fileobj=self._compressed,
                                   compresslevel=GZIP_LEVEL, mtime=0)
        self._plain = _Hashing(self._gzip)  # type: ignore[arg-type]
        self.tar = tarfile.open(fileobj=self._plain, mode="w|", format=tarfile.GNU_FORMAT)

    def close(self) -> Layer:
        self.tar.close()
        self._gzip.close()
        self._file.close()
        return Layer(self.dest, f"sha256:{self._compressed.sha.hexdigest()}",
                     f"sha256:{self._plain.sha.hexdigest()}", self._compressed.size)


def _normal(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.mtime = 0
    info.uname = info.gname = ""
    return info


def _add_directory(tar: tarfile.TarFile, name: str) -> None:
    """A parent directory the layer names but has no file of: root's, 0755."""
    info = tarfile.TarInfo(name)
    info.type, info.mode = tarfile.DIRTYPE, 0o755
    tar.addfile(_normal(info))


def layer_from_files(files: Iterable[File], dest: Path) -> Layer:
    """A layer of the given files, with every parent directory (root-owned, 0755) first."""
    writer = _LayerWriter(dest)
    written: set[str] = set()
    for item in sorted(files, key=lambda f: f.path):
        parts = item.path.strip("/").split("/")
        for depth in range(1, len(parts)):
            directory = "/".join(parts[:depth])
            if directory not in written:
                _add_directory(writer.tar, directory)
                written.add(directory)
        info = tarfile.TarInfo("/".join(parts))
        info.size, info.mode, info.uid, info.gid = len(item.data), item.mode, item.uid, item.gid
        writer.tar.addfile(_normal(info), io.BytesIO(item.data))
    return writer.close()


def layer_from_tree(root: Path, dest: Path, prefix: str = "",
                    owner: tuple[int, int] | None = None) -> Layer:
    """A layer of everything under `root` (at `prefix` inside the image): modes, symlinks and
    hard links as they are; owners as on disk unless `owner` is given. Device nodes, fifos and
    sockets are left out: the container runtime provides /dev."""
    writer = _LayerWriter(dest)
    prefix = prefix.strip("/")
    if prefix:
        parts = prefix.split("/")
        for depth in range(1, len(parts) + 1):
            _add_directory(writer.tar, "/".join(parts[:depth]))
    for path in _walk(root):
        relative = path.relative_to(root).as_posix()
        name = f"{prefix}/{relative}" if prefix else relative
        mode = path.lstat().st_mode
        if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode) or stat.S_ISLNK(mode)):
            continue
        info = _normal(writer.tar.gettarinfo(str(path), arcname=name))
        if owner is not None:
            info.uid, info.gid = owner
        if info.isreg():
            with open(path, "rb") as data:
                writer.tar.addfile(info, data)
        else:
            writer.tar.addfile(info)
    return writer.close()


def _walk(root: Path) -> Iterable[Path]:
    """Every path under `root`, parents before children, names sorted (os.walk order is not)."""
    for directory, dirs, files in os.walk(root):
        dirs.sort()
        here = Path(directory)
        if here != root:
            yield here
        for name in sorted(files):
            yield here / name
        # symlinks to directories are listed in `dirs` (never walked into): they are links
        for name in [d for d in dirs if (here / d).is_symlink()]:
            dirs.remove(name)
            yield here / name
