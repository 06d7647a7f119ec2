"""Rewrite image fields marked with setter comments, keeping every other byte of the file.

A marker is a trailing comment naming an ImagePolicy, as in Flux:
    image: registry/app:1.0.0 # {"$imagepolicy": "plinth-system:app"}        whole reference
    newTag: 1.0.0 # {"$imagepolicy": "plinth-system:app:tag"}                tag only
    newName: registry/app # {"$imagepolicy": "plinth-system:app:name"}       name only
    digest: sha256:... # {"$imagepolicy": "plinth-system:app:digest"}        digest only
As in Flux, the marked field holds just what its marker names: a `:tag` field is set to the tag.

The field is the one scalar value on the marker's line, wherever it sits: a mapping value, a
sequence item (`- app:1.0`), inside a flow collection (`[app:1.0]`, `{image: app:1.0}`), plain
or quoted. The YAML scanner finds it, so a `#` inside a string or a block scalar is never taken
for a marker. A line with no value or more than one value, or a file that is not YAML, is left
alone. Only the scalar's own span is rewritten, in its own quoting style: a YAML round trip
would reflow files people wrote.
"""
from __future__ import annotations

import bisect
import re
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

from plinth.yaml_scalars import render_scalar

_MARKER = re.compile(r'#[ \t]*\{"\$imagepolicy":[ \t]*"(?P<ref>[^"]+)"\}')
_BLANK_BEFORE_MARKER = re.compile(r'[ \t]+(?=#[ \t]*\{"\$imagepolicy":)')
_DECORATIONS = (yaml.AnchorToken, yaml.TagToken)


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
    changes = []
    pieces = []
    done = 0
    for scalar, ref in _marked_scalars(text):
        namespace, _, rest = ref.partition(":")
        policy, _, part = rest.partition(":")
        image = images.get(f"{namespace}:{policy}")
        new = _field(image, part) if image is not None else None
        if new is None or new == scalar.value:
            continue
        start, end = scalar.start_mark.index, scalar.end_mark.index
        pieces += [text[done:start], render_scalar(new, scalar.style)]
        done = end
        changes.append(Change(file, scalar.start_mark.line + 1, f"{namespace}:{policy}",
                              scalar.value, new))
    return "".join(pieces) + text[done:], changes


def _marked_scalars(text: str) -> Iterator[tuple[yaml.ScalarToken, str]]:
    """Each marked scalar, in file order, with the policy reference of its marker."""
    if '"$imagepolicy"' not in text:
        return
    tokens = _tokens(text)
    if tokens is None:
        return
    starts = [token.start_mark.index for token in tokens]
    for marker in _MARKER.finditer(text):
        before = bisect.bisect_left(starts, marker.start())  # tokens[:before] start before it
        if before and _is_comment_after(text, tokens[before - 1], marker.start()):
            values = _values_ending_on_the_line_of(tokens, before - 1)
            if len(values) == 1 and values[0].start_mark.line == values[0].end_mark.line:
                yield values[0], marker.group("ref")


def _tokens(text: str) -> list[yaml.Token] | None:
    """The file's tokens in order, or None when it is not YAML."""
    # PyYAML refuses a tab before a comment, which YAML allows; a space in its place keeps
    # every index, and such a tab can only sit outside scalars or inside one no marker names.
    text = _BLANK_BEFORE_MARKER.sub(lambda m: " " * len(m.group()), text)
    try:
        # The scanner alone would take an unclosed `[` or a misplaced `- ` for YAML.
        deque(yaml.parse(text, Loader=yaml.SafeLoader), maxlen=0)
        return list(yaml.scan(text, Loader=yaml.SafeLoader))
    except yaml.YAMLError:
        return None


def _is_comment_after(text: str, last: yaml.Token, position: int) -> bool:
    """The `#` at `position` is outside every token, the first comment on the line of `last`."""
    gap = text[last.end_mark.index:position]
    return gap != "" and gap.strip(" \t") == ""


def _values_ending_on_the_line_of(tokens: list[yaml.Token], last: int) -> list[yaml.ScalarToken]:
    line = tokens[last].end_mark.line
    values = []
    index = last
    while index >= 0 and tokens[index].end_mark.line == line:
        token = tokens[index]
        if isinstance(token, yaml.ScalarToken) and not _is_key(tokens, index):
            values.append(token)
        index -= 1
    return values


def _is_key(tokens: list[yaml.Token], index: int) -> bool:
    index -= 1
    while index >= 0 and isinstance(tokens[index], _DECORATIONS):
        index -= 1
    return index >= 0 and isinstance(tokens[index], yaml.KeyToken)


def update_tree(root: Path, path: str, images: dict[str, Image]) -> list[Change]:
    """Rewrite the YAML files under `root/path` in place; never follows a path out of root."""
    base = (root / path).resolve()
    if base != root.resolve() and root.resolve() not in base.parents:
        raise ValueError(f"update path {path!r} leaves the repository")
    changes = []
    for file in sorted(p for p in base.rglob("*") if p.suffix in (".yaml", ".yml")):
        if file.is_symlink() or not file.is_file():
            continue
        text = file.read_bytes().decode()  # not read_text: CRLF line endings stay as they are
        new, found = apply(text, images, file.relative_to(root).as_posix())
        if found:
            file.write_bytes(new.encode())
            changes.extend(found)
    return changes
