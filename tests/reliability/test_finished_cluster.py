# -*- coding: utf-8 -*-
"""Secrets and the loss of the VIP holder, on one cluster bootstrapped by site.yml at -vvv.

The tests of this module run in file order on the same real lab (3 control planes, 1 worker; three
because the failover needs an etcd quorum without the holder): the bootstrap run at -vvv, what it
leaked (nothing), file modes, kube-vip's kubeconfig, a re-run, then the VIP holder powered off
(failover time measured), a run with it still down, and a run after it is back. Cost: about 4 min
(node_prep 30 s, bootstrap 80-110 s, the rest re-runs and the failover).
"""

from __future__ import annotations

import re
import stat
import time

import pytest
import yaml

from reliability_lab import (SITE, ApiClient, assert_healthy_ha, join_configs, kubeadm_calls, kubeadm_inits, prepare_nodes, record_kubeadm_calls,
                             run_playbook, vip_holders, wait_for)  # fmt: skip

pytestmark = [pytest.mark.lab, pytest.mark.reliability]

CONTROL_PLANES = ("cp1", "cp2", "cp3")
BGP_PASSWORD = "Bgp-pa55-Rel1ability"
KUBE_VIP_MANIFEST = "/etc/kubernetes/manifests/kube-vip.yaml"
TOKEN = re.compile(r"^([a-z0-9]{6}\.[a-z0-9]{16})\s", re.M)
CERTIFICATE_KEY = re.compile(r"^\s*certificateKey:\s*\"?([0-9a-f]{64})", re.M)
PEM_BODY = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----\n(.*?)\n", re.S)


@pytest.fixture(scope="module")
def cluster(module_lab, tmp_path_factory):
    lab = module_lab(control_planes=3, workers=1)
    record_kubeadm_calls(lab)
    prepare_nodes(lab)
    bootstrap = run_playbook(lab, SITE, "-vvv", timeout=600)
    return lab, bootstrap


def test_bootstrap_at_vvv_succeeds_with_one_init(cluster, tmp_path):
    lab, bootstrap = cluster
    print("\nbootstrap 3+1 at -vvv: rc %s after %.1f s (%d output lines)" % (
        bootstrap.rc, bootstrap.elapsed, bootstrap.output.count("\n")))
    assert bootstrap.rc == 0, bootstrap
    assert_healthy_ha(lab, tmp_path)
    assert len(kubeadm_inits(lab, "cp1")) == 1
    for node in ("cp2", "cp3", "worker1"):
        assert len(kubeadm_calls(lab, node, "join")) == 1, (node, kubeadm_calls(lab, node))


def secrets_of(lab):
    """The real secret values, read from the cluster and the nodes after the run: every bootstrap token
    (init's, each join's, the certificate-key TTL proxies), every certificate key joins used, the
    first line of every private key."""
    tokens = TOKEN.findall(lab.exec("cp1", ["kubeadm", "token", "list"], check=True).stdout)
    keys = []
    for node in ("cp2", "cp3"):
        keys += CERTIFICATE_KEY.findall("".join(join_configs(lab, node)))
    private = []
    for node in CONTROL_PLANES:
        pki = lab.node_file(node, "/etc/kubernetes/pki")
        for key in list(pki.glob("*.key")) + list(pki.glob("etcd/*.key")):
            private += PEM_BODY.findall(key.read_text())
    return tokens, keys, private


def test_verbose_output_holds_no_token_key_or_private_key(cluster):
    lab, bootstrap = cluster
    tokens, keys, private = secrets_of(lab)
    # init's token and the worker's, one per control plane join, and the certificate-key TTL proxies.
    assert len(tokens) >= 5, tokens
    assert len(keys) == 2 and len(set(keys)) == 2, "each join must have had its own certificate key: %s" % keys
    assert len(private) >= 10, len(private)
    # the join module removes its config (token, certificate key) once kubeadm join ran
    assert not any(lab.node_file(node, "/etc/kubernetes/vipadm/kubeadm-join.yaml").exists()
                   for node in ("cp2", "cp3", "worker1"))
    assert "-vvv" in bootstrap.argv and "ESTABLISH SSH CONNECTION" in bootstrap.output  # verbose indeed
    print("\nsearched the -vvv output for %d tokens, %d certificate keys, %d private keys" % (
        len(tokens), len(keys), len(private)))
    leaked = [("token", t) for t in tokens if t in bootstrap.output or t.split(".")[1] in bootstrap.output]
    leaked += [("certificate key", k) for k in keys if k in bootstrap.output]
    leaked += [("private key", p[:12] + "...") for p in private if p in bootstrap.output]
    assert leaked == [], leaked


def test_bgp_password_never_shown_at_vvv_in_check_mode(cluster, tmp_path):
    """The lab has no BGP router, so the BGP password is followed as far as it goes without one:
    router: a check-mode -vvv --diff run in BGP mode renders every kube-vip manifest with it."""
    lab, _bootstrap = cluster
    peers = [{"address": lab.controller_address, "as": 65001, "password": BGP_PASSWORD},
             "%s:65002:%s" % (lab.controller_address, BGP_PASSWORD + "-text")]  # fmt: skip
    run = run_playbook(lab, SITE, "--check", "--diff", "-vvv", timeout=300, extra={
        "kube_vip_mode": "bgp", "kube_vip_bgp_peers": peers[:1], "kube_vip_bgp_router_id": "198.51.100.1"})
    assert re.search(r"TASK \[vipadm\.kubeadm\.kube_vip : Write the kube-vip manifest\]", run.output), run
    assert re.search(r"^changed: \[cp1\]", run.output, re.M), "the BGP manifest was not rendered:\n%r" % run
    assert BGP_PASSWORD not in run.output
    for node in lab.nodes:
        manifest = lab.node_file(node.name, KUBE_VIP_MANIFEST)
        assert not manifest.exists() or BGP_PASSWORD not in manifest.read_text(), "check mode wrote %s" % node.name


def expected_mode(path, init_host):
    """kubeadm's modes (docs reference kubeadm.md §3): certificates 0644, keys, kubeconfigs and static Pod
    manifests 0600; sa.pub 0600 where init made it, 0644 on a joined control plane (kubeadm's copycerts
    writes the public keys it downloads as certificates: certutil.WriteCert); vipadm's kubeadm configs
    (they hold tokens and keys) 0600 in a 0700 dir."""
    name = path.rsplit("/", 1)[-1]
    if name == "sa.pub":
        return 0o600 if init_host else 0o644
    if name.endswith(".crt"):
        return 0o644
    if name.endswith((".key", ".conf", ".pem")):
        return 0o600
    if path.startswith("/etc/kubernetes/manifests/") or path.startswith("/etc/kubernetes/vipadm/"):
        return 0o600
    return None


def test_secret_files_have_kubeadms_modes(cluster):
    lab, _bootstrap = cluster
    checked, wrong = 0, []
    for node in lab.nodes:
        for root in ("/etc/kubernetes", "/var/lib/kubelet/pki"):
            base = lab.node_file(node.name, root)
            for entry in base.rglob("*"):
                if entry.is_symlink() or not entry.is_file():
                    continue
                path = root + "/" + str(entry.relative_to(base))
                want = expected_mode(path, node.name == "cp1")
                if want is None:
                    continue
                checked += 1
                if stat.S_IMODE(entry.stat().st_mode) != want:
                    wrong.append("%s:%s %o (want %o)" % (node.name, path, stat.S_IMODE(entry.stat().st_mode), want))
        vipadm_dir = lab.node_file(node.name, "/etc/kubernetes/vipadm")
        if vipadm_dir.exists() and stat.S_IMODE(vipadm_dir.stat().st_mode) != 0o700:
            wrong.append("%s:/etc/kubernetes/vipadm %o (want 700)" % (node.name, stat.S_IMODE(vipadm_dir.stat().st_mode)))
    print("\nmodes of %d files checked" % checked)
    assert checked > 60, checked
    assert wrong == [], wrong


def test_kube_vip_uses_admin_conf_once_bootstrapped(cluster):
    lab, _bootstrap = cluster
    for node in CONTROL_PLANES:
        manifest = yaml.safe_load(lab.node_file(node, KUBE_VIP_MANIFEST).read_text())
        host_paths = [v["hostPath"]["path"] for v in manifest["spec"].get("volumes", []) if "hostPath" in v]
        mounts = [m["mountPath"] for c in manifest["spec"]["containers"] for m in c.get("volumeMounts", [])]
        assert "/etc/kubernetes/super-admin.conf" not in host_paths + mounts, (node, host_paths, mounts)
        assert "/etc/kubernetes/admin.conf" in host_paths, (node, host_paths)
    # super-admin.conf stays on the init host only, as kubeadm leaves it (0600).
    assert lab.node_file("cp1", "/etc/kubernetes/super-admin.conf").exists()
    assert not any(lab.node_file(n, "/etc/kubernetes/super-admin.conf").exists() for n in ("cp2", "cp3"))


def test_rerun_changes_nothing(cluster, tmp_path):
    lab, _bootstrap = cluster
    run = run_playbook(lab, SITE, timeout=300)
    print("\nre-run: rc %s after %.1f s" % (run.rc, run.elapsed))
    assert run.rc == 0, run
    assert {host: counts["changed"] for host, counts in run.recap.items()} == dict.fromkeys(
        ("cp1", "cp2", "cp3", "worker1"), 0), run
    assert_healthy_ha(lab, tmp_path)


@pytest.fixture(scope="module")
def holder_down(cluster, tmp_path_factory):
    """Power off the VIP holder of the finished cluster; time until the API answers through the VIP."""
    lab, _bootstrap = cluster
    client = ApiClient(lab, "cp1", tmp_path_factory.mktemp("client"))
    wait_for(lambda: len(vip_holders(lab)) == 1, 30, what="one VIP holder")
    holder = vip_holders(lab)[0]
    client_node = next(n for n in CONTROL_PLANES if n != holder)
    powered_off = time.monotonic()
    lab.stop(holder)
    wait_for(lambda: client.get(lab.vip, "/readyz", timeout=0.5)[0] == 200, 60, interval=0.05,
             what="the API through the VIP after %s went down" % holder)
    answered = time.monotonic() - powered_off
    return dict(holder=holder, answered=answered, lease=lease_settings(lab, client_node))


def lease_settings(lab, node):
    env = {e["name"]: e.get("value") for e in yaml.safe_load(lab.node_file(node, KUBE_VIP_MANIFEST).read_text())
           ["spec"]["containers"][0]["env"]}  # fmt: skip
    return float(env["vip_leaseduration"]), float(env["vip_retryperiod"])


def test_vip_answers_within_lease_after_holder_power_off(holder_down):
    lease, retry = holder_down["lease"]
    print("\nVIP holder %s off: API through the VIP after %.2f s (lease %.0f s, retry %.0f s)"
          % (holder_down["holder"], holder_down["answered"], lease, retry))
    # kube-vip's client-go leader election: a follower takes over between the lease duration and the lease
    # duration + 2 x 2.2 retry periods after the holder's last renewal (the leader renews every retry period,
    # followers poll with jitter 1.2); plus 1 s for the new holder's ARP and our probe. The issue asked for
    # lease + 2 s, which these semantics do not guarantee (docs/reliability.md: measured).
    assert lease <= holder_down["answered"] + 1.0, "the VIP moved before the lease could expire: %s" % holder_down
    assert holder_down["answered"] <= lease + 2 * 2.2 * retry + 1.0, holder_down


def test_rerun_with_holder_down_names_it(cluster, holder_down):
    lab, _bootstrap = cluster
    run = run_playbook(lab, SITE, timeout=300)
    print("\nre-run with %s down: rc %s after %.1f s" % (holder_down["holder"], run.rc, run.elapsed))
    assert run.rc != 0, run
    holder = holder_down["holder"]
    assert re.search(r"(UNREACHABLE|unreachable).*\[%s\]|\[%s\].*UNREACHABLE" % (holder, holder), run.output), run
    # the preflight reads every node with ignore_unreachable and refuses the unreachable one by name
    assert "%s is unreachable (" % holder in run.output and "nothing was changed" in run.output, run
    assert "connect to host %s port 22" % lab.node(holder).address in run.output, run
    # The preflight play stops for every host (any_errors_fatal): nothing after it runs anywhere.
    assert all(counts["ok"] <= 2 for counts in run.recap.values()), run.recap
    assert all(counts["changed"] == 0 for counts in run.recap.values()), run.recap


def test_rerun_after_holder_is_back_is_healthy(cluster, holder_down, tmp_path):
    lab, _bootstrap = cluster
    holder = holder_down["holder"]
    lab.start(holder)  # a fresh network stack, as a reboot: the VIP the killed kube-vip held is gone
    run = run_playbook(lab, SITE, timeout=400)
    print("\nre-run with %s back: rc %s after %.1f s" % (holder, run.rc, run.elapsed))
    assert run.rc == 0, run
    assert_healthy_ha(lab, tmp_path)
