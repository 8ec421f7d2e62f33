# -*- coding: utf-8 -*-
"""playbooks/bundle.yml on this machine, offline: dl.k8s.io is a local HTTP server (binaries and their .sha256
files, as the release publishes them; its kubeadm is a script that prints the images of 1.37.2), skopeo a
stand-in that writes a docker-archive naming the image. The bundle it writes passes bundle_verify and
`sha256sum -c`; a second run downloads no binary and fetches no image. About 15 s."""

import functools
import http.server
import json
import os
import subprocess
import sys
import threading

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
FIXTURES = os.path.join(REPO, "tests", "unit", "fixtures")
sys.path.insert(0, FIXTURES)

import bundle_kit as kit  # noqa: E402

from ansible_collections.vipadm.kubeadm.plugins.module_utils._bundle_host import verify_bundle  # noqa: E402

ANSIBLE_PLAYBOOK = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")

KUBEADM = """#!/bin/sh
[ "$*" = "config images list --kubernetes-version v1.37.2 --image-repository registry.k8s.io" ] || {
  echo "unexpected kubeadm arguments: $*" >&2; exit 1; }
printf '%s\\n' """ + " ".join(kit.KUBEADM_IMAGES) + "\n"

SKOPEO = """#!{python}
import sys
sys.path.insert(0, {fixtures!r})
import bundle_kit
with open({log!r}, "a") as handle:
    handle.write(" ".join(sys.argv[1:]) + "\\n")
source, destination = sys.argv[-2], sys.argv[-1]
assert source.startswith("docker://") and destination.startswith("docker-archive:"), sys.argv
path, reference = destination[len("docker-archive:"):].split(":", 1)
assert reference == source[len("docker://"):], sys.argv
with open(path, "wb") as handle:
    handle.write(bundle_kit.docker_archive([reference]))
"""


class Logged(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the signature of the base class
        self.server.requests.append(self.path)


@pytest.fixture
def release(tmp_path):
    """dl.k8s.io/release for v1.37.2 linux/amd64 on 127.0.0.1; yields (base URL, the paths requested)."""
    served = tmp_path / "dl" / "v1.37.2" / "bin" / "linux" / "amd64"
    served.mkdir(parents=True)
    for name in kit.BINARIES:
        content = KUBEADM.encode() if name == "kubeadm" else kit.bundle_files()["bin/" + name]
        (served / name).write_bytes(content)
        (served / (name + ".sha256")).write_text(kit.sha256(content))  # the release's .sha256: the hex alone
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Logged, directory=str(tmp_path / "dl")))
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield "http://127.0.0.1:%d" % server.server_port, server.requests
    server.shutdown()


def run(tmp_path, base_url, *extra):
    skopeo = tmp_path / "skopeo"
    skopeo.write_text(SKOPEO.format(python=sys.executable, fixtures=FIXTURES, log=str(tmp_path / "skopeo-calls")))
    skopeo.chmod(0o755)
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOCALHOST_WARNING="false")
    argv = [ANSIBLE_PLAYBOOK, os.path.join(REPO, "playbooks", "bundle.yml"),
            "-e", "bundle_dir=%s" % (tmp_path / "bundle"), "-e", "vipadm_kubernetes_version=1.37.2",
            "-e", "bundle_download_url=%s" % base_url, "-e", "bundle_skopeo=%s" % skopeo,
            "-e", "ansible_python_interpreter=%s" % sys.executable] + list(extra)
    result = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=REPO, timeout=180, check=False)
    return result.returncode, result.stdout + result.stderr


def skopeo_calls(tmp_path):
    path = tmp_path / "skopeo-calls"
    return path.read_text().splitlines() if path.exists() else []


def test_the_bundle_playbook_builds_a_bundle_node_prep_accepts_and_a_rerun_fetches_nothing(tmp_path, release):
    base_url, requests = release
    rc, output = run(tmp_path, base_url, "--check")
    assert rc == 0, output
    assert not (tmp_path / "bundle" / "bin").exists() and skopeo_calls(tmp_path) == [], output

    rc, output = run(tmp_path, base_url, "-e", '{"bundle_extra_images": ["docker.io/calico/node:v3.29.1"]}')
    assert rc == 0, output
    bundle = tmp_path / "bundle"
    manifest = verify_bundle(str(bundle), "1.37.2")  # what node_prep checks on the controller
    assert [entry["path"] for entry in manifest["files"]][-2:] == ["images/kube-vip-v1.2.3.tar", "images/node-v3.29.1.tar"]
    assert json.loads((bundle / "bundle.json").read_text()) == manifest
    assert (bundle / "bin" / "kubelet").stat().st_mode & 0o777 == 0o755
    checked = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=str(bundle), capture_output=True, text=True,
                             check=False)
    assert checked.returncode == 0, checked.stdout
    assert len(skopeo_calls(tmp_path)) == len(kit.IMAGES) + 1
    assert skopeo_calls(tmp_path)[0] == (
        "copy --override-os linux --override-arch amd64 docker://registry.k8s.io/kube-apiserver:v1.37.2 "
        "docker-archive:%s/images/kube-apiserver-v1.37.2.tar.partial:registry.k8s.io/kube-apiserver:v1.37.2" % bundle)
    downloads = [path for path in requests if not path.endswith(".sha256")]
    assert sorted(downloads) == ["/v1.37.2/bin/linux/amd64/%s" % name for name in ("kubeadm", "kubectl", "kubelet")]

    requests[:] = []
    rc, output = run(tmp_path, base_url, "-e", '{"bundle_extra_images": ["docker.io/calico/node:v3.29.1"]}')
    assert rc == 0 and "changed=0" in output, output
    assert [path for path in requests if not path.endswith(".sha256")] == []  # checksums match: no download
    assert len(skopeo_calls(tmp_path)) == len(kit.IMAGES) + 1


def test_a_download_whose_checksum_differs_is_refused(tmp_path, release):
    base_url, _requests = release
    (tmp_path / "dl" / "v1.37.2" / "bin" / "linux" / "amd64" / "kubelet.sha256").write_text("0" * 64)
    rc, output = run(tmp_path, base_url)
    assert rc != 0 and "checksum" in output.lower(), output
    assert not (tmp_path / "bundle" / "bundle.json").exists()


def test_without_a_bundle_directory_the_playbook_says_what_to_give(tmp_path, release):
    base_url, _requests = release
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    result = subprocess.run([ANSIBLE_PLAYBOOK, os.path.join(REPO, "playbooks", "bundle.yml"), "-e",
                             "vipadm_kubernetes_version=1.37.2"], capture_output=True, text=True, env=env, cwd=REPO,
                            timeout=120, check=False)
    assert result.returncode != 0
    assert "Give the bundle directory and the Kubernetes release, for example -e bundle_dir=" in result.stdout
