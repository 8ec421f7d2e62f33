# -*- coding: utf-8 -*-
"""The module against the real kube-vip: for every pinned tag whose binary the lab builder has
cached, each command line of kube_vip_cases.cases() (at least 200 per tag) must give the module the
same bytes as the binary, or a refusal the case names (kube_vip_cases.REFUSALS). The fixtures of
the tag (tests/fixtures/kube-vip/<tag>/) must be what the binary prints today.

Skipped, tag by tag, with one sentence when the binary is not cached (`make test` builds them first).
"""

import json
import os

import pytest

import kube_vip_cases
import kube_vip_oracle

TAGS = kube_vip_oracle.pinned_tags()


def binary_of(tag):
    binary, reason = kube_vip_oracle.cached_binary(tag)
    if binary is None:
        pytest.skip(reason)
    return binary


@pytest.mark.parametrize("tag", TAGS)
def test_module_prints_what_the_real_kube_vip_prints(tag):
    binary = binary_of(tag)
    cases = kube_vip_cases.cases(tag, kube_vip_oracle.flags_of(binary))
    assert len(cases) >= 200
    outputs = kube_vip_oracle.run_all(binary, [case.argv for case in cases])
    found = []
    for case, (code, stdout, stderr) in zip(cases, outputs):
        problem = kube_vip_cases.difference(tag, case.argv, case.refusal, code, stdout, stderr)
        if problem:
            found.append("%s (%s): %s" % (case.name, kube_vip_cases.command_line(case.argv), problem))
    assert not found, "%d of %d command lines of kube-vip %s differ:\n%s" % (
        len(found), len(cases), tag, "\n".join(found[:8]))


@pytest.mark.parametrize("tag", TAGS)
def test_fixtures_are_what_the_real_kube_vip_prints(tag):
    binary = binary_of(tag)
    directory = os.path.join(kube_vip_oracle.FIXTURES, tag)
    rerun = "; run scripts/kube_vip_fixtures.py %s" % tag
    with open(os.path.join(directory, "flags.json")) as handle:
        assert json.load(handle) == kube_vip_oracle.flags_of(binary), "flags.json is stale" + rerun
    with open(os.path.join(directory, "commands.txt")) as handle:
        lines = [line.rstrip("\n").split(": ", 1) for line in handle]
    argvs = [kube_vip_cases.argv_of(command) for _name, command in lines]
    for (name, _command), (code, stdout, _stderr) in zip(lines, kube_vip_oracle.run_all(binary, argvs)):
        with open(os.path.join(directory, name), "rb") as handle:
            assert (code, handle.read()) == (0, stdout), "%s is stale%s" % (name, rerun)
