# -*- coding: utf-8 -*-
"""The go-yaml v2 layout: key order, quoting, sequences, folding."""

import os
import sys

import pytest
import yaml

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
sys.path.insert(0, os.path.join(REPO, ".collections"))

from ansible_collections.vipadm.kubeadm.plugins.module_utils._yaml_emit import dump, scalar, sorted_keys  # noqa: E402


@pytest.mark.parametrize("keys, expected", [
    (["status", "kind", "spec", "apiVersion", "metadata"], ["apiVersion", "kind", "metadata", "spec", "status"]),
    (["hostNetwork", "hostAliases"], ["hostAliases", "hostNetwork"]),
    (["imagePullPolicy", "image"], ["image", "imagePullPolicy"]),
    (["b", "B", "a", "A"], ["A", "B", "a", "b"]),           # uppercase before lowercase
    (["a10", "a2", "a1"], ["a1", "a2", "a10"]),             # digit runs by value
    (["ab", "a.b", "a"], ["a", "a.b", "ab"]),               # non-letter before letter, prefix first
    (["app.kubernetes.io/version", "app.kubernetes.io/name"],
     ["app.kubernetes.io/name", "app.kubernetes.io/version"]),
])
def test_natural_key_order(keys, expected):
    assert sorted_keys(dict.fromkeys(keys)) == expected


@pytest.mark.parametrize("value, text", [
    ("true", '"true"'), ("False", '"False"'), ("yes", '"yes"'), ("off", '"off"'), ("y", '"y"'), ("N", '"N"'),
    ("null", '"null"'), ("~", '"~"'), ("", '""'), ("6443", '"6443"'), ("-1", '"-1"'), ("0x1F", '"0x1F"'),
    ("1e3", '"1e3"'), ("3.14", '"3.14"'), (".5", '".5"'), (".inf", '".inf"'), ("1:20", '"1:20"'),
    ("2024-01-02", '"2024-01-02"'), ("1_000", '"1_000"'),
    ("eth0", "eth0"), ("192.168.0.40", "192.168.0.40"), (":2112", ":2112"), ("first", "first"),
    ("system:kube-vip-role", "system:kube-vip-role"), ("a:b::false,c", "a:b::false,c"), ("yesterday", "yesterday"),
    ("1.2.3", "1.2.3"), ("v1.2.3", "v1.2.3"), ("fd00::40", "fd00::40"), ("/etc/kubernetes/admin.conf",
                                                                         "/etc/kubernetes/admin.conf"),
    ("a: b", "'a: b'"), ("- x", "'- x'"), ("#x", "'#x'"), ("a #b", "'a #b'"), ("*x", "'*x'"), (" lead", "' lead'"),
    ("trail ", "'trail '"), ("it's: odd", "'it''s: odd'"), ("---x", "'---x'"), (":", "':'"), ("a:", "'a:'"),
    (None, "null"), (True, "true"), (False, "false"), (0, "0"),
])
def test_scalar_style(value, text):
    assert scalar(value) == text


@pytest.mark.parametrize("value", ["true", "6443", "a: b", ":2112", "1:20", "it's: odd", "", "x y"])
def test_quoted_scalars_read_back_as_the_same_string(value):
    assert yaml.safe_load("k: " + scalar(value) + "\n")["k"] == value


def test_line_breaks_are_refused():
    with pytest.raises(ValueError, match="line break"):
        scalar("a\nb")


def test_block_layout():
    document = {"spec": {"containers": [{"name": "c", "args": ["manager"], "env": [{"name": "x"}]}],
                         "empty": {}, "none": [], "nothing": None}}
    assert dump(document) == (
        "spec:\n"
        "  containers:\n"
        "  - args:\n"
        "    - manager\n"
        "    env:\n"
        "    - name: x\n"
        "    name: c\n"
        "  empty: {}\n"
        "  none: []\n"
        "  nothing: null\n"
    )


def test_nested_sequences_share_the_dash_line():
    assert dump({"a": [["x", "p"], "z"]}) == "a:\n- - x\n  - p\n- z\n"


def test_long_plain_scalars_fold_at_spaces_past_80_columns():
    words = " ".join(["word"] * 30)
    text = dump({"key": words})
    lines = text.splitlines()
    assert len(lines) > 1 and all(line.startswith("  ") for line in lines[1:])
    assert yaml.safe_load(text)["key"] == words


def test_empty_document():
    assert dump({}) == "{}\n"
