"""Rendering hostile input: refused in one line naming the file and the cause, with kustomize's
memory and time bounded for whatever the pre-flight lets through."""
from __future__ import annotations

import base64
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from plinth import kustomize_refs, render as render_module
from plinth.cli import cli
from plinth.render import RenderError, render
from tests.gitops_repos import commit_all, configmap, kustomization, write_tree

pytestmark = pytest.mark.usefixtures("kustomize")


def alias_bomb(levels: int = 9, width: int = 9) -> str:
    """A "billion laughs": each anchor is a list of `width` aliases of the one before."""
    lines = ["apiVersion: v1", "kind: ConfigMap", "metadata: {name: bomb}", "data:",
             "  l0: &l0 lol"]
    lines += [f"  l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]"
              for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


SELF_REFERENCE = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: loop}\ndata: &d\n  me: *d\n"


def overlay(tmp_path: Path, files: dict[str, object]) -> Path:
    return write_tree(tmp_path / "repo", {"o/kustomization.yaml": kustomization("cm.yaml"),
                                          **files}) / "o"


def render_error(path: Path) -> str:
    with pytest.raises(RenderError) as err:
        render(path, repo_root=path.parent)
    message = str(err.value)
    assert "\n" not in message and "goroutine" not in message
    return message


def test_an_alias_bomb_is_refused_naming_its_file(tmp_path: Path) -> None:
    message = render_error(overlay(tmp_path, {"o/cm.yaml": alias_bomb()}))
    assert message == ("o/cm.yaml: YAML aliases expand it by more than 100000 nodes "
                       "(an alias bomb)")


def test_a_self_referential_alias_is_refused_naming_its_file(tmp_path: Path) -> None:
    message = render_error(overlay(tmp_path, {"o/cm.yaml": SELF_REFERENCE}))
    assert message == ("o/cm.yaml: YAML alias *d lies inside the node it refers to "
                       "(a self-referential document)")


def test_an_alias_bomb_in_a_base_or_an_inline_patch_is_refused(tmp_path: Path) -> None:
    base = overlay(tmp_path / "base", {"o/kustomization.yaml": kustomization("../b"),
                                       "b/kustomization.yaml": kustomization("bomb.yaml"),
                                       "b/bomb.yaml": alias_bomb()})
    assert render_error(base).startswith("b/bomb.yaml: YAML aliases expand it")
    inline = overlay(tmp_path / "inline", {
        "o/kustomization.yaml": kustomization("cm.yaml", patches=[{"patch": alias_bomb()}]),
        "o/cm.yaml": configmap("bomb", {"k": "v"})})
    assert render_error(inline).startswith(
        "o/kustomization.yaml: patches[0].patch: YAML aliases expand it")


def test_aliases_that_reuse_a_block_render_as_kustomize_expands_them(tmp_path: Path) -> None:
    text = ("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: shared\n"
            "  labels: &team {team: web, tier: front}\n  annotations: *team\n")
    (cm,) = render(overlay(tmp_path, {"o/cm.yaml": text}), repo_root=tmp_path / "repo").objects
    assert cm["metadata"]["labels"] == cm["metadata"]["annotations"] == {"team": "web",
                                                                         "tier": "front"}


def test_nesting_beyond_any_real_object_is_refused_in_a_kustomization(tmp_path: Path) -> None:
    deep = "resources: " + "[" * 100_000 + "]" * 100_000 + "\n"
    message = render_error(overlay(tmp_path, {"o/kustomization.yaml": deep}))
    assert message == "o/kustomization.yaml: YAML nested more than 200 levels deep"


def test_a_bomb_the_preflight_lets_through_ends_in_one_line_within_the_memory_bound(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kustomize_refs, "MAX_ALIAS_NODES", 10**18)
    monkeypatch.setattr(render_module, "KUSTOMIZE_MEMORY_BYTES", 256 << 20)
    message = render_error(overlay(tmp_path, {"o/cm.yaml": alias_bomb()}))
    # Where the allocation fails decides the dump's first line: a fatal error, or a signal.
    assert re.match(r"o: kustomize (ran out of memory \(its limit is 256 MiB\) and crashed: "
                    r"(fatal error|SIG[A-Z]+): |crashed: SIG[A-Z]+: .*, within its memory "
                    r"limit of 256 MiB$)", message), message


GO_STACK = ("\n\ngoroutine 1 gp=0xc000002380 m=0 mp=0x1347 [running]:\n"
            "runtime.throw({0xc87916?, 0x7ffc96f3e5d0?})\n\truntime/panic.go:1229 +0x48\n")


@pytest.mark.parametrize(("stderr", "said"), [
    ("fatal error: runtime: out of memory\n\nruntime stack:\nruntime.throw({0xc7f730?})" +
     GO_STACK, "kustomize ran out of memory (its limit is 256 MiB) and crashed: fatal error: "
               "runtime: out of memory"),
    ("runtime: out of memory: cannot allocate 4194304-byte block\nSIGSEGV: segmentation "
     "violation\nPC=0x7ffc96f3e5d0 m=3 sigcode=1 addr=0x0" + GO_STACK,
     "kustomize ran out of memory (its limit is 256 MiB) and crashed: SIGSEGV: segmentation "
     "violation"),
    ("SIGSEGV: segmentation violation\nPC=0x7ffc96f3e5d0 m=3 sigcode=1 addr=0x0" + GO_STACK,
     "kustomize crashed: SIGSEGV: segmentation violation, within its memory limit of 256 MiB"),
    ("panic: runtime error: index out of range [1] with length 1" + GO_STACK,
     "kustomize crashed: panic: runtime error: index out of range [1] with length 1"),
    ("Error: accumulating resources:\n  accumulation err='missing'\n",
     "kustomize: Error: accumulating resources: accumulation err='missing'"),
])
def test_kustomize_failures_are_said_in_one_line_without_stacks(stderr: str, said: str) -> None:
    assert render_module._failure(2, stderr, Path("/tmp/t"), 256 << 20) == said



def test_a_lower_memory_limit_already_in_place_stays(tmp_path: Path) -> None:
    """A container's lower hard limit is kept, not raised to ours (which would fail)."""
    path = overlay(tmp_path, {"o/cm.yaml": alias_bomb()})
    program = ("import sys; from pathlib import Path; from plinth import kustomize_refs\n"
               "from plinth.render import RenderError, render\n"
               "kustomize_refs.MAX_ALIAS_NODES = 10**18\n"
               "try:\n    render(Path(sys.argv[1]), repo_root=Path(sys.argv[1]).parent)\n"
               "except RenderError as err:\n    print(err)\n")
    limit = 384 << 20
    proc = subprocess.run(["prlimit", f"--data={limit}:{limit}", sys.executable, "-c", program,
                           str(path)], capture_output=True, text=True, timeout=120)
    # Where the allocation fails decides the dump: a fatal error, or a signal it faults on.
    assert re.match(r"o: kustomize (ran out of memory \(its limit is 384 MiB\) and crashed: "
                    r"fatal error: |crashed: SIG[A-Z]+: .*, within its memory limit of 384 MiB$)",
                    proc.stdout), proc.stdout + proc.stderr


def fake_kustomize(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, script: str) -> None:
    """A stand-in for kustomize where the real one cannot be made to fail on cue."""
    tools = tmp_path / "tools"
    tools.mkdir()
    (tools / "kustomize").write_text(f"#!/bin/sh\n{script}\n")
    (tools / "kustomize").chmod(0o755)
    monkeypatch.setenv("PLINTH_TOOLS_BIN", str(tools))


def test_a_kustomize_that_never_ends_is_stopped_at_the_time_bound(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = overlay(tmp_path, {"o/cm.yaml": configmap("c", {"k": "v"})})
    fake_kustomize(tmp_path, monkeypatch, "exec sleep 600")
    monkeypatch.setattr(render_module, "KUSTOMIZE_SECONDS", 0.5)
    assert render_error(path) == "o: kustomize did not finish within 0.5 s and was stopped"


def test_a_killed_kustomize_is_said_so(tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """As the pod's OOM killer does when the controller's memory limit is reached first."""
    path = overlay(tmp_path, {"o/cm.yaml": configmap("c", {"k": "v"})})
    fake_kustomize(tmp_path, monkeypatch, "kill -KILL $$")
    assert render_error(path) == "o: kustomize was killed by SIGKILL"


@pytest.mark.parametrize("name", ["kustomization.yaml", "cm.yaml"])
def test_a_file_that_is_not_utf8_is_refused_by_the_cli_naming_it(name: str,
                                                                  tmp_path: Path) -> None:
    path = overlay(tmp_path, {"o/cm.yaml": configmap("c", {"k": "v"})})
    text = (path / name).read_text()
    (path / name).write_bytes(text.replace("v", "caf\xe9").replace("cm.yaml", "cm.yaml # \xe9")
                              .encode("latin-1"))
    commit_all(path.parent, "latin-1")
    result = CliRunner().invoke(cli, ["render", str(path)])
    assert result.exit_code == 2
    assert f"error: o/{name}: not UTF-8 (byte 0xe9 at offset " in result.stderr
    assert "Traceback" not in result.output and len(result.stderr.strip().splitlines()) == 1


def test_binary_files_for_a_generator_are_no_yaml_and_render(tmp_path: Path) -> None:
    path = overlay(tmp_path, {"o/kustomization.yaml": kustomization(
        configMapGenerator=[{"name": "blob", "files": ["logo.bin"]}])})
    (path / "logo.bin").write_bytes(b"\x89PNG\xff\xfe")
    (cm,) = render(path, repo_root=path.parent).objects
    assert cm["binaryData"] == {"logo.bin": base64.b64encode(b"\x89PNG\xff\xfe").decode()}


@pytest.mark.parametrize("target", ["/etc", "../../..", "../../sibling"])
def test_a_link_leaving_the_repository_is_refused_naming_it(target: str,
                                                           tmp_path: Path) -> None:
    path = overlay(tmp_path, {"o/cm.yaml": configmap("c", {"k": "v"})})
    (path / "escape").symlink_to(target)
    message = render_error(path)
    assert message.startswith("o/escape: links ")
    assert target in message


def test_a_link_loop_is_refused_naming_a_link(tmp_path: Path) -> None:
    path = overlay(tmp_path, {"o/cm.yaml": configmap("c", {"k": "v"})})
    (path / "a").symlink_to("b")
    (path / "b").symlink_to("a")
    assert render_error(path).endswith("more than 40 links in a row (a loop)")


def test_links_inside_the_repository_render(tmp_path: Path) -> None:
    repo = write_tree(tmp_path / "repo", {
        "o/kustomization.yaml": kustomization("base"),
        "shared/base/kustomization.yaml": kustomization("cm.yaml"),
        "shared/base/cm.yaml": configmap("from-shared", {"k": "v"})})
    (repo / "o" / "base").symlink_to("../shared/base")
    (repo / "elsewhere").mkdir()
    (repo / "elsewhere" / "passwd").symlink_to("/etc/passwd")  # never reached, never read
    (cm,) = render(repo / "o", repo_root=repo).objects
    assert cm["metadata"]["name"] == "from-shared"
