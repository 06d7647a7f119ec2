"""Choose an image tag by policy, as Flux's ImagePolicy does: filter tags by a pattern (with an
optional named `extract`), then order what is left by semver, alphabet or number.

Pure functions over a list of tags; the registry scan that produces the list is elsewhere.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from plinth.semver_range import ConstraintError, parse_constraint, parse_version


class PolicyError(ValueError):
    """The policy spec is invalid; the message names the field."""


@dataclass(frozen=True)
class TagFilter:
    pattern: re.Pattern[str]
    extract: str  # e.g. "$build"; "" keeps the whole tag

    def key(self, tag: str) -> str | None:
        """The value a tag is ordered by, or None when the tag does not match."""
        match = self.pattern.fullmatch(tag)
        if match is None:
            return None
        if not self.extract:
            return tag
        return re.sub(r"\$(\w+)|\$\{(\w+)\}",
                      lambda m: match.group(m.group(1) or m.group(2)) or "", self.extract)


@dataclass(frozen=True)
class Policy:
    kind: Literal["semver", "alphabetical", "numerical"]
    range: str = ""  # pre-releases only when the range names one, as in Flux
    highest: bool = True  # alphabetical/numerical: order asc (Flux default) picks the last
    filter: TagFilter | None = None

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> Policy:
        policy = spec.get("policy") or {}
        tag_filter = None
        filter_spec = spec.get("filterTags")
        if filter_spec:
            try:
                pattern = re.compile(filter_spec.get("pattern") or ".*")
            except re.error as err:
                raise PolicyError(f"spec.filterTags.pattern: {err}") from None
            extract = filter_spec.get("extract") or ""
            for name in re.findall(r"\$(\w+)|\$\{(\w+)\}", extract):
                group = name[0] or name[1]
                if group not in pattern.groupindex:
                    raise PolicyError(f"spec.filterTags.extract: the pattern has no group "
                                      f"named {group!r}")
            tag_filter = TagFilter(pattern, extract)
        if "semver" in policy:
            semver_spec = policy["semver"] or {}
            rng = str(semver_spec.get("range") or "")
            try:
                parse_constraint(rng)
            except ConstraintError as err:
                raise PolicyError(f"spec.policy.semver.range: {err}") from None
            return cls("semver", rng, filter=tag_filter)
        for kind in ("alphabetical", "numerical"):
            if kind in policy:
                order = (policy[kind] or {}).get("order", "asc")
                if order not in ("asc", "desc"):
                    raise PolicyError(f"spec.policy.{kind}.order: {order!r} is not asc or desc")
                # Flux: `asc` picks the last in ascending order (the highest).
                return cls(kind, highest=order == "asc", filter=tag_filter)
        raise PolicyError("spec.policy: one of semver, alphabetical or numerical is required")

    def latest(self, tags: list[str]) -> str | None:
        """The chosen tag, or None when no tag qualifies."""
        keyed = [(tag, self.filter.key(tag) if self.filter else tag) for tag in tags]
        candidates = [(tag, key) for tag, key in keyed if key is not None]
        if self.kind == "semver":
            return self._semver(candidates)
        if self.kind == "numerical":
            numbers = [(tag, number) for tag, key in candidates
                       if (number := _number(key)) is not None]
            if not numbers:
                return None
            pick = max if self.highest else min
            return pick(numbers, key=lambda pair: (pair[1], pair[0]))[0]
        if not candidates:
            return None
        pick = max if self.highest else min
        return pick(candidates, key=lambda pair: (pair[1], pair[0]))[0]

    def _semver(self, candidates: list[tuple[str, str]]) -> str | None:
        constraint = parse_constraint(self.range)
        best: tuple[Any, str] | None = None
        for tag, key in candidates:
            version = parse_version(key)
            if version is None or not constraint.allows(version):
                continue
            # equal precedence (build metadata): the lexically higher tag, so the choice is stable
            rank = (version, tag)
            if best is None or _semver_greater(rank, best):
                best = rank
        return best[1] if best else None


def _semver_greater(a: tuple[Any, str], b: tuple[Any, str]) -> bool:
    if a[0].compare(b[0]) != 0:
        return bool(a[0].compare(b[0]) > 0)
    return a[1] > b[1]


def _number(text: str) -> Decimal | None:
    try:
        number = Decimal(text)
    except InvalidOperation:
        return None
    return number if number.is_finite() else None
