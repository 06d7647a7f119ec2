#!/usr/bin/env python3
"""Write a wrapper Go module that builds a tool whose own go.mod uses local `replace`s.

`go install pkg@version` refuses modules with replace directives (pulumi, etcd, kubernetes all
have them). A wrapper module of ours requires the tool's module, turns every local replace of a
sibling module into a replace by the published sibling at a pinned version, and repeats the
non-local replaces and the `godebug` lines (both act only in the main module, so a tool built
through a wrapper would otherwise lose them: Gitea needs `x509negativeserial=1`). Maintainers
run this to (re)pin a tool; `scripts/setup` only builds from the committed go.mod/go.sum, so the
module hashes stay pinned even without the checksum database.

    python3 scripts/gowrap.py scripts/toolchain/etcd go.etcd.io/etcd/server/v3@v3.5.24 \
        --sibling go.etcd.io/etcd/client/v2=v2.305.24 --sibling go.etcd.io/etcd/=v3.5.24 \
        --main go.etcd.io/etcd/server/v3
    python3 scripts/gowrap.py scripts/toolchain/gitea code.gitea.io/gitea@v1.26.0 \
        --main code.gitea.io/gitea --tags sqlite,sqlite_unlock_notify --go 1.26.2
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
from pathlib import Path


def go(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    return subprocess.run(
        ["go", *args], cwd=cwd, env=env, check=True, text=True, stdout=subprocess.PIPE
    ).stdout


def sibling_version(path: str, rules: list[tuple[str, str]]) -> str | None:
    """The longest matching prefix rule wins, so a special case can sit beside a family rule."""
    matches = [(prefix, version) for prefix, version in rules if path.startswith(prefix)]
    return max(matches, key=lambda m: len(m[0]))[1] if matches else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir", type=Path)
    parser.add_argument("module", help="module@version of the tool")
    parser.add_argument("--sibling", action="append", default=[], help="PREFIX=VERSION")
    parser.add_argument("--require", action="append", default=[], help="extra module@version")
    parser.add_argument("--main", action="append", required=True, help="main package(s) to build")
    parser.add_argument("--go", default="1.24", help="go directive of the wrapper")
    parser.add_argument("--tags", default="",
                        help="build tags, as in toolchain.toml: go.sum must pin what they import")
    args = parser.parse_args()

    env = {**os.environ, "GOFLAGS": "-mod=mod", "GOSUMDB": "off", "GOTOOLCHAIN": "local"}
    module, version = args.module.split("@")
    rules = [tuple(rule.split("=", 1)) for rule in args.sibling]
    info = json.loads(go("mod", "download", "-json", args.module, env=env))
    upstream = json.loads(go("mod", "edit", "-json", info["GoMod"], env=env))

    args.dir.mkdir(parents=True, exist_ok=True)
    for stale in ("go.mod", "go.sum"):
        (args.dir / stale).unlink(missing_ok=True)
    name = "plinth.dev/toolchain/" + args.dir.name
    go("mod", "init", name, cwd=args.dir, env=env)
    edits = [f"-go={args.go}", f"-require={args.module}"]
    edits += [f"-require={extra}" for extra in args.require]
    for replace in upstream.get("Replace") or []:
        old, new = replace["Old"], replace["New"]
        old_spec = old["Path"] + ("@" + old["Version"] if old.get("Version") else "")
        if new["Path"].startswith("."):
            pinned = sibling_version(old["Path"], rules)
            if pinned is None:  # e.g. etcd's guard `go.etcd.io/etcd => ./FORBIDDEN_DEPENDENCY`
                print(f"gowrap: no sibling rule, not repeated: {old_spec} => {new['Path']}")
                continue
            edits.append(f"-replace={old['Path']}={old['Path']}@{pinned}")
        else:
            edits.append(f"-replace={old_spec}={new['Path']}@{new['Version']}")
    for godebug in upstream.get("GoDebug") or []:
        edits.append(f"-godebug={godebug['Key']}={godebug['Value']}")
    go("mod", "edit", *edits, cwd=args.dir, env=env)
    for main_pkg in args.main:
        # -trimpath as scripts/setup builds: the compiled packages land in the build cache for it
        go("build", "-trimpath", "-tags", args.tags, "-o", os.devnull, main_pkg, cwd=args.dir,
           env=env)
    print(f"gowrap: wrote {args.dir}/go.mod and go.sum for {module} {version}")


if __name__ == "__main__":
    main()
