# -*- coding: utf-8 -*-
"""vipadm's version skew rules against the real kubeadm and kubelet, on one node of the real lab.

For each combination of installed kubeadm, installed kubelet and `vipadm_kubernetes_version` (the real
binaries of the two releases the lab's nodes run, copied onto the node with scp as a user would), two
verdicts must agree:
- kubeadm's own: `kubeadm init phase preflight --ignore-preflight-errors=all` with a ClusterConfiguration
  of that version. kubeadm refuses a control plane older than its own minor minus one outright (exit
  status), reports a kubelet newer than the control plane as an error of its KubeletVersion check, and a
  control plane newer than itself only as a warning of its KubernetesVersion check (the skew policy does
  not support it, so vipadm refuses it: a warning nobody reads is how clusters end up unsupported);
- vipadm's: the preflight role refuses, with its sentence, before anything changes.
The third kubeadm rule (a kubelet more than three minors older than kubeadm) needs a kubelet older than
the lab's nodes run, so it is checked by the unit tests only (tests/unit/plugins/module_utils/test_preflight.py).
Cost: one real lab of 1 node (no bootstrap) and 5 preflight runs of each kind: 39 s on 2 shared cores.
"""

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from lab.components import Builder, load_pins  # noqa: E402
from lab.tests.conftest import lab_factory  # noqa: E402,F401  (the fixture)

pytestmark = pytest.mark.lab

PINS = load_pins()
NEWER, OLDER = PINS.lab_versions[-1], PINS.lab_versions[-2]  # 1.37.2, 1.36.3


def minor(version):
    return tuple(int(part) for part in version.split(".")[:2])


# 1.35.8: the release before the older one, which the newer kubeadm no longer deploys
BEFORE_OLDER = max((pin.version for pin in PINS.kubernetes.values() if minor(pin.version) < minor(OLDER)), key=minor)

# (kubeadm, kubelet, vipadm_kubernetes_version, what kubeadm says: None = nothing, "exit" = it refuses
# outright, else the name of the preflight check that complains; vipadm's sentence when it refuses)
CASES = [
    (NEWER, NEWER, NEWER, None, None),
    (NEWER, OLDER, OLDER, None, None),
    (NEWER, NEWER, OLDER, "KubeletVersion", rf"kubelet v{re.escape(NEWER)} is newer than Kubernetes {re.escape(OLDER)}"),
    (OLDER, OLDER, NEWER, "KubernetesVersion", rf"kubeadm v{re.escape(OLDER)} is older than Kubernetes {re.escape(NEWER)}"),
    (NEWER, OLDER, BEFORE_OLDER, "exit", rf"kubeadm v{re.escape(NEWER)} deploys Kubernetes .* not {re.escape(BEFORE_OLDER)}"),
]
PREFLIGHT_PLAYBOOK = textwrap.dedent("""\
    ---
    - name: vipadm's preflight alone
      hosts: control_plane
      gather_facts: false
      roles:
        - vipadm.kubeadm.preflight
    """)


def binaries(version):
    build = Builder().kubernetes(version, build=False)
    assert build is not None, f"Kubernetes {version} is not built: run python -m lab build --all"
    return {tool: build.binary(tool) for tool in ("kubeadm", "kubelet")}


def install(lab, node, tool, source):
    """scp, as a user without a package would; the node's /usr/local/bin is where the lab puts them."""
    subprocess.run(["scp", "-q", "-F", str(lab.ssh_config_path), str(source), f"{node}:/usr/local/bin/{tool}.new"],
                   check=True, timeout=60)
    lab.exec(node, ["mv", f"/usr/local/bin/{tool}.new", f"/usr/local/bin/{tool}"])


def kubeadm_verdict(lab, node, version):
    config = f"apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nkubernetesVersion: v{version}\n"
    lab.exec(node, ["sh", "-c", "cat > /root/skew-config.yaml"], input=config)
    result = lab.exec(node, ["kubeadm", "init", "phase", "preflight", "--config", "/root/skew-config.yaml",
                             "--ignore-preflight-errors=all"], check=False, timeout=120)
    output = result.stdout + result.stderr
    if result.returncode != 0:
        return "exit", output
    complaints = [check for check in ("KubeletVersion", "KubernetesVersion") if f"[WARNING {check}]" in output]
    assert len(complaints) <= 1, output
    return (complaints[0] if complaints else None), output


def vipadm_verdict(lab, playbook, version):
    process = subprocess.run(
        [str(REPO / ".venv" / "bin" / "ansible-playbook"), "-i", str(lab.inventory_path), str(playbook),
         "-e", f"vipadm_kubernetes_version={version}"],
        cwd=str(REPO), capture_output=True, text=True, timeout=300,
        env=dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1"),
    )  # fmt: skip
    return process.returncode, process.stdout + process.stderr


def test_vipadm_refuses_what_kubeadm_refuses_or_warns_about(lab_factory, tmp_path):  # noqa: F811
    built = {version: binaries(version) for version in (NEWER, OLDER)}
    lab = lab_factory(control_planes=1, workers=0, runtime="real", kubernetes_version=NEWER)
    node = lab.nodes[0].name
    playbook = tmp_path / "preflight.yml"
    playbook.write_text(PREFLIGHT_PLAYBOOK)
    outcomes = []
    for kubeadm, kubelet, version, kubeadm_says, sentence in CASES:
        install(lab, node, "kubeadm", built[kubeadm]["kubeadm"])
        install(lab, node, "kubelet", built[kubelet]["kubelet"])
        said, kubeadm_output = kubeadm_verdict(lab, node, version)
        rc, vipadm_output = vipadm_verdict(lab, playbook, version)
        outcomes.append((kubeadm, kubelet, version, said, rc))
        case = f"kubeadm {kubeadm}, kubelet {kubelet}, Kubernetes {version}"
        assert said == kubeadm_says, f"{case}: kubeadm said {said!r}:\n{kubeadm_output[-3000:]}"
        if sentence is None:
            assert rc == 0, f"{case}: vipadm refused what kubeadm accepts:\n{vipadm_output[-4000:]}"
        else:
            assert rc != 0 and re.search(sentence, vipadm_output), f"{case}:\n{vipadm_output[-4000:]}"
        # preflight changes nothing: no kubeadm file appears on the node
        assert lab.exec(node, ["test", "-e", "/etc/kubernetes/admin.conf"], check=False).returncode != 0
    print("\n".join(f"kubeadm {a} kubelet {b} target {c}: kubeadm {d}, vipadm rc {e}" for a, b, c, d, e in outcomes))
