"""``kubeadm reset``: remove this node's etcd member, stop the kubelet, delete kubeadm's files."""

import os
import shutil

import yaml

from lab.sim import etcd as etcd_mod
from lab.sim import k8sclient
from lab.sim.kubeadm import apiconfig, certs, preflight
from lab.sim.kubeadm import paths as P
from lab.sim.kubeadm.errors import KubeadmError
from lab.sim.kubeadm.flags import BOOL, STRING, STRINGS, check_mixed_arguments, parse
from lab.sim.kubeadm.runtime import ns_path

RESET_FLAGS = {
    "cert-dir": (STRING, P.PKI_DIR, None),
    "cleanup-tmp-dir": (BOOL, "false", None),
    "config": (STRING, "", None),
    "cri-socket": (STRING, "", None),
    "dry-run": (BOOL, "false", None),
    "force": (BOOL, "false", "f"),
    "ignore-preflight-errors": (STRINGS, "", None),
    "kubeconfig": (STRING, P.ADMIN_CONF, None),
    "skip-phases": (STRINGS, "", None),
}

NOTICES = """
The reset process does not clean CNI configuration. To do so, you must remove /etc/cni/net.d

The reset process does not reset or clean up iptables rules or IPVS tables.
If you wish to reset iptables, you must do so manually by using the "iptables" command.

If your cluster was setup to utilize IPVS, run ipvsadm --clear (or similar)
to reset your system's IPVS tables.

The reset process does not clean your kubeconfig files and you must remove them manually.
Please, check the contents of the $HOME/.kube/config file.
"""


def files_to_delete(version):
    names = [P.ADMIN_CONF] + ([P.SUPER_ADMIN_CONF] if version >= (1, 29) else []) + [
        P.KUBELET_CONF, P.BOOTSTRAP_KUBELET_CONF, P.CONTROLLER_MANAGER_CONF, P.SCHEDULER_CONF]
    return names


def dirs_to_clean(cert_dir):
    return [P.MANIFESTS_DIR, P.KUBELET_DIR, cert_dir]


def clean_dir(path):
    """Delete the contents of ``path``, keeping the directory (kubeadm's CleanDir)."""
    try:
        entries = os.listdir(path)
    except FileNotFoundError:
        return
    for entry in entries:
        full = os.path.join(path, entry)
        if os.path.isdir(full) and not os.path.islink(full):
            shutil.rmtree(full, ignore_errors=True)
        else:
            try:
                os.remove(full)
            except FileNotFoundError:
                pass


def _local_etcd_pod(paths):
    try:
        with open(paths.manifest("etcd"), encoding="utf-8") as handle:
            return yaml.safe_load(handle)
    except (OSError, yaml.YAMLError):
        return None


def _flag_of(pod, flag):
    for arg in ((pod.get("spec") or {}).get("containers") or [{}])[0].get("command") or []:
        if arg.startswith(f"--{flag}="):
            return arg.split("=", 1)[1]
    return None


def remove_etcd_member(rt, cert_dir, pod):
    """Remove the member whose peer URL is this node's, through the cluster's etcd."""
    peer_url = _flag_of(pod, "initial-advertise-peer-urls")
    endpoints = ["https://127.0.0.1:2379"]
    advertised = _flag_of(pod, "advertise-client-urls")
    if advertised:
        endpoints.append(advertised)
    store = certs.Pki(rt.paths, cert_dir)
    try:
        etcd = etcd_mod.Etcd(endpoints, ca_file=store.file("etcd/ca.crt"),
                             cert_file=store.file("apiserver-etcd-client.crt"),
                             key_file=store.file("apiserver-etcd-client.key"), timeout=5.0)
        members = etcd.member_list()
        mine = next((m for m in members if peer_url in (m.get("peer_urls") or [])), None)
        if mine is not None:
            if len(members) == 1:
                return  # the last member: nothing to leave
            etcd.member_remove(mine["id"])
    except (etcd_mod.EtcdError, OSError, ValueError) as exc:
        rt.klog("W", f"[reset] Failed to remove etcd member: {exc}, please manually remove this etcd member "
                     "using etcdctl", "removeetcdmember.go:106")


def run_reset(rt, argv):
    flags, args = parse(argv, RESET_FLAGS)
    if args:
        raise KubeadmError(f'unknown command "{args[0]}" for "kubeadm reset"')
    check_mixed_arguments(flags)
    if flags["dry-run"]:
        raise KubeadmError("the lab simulator does not implement --dry-run")
    cert_dir = flags["cert-dir"]
    force = flags["force"]
    ignore_from_config = []
    if flags.is_set("config"):
        from lab.sim.kubeadm.init_cmd import read_config_file
        found, warnings = apiconfig.split_documents(read_config_file(flags["config"]), rt.version)
        for warning in warnings:
            rt.klog("W", warning, "common.go:101")
        reset_cfg = found.get("ResetConfiguration") or {}
        cert_dir = reset_cfg.get("certificatesDir", cert_dir)
        force = force or bool(reset_cfg.get("force"))
        ignore_from_config = reset_cfg.get("ignorePreflightErrors") or []
    ignored = preflight.parse_ignore_list(flags["ignore-preflight-errors"], ignore_from_config)

    kubeconfig_path = flags["kubeconfig"]
    cluster_answered = False
    if os.path.exists(rt.paths(kubeconfig_path)):
        rt.say("[reset] Reading configuration from the cluster...")
        rt.say("[reset] FYI: You can look at this config file with 'kubectl -n kube-system get cm kubeadm-config -o yaml'")
        try:
            stored = rt.client(kubeconfig_path, timeout=5.0).get(ns_path("kube-system", "configmaps", "kubeadm-config"))
            cluster = apiconfig.decode_stored_cluster(stored["data"]["ClusterConfiguration"], rt.version)
            cert_dir = cluster["certificatesDir"] if not flags.is_set("cert-dir") else cert_dir
            cluster_answered = True
        except (k8sclient.ApiError, k8sclient.TransportError, KeyError, KubeadmError, ValueError) as exc:
            rt.klog("W", f"[reset] Unable to fetch the kubeadm-config ConfigMap from cluster: failed to get "
                         f"config map: {exc}", "reset.go:124")
    else:
        rt.klog("W", f"[reset] Unable to load admin kubeconfig: open {kubeconfig_path}: no such file or directory",
                "reset.go:124")

    if not force:
        rt.klog("W", "[reset] WARNING: Changes made to this host by 'kubeadm init' or 'kubeadm join' will be reverted.",
                "reset.go:138")
        rt.out.write("[reset] Are you sure you want to proceed? [y/N]: ")
        rt.out.flush()
        answer = rt.stdin.readline().strip().lower()
        if answer not in ("y", "yes"):
            raise KubeadmError("aborted reset operation")

    rt.say("[preflight] Running pre-flight checks")
    preflight.run_checks([preflight.root_check(rt.host)], ignored, rt.warn)

    pod = _local_etcd_pod(rt.paths)
    if pod is not None:
        data_dir = _flag_of(pod, "data-dir") or P.ETCD_DATA_DIR
        if cluster_answered:
            remove_etcd_member(rt, cert_dir, pod)
        else:
            rt.say("[reset] No kubeadm config, using etcd pod spec to get data directory")
        clean_dir(rt.paths(data_dir))
        rt.say(f"[reset] Deleted contents of the etcd data directory: {data_dir}")

    rt.say("[reset] Stopping the kubelet service")
    if rt.host.systemctl("stop", "kubelet") != 0:
        rt.klog("W", "[reset] The kubelet service could not be stopped by kubeadm: "
                     f"[{getattr(rt.host, 'last_systemctl_error', '')}]", "cleanupnode.go:80")
    rt.say(f'[reset] Unmounting mounted directories in "{P.KUBELET_DIR}"')
    dirs = dirs_to_clean(cert_dir)
    rt.say(f"[reset] Deleting contents of directories: [{' '.join(dirs)}]")
    for directory in dirs:
        clean_dir(rt.paths(directory))
    files = files_to_delete(rt.version)
    rt.say(f"[reset] Deleting files: [{' '.join(files)}]")
    for name in files:
        try:
            os.remove(rt.paths(name))
        except FileNotFoundError:
            pass
    rt.out.write(NOTICES)
    rt.out.flush()
    return 0
