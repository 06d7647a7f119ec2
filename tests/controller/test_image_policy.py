"""Tag choice by policy, Flux's ImagePolicy semantics: examples plus properties (hypothesis)."""
from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sync_controller.image_policy import Policy, PolicyError

TAGS = ["1.0.0", "v1.2.0", "1.10.0", "1.10.1-rc.1", "2.0.0-alpha", "1.9.9+build.5", "latest",
        "main-3f2a9c1-41", "main-77aa001-7", "main-abc0000-100", "sha-deadbee"]


@pytest.mark.parametrize(("spec", "chosen"), [
    ({"policy": {"semver": {"range": ">=1.0.0"}}}, "1.10.0"),
    ({"policy": {"semver": {"range": ">=1.0.0-0"}}}, "2.0.0-alpha"),
    ({"policy": {"semver": {"range": "~1.10.0-0"}}}, "1.10.1-rc.1"),
    ({"policy": {"semver": {"range": "^1.0.0-0"}}}, "1.10.1-rc.1"),
    ({"policy": {"semver": {"range": "<1.10.0"}}}, "1.9.9+build.5"),
    ({"policy": {"semver": {"range": "1.2.x"}}}, "v1.2.0"),
    ({"policy": {"semver": {"range": ">=3.0.0"}}}, None),
    ({"policy": {"numerical": {"order": "asc"}},
      "filterTags": {"pattern": r"^main-[a-f0-9]+-(?P<build>\d+)$", "extract": "$build"}},
     "main-abc0000-100"),
    ({"policy": {"numerical": {"order": "desc"}},
      "filterTags": {"pattern": r"^main-[a-f0-9]+-(?P<build>\d+)$", "extract": "$build"}},
     "main-77aa001-7"),
    ({"policy": {"alphabetical": {}}, "filterTags": {"pattern": r"^main-.*"}},
     "main-abc0000-100"),
    ({"policy": {"alphabetical": {"order": "desc"}}}, "1.0.0"),
])
def test_policy_chooses(spec: dict[str, object], chosen: str | None) -> None:
    assert Policy.from_spec(spec).latest(TAGS) == chosen


@pytest.mark.parametrize(("spec", "field"), [
    ({}, "spec.policy"),
    ({"policy": {"semver": {"range": ">=one"}}}, "spec.policy.semver.range"),
    ({"policy": {"numerical": {"order": "up"}}}, "spec.policy.numerical.order"),
    ({"policy": {"alphabetical": {}}, "filterTags": {"pattern": "("}}, "spec.filterTags.pattern"),
    ({"policy": {"numerical": {}}, "filterTags": {"pattern": r"(?P<n>\d+)", "extract": "$build"}},
     "spec.filterTags.extract"),
])
def test_invalid_policy_names_the_field(spec: dict[str, object], field: str) -> None:
    with pytest.raises(PolicyError, match=field.replace(".", r"\.")):
        Policy.from_spec(spec)


versions = st.tuples(st.integers(0, 30), st.integers(0, 30), st.integers(0, 30))


@given(st.lists(versions, min_size=1, max_size=30, unique=True), st.booleans(), st.randoms())
def test_semver_picks_the_highest_whatever_the_order(
        triples: list[tuple[int, int, int]], prefixed: bool, rnd: random.Random) -> None:
    tags = [("v" if prefixed else "") + ".".join(map(str, t)) for t in triples]
    rnd.shuffle(tags)
    chosen = Policy.from_spec({"policy": {"semver": {"range": "*"}}}).latest(tags)
    assert chosen == ("v" if prefixed else "") + ".".join(map(str, max(triples)))


@given(st.lists(st.integers(0, 10**9), min_size=1, max_size=30, unique=True))
def test_numerical_orders_by_value_not_text(numbers: list[int]) -> None:
    tags = [f"build-{n}" for n in numbers]
    spec = {"filterTags": {"pattern": r"^build-(?P<n>\d+)$", "extract": "$n"}}
    highest = Policy.from_spec({**spec, "policy": {"numerical": {"order": "asc"}}})
    lowest = Policy.from_spec({**spec, "policy": {"numerical": {"order": "desc"}}})
    assert highest.latest(tags) == f"build-{max(numbers)}"
    assert lowest.latest(tags) == f"build-{min(numbers)}"


@given(st.lists(st.text("abcdefghij0123456789-.", min_size=1, max_size=12), min_size=1,
                max_size=30))
def test_alphabetical_is_plain_string_order(tags: list[str]) -> None:
    assert Policy.from_spec({"policy": {"alphabetical": {}}}).latest(tags) == max(tags)


@given(st.lists(versions, min_size=1, max_size=10, unique=True), st.text("abc", max_size=3))
def test_a_range_without_a_prerelease_never_chooses_one(triples: list[tuple[int, int, int]],
                                                        suffix: str) -> None:
    releases = [".".join(map(str, t)) for t in triples]
    pre = [f"{r}-rc.{suffix or '1'}" for r in releases]
    chosen = Policy.from_spec({"policy": {"semver": {"range": ">=0.0.0"}}}).latest(pre + releases)
    assert chosen in releases


@given(st.lists(versions, min_size=1, max_size=10, unique=True), st.randoms())
def test_a_range_with_a_prerelease_chooses_the_highest_prerelease_too(
        triples: list[tuple[int, int, int]], rnd: random.Random) -> None:
    releases = [".".join(map(str, t)) for t in triples]
    tags = releases + [f"{r}-rc.1" for r in releases] + [f"{max(triples)[0] + 1}.0.0-alpha"]
    rnd.shuffle(tags)
    chosen = Policy.from_spec({"policy": {"semver": {"range": ">=0.0.0-0"}}}).latest(tags)
    assert chosen == f"{max(triples)[0] + 1}.0.0-alpha"
