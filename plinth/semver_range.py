"""Semver constraints as Flux and Helm write them, over the `semver` library's versions.

Supported: comparators (`=`, `!=`, `>`, `>=`, `<`, `<=`), caret (`^1.2`), tilde (`~1.2.3`),
wildcards (`1.2.x`, `1.*`, `*`), hyphen ranges (`1.2 - 1.4`), AND by space or comma, OR by `||`.
A leading `v` on tags is accepted.

Pre-releases follow Masterminds/semver (what Flux uses): an `||` alternative admits them only
when one of its versions carries a pre-release (`>=1.0.0-0`, `~1.1.0-rc.1`), and then for all of
its comparators; `>=1.0.0` never picks `2.0.0-rc.1`.
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
class Alternative:
    """Comparators that must all hold: one side of `||`."""

    comparators: tuple[Comparator, ...]
    prereleases: bool  # one of its versions, as written, carries a pre-release

    def allows(self, version: semver.Version) -> bool:
        if version.prerelease and not self.prereleases:
            return False
        return all(c(version) for c in self.comparators)


@dataclass(frozen=True)
class Constraint:
    text: str
    alternatives: tuple[Alternative, ...]

    def allows(self, version: semver.Version) -> bool:
        return any(alternative.allows(version) for alternative in self.alternatives)

    def best(self, tags: Iterable[str]) -> str | None:
        """The tag of the highest version allowed (build metadata does not order)."""
        allowed = [(v, t) for t in tags if (v := parse_version(t)) is not None and self.allows(v)]
        return max(allowed, key=lambda vt: (vt[0].replace(build=None), vt[1]))[1] \
            if allowed else None


@dataclass(frozen=True)
class _Term:
    """One version as the constraint writes it: `>=1.2`, `~1.2.3-rc.1`, `1.x`."""

    op: str
    parts: tuple[int | None, int | None, int | None]  # None where a wildcard or nothing stands
    pre: str | None


def parse_constraint(text: str) -> Constraint:
    alternatives = []
    for alternative in text.split("||"):
        tokens = _tokens(alternative)
        if not tokens:
            raise ConstraintError(f"semver constraint {text!r}: empty alternative")
        comparators: list[Comparator] = []
        terms: list[_Term] = []
        i = 0
        while i < len(tokens):
            if i + 2 < len(tokens) and tokens[i + 1] == "-":
                low, high = _term(tokens[i], text), _term(tokens[i + 2], text)
                comparators += _lower(low) + _upper_inclusive(high)
                terms += [low, high]
                i += 3
                continue
            term = _term(tokens[i], text)
            comparators += _comparators(term, text)
            terms.append(term)
            i += 1
        alternatives.append(Alternative(tuple(comparators),
                                        prereleases=any(t.pre is not None for t in terms)))
    return Constraint(text, tuple(alternatives))


def _tokens(text: str) -> list[str]:
    text = re.sub(r"(>=|<=|!=|>|<|=|\^|~)\s+", r"\1", text.replace(",", " "))
    return text.split()


def _term(token: str, whole: str) -> _Term:
    op_match = re.match(r"^(>=|<=|!=|>|<|=|\^|~)?(.*)$", token)
    assert op_match is not None
    match = _PARTIAL.match(op_match.group(2))
    if not match:
        raise ConstraintError(f"semver constraint {whole!r}: cannot parse {token!r}")
    major, minor, patch = (None if p is None or p in "xX*" else int(p)
                           for p in match.groups()[:3])
    return _Term(op_match.group(1) or "", (major, minor, patch), match.group(4))


def _version(term: _Term) -> semver.Version:
    major, minor, patch = (p or 0 for p in term.parts)
    return semver.Version(major, minor, patch, prerelease=term.pre)


def _before(major: int, minor: int, patch: int) -> Comparator:
    """Below this release and its pre-releases (`-0` is the lowest of them): where `~`, `^` and
    wildcards stop, as Masterminds/semver compares major and minor there, not whole versions."""
    return Comparator("<", semver.Version(major, minor, patch, prerelease="0"))


def _lower(term: _Term) -> list[Comparator]:
    return [Comparator(">=", _version(term))]


def _upper_inclusive(term: _Term) -> list[Comparator]:
    major, minor, patch = term.parts
    if minor is None:
        return [_before((major or 0) + 1, 0, 0)]
    if patch is None:
        return [_before(major or 0, minor + 1, 0)]
    return [Comparator("<=", _version(term))]


def _comparators(term: _Term, whole: str) -> list[Comparator]:
    major, minor, patch = term.parts
    if major is None:
        return [Comparator(">=", semver.Version(0, 0, 0))]
    base = _version(term)
    if term.op == "^":
        if major or minor is None:
            upper = _before(major + 1, 0, 0)
        elif minor or patch is None:  # `^0.0` is 0.0.x, as in Masterminds
            upper = _before(0, minor + 1, 0)
        else:
            upper = _before(0, 0, patch + 1)
        return [Comparator(">=", base), upper]
    if term.op == "~" or (term.op in ("", "=") and None in term.parts):
        upper = _before(major + 1, 0, 0) if minor is None else _before(major, minor + 1, 0)
        return [Comparator(">=", base), upper]
    if None in term.parts:
        raise ConstraintError(f"semver constraint {whole!r}: wildcard with {term.op!r}")
    return [Comparator(term.op or "=", base)]
