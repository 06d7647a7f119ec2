"""Read what an image is from a Dockerfile, so that a Dockerfile stays the one definition of an
image that Plinth also builds without Docker: the final stage's runtime settings (ENV, USER,
ENTRYPOINT, CMD, EXPOSE, LABEL, WORKDIR, with ARG defaults substituted) and the packages of a
`pip install ... -c requirements.lock PACKAGES` step.
"""
from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from plinth.oci.image import RuntimeConfig


class DockerfileError(Exception):
    """The Dockerfile lacks what the builder reads from it; the message names the file."""


@dataclass
class Stage:
    base: str
    args: dict[str, str] = field(default_factory=dict)
    instructions: list[tuple[str, str]] = field(default_factory=list)


def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", "\n".join(line for line in text.splitlines()
                                             if not line.lstrip().startswith("#")))
    out = []
    for line in joined.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def stages(path: Path) -> list[Stage]:
    result: list[Stage] = []
    global_args: dict[str, str] = {}
    for word, rest in _instructions(path.read_text()):
        if word == "FROM":
            result.append(Stage(base=rest))
        elif word == "ARG":
            name, _, default = rest.partition("=")
            (result[-1].args if result else global_args)[name] = default
        elif result:
            result[-1].instructions.append((word, rest))
    if not result:
        raise DockerfileError(f"{path}: no FROM")
    return result


def _substitute(value: str, args: dict[str, str]) -> str:
    return re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), value)


def _pairs(rest: str, args: dict[str, str]) -> list[tuple[str, str]]:
    return [(k, _substitute(v, args)) for k, _, v in
            (word.partition("=") for word in shlex.split(rest))]


def runtime_config(path: Path, build_args: dict[str, str]) -> RuntimeConfig:
    """The final stage's runtime settings, as `docker build --build-arg` would set them."""
    final = stages(path)[-1]
    args = {**final.args, **build_args}
    env: dict[str, str] = {}
    labels: dict[str, str] = {}
    user = workdir = ""
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    ports: list[str] = []
    for word, rest in final.instructions:
        if word == "ENV":
            env.update(_pairs(rest, {**args, **env}))
        elif word == "LABEL":
            labels.update(_pairs(rest, args))
        elif word == "USER":
            user = _substitute(rest, args)
        elif word == "WORKDIR":
            workdir = _substitute(rest, args)
        elif word == "EXPOSE":
            ports += [p if "/" in p else f"{p}/tcp" for p in rest.split()]
        elif word in ("ENTRYPOINT", "CMD"):
            try:
                value = tuple(json.loads(rest))
            except ValueError:
                raise DockerfileError(f"{path}: {word} must be in JSON (exec) form") from None
            entrypoint, cmd = (value, cmd) if word == "ENTRYPOINT" else (entrypoint, value)
    if not entrypoint:
        raise DockerfileError(f"{path}: the final stage has no ENTRYPOINT")
    return RuntimeConfig(entrypoint=entrypoint, cmd=cmd, user=user,
                         env=tuple(f"{k}={v}" for k, v in env.items()), workdir=workdir,
                         exposed_ports=tuple(ports), labels=labels)


def pip_packages(path: Path, constraints: str = "requirements.lock") -> list[str]:
    """The packages of the first `pip install ... -c <constraints> PKG...` step of any stage."""
    for stage in stages(path):
        for word, rest in stage.instructions:
            if word != "RUN" or f"-c {constraints}" not in rest:
                continue
            command = rest.split("&&")[0].split()
            tail = command[command.index(constraints) + 1:]
            return [w for w in tail if not w.startswith("-")]
    raise DockerfileError(f"{path}: no `pip install ... -c {constraints} PACKAGES` step")
