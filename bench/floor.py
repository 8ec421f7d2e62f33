"""The floor: the eight steps by a plain script over SSH, no Ansible.

The same kubeadm work and the same waits as playbooks/site.yml, each one SSH command to the node
(through the lab's ssh_config, with its ControlMaster, as Ansible connects): what any bootstrap
tool must at least spend. Control planes join one at a time (etcd changes one member at a time);
workers join in parallel with one fresh token made right before, as the playbook's worker play does.

The kubeadm configurations and the kube-vip manifests are the product's own: rendered by the
collection's module_utils (_kubeadm, _kube_vip) from the variables site.yml's roles see, i.e. their
defaults overlaid with the lab inventory's group_vars/all.yml (cgroup driver, KubeletConfiguration,
KubeProxyConfiguration, ignored preflight errors, pod subnet, kube-vip version, ...). So floor and
site.yml run kubeadm with the same documents; only the orchestration differs.

    floor.bootstrap(lab)  # -> {"phases": {name: seconds}, "total": seconds, "ssh_commands": n,
                          #     "commands": [[node, what, seconds], ...]}
"""

import json
import os
import shlex
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / ".collections"))

# pylint: disable=wrong-import-position
from ansible_collections.vipadm.kubeadm.plugins.module_utils import _kube_vip  # noqa: E402
from ansible_collections.vipadm.kubeadm.plugins.module_utils import _kubeadm  # noqa: E402
from ansible_collections.vipadm.kubeadm.plugins.module_utils import _vip_probe  # noqa: E402

# The roles whose variables the floor's steps use; their defaults come first, the inventory's group_vars after.
ROLE_DEFAULTS = [REPO / "roles" / role / "defaults" / "main.yml" for role in ("kube_vip", "control_plane", "worker")]
VERIFY_DEFAULTS = REPO / "roles" / "verify" / "defaults" / "main.yml"
# The paths of the modules and roles (plugins/modules/init.py, join.py; roles/verify/vars).
INIT_CONFIG = "/etc/kubernetes/vipadm/kubeadm-init.yaml"
JOIN_CONFIG = "/etc/kubernetes/vipadm/kubeadm-join.yaml"
MANIFEST = "/etc/kubernetes/manifests/kube-vip.yaml"
SUPER_ADMIN = "/etc/kubernetes/super-admin.conf"
ADMIN = "/etc/kubernetes/admin.conf"
CA = "/etc/kubernetes/pki/ca.crt"
KUBELET_CREDENTIAL = "/var/lib/kubelet/pki/kubelet-client-current.pem"
POLL = 0.2  # seconds between probes: the floor polls often; each probe is one curl inside the node
ENABLE_KUBELET = "{ systemctl is-enabled kubelet >/dev/null 2>&1 || systemctl enable kubelet; }"
CREDENTIAL_TRIES = 100  # x POLL + kubeadm's own time: well beyond a kube-vip leader change
CERTIFICATE_KEY_MARK = "--- certificate key ---"


class FloorError(RuntimeError):
    """A step of the floor failed; the message names the node, the command and its output."""


def settings(inventory_dir):
    """The variables site.yml's roles see: their defaults, then the inventory's group_vars/all.yml.

    Only plain values: a templated one ({{ ... }}) would need Ansible to resolve, which the floor has not.
    """
    merged = {}
    for path in [*ROLE_DEFAULTS, VERIFY_DEFAULTS, Path(inventory_dir) / "group_vars" / "all.yml"]:
        merged.update(yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {})
    templated = sorted(name for name, value in merged.items() if "{{" in json.dumps(value) or "{%" in json.dumps(value))
    if templated:
        raise FloorError(f"the floor takes plain values only; templated: {', '.join(templated)}")
    return merged


class Cluster:
    """What the floor renders from the settings: the endpoint, the kubeadm documents, the kube-vip manifest."""

    def __init__(self, variables, vip):
        self.vars = variables
        self.vip = vip
        self.port = int(variables["kube_vip_port"])
        host = f"[{vip}]" if ":" in vip else vip
        self.endpoint = f"{host}:{self.port}"  # roles/control_plane/vars: control_plane_endpoint
        self.version = str(variables["vipadm_kubernetes_version"])

    def _optional(self, name):
        return self.vars.get(name) or None  # the roles' `or omit`: an empty value leaves kubeadm's default

    def init_config(self):
        """What vipadm.kubeadm.init writes for roles/control_plane/tasks/init.yml's parameters."""
        params = {"kubernetes_version": self.version, "control_plane_endpoint": self.endpoint, "bind_port": self.port,
                  "advertise_address": self._optional("control_plane_advertise_address"),
                  "cri_socket": self._optional("control_plane_cri_socket"),
                  "pod_subnet": self._optional("control_plane_pod_subnet"),
                  "service_subnet": self._optional("control_plane_service_subnet"),
                  "cert_sans": self.vars["control_plane_cert_sans"],
                  "image_repository": self._optional("control_plane_image_repository"),
                  "ignore_preflight_errors": self.vars["control_plane_ignore_preflight_errors"],
                  "extra_args": self._optional("control_plane_extra_args"),
                  "cgroup_driver": self.vars["vipadm_cgroup_driver"],
                  "kubelet_config": self._optional("control_plane_kubelet_config"),
                  "kube_proxy_config": self._optional("control_plane_kube_proxy_config")}
        return _kubeadm.to_yaml_documents(_kubeadm.init_documents(params))

    def join_config(self, credentials, control_plane):
        """What vipadm.kubeadm.join writes for roles/control_plane/tasks/join.yml (or roles/worker)'s parameters."""
        prefix = "control_plane" if control_plane else "worker"
        params = {"control_plane": control_plane, "api_endpoint": credentials["api_endpoint"] or self.endpoint,
                  "token": credentials["token"], "ca_cert_hash": credentials["ca_cert_hashes"],
                  "certificate_key": credentials["certificate_key"], "kubernetes_version": self.version,
                  "cri_socket": self._optional(f"{prefix}_cri_socket"),
                  "ignore_preflight_errors": self.vars[f"{prefix}_ignore_preflight_errors"]}
        if control_plane:
            params.update(bind_port=self.port, advertise_address=self._optional("control_plane_advertise_address"))
        _kubeadm.validate_join_credentials(params)
        return _kubeadm.to_yaml(_kubeadm.join_document(params))

    def kube_vip_options(self, kubeconfig):
        """The options roles/kube_vip/tasks/main.yml gives the kube_vip_manifest module (ARP, interface eth0:
        the default-route interface of every lab node, which preflight_facts reports)."""
        v = self.vars
        if v["kube_vip_mode"] != "arp":
            raise FloorError("the floor renders ARP mode only (kube_vip_mode: arp)")
        return {"kind": "pod", "version": v["kube_vip_version"], "address": self.vip,
                "interface": v["kube_vip_interface"] or "eth0", "port": self.port, "controlplane": True,
                "services": v["kube_vip_services"], "arp": True, "leader_election": v["kube_vip_leader_election"],
                "lease_duration": v["kube_vip_lease_duration"], "renew_deadline": v["kube_vip_renew_deadline"],
                "retry_period": v["kube_vip_retry_period"], "image": v["kube_vip_image"] or None,
                "k8s_config_path": kubeconfig}

    def kube_vip_manifest(self, kubeconfig):
        return _kube_vip.render(self.kube_vip_options(kubeconfig))

    def kube_vip_lease(self):
        return _kube_vip.control_plane_lease(self.kube_vip_options(ADMIN))


class Shell:
    """One SSH command per call, through the lab's ssh_config (ControlMaster, lab key, known hosts)."""

    def __init__(self, ssh_config, timeout):
        self.ssh_config = str(ssh_config)
        self.timeout = timeout
        self.log = []  # [node, what, seconds] of every command, in the order they ended

    def run(self, node, script, stdin=None, what=None):
        argv = ["ssh", "-F", self.ssh_config, "-o", "BatchMode=yes", node, "sh -ec " + shlex.quote(script)]
        started = time.monotonic()
        result = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=self.timeout + 60,
                                check=False)
        self.log.append([node, what or script.split(";")[0][:60], round(time.monotonic() - started, 2)])
        if result.returncode != 0:
            shown = script if stdin is None or len(script) < 400 else script[:400] + "..."
            raise FloorError(f"{node}: `{shown}` failed (rc {result.returncode}):\n{result.stdout[-3000:]}"
                             f"\n{result.stderr[-3000:]}")
        return result.stdout

    def write(self, node, path, text, then="", what=None):
        """Write `text` to `path` (0600, atomically), then run `then` in the same SSH command. The temporary
        file is hidden (a dot name, as the collection's write_atomic makes it): the kubelet takes every other
        file in its static Pod directory for a Pod, and a second kube-vip Pod there delays kube-vip's restart."""
        directory, name = os.path.split(path)
        temporary = f"{directory}/.{name}.tmp"
        self.run(node, f"(umask 077; mkdir -p {directory}; cat > {temporary}); mv {temporary} {path}"
                       + (f"; {then}" if then else ""), stdin=text, what=what or f"write {path}")


class Floor:
    """The eight steps on one prepared lab."""

    def __init__(self, lab, parallel=20):
        self.cluster = Cluster(settings(lab.inventory_path), lab.vip)
        self.timeout = int(self.cluster.vars["control_plane_vip_timeout"])
        self.shell = Shell(lab.ssh_config_path, self.timeout)
        self.control_planes = [n.name for n in lab.nodes if n.role == "control_plane"]
        self.workers = [n.name for n in lab.nodes if n.role == "worker"]
        self.init_node = self.control_planes[0]
        self.parallel = parallel

    def wait_for_vip(self, node, trusted=True):
        """Until the API server answers /livez through the VIP, probed from `node` (as wait_for_vip does);
        before a join the node has no cluster CA yet."""
        trust = f"--cacert {CA}" if trusted else "-k"
        url = f"https://{self.cluster.endpoint}/livez"
        self.shell.run(node, f"timeout {self.timeout} sh -c 'until curl -sf -o /dev/null --max-time 2 {trust} "
                             f"{url}; do sleep {POLL}; done'", what="wait for the VIP")

    def wait_for_kube_vip_restart(self, node):
        """Until the kubelet has replaced `node`'s kube-vip after its manifest changed: wait_for_vip's own
        after_kube_vip_restart loop, with the VIP check and the Lease read done over SSH."""
        lease = self.cluster.kube_vip_lease()
        read = f"kubectl --kubeconfig {ADMIN} -n {lease['namespace']} get lease {lease['name']} -o json || true"
        changed_at = float(self.shell.run(node, f"date -r {MANIFEST} +%s.%N", what="manifest mtime"))
        result = _vip_probe.wait_for_kube_vip_restart(
            self.cluster.vip, changed_at, lambda: json.loads(self.shell.run(node, read, what="read the Lease")),
            self.timeout, sleep=POLL,
            is_local=lambda address: bool(self.shell.run(node, f"ip -o addr show to {address}",
                                                         what="VIP on this node?").strip()))
        if not result["restarted"]:
            raise FloorError(f"{node}: kube-vip was not replaced within {self.timeout} s after its manifest "
                             f"changed: {result['reason']}")

    def credentials(self, control_plane):
        """A new token (and certificate key for a control plane) made on the init node right before a join:
        what vipadm.kubeadm.join_credentials runs, parsed by the same functions."""
        ttl = self.cluster.vars["control_plane_token_ttl" if control_plane else "worker_token_ttl"]
        script = shlex.join(_kubeadm.token_create_argv("kubeadm", ADMIN, ttl))
        if control_plane:
            script = (f'out=$({script}) && key=$({shlex.join(_kubeadm.upload_certs_argv("kubeadm", ADMIN))}) && '
                      f'printf "%s\\n{CERTIFICATE_KEY_MARK}\\n%s\\n" "$out" "$key"')
        # kubeadm talks to the API through the VIP (admin.conf), which is gone for a moment whenever a
        # leading kube-vip restarts: retry, as a careful admin's script would.
        out = self.shell.run(self.init_node, f"for i in $(seq {CREDENTIAL_TRIES}); do if {script}; then exit 0; fi; "
                                             f"sleep {POLL}; done; exit 1", what="join credentials")
        join_text, _, key_text = out.partition(CERTIFICATE_KEY_MARK)
        parsed = _kubeadm.parse_join_command(join_text)
        parsed["certificate_key"] = _kubeadm.parse_upload_certs_output(key_text) if control_plane else None
        if not parsed["token"] or (control_plane and not parsed["certificate_key"]):
            raise FloorError(f"{self.init_node}: no join command or certificate key in {out!r}")
        return parsed

    def join(self, node, credentials, control_plane):
        """Enable the kubelet and run kubeadm join with the product's JoinConfiguration; the config (it holds
        the token and the certificate key) is removed afterwards, as the join module does."""
        config = self.cluster.join_config(credentials, control_plane)
        join = shlex.join(_kubeadm.join_argv("kubeadm", JOIN_CONFIG))
        self.shell.write(node, JOIN_CONFIG, config, then=f"{ENABLE_KUBELET}; rc=0; {join} || rc=$?; "
                                                         f"rm -f {JOIN_CONFIG}; exit $rc",
                         what="kubeadm join --control-plane" if control_plane else "kubeadm join")

    def verify(self, node):
        """The node's own Node through the VIP with its kubelet credential (the verify role's check, with
        its retries: a kubelet that just joined registers its Node a moment later)."""
        retries = int(self.cluster.vars["verify_retries"])
        url = f"https://{self.cluster.endpoint}/api/v1/nodes/{node}"
        self.shell.run(node, f"i=0; until curl -sf -o /dev/null --max-time 10 --cacert {CA} "
                             f"--cert {KUBELET_CREDENTIAL} {url}; do i=$((i+1)); [ $i -le {retries} ]; sleep 1; done",
                       what="verify: read its own Node")

    def etcd_members(self):
        out = self.shell.run(self.init_node, "curl -sf --max-time 10 --cacert /etc/kubernetes/pki/etcd/ca.crt "
                                             "--cert /etc/kubernetes/pki/etcd/healthcheck-client.crt "
                                             "--key /etc/kubernetes/pki/etcd/healthcheck-client.key "
                                             "-X POST -d '{}' https://127.0.0.1:2379/v3/cluster/member/list",
                             what="verify: etcd members")
        return sorted(member.get("name", "") for member in json.loads(out).get("members", []))

    def run(self):
        """Bare (prepared) lab nodes -> HA control plane + workers. Returns the time of each phase."""
        shell, cluster, init_node = self.shell, self.cluster, self.init_node
        joining = self.control_planes[1:]
        phases = {}
        started = last = time.monotonic()

        def mark(name):
            nonlocal last
            now = time.monotonic()
            phases[name] = now - last
            last = now

        # Steps 1-6: kube-vip on super-admin.conf, kubeadm init with the VIP as endpoint, the VIP answers.
        # The kubelet gets enabled with the init, as the init module does (kubeadm starts it, never enables it).
        shell.write(init_node, MANIFEST, cluster.kube_vip_manifest(SUPER_ADMIN), what="kube-vip manifest")
        shell.write(init_node, INIT_CONFIG, cluster.init_config(),
                    then=f"{ENABLE_KUBELET}; {shlex.join(_kubeadm.init_argv('kubeadm', INIT_CONFIG))}",
                    what="kubeadm init")
        self.wait_for_vip(init_node)
        mark("init (steps 1-6)")
        # Step 7: one control plane at a time, fresh credentials right before each join.
        for node in joining:
            credentials = self.credentials(control_plane=True)
            self.wait_for_vip(node, trusted=False)
            self.join(node, credentials, control_plane=True)
            self.wait_for_vip(node)
        mark("control plane joins (step 7)")
        # Step 8: kube-vip on the joined control planes, then the init node back to admin.conf.
        for node in joining:
            shell.write(node, MANIFEST, cluster.kube_vip_manifest(ADMIN), what="kube-vip manifest")
            self.wait_for_vip(node)
        shell.write(init_node, MANIFEST, cluster.kube_vip_manifest(ADMIN), what="kube-vip manifest")
        self.wait_for_kube_vip_restart(init_node)
        self.wait_for_vip(init_node)
        mark("kube-vip on every control plane (step 8)")
        if self.workers:
            credentials = self.credentials(control_plane=False)

            def join_worker(node):
                self.wait_for_vip(node, trusted=False)
                self.join(node, credentials, control_plane=False)

            with ThreadPoolExecutor(max_workers=self.parallel) as pool:
                list(pool.map(join_worker, self.workers))
        mark("worker joins")
        with ThreadPoolExecutor(max_workers=self.parallel) as pool:
            list(pool.map(self.verify, self.control_planes + self.workers))
        members = self.etcd_members()
        if members != sorted(self.control_planes):
            raise FloorError(f"etcd members {members}, expected {sorted(self.control_planes)}")
        mark("verify")
        return {"phases": phases, "total": time.monotonic() - started, "ssh_commands": len(shell.log),
                "commands": shell.log}


def bootstrap(lab, parallel=20):
    """Bare (prepared) lab nodes -> HA control plane + workers: {"phases", "total", "ssh_commands", "commands"}."""
    return Floor(lab, parallel).run()
