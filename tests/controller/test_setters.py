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


WEB = "registry.local/plinth/web:1.4.0"


@pytest.mark.parametrize(("line", "rewritten"), [
    ('- nginx:1.0 # {"$imagepolicy": "plinth-system:web"}\n',
     f'- {WEB} # {{"$imagepolicy": "plinth-system:web"}}\n'),
    ("  - 'nginx:1.0'  # {\"$imagepolicy\": \"plinth-system:web\"}\n",
     f"  - '{WEB}'  # {{\"$imagepolicy\": \"plinth-system:web\"}}\n"),
    ('image: "nginx:1.0" # {"$imagepolicy": "plinth-system:web"} kept\n',
     f'image: "{WEB}" # {{"$imagepolicy": "plinth-system:web"}} kept\n'),
    ('images: [nginx:1.0] # {"$imagepolicy": "plinth-system:web"}\n',
     f'images: [{WEB}] # {{"$imagepolicy": "plinth-system:web"}}\n'),
    ('images: [ "nginx:1.0" ]\t# {"$imagepolicy": "plinth-system:web"}\n',
     f'images: [ "{WEB}" ]\t# {{"$imagepolicy": "plinth-system:web"}}\n'),
    ('container: {image: nginx:1.0} # {"$imagepolicy": "plinth-system:web"}\n',
     f'container: {{image: {WEB}}} # {{"$imagepolicy": "plinth-system:web"}}\n'),
    ('- {image: [nginx:1.0]} # {"$imagepolicy": "plinth-system:web"}\n',
     f'- {{image: [{WEB}]}} # {{"$imagepolicy": "plinth-system:web"}}\n'),
    ('- 1.0.0 # {"$imagepolicy": "plinth-system:web:tag"}\n',
     '- 1.4.0 # {"$imagepolicy": "plinth-system:web:tag"}\n'),
    ("tags: ['1.0.0'] # {\"$imagepolicy\": \"plinth-system:web:tag\"}\n",
     "tags: ['1.4.0'] # {\"$imagepolicy\": \"plinth-system:web:tag\"}\n"),
    ('- registry.old/web # {"$imagepolicy": "plinth-system:web:name"}\n',
     '- registry.local/plinth/web # {"$imagepolicy": "plinth-system:web:name"}\n'),
    ('names: {web: "registry.old/web"} # {"$imagepolicy": "plinth-system:web:name"}\n',
     'names: {web: "registry.local/plinth/web"} # {"$imagepolicy": "plinth-system:web:name"}\n'),
])
def test_the_marked_scalar_is_replaced_whole_in_any_position(line: str, rewritten: str) -> None:
    document = "# header\nfirst: keep # plain comment\n---\n{}---\nlast: keep\n"
    new, changes = apply(document.format(line), IMAGES)
    assert new == document.format(rewritten)
    assert [c.line for c in changes] == [4]


def test_sequence_item_in_a_deployment_keeps_every_other_byte() -> None:
    text = ("spec:\n  template:\n    spec:\n      initContainers:   # comment stays\n"
            '      - image: nginx:1.0    # {"$imagepolicy": "plinth-system:web"}\n'
            "        args:\n"
            '        - nginx:1.0 # {"$imagepolicy": "plinth-system:web"}\n'
            "        - --flag # nginx:1.0\n")
    new, changes = apply(text, IMAGES)
    assert new == text.replace("- image: nginx:1.0", f"- image: {WEB}").replace(
        "        - nginx:1.0", f"        - {WEB}")
    assert [(c.line, c.old, c.new) for c in changes] == [(5, "nginx:1.0", WEB),
                                                         (7, "nginx:1.0", WEB)]


@pytest.mark.parametrize("text", [
    # a marker inside a quoted string or a block scalar is text, not a comment
    "note: 'image: a:1 # {\"$imagepolicy\": \"plinth-system:web\"}'\n",
    'script: |\n  image: a:1 # {"$imagepolicy": "plinth-system:web"}\n',
    'script: | # {"$imagepolicy": "plinth-system:web"}\n  nginx:1.0\n',
    # no value on the line: the key is not the field
    'image: # {"$imagepolicy": "plinth-system:web"}\n  nginx:1.0\n',
    # two values on the line: which one is meant is not said, so neither changes
    'images: [busybox:1, nginx:1.0] # {"$imagepolicy": "plinth-system:web"}\n',
    '- {name: web, image: nginx:1.0} # {"$imagepolicy": "plinth-system:web"}\n',
    # a value that starts on an earlier line is not one a line comment can mark whole
    'image: "nginx:\n  1.0" # {"$imagepolicy": "plinth-system:web"}\n',
    'c: {a: "x\n  y", b: nginx:1.0} # {"$imagepolicy": "plinth-system:web"}\n',
    # a second marker inside the comment of another is part of that comment
    'image: a:1 # note # {"$imagepolicy": "plinth-system:web"}\n',
    # not YAML at all: left as it is
    'image: [nginx:1.0 # {"$imagepolicy": "plinth-system:web"}\n',
])
def test_markers_that_name_no_single_value_change_nothing(text: str) -> None:
    assert apply(text, IMAGES) == (text, [])


def test_a_tag_that_would_read_as_a_number_is_quoted() -> None:
    images = {"plinth-system:web": Image("registry.local/plinth/web", "1.10")}
    text = 'newTag: 1.9 # {"$imagepolicy": "plinth-system:web:tag"}\n'
    new, changes = apply(text, images)
    assert new == 'newTag: "1.10" # {"$imagepolicy": "plinth-system:web:tag"}\n'
    assert [(c.old, c.new) for c in changes] == [("1.9", "1.10")]


def test_update_tree_keeps_crlf_line_endings(tmp_path: Path) -> None:
    text = ('images:\r\n  - name: plinth/web\r\n'
            '    newTag: 1.0.0 # {"$imagepolicy": "plinth-system:web:tag"}\r\n')
    (tmp_path / "kustomization.yaml").write_bytes(text.encode())
    assert len(update_tree(tmp_path, ".", IMAGES)) == 1
    assert (tmp_path / "kustomization.yaml").read_bytes() == text.replace(
        "1.0.0", "1.4.0").encode()
