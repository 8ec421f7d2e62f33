# -*- coding: utf-8 -*-
"""The module against the real kube-vip output kept in tests/fixtures/kube-vip/ (written by
scripts/kube_vip_fixtures.py from the built binaries): runs from a clone, with nothing built.

Per pinned tag: every fixture file, byte for byte (or the refusal its case names); every option the
module maps is refused with a sentence when the tag's binary lacks the flag; the differential test's
command lines number at least 200 and use every mapped flag the tag has.
"""

import json
import os

import pytest

import kube_vip_cases
import kube_vip_oracle
from ansible_collections.vipadm.kubeadm.plugins.module_utils import _kube_vip

TAGS = kube_vip_oracle.pinned_tags()
MAPPED = [name for name in _kube_vip.OPTIONS if name not in ("kind", "version")]


def fixture_flags(tag):
    path = os.path.join(kube_vip_oracle.FIXTURES, tag, "flags.json")
    assert os.path.exists(path), "no fixtures for kube-vip %s: run scripts/kube_vip_fixtures.py %s" % (tag, tag)
    with open(path) as handle:
        return json.load(handle)


def fixture_commands(tag):
    """[(file name, argv)] from the tag's commands.txt."""
    with open(os.path.join(kube_vip_oracle.FIXTURES, tag, "commands.txt")) as handle:
        lines = [line.rstrip("\n").split(": ", 1) for line in handle]
    return [(name, kube_vip_cases.argv_of(command)) for name, command in lines]


def fixture_bytes(tag, name):
    with open(os.path.join(kube_vip_oracle.FIXTURES, tag, name), "rb") as handle:
        return handle.read()


def sample_value(flag):
    """The value the case tables give ``flag`` first (True for a boolean flag)."""
    tables = [dict(pairs) for pairs in list(kube_vip_cases.MODES.values()) + list(kube_vip_cases.ROLES.values())]
    for changes in tables + [variation[1] for variation in kube_vip_cases.VARIATIONS]:
        if changes.get(flag) not in (None, ""):
            return changes[flag]
    raise AssertionError("kube_vip_cases.VARIATIONS never sets %s: add a variation for it" % flag)


@pytest.mark.parametrize("tag", TAGS)
def test_fixture_files_are_the_named_cases_of_the_tag(tag):
    wanted = [(case.name + kube_vip_oracle.STDOUT, case.argv) for case in kube_vip_cases.fixture_cases(tag, fixture_flags(tag))]
    assert fixture_commands(tag) == wanted, "the fixtures of %s are stale: run scripts/kube_vip_fixtures.py" % tag
    listed = {name for name, _argv in wanted} | {"commands.txt", "flags.json"}
    assert set(os.listdir(os.path.join(kube_vip_oracle.FIXTURES, tag))) == listed


@pytest.mark.parametrize("tag", TAGS)
def test_module_prints_each_fixture_byte_for_byte(tag):
    version = kube_vip_cases.version_of(tag)
    found = []
    for name, argv in fixture_commands(tag):
        reason = kube_vip_cases.refusal(argv[1], kube_vip_cases.pairs_of(argv[2:]), version)
        problem = kube_vip_cases.difference(tag, argv, reason, 0, fixture_bytes(tag, name))
        if problem:
            found.append("%s: %s" % (name, problem))
    assert not found, "\n".join(found)


@pytest.mark.parametrize("tag", TAGS)
def test_options_whose_flag_the_tag_lacks_are_refused_with_a_sentence(tag):
    flags = set(fixture_flags(tag)["daemonset"])
    for name in MAPPED:
        flag = _kube_vip.OPTIONS[name][0]
        argv = ["manifest", "daemonset", "--interface", "eth0", "--arp", "--controlplane", "--address",
                kube_vip_cases.ADDRESS]
        value = sample_value(flag)
        argv += [flag] if value is True else [flag, value]
        options = kube_vip_cases.kube_vip_manifest.kube_vip_options(kube_vip_cases.module_params(argv, tag))
        if flag in flags or name == "image":
            # accepted (image before v1.0.1: test_image_before_the_flag_existed...)
            _kube_vip.render(options, require_usable=False)
            continue
        with pytest.raises(_kube_vip.KubeVipOptionError, match=flag) as refused:
            _kube_vip.render(options, require_usable=False)
            pytest.fail("kube-vip %s has no %s, yet the module takes %s" % (tag, flag, name))
        message = str(refused.value)
        assert flag in message and tag in message and message.endswith("."), message


@pytest.mark.parametrize("tag", [tag for tag in TAGS if kube_vip_cases.version_of(tag) < (1, 0, 1)])
def test_image_before_the_flag_existed_changes_only_the_image_line(tag):
    """A departure on purpose: kube-vip before v1.0.1 has no --image; the module takes `image` and
    prints that version's manifest with only the image reference changed."""
    assert "--image" not in fixture_flags(tag)["pod"]
    name, argv = fixture_commands(tag)[[n for n, _a in fixture_commands(tag)].index("arp-controlplane-services" + kube_vip_oracle.STDOUT)]
    printed = fixture_bytes(tag, name).decode("utf-8")
    image = "registry.example.com/kube-vip/kube-vip"
    options = kube_vip_cases.kube_vip_manifest.kube_vip_options(dict(kube_vip_cases.module_params(argv, tag), image=image))
    line = "    image: %s:%s\n"
    assert printed.count(line % ("ghcr.io/kube-vip/kube-vip", tag)) == 1
    assert _kube_vip.render(options) == printed.replace(line % ("ghcr.io/kube-vip/kube-vip", tag), line % (image, tag))


@pytest.mark.parametrize("tag", TAGS)
def test_the_differential_test_has_200_command_lines_using_every_flag_the_tag_has(tag):
    flags = fixture_flags(tag)
    cases = kube_vip_cases.cases(tag, flags)
    assert len(cases) >= 200
    used = {word for case in cases for word in case.argv if word.startswith("--")}
    mapped_flags = {_kube_vip.OPTIONS[name][0] for name in MAPPED}
    assert mapped_flags & set(flags["daemonset"]) <= used
    for case in cases:
        words = {word for word in case.argv[2:] if word.startswith("--")}
        assert words <= set(flags.get(case.argv[1], ())), "%s uses a flag %s lacks" % (case.name, tag)
