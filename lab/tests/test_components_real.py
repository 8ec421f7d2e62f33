"""The default pin, built (or taken from the cache) and checked on the real binaries: the stamped
version, kubeadm's image list = the images built, and every image imported into a throw-away
containerd where its entrypoint binary runs. Needs root, Go, containerd and runc."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from lab import components

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(shutil.which("containerd") is None or shutil.which("go") is None, reason="needs Go and containerd"),
]

# What each image's binary says about itself: (argv inside the container, text expected in its output).
VERSION_CHECKS = {
    "kube-apiserver": (["kube-apiserver", "--version"], "Kubernetes v{k8s}"),
    "kube-controller-manager": (["kube-controller-manager", "--version"], "Kubernetes v{k8s}"),
    "kube-scheduler": (["kube-scheduler", "--version"], "Kubernetes v{k8s}"),
    "kube-proxy": (["kube-proxy", "--version"], "Kubernetes v{k8s}"),
    "etcd": (["etcd", "--version"], "etcd Version: {etcd}"),
    "coredns": (["/coredns", "-version"], "CoreDNS-{coredns}"),
    "pause": (["/pause", "-v"], "pause.c v{pause}"),
    "kube-vip": (["/kube-vip", "version"], "{kube_vip}"),
}


@pytest.fixture(scope="module")
def pin_build():
    if os.geteuid() != 0:
        pytest.skip("needs root")
    return components.Builder(log=print).build_pin()


@pytest.fixture(scope="module")
def containerd(tmp_path_factory):
    """A throw-away containerd with its own root, state and socket."""
    base = Path(tempfile.mkdtemp(prefix="vipadm-ctrd-", dir="/var/tmp"))
    socket = base / "containerd.sock"
    config = base / "config.toml"
    config.write_text(
        'version = 2\n'
        f'root = "{base}/root"\nstate = "{base}/state"\n'
        f'[grpc]\n  address = "{socket}"\n'
        '[plugins."io.containerd.grpc.v1.cri"]\n  restrict_oom_score_adj = true\n'
    )
    log = open(base / "containerd.log", "wb")
    proc = subprocess.Popen(["containerd", "--config", str(config)], stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    ctr = ["ctr", "--address", str(socket), "--namespace", "vipadm-test"]
    deadline = time.monotonic() + 20
    while subprocess.run([*ctr, "version"], capture_output=True).returncode != 0:
        assert proc.poll() is None and time.monotonic() < deadline, (base / "containerd.log").read_text()[-2000:]
        time.sleep(0.2)
    try:
        yield ctr
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
        mounts = [line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines() if str(base) in line]
        for mount in sorted(mounts, key=len, reverse=True):
            subprocess.run(["umount", "-l", mount], check=False)
        shutil.rmtree(base, ignore_errors=True)


def test_kubeadm_reports_the_pinned_version(pin_build):
    kubeadm = pin_build.binary("kubeadm")
    out = subprocess.run([kubeadm, "version", "-o", "short"], capture_output=True, text=True, check=True).stdout
    assert out.strip() == f"v{pin_build.kubernetes_version}"
    for argv in (["kubelet", "--version"], ["kubectl", "version", "--client"]):
        said = subprocess.run([pin_build.binary(argv[0]), *argv[1:]], capture_output=True, text=True, check=True).stdout
        assert f"v{pin_build.kubernetes_version}" in said, said


def test_kubeadm_image_list_is_exactly_the_images_built(pin_build):
    kubeadm = pin_build.binary("kubeadm")
    listed = subprocess.run(
        [kubeadm, "config", "images", "list", "--kubernetes-version", f"v{pin_build.kubernetes_version}"],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    built = [ref for ref in pin_build.image_references if not ref.startswith(components.build.KUBE_VIP_REPOSITORY)]
    assert sorted(listed) == built
    assert f"{components.build.KUBE_VIP_REPOSITORY}:{pin_build.kube_vip_tag}" in pin_build.image_references


def test_pins_record_what_kubeadm_asks_for(pin_build):
    pin = components.load_pins().kubernetes_pin(pin_build.kubernetes_version)
    asked = components.recipes.image_list_versions(pin_build.results["kubernetes"].info["kubeadm_images"])
    assert pin.images == {name: asked[name] for name in ("etcd", "coredns", "pause")}


def _versions(pin_build) -> dict[str, str]:
    tag = {name: ref.rpartition(":")[2] for ref in pin_build.image_references for name in [ref.rpartition(":")[0].rsplit("/", 1)[1]]}
    return {
        "k8s": pin_build.kubernetes_version,
        "etcd": tag["etcd"].split("-")[0],
        "coredns": tag["coredns"].lstrip("v"),
        "pause": tag["pause"],
        "kube_vip": pin_build.kube_vip_tag,
    }


def test_every_image_imports_and_its_binary_runs(pin_build, containerd):
    versions = _versions(pin_build)
    checked = []
    for archive in pin_build.images:
        references = components.images.read_image_references(archive)
        with open(archive, "rb") as stream:
            subprocess.run([*containerd, "images", "import", "-"], stdin=stream, check=True, capture_output=True)
        name = references[0].rpartition(":")[0].rsplit("/", 1)[1]
        argv, expected = VERSION_CHECKS[name]
        run = subprocess.run(
            [*containerd, "run", "--rm", references[0], f"vipadm-test-{name}", *argv],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert expected.format(**versions) in run.stdout + run.stderr, (name, run.stdout, run.stderr)
        checked.append(name)
        if name == "kube-proxy":  # the iptables tools kube-proxy runs, with their libraries and extensions
            for tool in ("iptables", "iptables-save", "ip6tables-restore"):
                said = subprocess.run(
                    [*containerd, "run", "--rm", references[0], f"vipadm-test-{tool}", tool, "--version"],
                    capture_output=True, text=True, timeout=60,
                )  # fmt: skip
                assert said.returncode == 0 and f"{tool} v" in said.stdout, (tool, said.stdout, said.stderr)
            rules = subprocess.run(
                [*containerd, "run", "--rm", "--privileged", references[0], "vipadm-test-rules", "iptables", "-A", "INPUT",
                 "-m", "comment", "--comment", "vipadm", "-p", "tcp", "--dport", "1", "-j", "ACCEPT"],
                capture_output=True, text=True, timeout=60,
            )  # fmt: skip
            assert rules.returncode == 0, rules.stderr  # privileged, as kube-proxy runs; "comment" is an xtables extension
    assert sorted(checked) == sorted(VERSION_CHECKS)
