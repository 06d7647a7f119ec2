"""Rewrite image fields marked with setter comments, keeping every other byte of the file.

A marker is a trailing comment naming an ImagePolicy, as in Flux:
    image: registry/app:1.0.0 # {"$imagepolicy": "plinth-system:app"}        whole reference
    newTag: 1.0.0 # {"$imagepolicy": "plinth-system:app:tag"}                tag only
    newName: registry/app # {"$imagepolicy": "plinth-system:app:name"}       name only
    digest: sha256:... # {"$imagepolicy": "plinth-system:app:digest"}        digest only
Line-based on purpose: a YAML round trip would reflow files people wrote.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_MARKED = re.compile(
    r'^(?P<head>[^#\n]*?:[ \t]*)(?P<value>"[^"\n]*"|\'[^\'\n]*\'|[^\s#]+)'
    r'(?P<gap>[ \t]+)(?P<marker>#[ \t]*\{"\$imagepolicy":[ \t]*"(?P<ref>[^"]+)"\})(?P<tail>.*)$')


@dataclass(frozen=True)
class Image:
    """What a policy chose: `name:tag`, or `name@digest` when the policy pins digests."""

    name: str
    tag: str
    digest: str | None = None

    def reference(self) -> str:
        return f"{self.name}@{self.digest}" if self.digest else f"{self.name}:{self.tag}"


@dataclass(frozen=True)
class Change:
    file: str
    line: int
    policy: str
    old: str
    new: str


def _field(image: Image, part: str) -> str | None:
    return {"": image.reference(), "tag": image.tag, "name": image.name,
            "digest": image.digest}.get(part)


def apply(text: str, images: dict[str, Image], file: str = "") -> tuple[str, list[Change]]:
    """`images` maps "<namespace>:<policy>" to its choice; unknown policies are left alone."""
    lines = text.splitlines(keepends=True)
    changes = []
    for number, line in enumerate(lines):
        body = line.rstrip("\r\n")
        match = _MARKED.match(body)
        if match is None:
            continue
        namespace, _, rest = match.group("ref").partition(":")
        policy, _, part = rest.partition(":")
        image = images.get(f"{namespace}:{policy}")
        new = _field(image, part) if image is not None else None
        if new is None:
            continue
        raw = match.group("value")
        quote = raw[0] if raw[0] in "\"'" else ""
        old = raw[1:-1] if quote else raw
        if old == new:
            continue
        ending = line[len(body):]
        lines[number] = (f"{match.group('head')}{quote}{new}{quote}{match.group('gap')}"
                         f"{match.group('marker')}{match.group('tail')}{ending}")
        changes.append(Change(file, number + 1, f"{namespace}:{policy}", old, new))
    return "".join(lines), changes


def update_tree(root: Path, path: str, images: dict[str, Image]) -> list[Change]:
    """Rewrite the YAML files under `root/path` in place; never follows a path out of root."""
    base = (root / path).resolve()
    if base != root.resolve() and root.resolve() not in base.parents:
        raise ValueError(f"update path {path!r} leaves the repository")
    changes = []
    for file in sorted(p for p in base.rglob("*") if p.suffix in (".yaml", ".yml")):
        if file.is_symlink() or not file.is_file():
            continue
        text = file.read_text()
        new, found = apply(text, images, file.relative_to(root).as_posix())
        if found:
            file.write_text(new)
            changes.extend(found)
    return changes
