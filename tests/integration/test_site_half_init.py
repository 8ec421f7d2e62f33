"""A first kubeadm init that fails half-way is finished by a plain re-run of site.yml (R6), on real
components (one control plane of the real lab).

The fault: kubeadm init dies (SIGKILL, as an OOM kill or a crash would end it) in its wait-control-plane
phase, once the kubelet runs the control plane and before upload-config: the node holds the files of a
control plane and its API server answers, but init never uploaded kubeadm-config. That is the state a
first init left when the VIP never came during init (kube-vip on admin.conf, kube-vip issue #684), which
is no fault any more on the lab's kubeadm: 1.36.3 builds its init clients on the local API endpoint
(k/k#138449), so init passes with kube-vip on admin.conf (measured: rc 0 in 34 s). kubeadm is held with
SIGSTOP once the kubelet runs, then killed once the API server answers: the fault does not race with
upload-config, and it costs seconds where a kubeadm timeout would cost minutes (the init module exposes
no v1beta4 `timeouts`; kubeadm waits 4 min for the control plane by default).

The failed run names the fault (`kubeadm init ended by SIGKILL before it finished, after "[kubelet-start]
Starting the kubelet"`); the re-run with the same settings asks the node's own API server for
kubeadm-config, finds none, resets the node and initializes it once more (kubeadm calls: init, reset, init).
Cost: one 1+0 real lab, node_prep and two site.yml runs: 114 s in all on 2 shared cores (load average
5-10): the failed run 18 s (kubeadm held 8 s until the API server answered), the re-run 44 s; 215 s at
load average 20-26 (failed run 27 s, re-run 119 s).
"""

import re
import ssl
import socket
import sys
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "reliability"))

from lab.tests.conftest import lab_factory  # noqa: E402,F401  (the fixture)
from reliability_lab import KUBEADM_CALLS, SITE, kubeadm_calls, kubeadm_inits, run_playbook, vip_holders  # noqa: E402

pytestmark = pytest.mark.lab

KUBEADM = "/usr/local/bin/kubeadm"
INIT_PID = "/run/test-half-init-kubeadm.pid"
# The node's kubeadm is the real binary: a wrapper takes its place (the node's own /usr/local/bin) that
# logs each call (as reliability_lab.kubeadm_calls reads them), notes the PID of `kubeadm init --config`
# and execs the real one (same PID).
LOGGING_WRAPPER = """#!/bin/sh
echo "$(date +%%s.%%N) $*" >> %s
if [ "$1" = init ] && [ "$2" = --config ]; then echo $$ > %s; fi
exec %s.real "$@"
""" % (KUBEADM_CALLS, INIT_PID, KUBEADM)


def record_kubeadm_calls(lab, node):
    lab.exec(node, ["sh", "-c", "mv {0} {0}.real && cat > {0} && chmod 755 {0}".format(KUBEADM)],
             input=LOGGING_WRAPPER, check=True)  # fmt: skip


def api_server_answers(address):
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE  # only: does it serve /livez yet
    try:
        with socket.create_connection((address, 6443), timeout=1) as raw, context.wrap_socket(raw) as tls:
            tls.settimeout(2)
            tls.sendall(b"GET /livez HTTP/1.0\r\nHost: kubernetes\r\n\r\n")
            return tls.recv(64).split(b" ")[1:2] == [b"200"]
    except OSError:
        return False


def kill_init_in_wait_control_plane(lab, node, address, report, timeout=240):
    """In a thread beside the run: SIGSTOP kubeadm init once the kubelet it started runs (wait-control-plane
    follows kubelet-start), wait for the API server to answer, SIGKILL kubeadm. report: what happened."""
    deadline = time.monotonic() + timeout
    try:
        while not (lab.node_file(node, INIT_PID).exists()
                   and lab.node_file(node, "/etc/kubernetes/manifests/kube-apiserver.yaml").exists()
                   and lab.node_file(node, "/var/lib/kubelet/config.yaml").exists()
                   and lab.exec(node, ["systemctl", "is-active", "kubelet"], check=False).returncode == 0):
            assert time.monotonic() < deadline, "kubeadm init did not start the kubelet within %d s" % timeout
            time.sleep(0.1)
        pid = lab.node_file(node, INIT_PID).read_text().strip()
        lab.exec(node, ["kill", "-STOP", pid])
        report["stopped"] = time.monotonic()
        while not api_server_answers(address):
            assert time.monotonic() < deadline, "the API server did not answer within %d s" % timeout
            time.sleep(0.2)
        report["api_server"] = time.monotonic()
        lab.exec(node, ["kill", "-KILL", pid])
        report["killed"] = time.monotonic()
    except BaseException as exc:  # noqa: BLE001  (the test thread asserts on it)
        report["error"] = exc


def test_failed_first_init_is_finished_by_a_plain_rerun(lab_factory):  # noqa: F811
    lab = lab_factory(control_planes=1, workers=0, runtime="real")
    cp1 = lab.nodes[0]
    record_kubeadm_calls(lab, cp1.name)
    prepared = run_playbook(lab, REPO / "playbooks" / "node_prep.yml", timeout=300)
    assert prepared.rc == 0, prepared

    report = {}
    fault = threading.Thread(target=kill_init_in_wait_control_plane, args=(lab, cp1.name, cp1.address, report))
    fault.start()
    failed = run_playbook(lab, SITE, timeout=300)
    fault.join(timeout=30)
    assert "error" not in report and "killed" in report, report
    assert failed.rc != 0, failed
    step2 = failed.output.split("TASK [vipadm.kubeadm.control_plane : Step 2: kubeadm init")[-1]
    assert "Module failed: kubeadm init ended by SIGKILL before it finished, after " in step2, failed
    assert api_server_answers(cp1.address)  # the half-initialized control plane still runs

    rerun = run_playbook(lab, SITE, timeout=300)
    assert rerun.rc == 0, rerun
    assert "stopped half-way" in rerun.output and "no kubeadm-config" in rerun.output, rerun
    assert vip_holders(lab) == ["cp1"]
    calls = [c.split(" ")[0] for c in kubeadm_calls(lab, cp1.name)
             if c.split(" ")[0] in ("init", "reset") and not c.startswith("init phase")]
    assert calls == ["init", "reset", "init"], calls
    assert len(kubeadm_inits(lab, cp1.name)) == 2  # the killed one and ONE successful one
    print("half init: failed run %.1f s (kubeadm held %.1f s until the API server answered), re-run %.1f s"
          % (failed.elapsed, report["api_server"] - report["stopped"], rerun.elapsed))
