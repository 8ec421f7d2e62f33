# -*- coding: utf-8 -*-
"""Build the collection tarball, install it into an empty collections path and document every module
from there (what a user of the released collection gets). Cost: about 10 s."""

import os
import subprocess
import sys
import tarfile

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.path.dirname(sys.executable)
MODULES = sorted(name[:-3] for name in os.listdir(os.path.join(REPO, "plugins", "modules"))
                 if name.endswith(".py") and not name.startswith("_"))


def run(argv, cwd, **kwargs):
    # An empty configuration: the repository's ansible.cfg would put the working copy on the path.
    config = os.path.join(cwd, "ansible.cfg")
    if not os.path.exists(config):
        with open(config, "w") as handle:
            handle.write("[defaults]\n")
    env = dict(os.environ, ANSIBLE_CONFIG=config, ANSIBLE_NOCOLOR="1")
    env.update(kwargs.pop("env", {}))
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300, cwd=cwd, **kwargs)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    build_dir = tmp_path_factory.mktemp("build")
    collections = tmp_path_factory.mktemp("collections")
    built = run([os.path.join(BIN, "ansible-galaxy"), "collection", "build", REPO, "--output-path",
                 str(build_dir)], cwd=str(build_dir))
    assert built.returncode == 0, built.stderr
    tarballs = [name for name in os.listdir(build_dir) if name.endswith(".tar.gz")]
    assert len(tarballs) == 1 and tarballs[0].startswith("vipadm-kubeadm-")
    tarball = os.path.join(build_dir, tarballs[0])
    done = run([os.path.join(BIN, "ansible-galaxy"), "collection", "install", "--offline", "--force", "-p",
                str(collections), tarball], cwd=str(build_dir))
    assert done.returncode == 0, done.stderr
    return tarball, str(collections)


def test_there_are_modules_to_check():
    assert "kube_vip_manifest" in MODULES


def test_tarball_holds_no_test_equipment(installed):
    tarball, _collections = installed
    with tarfile.open(tarball) as archive:
        names = archive.getnames()
    assert "plugins/modules/kube_vip_manifest.py" in names
    assert "roles/kube_vip/meta/argument_specs.yml" in names
    leaked = [n for n in names if n.split("/")[0] in ("lab", "tests", "molecule", ".venv", ".collections",
                                                       ".git", "scripts")]
    assert leaked == []


@pytest.mark.parametrize("module", MODULES)
def test_ansible_doc_reads_each_installed_module(installed, module):
    _tarball, collections = installed
    # Run outside the repository so that only the installed copy can be found.
    result = run([os.path.join(BIN, "ansible-doc"), "-t", "module", "vipadm.kubeadm." + module],
                 cwd=collections, env={"ANSIBLE_COLLECTIONS_PATH": collections})
    assert result.returncode == 0, result.stderr
    assert "vipadm.kubeadm.%s" % module in result.stdout or module in result.stdout
    assert os.path.join(collections, "ansible_collections", "vipadm", "kubeadm") in result.stdout
