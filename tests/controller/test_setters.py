"""Setter markers: only marked fields change, every other byte and comment stays."""
from __future__ import annotations

from pathlib import Path

import pytest

from plinth.repospec import AppSpec, EnvironmentSpec, RepoSpec
from plinth.scaffold import render_template
from sync_controller.setters import Image, apply, update_tree

IMAGES = {"plinth-system:web": Image("registry.local/plinth/web", "1.4.0"),
          "plinth-system:api": Image("registry.local/plinth/api", "2.1.0", "sha256:" + "a" * 64)}

KUSTOMIZATION = """\
# Dev overlay: tags follow the policies.
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
images:
  - name: plinth/web
    newName: registry.local/plinth/web  # {"$imagepolicy": "plinth-system:web:name"}
    newTag: "1.0.0" # {"$imagepolicy": "plinth-system:web:tag"}   keep this note
  - name: plinth/other
    newTag: 0.1.0 # {"$imagepolicy": "plinth-system:unknown:tag"}
  - name: plinth/plain
    newTag: 0.2.0 # a comment, not a marker
"""


def test_only_marked_fields_change_and_formatting_stays() -> None:
    new, changes = apply(KUSTOMIZATION, IMAGES, "apps/overlays/dev/kustomization.yaml")
    expected = KUSTOMIZATION.replace('newTag: "1.0.0"', 'newTag: "1.4.0"')
    assert new == expected
    assert [(c.line, c.old, c.new) for c in changes] == [(7, "1.0.0", "1.4.0")]


def test_whole_reference_digest_and_crlf() -> None:
    text = ('spec:\r\n  containers:\r\n    - name: api\r\n'
            "      image: 'registry.local/plinth/api:2.0.0' # {\"$imagepolicy\": "
            '"plinth-system:api"}\r\n')
    new, changes = apply(text, IMAGES)
    assert new == text.replace("registry.local/plinth/api:2.0.0",
                               "registry.local/plinth/api@sha256:" + "a" * 64)
    assert new.count("\r\n") == 4 and len(changes) == 1


def test_unchanged_value_is_no_change() -> None:
    text = 'newTag: 1.4.0 # {"$imagepolicy": "plinth-system:web:tag"}\n'
    assert apply(text, IMAGES) == (text, [])


def test_update_tree_stays_inside_the_repository(tmp_path: Path) -> None:
    overlay = tmp_path / "apps" / "overlays" / "dev"
    overlay.mkdir(parents=True)
    (overlay / "kustomization.yaml").write_text(KUSTOMIZATION)
    (overlay / "notes.txt").write_text('newTag: 1.0.0 # {"$imagepolicy": "plinth-system:web:tag"}\n')
    changes = update_tree(tmp_path, "apps", IMAGES)
    assert [c.file for c in changes] == ["apps/overlays/dev/kustomization.yaml"]
    assert "1.0.0" in (overlay / "notes.txt").read_text()
    with pytest.raises(ValueError, match="leaves the repository"):
        update_tree(tmp_path, "../elsewhere", IMAGES)


def test_scaffolded_overlay_markers_are_understood() -> None:
    spec = RepoSpec(cluster="c", environments=[EnvironmentSpec(name="dev")],
                    apps=[AppSpec(name="web", image="plinth/web", tag="1.0.0")])
    overlay = render_template(spec)["apps/overlays/dev/kustomization.yaml"].decode()
    new, changes = apply(overlay, IMAGES)
    assert [(c.policy, c.old, c.new) for c in changes] == [("plinth-system:web", "1.0.0", "1.4.0")]
    assert new.replace("1.4.0", "1.0.0") == overlay
