#!/usr/bin/env python3
"""Regenerate tests/fixtures/kube-vip/ from the real kube-vip binaries.

For every kube-vip tag pinned in lab/components/pins.json: take its binary from the lab builder
(built from ../shared/upstream/kube-vip, or from the cache), write
  <tag>/flags.json     the flags `kube-vip manifest pod|daemonset|rbac --help` lists,
  <tag>/<name>.stdout  the stdout of each named case (tests/unit/module_utils/kube_vip_cases.py:
                       the old reference command lines and the 18 kind x mode x role bases),
  <tag>/commands.txt   `<name>.stdout: kube-vip manifest ...`, the command line of each file.
The binary runs with an empty environment (HOME=/nonexistent): kube-vip's env vars beat its flags.

Usage: nice -n 19 .venv/bin/python scripts/kube_vip_fixtures.py [TAG...]
"""

import json
import os
import sys

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, "tests", "unit", "module_utils"))

import kube_vip_cases  # noqa: E402
import kube_vip_oracle  # noqa: E402
from lab.components import Builder, BuildError  # noqa: E402


def regenerate(tag, binary):
    directory = os.path.join(kube_vip_oracle.FIXTURES, tag)
    os.makedirs(directory, exist_ok=True)
    for name in os.listdir(directory):
        os.remove(os.path.join(directory, name))
    flags = kube_vip_oracle.flags_of(binary)
    with open(os.path.join(directory, "flags.json"), "w") as handle:
        json.dump(flags, handle, indent=1, sort_keys=True)
        handle.write("\n")
    chosen = kube_vip_cases.fixture_cases(tag, flags)
    lines = []
    for case, (code, out, err) in zip(chosen, kube_vip_oracle.run_all(binary, [c.argv for c in chosen])):
        if code != 0:
            raise SystemExit("kube-vip %s %s failed (rc %d): %s" % (tag, " ".join(case.argv), code, err.strip()))
        with open(os.path.join(directory, case.name + kube_vip_oracle.STDOUT), "wb") as handle:
            handle.write(out)
        lines.append("%s%s: %s\n" % (case.name, kube_vip_oracle.STDOUT, kube_vip_cases.command_line(case.argv)))
    with open(os.path.join(directory, "commands.txt"), "w") as handle:
        handle.writelines(lines)
    return len(chosen)


def main(argv):
    tags = argv or kube_vip_oracle.pinned_tags()
    builder = Builder()
    try:
        for tag in tags:
            binary = builder.kube_vip(tag).binary("kube-vip")
            print("%s: %d files" % (tag, regenerate(tag, binary)))
    except BuildError as error:
        print("kube_vip_fixtures: %s" % error, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
