"""Semver constraints pick the tag a Flux user would expect."""
from __future__ import annotations

import pytest

from plinth.semver_range import ConstraintError, parse_constraint

TAGS = ["v0.9.0", "1.0.0", "1.2.0", "1.2.5", "v1.3.0-rc.1", "1.10.0", "2.0.0", "2.1.0+build.7",
        "latest", "main-abc123"]


@pytest.mark.parametrize(("constraint", "best"), [
    (">=1.0.0 <2.0.0", "1.10.0"),
    (">=1.0.0, <2.0.0", "1.10.0"),
    ("^1.2", "1.10.0"),
    ("~1.2", "1.2.5"),
    ("~1.2.0", "1.2.5"),
    ("1.2.x", "1.2.5"),
    ("1.x", "1.10.0"),
    ("*", "2.1.0+build.7"),
    ("1.0 - 1.2", "1.2.5"),
    ("<1.0.0 || >=2.0.0 <2.1.0", "2.0.0"),
    ("=1.2.0", "1.2.0"),
    ("^0.9", "v0.9.0"),
    (">3.0.0", None),
])
def test_best_tag(constraint: str, best: str | None) -> None:
    assert parse_constraint(constraint).best(TAGS) == best


PRE_TAGS = ["1.0.0", "1.1.0", "1.1.1-rc.1", "1.2.0-alpha", "2.0.0-rc.1", "2.0.0-rc.2",
            "2.1.0-beta"]


@pytest.mark.parametrize(("constraint", "best"), [
    # no pre-release in the range: no pre-release chosen (Masterminds/semver, so Flux)
    (">=1.0.0", "1.1.0"),
    (">=1.2.5 <1.4.0", None),
    ("^1.0.0", "1.1.0"),
    ("1.x", "1.1.0"),
    ("*", "1.1.0"),
    # a pre-release in a comparator admits pre-releases for its whole `||` alternative
    (">=1.0.0-0", "2.1.0-beta"),
    ("~1.1.0-0", "1.1.1-rc.1"),
    ("^2.0.0-rc.1", "2.1.0-beta"),
    ("^1.0.0-0", "1.2.0-alpha"),
    (">=1.0.0-0 <2.0.0", "2.0.0-rc.2"),
    ("1.0.0 - 2.0.0-rc.1", "2.0.0-rc.1"),
    ("=2.0.0-rc.1", "2.0.0-rc.1"),
    ("^3.0.0 || ~1.1.0-0", "1.1.1-rc.1"),
    ("~2.0.0-rc.2 || ^1.0.0", "2.0.0-rc.2"),
])
def test_prereleases_only_where_the_range_names_one(constraint: str, best: str | None) -> None:
    assert parse_constraint(constraint).best(PRE_TAGS) == best


@pytest.mark.parametrize("bad", ["", ">=one", "^", "1.2.3.4", ">=1.x"])
def test_unparseable_constraint_is_an_error(bad: str) -> None:
    with pytest.raises(ConstraintError):
        parse_constraint(bad)


@pytest.mark.parametrize(("constraint", "best"), [
    ("^0", "0.9.9"), ("^0.x", "0.9.9"), ("^0.0", "0.0.9"), ("^0.0.x", "0.0.9"),
    ("^0.2", "0.2.7"), ("^0.2.3", "0.2.7"), ("^0.0.3", "0.0.3"),
])
def test_caret_on_zero_versions_as_masterminds_reads_it(constraint: str, best: str) -> None:
    tags = ["0.0.3", "0.0.9", "0.2.3", "0.2.7", "0.9.9", "1.0.0"]
    assert parse_constraint(constraint).best(tags) == best
