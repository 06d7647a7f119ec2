"""`scripts/main-job` itself, with the real Pulumi on a one-file program in its place: the
tracked stack file stays as committed (the machine's encryption salt lives in .plinth/), a
second run changes nothing, a config edit reaches the program, destroy runs the same way, and
the project's `plugins:` leave no "from $PATH" warning."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import git
import yaml

from tests.fixtures.servers import PulumiBackend, require_tools

ROOT = Path(__file__).resolve().parents[1]


def test_main_job_leaves_the_checkout_clean(pulumi_backend: PulumiBackend,
                                            tmp_path: Path) -> None:
    require_tools("pulumi", "pulumi-language-python")
    project = tmp_path / "project"
    (project / "scripts").mkdir(parents=True)
    (project / "stacks").mkdir()
    shutil.copy(ROOT / "scripts" / "main-job", project / "scripts" / "main-job")
    ours = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    (project / "Pulumi.yaml").write_text(yaml.safe_dump({**ours, "name": "tiny"}))
    (project / "__main__.py").write_text(
        "import pulumi\n"
        "pulumi.export('colour', pulumi.Config().get('colour'))\n"
        "pulumi.export('token', pulumi.Output.secret('s3cret'))\n")
    (project / "stacks" / "Pulumi.local.yaml").write_text("config:\n  tiny:colour: blue\n")
    (project / ".gitignore").write_text(".plinth/\n.venv\n.tools\n")
    for link in (".venv", ".tools"):
        (project / link).symlink_to(ROOT / link)
    repo = git.Repo.init(project, initial_branch="main")
    repo.git.add(A=True)
    repo.index.commit("tiny project")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULUMI_")}
    env["PULUMI_HOME"] = str(pulumi_backend.home)

    def main_job(*args: str) -> str:
        proc = subprocess.run(["bash", str(project / "scripts" / "main-job"), *args], env=env,
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "from $PATH" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
        assert repo.git.status("--porcelain") == "", repo.git.status()
        return proc.stdout

    assert "colour: \"blue\"" in main_job()
    assert "1 unchanged" in main_job()
    assert (project / ".plinth" / "encryptionsalt").read_text().startswith("encryptionsalt: ")
    stack_file = project / "stacks" / "Pulumi.local.yaml"
    stack_file.write_text("config:\n  tiny:colour: green\n")
    repo.index.add(["stacks/Pulumi.local.yaml"])
    repo.index.commit("green")
    assert '"blue" => "green"' in main_job()
    assert "deleted" in main_job("destroy")
