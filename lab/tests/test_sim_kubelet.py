"""The simulated kubelet: flags and config like the real one, static Pods as supervised processes."""

import os
import time
import urllib.request
from pathlib import Path

import pytest

import test_sim_api_support as support  # also puts the repository on sys.path
from lab.sim import config as sim_config
from lab.sim import kubelet, pods

REFERENCE = Path("/work/shared/reference/kube-vip")
KUBE_VIP_IMAGE = "ghcr.io/kube-vip/kube-vip:v0.8.9"


def kube_vip_manifest(env, kubeconfig, image=KUBE_VIP_IMAGE):
    """A kube-vip Pod; ``kubeconfig`` is its hostPath (kept under tmp_path: the kubelet may create it)."""
    lines = [f"    - name: {k}\n      value: \"{v}\"" for k, v in env.items()]
    return f"""apiVersion: v1
kind: Pod
metadata:
  name: kube-vip
  namespace: kube-system
spec:
  containers:
  - args:
    - manager
    env:
{chr(10).join(lines)}
    image: {image}
    name: kube-vip
    volumeMounts:
    - mountPath: /etc/kubernetes/admin.conf
      name: kubeconfig
  hostAliases:
  - hostnames:
    - kubernetes
    ip: 127.0.0.1
  hostNetwork: true
  volumes:
  - hostPath:
      path: {kubeconfig}
    name: kubeconfig
"""


ETCD_MANIFEST = """apiVersion: v1
kind: Pod
metadata:
  name: etcd
  namespace: kube-system
spec:
  containers:
  - command:
    - etcd
    - --advertise-client-urls=https://198.51.100.11:2379
    - --data-dir=/var/lib/etcd
    - --feature-gates=InitialCorruptCheck=true
    - --watch-progress-notify-interval=5s
    - --name=cp1
    image: registry.k8s.io/etcd:3.5.21-0
    name: etcd
    volumeMounts:
    - mountPath: /var/lib/etcd
      name: etcd-data
  hostNetwork: true
  volumes:
  - hostPath:
      path: /var/lib/etcd
      type: DirectoryOrCreate
    name: etcd-data
"""


# -- flags and config ---------------------------------------------------------------------------

def test_unknown_flag_is_rejected():
    with pytest.raises(kubelet.FlagError, match="unknown flag: --no-such-flag"):
        kubelet.parse_flags(["--no-such-flag=1"])


def test_flags_env_file_is_read_like_systemd_expands_it(tmp_path):
    env_file = tmp_path / "kubeadm-flags.env"
    env_file.write_text('KUBELET_KUBEADM_ARGS="--container-runtime-endpoint=unix:///run/containerd/'
                        'containerd.sock --node-ip=198.51.100.12 --hostname-override=cp2"\n')
    flags = kubelet.effective_flags(["--root-dir", str(tmp_path)], str(env_file))
    assert flags["node-ip"] == "198.51.100.12" and flags["hostname-override"] == "cp2"
    assert flags["config"] == "/var/lib/kubelet/config.yaml"  # kubeadm's drop-in
    assert flags["cert-dir"] == str(tmp_path / "pki")


def test_missing_config_file_is_the_real_error(tmp_path, capsys):
    missing = tmp_path / "config.yaml"
    assert kubelet.main([f"--config={missing}", f"--root-dir={tmp_path}"]) == 1
    err = capsys.readouterr().err
    assert '"command failed" err="failed to load kubelet config file, path: ' in err
    assert f"open {missing}: no such file or directory" in err


def test_config_of_another_kind_is_rejected(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\n")
    with pytest.raises(kubelet.FlagError, match='no kind "InitConfiguration"'):
        kubelet.load_config(str(path))


# -- manifests ------------------------------------------------------------------------------------

def test_reference_kube_vip_manifest_maps_admin_conf_to_its_host_path():
    spec = pods.parse_manifest((REFERENCE / "v0.8.9-arp-controlplane-services-superadmin.yaml").read_text())
    assert spec.mounts == {"/etc/kubernetes/admin.conf": "/etc/kubernetes/super-admin.conf"}
    assert pods.process_argv(spec)[1:] == ["-m", "lab.sim.kube_vip", "manager"]
    env = pods.process_env(spec, "cp1", "198.51.100.11", {"PYTHONPATH": "/repo"})
    assert env["vip_nodename"] == "cp1" and env["address"] == "192.168.0.40"
    assert env["PYTHONPATH"] == "/repo" and env[pods.IMAGE_ENV] == "ghcr.io/kube-vip/kube-vip:v0.8.9"
    assert pods.host_path("/etc/kubernetes/admin.conf", env) == "/etc/kubernetes/super-admin.conf"
    assert pods.host_path("/etc/kubernetes/other.conf", env) is None
    assert pods.host_aliases(env) == {"kubernetes": "127.0.0.1"}


def test_etcd_runs_debian_etcd_with_flags_translated_for_3_4():
    spec = pods.parse_manifest(ETCD_MANIFEST)
    argv, notes = pods.translate_etcd_flags(pods.process_argv(spec))
    assert argv == ["/usr/bin/etcd", "--advertise-client-urls=https://198.51.100.11:2379",
                    "--data-dir=/var/lib/etcd", "--experimental-initial-corrupt-check=true",
                    "--experimental-watch-progress-notify-interval=5s", "--name=cp1"]
    assert len(notes) == 2


def test_etcd_flags_unknown_to_the_simulator_reach_etcd_unchanged():
    argv, notes = pods.translate_etcd_flags(["/usr/bin/etcd", "--bogus-flag=1", "--name=x"])
    assert argv == ["/usr/bin/etcd", "--bogus-flag=1", "--name=x"] and notes == []


def test_unknown_image_is_an_image_pull_error():
    spec = pods.parse_manifest(kube_vip_manifest({}, "/nonexistent/admin.conf", image="docker.io/library/nginx:1.27"))
    with pytest.raises(pods.ManifestError, match="ErrImagePull"):
        pods.process_argv(spec)


def test_two_containers_are_refused():
    text = ETCD_MANIFEST.replace("  hostNetwork: true", "  - name: second\n    image: x\n  hostNetwork: true")
    with pytest.raises(pods.ManifestError, match="exactly one container"):
        pods.parse_manifest(text)


# -- supervision of real processes ----------------------------------------------------------------

@pytest.fixture
def node(tmp_path, monkeypatch):
    """A kubelet (not its API thread) over a temporary root, pods run by this Python."""
    monkeypatch.setenv("PYTHONPATH", str(support.REPO))
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    port = support.free_port()
    flags = kubelet.effective_flags([f"--root-dir={tmp_path}", "--node-ip=127.0.0.1",
                                     "--hostname-override=cp1"], str(tmp_path / "none.env"))
    sim = sim_config.SimConfig(sim_config.Version.parse("1.32.4"), time_scale=0.01)
    node = kubelet.Kubelet(flags, {"staticPodPath": str(manifests), "healthzPort": port}, sim)
    node.manifests = manifests
    node.kubeconfig = str(tmp_path / "admin.conf")
    (tmp_path / "admin.conf").write_text("")
    node.port = port
    yield node
    node.stop_pods()
    if node.healthz is not None:
        node.healthz.shutdown()


def running(pod):
    return pod.process is not None and pod.process.poll() is None


BGP_ENV = {"bgp_enable": "true", "cp_enable": "true", "address": "198.51.100.254"}


def test_healthz_answers_ok(node):
    node.serve_healthz()
    with urllib.request.urlopen(f"http://127.0.0.1:{node.port}/healthz", timeout=2) as answer:
        assert answer.read() == b"ok"


def test_pod_starts_restarts_on_change_and_stops_when_the_file_goes(node):
    manifest = node.manifests / "kube-vip.yaml"
    manifest.write_text(kube_vip_manifest(BGP_ENV, node.kubeconfig))
    node.sync_pods()
    pod = node.pods[str(manifest)]
    first = pod.process
    support.wait_for(lambda: "not simulated" in Path(pod.log_path).read_text(), 10, what="kube-vip log")
    assert running(pod)
    node.sync_pods()
    assert pod.process is first  # same content: left alone

    manifest.write_text(kube_vip_manifest(dict(BGP_ENV, port="7443"), node.kubeconfig))
    node.sync_pods()
    second = node.pods[str(manifest)]
    assert first.poll() is not None and running(second) and second.process.pid != first.pid

    manifest.unlink()
    node.sync_pods()
    assert not node.pods and second.process is None


def test_crashing_pod_is_restarted_with_back_off(node):
    manifest = node.manifests / "kube-vip.yaml"
    manifest.write_text(kube_vip_manifest(dict(BGP_ENV, vip_leaseduration="five"), node.kubeconfig))
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        node.sync_pods()
        pod = node.pods[str(manifest)]
        if pod.restarts >= 3:
            break
        time.sleep(0.05)
    log = Path(pod.log_path).read_text()
    assert log.count('strconv.Atoi: parsing "five": invalid syntax') >= 3
    assert "Back-off 10s restarting failed container" in log
    assert "Back-off 20s restarting failed container" in log
    assert pod.backoff >= 40


def test_missing_host_path_becomes_a_directory_as_with_containerd(node, tmp_path):
    missing = tmp_path / "super-admin.conf"
    manifest = node.manifests / "kube-vip.yaml"
    manifest.write_text(kube_vip_manifest(BGP_ENV, str(missing)))
    node.sync_pods()
    assert missing.is_dir()
    assert "created as a directory" in Path(node.pods[str(manifest)].log_path).read_text()


def test_invalid_manifest_stops_the_pod_it_replaced(node):
    manifest = node.manifests / "kube-vip.yaml"
    manifest.write_text(kube_vip_manifest(BGP_ENV, node.kubeconfig))
    node.sync_pods()
    process = node.pods[str(manifest)].process
    manifest.write_text("kind: Pod\napiVersion: v1\nmetadata: {}\n")
    node.sync_pods()
    assert not node.pods
    assert process.poll() is not None


def test_stopping_the_kubelet_stops_its_pods(tmp_path):
    """The real kubelet leaves containers to the runtime; the lab's kubelet is the runtime."""
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    (manifests / "kube-vip.yaml").write_text(kube_vip_manifest(BGP_ENV, str(tmp_path / "admin.conf")))
    (tmp_path / "config.yaml").write_text(
        f"apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n"
        f"staticPodPath: {manifests}\nhealthzPort: {support.free_port()}\n")
    env = dict(os.environ, PYTHONPATH=str(support.REPO),
               LAB_SIM_CONFIG=support.sim_config(tmp_path, time_scale=0.01))
    proc = support.Proc([support.SYSTEM_PYTHON, "-m", "lab.sim.kubelet", f"--config={tmp_path / 'config.yaml'}",
                         f"--root-dir={tmp_path}", f"--kubeconfig={tmp_path / 'kubelet.conf'}",
                         f"--bootstrap-kubeconfig={tmp_path / 'bootstrap.conf'}", "--node-ip=127.0.0.1"],
                        tmp_path / "kubelet.log", env)
    log = tmp_path / "sim-logs" / "kube-vip.log"
    support.wait_for(lambda: "not simulated" in log.read_text(), 15, what="kube-vip started")
    pid = int(proc.output().split("(pid ")[1].split(")")[0])
    proc.stop()
    assert proc.popen.returncode == 0
    support.wait_for(lambda: not os.path.exists(f"/proc/{pid}") or
                     Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z", 5, what="pod stopped")
