# -*- coding: utf-8 -*-
"""The real kube-vip as test oracle: find a tag's binary in the lab builder's cache, ask it which
flags it has, and run ``kube-vip manifest ...`` with nothing in its environment.

Used by test_kube_vip_differential.py (live, when the binaries are cached) and by
scripts/kube_vip_fixtures.py (which writes tests/fixtures/kube-vip/). Never builds anything.
"""

import json
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
FIXTURES = os.path.join(REPO, "tests", "fixtures", "kube-vip")
STDOUT = ".stdout"  # suffix of a fixture file: kube-vip's stdout, not YAML for linters to judge
if REPO not in sys.path:
    sys.path.insert(0, REPO)

# kube-vip reads its settings from the environment too (ParseEnvironment: env beats flags), so the
# binary runs with an environment that holds nothing but a HOME it cannot write to.
ORACLE_ENV = {"HOME": "/nonexistent"}
_FLAG_RE = re.compile(r"^\s+(?:-\w, )?(--[A-Za-z0-9-]+)")


def pinned_tags():
    """The kube-vip tags the lab pins (lab/components/pins.json), oldest first."""
    with open(os.path.join(REPO, "lab", "components", "pins.json")) as handle:
        return list(json.load(handle)["kube_vip"])


def cached_binary(tag):
    """``(path, None)`` of the cached kube-vip of ``tag``, or ``(None, reason)``.

    The builder's own cache entry when its key can be worked out here (Go and the tag's source are
    present); otherwise the newest complete cache entry of that tag (a clone without the sources but
    with the cache).
    """
    from lab.components import build

    builder = build.Builder(log=lambda line: None)
    result = builder.kube_vip(tag, build=False)
    if result is not None and result.binary("kube-vip").is_file():
        return result.binary("kube-vip"), None
    return None, ("kube-vip %s is not in the builder's cache %s: run `python -m lab build --kube-vip all` "
                  "(make test does) to build it" % (tag, builder.cache))


def run(binary, argv, timeout=60):
    """``(returncode, stdout bytes, stderr text)`` of ``binary argv...`` in the oracle environment."""
    result = subprocess.run([str(binary)] + list(argv), env=ORACLE_ENV, cwd="/", stdin=subprocess.DEVNULL,
                            capture_output=True, timeout=timeout)
    return result.returncode, result.stdout, result.stderr.decode("utf-8", "replace")


def run_all(binary, argvs, workers=None):
    """``run`` for each argv, in parallel threads; results in the order of ``argvs``."""
    workers = workers or max(4, 2 * (os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda argv: run(binary, argv), argvs))


def flags_of(binary):
    """``{kind: [flags]}``: the long flags ``kube-vip manifest <kind> --help`` lists (own and global)."""
    flags = {}
    for kind in ("pod", "daemonset", "rbac"):
        code, out, err = run(binary, ["manifest", kind, "--help"])
        text = out.decode("utf-8", "replace") + err
        usage = text.partition("\nUsage:\n")[2]
        if code != 0 or not usage.lstrip().startswith("kube-vip manifest %s " % kind):
            continue  # this tag has no such subcommand (cobra printed the help of `manifest`)
        found = {match.group(1) for match in map(_FLAG_RE.match, usage.splitlines()) if match}
        found.discard("--help")
        flags[kind] = sorted(found)
    return flags
