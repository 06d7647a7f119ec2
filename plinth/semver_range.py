"""Semver constraints as Flux and Helm write them, over the `semver` library's versions.

Supported: comparators (`=`, `!=`, `>`, `>=`, `<`, `<=`), caret (`^1.2`), tilde (`~1.2.3`),
wildcards (`1.2.x`, `1.*`, `*`), hyphen ranges (`1.2 - 1.4`), AND by space or comma, OR by `||`.
A leading `v` on tags is accepted. Pre-releases match only when asked for.
"""
from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import semver

_PARTIAL = re.compile(r"^v?(\d+|[xX*])(?:\.(\d+|[xX*]))?(?:\.(\d+|[xX*]))?(?:-([0-9A-Za-z.-]+))?$")
_OPS: dict[str, Callable[[semver.Version, semver.Version], bool]] = {
    "=": operator.eq, "!=": operator.ne, ">": operator.gt, ">=": operator.ge,
    "<": operator.lt, "<=": operator.le,
}


class ConstraintError(ValueError):
    """A constraint that cannot be parsed; the message quotes it."""


def parse_version(text: str) -> semver.Version | None:
    """`1.2.3`, `v1.2.3`, `1.2.3-rc.1+build`; None for anything else."""
    candidate = text[1:] if text[:1] in ("v", "V") else text
    try:
        return semver.Version.parse(candidate)
    except ValueError:
        return None


@dataclass(frozen=True)
class Comparator:
    op: str
    version: semver.Version

    def __call__(self, v: semver.Version) -> bool:
        return _OPS[self.op](v.replace(build=None), self.version)


@dataclass(frozen=True)
class Constraint:
    text: str
    alternatives: tuple[tuple[Comparator, ...], ...]

    def allows(self, version: semver.Version, *, prereleases: bool = False) -> bool:
        if version.prerelease and not prereleases:
            return False
        return any(all(c(version) for c in group) for group in self.alternatives)

    def best(self, tags: Iterable[str], *, prereleases: bool = False) -> str | None:
        """The tag of the highest version allowed (build metadata does not order)."""
        allowed = [(v, t) for t in tags if (v := parse_version(t)) is not None
                   and self.allows(v, prereleases=prereleases)]
        return max(allowed, key=lambda vt: (vt[0].replace(build=None), vt[1]))[1] \
            if allowed else None


def parse_constraint(text: str) -> Constraint:
    groups = []
    for alternative in text.split("||"):
        tokens = _tokens(alternative)
        if not tokens:
            raise ConstraintError(f"semver constraint {text!r}: empty alternative")
        comparators: list[Comparator] = []
        i = 0
        while i < len(tokens):
            if i + 2 < len(tokens) and tokens[i + 1] == "-":
                comparators += _lower(tokens[i], text) + _upper_inclusive(tokens[i + 2], text)
                i += 3
                continue
            comparators += _comparators(tokens[i], text)
            i += 1
        groups.append(tuple(comparators))
    return Constraint(text, tuple(groups))


def _tokens(text: str) -> list[str]:
    text = re.sub(r"(>=|<=|!=|>|<|=|\^|~)\s+", r"\1", text.replace(",", " "))
    return text.split()


def _partial(text: str, whole: str) -> tuple[list[int | None], str | None]:
    match = _PARTIAL.match(text)
    if not match:
        raise ConstraintError(f"semver constraint {whole!r}: cannot parse {text!r}")
    parts = [None if p is None or p in "xX*" else int(p) for p in match.groups()[:3]]
    return parts, match.group(4)


def _version(parts: list[int | None], pre: str | None = None) -> semver.Version:
    major, minor, patch = (p or 0 for p in parts)
    return semver.Version(major, minor, patch, prerelease=pre)


def _lower(text: str, whole: str) -> list[Comparator]:
    parts, pre = _partial(text, whole)
    return [Comparator(">=", _version(parts, pre))]


def _upper_inclusive(text: str, whole: str) -> list[Comparator]:
    parts, pre = _partial(text, whole)
    if parts[1] is None:
        return [Comparator("<", _version([(parts[0] or 0) + 1, 0, 0]))]
    if parts[2] is None:
        return [Comparator("<", _version([parts[0], (parts[1] or 0) + 1, 0]))]
    return [Comparator("<=", _version(parts, pre))]


def _comparators(token: str, whole: str) -> list[Comparator]:
    op_match = re.match(r"^(>=|<=|!=|>|<|=|\^|~)?(.*)$", token)
    assert op_match is not None
    op, rest = op_match.group(1) or "", op_match.group(2)
    if rest in ("*", "x", "X"):
        return [Comparator(">=", semver.Version(0, 0, 0))]
    parts, pre = _partial(rest, whole)
    major, minor, patch = parts
    base = _version(parts, pre)
    if op == "^":
        if major:
            upper = _version([major + 1, 0, 0])
        elif minor:
            upper = _version([0, minor + 1, 0])
        else:
            upper = _version([0, 0, (patch or 0) + 1]) if patch is not None else _version([1, 0, 0])
        return [Comparator(">=", base), Comparator("<", upper)]
    if op == "~" or (op in ("", "=") and None in parts):
        if major is None:
            return [Comparator(">=", semver.Version(0, 0, 0))]
        upper = _version([major + 1, 0, 0]) if minor is None else _version([major, minor + 1, 0])
        return [Comparator(">=", base), Comparator("<", upper)]
    if None in parts:
        raise ConstraintError(f"semver constraint {whole!r}: wildcard with {op!r}")
    return [Comparator(op or "=", base)]
