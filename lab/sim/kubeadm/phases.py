"""Workflow phases shared by init and join: kubelet-start, the health waits, and API objects."""

import copy
import ipaddress
import os

import yaml

from lab.sim import k8sclient, kubeconfig, pki
from lab.sim.kubeadm import copycerts, output, tokens
from lab.sim.kubeadm import paths as P
from lab.sim.kubeadm.apiconfig import invalid  # noqa: F401  (re-exported for callers)
from lab.sim.kubeadm.certs import SHARED_FILES, url_host
from lab.sim.kubeadm.errors import KubeadmError, PhaseError
from lab.sim.kubeadm.runtime import (
    cluster_role_binding, create_if_missing, create_or_update, elapsed_text, kubelet_healthy, ns_path,
    poll, rbac_path, role, role_binding,
)

KUBELET_HEALTHZ = "http://127.0.0.1:10248/healthz"
CONTROL_PLANE_LABELS = ["node-role.kubernetes.io/control-plane",
                        "node.kubernetes.io/exclude-from-external-load-balancers"]
CONTROL_PLANE_TAINT = "node-role.kubernetes.io/control-plane:NoSchedule"


def timed_out_text(version):
    return "timed out waiting for the condition" if version < (1, 31) else "context deadline exceeded"


# -- kubelet-start -------------------------------------------------------------------------------


def kubelet_configuration(cluster, user_config=None):
    service = ipaddress.ip_network(cluster["networking"]["serviceSubnet"].split(",")[0], strict=False)
    config = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "authentication": {"anonymous": {"enabled": False}, "webhook": {"cacheTTL": "0s", "enabled": True},
                           "x509": {"clientCAFile": f"{cluster['certificatesDir']}/ca.crt"}},
        "authorization": {"mode": "Webhook",
                          "webhook": {"cacheAuthorizedTTL": "0s", "cacheUnauthorizedTTL": "0s"}},
        "cgroupDriver": "systemd",
        "clusterDNS": [str(service.network_address + 10)],
        "clusterDomain": cluster["networking"]["dnsDomain"],
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": 10248,
        "rotateCertificates": True,
        "staticPodPath": P.MANIFESTS_DIR,
    }
    for key, value in (user_config or {}).items():
        if key not in ("apiVersion", "kind"):
            config[key] = value
    return config


def _flags_env(registration, version, image_repository, hostname):
    flags = {"container-runtime-endpoint": registration["criSocket"]}
    if version < (1, 31):
        flags["pod-infra-container-image"] = f"{image_repository}/pause:3.9"
    if registration["name"] != hostname:
        flags["hostname-override"] = registration["name"]
    for item in registration.get("kubeletExtraArgs") or []:
        flags[item["name"]] = item["value"]
    args = " ".join(f"--{name}={value}" for name, value in sorted(flags.items()))
    return f'KUBELET_KUBEADM_ARGS="{args}"\n'


def write_kubelet_files(rt, kubelet_config, registration, image_repository, join=False):
    flags_line = f'[kubelet-start] Writing kubelet environment file with flags to file "{P.KUBELET_FLAGS_ENV}"'
    config_line = f'[kubelet-start] Writing kubelet configuration to file "{P.KUBELET_CONFIG}"'

    def write_flags():
        rt.say(flags_line)
        pki.write_file(rt.paths(P.KUBELET_FLAGS_ENV),
                       _flags_env(registration, rt.version, image_repository, rt.host.hostname()), 0o644)

    def write_config():
        if rt.version >= (1, 34):
            rt.say(f'[kubelet-start] Writing kubelet configuration to file "{P.KUBELET_INSTANCE_CONFIG}"')
            instance = {"apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
                        "containerRuntimeEndpoint": registration["criSocket"]}
            pki.write_file(rt.paths(P.KUBELET_INSTANCE_CONFIG), yaml.safe_dump(instance), 0o644)
            rt.say('[patches] Applied patch of type "application/strategic-merge-patch+json" to target '
                   '"kubeletconfiguration"')
        rt.say(config_line)
        merged = dict(kubelet_config, containerRuntimeEndpoint=registration["criSocket"])
        pki.write_file(rt.paths(P.KUBELET_CONFIG), yaml.safe_dump(merged, sort_keys=True), 0o644)

    if join and rt.version < (1, 34):
        write_config()
        write_flags()
    elif join:
        write_config()
        write_flags()
    else:
        write_flags()
        write_config()


def start_kubelet(rt):
    rt.say("[kubelet-start] Starting the kubelet")
    if rt.host.systemctl("restart", "kubelet") != 0:
        rt.warn(f"\t[WARNING]: unable to start the kubelet service: [{getattr(rt.host, 'last_systemctl_error', '')}]")
        rt.say("[kubelet-start] Please ensure kubelet is reloaded and running manually.")


def wait_kubelet(rt, timeout_seconds, phase):
    """The ``[kubelet-check]`` of 1.30+ (1.31+ names the URL)."""
    limit = rt.scaled(timeout_seconds)
    shown = go_limit(timeout_seconds)
    where = f" at {KUBELET_HEALTHZ}" if rt.version >= (1, 31) else ""
    rt.say(f"[kubelet-check] Waiting for a healthy kubelet{where}. This can take up to {shown}")
    ok, elapsed = poll(limit, kubelet_healthy)
    if ok:
        rt.say(f"[kubelet-check] The kubelet is healthy after {elapsed_text(elapsed)}")
        return
    rt.say(f"[kubelet-check] The kubelet is not healthy after {elapsed_text(elapsed)}")
    rt.say("")
    rt.say(output.KUBELET_FAILURE_HELP.rstrip("\n"))
    rt.say("")
    raise PhaseError(phase, KubeadmError(
        "failed while waiting for the kubelet to start: The HTTP call equal to 'curl -sSL "
        f"{KUBELET_HEALTHZ}' returned error: Get \"{KUBELET_HEALTHZ}\": {timed_out_text(rt.version)}"))


def go_limit(seconds):
    """The unscaled timeout as kubeadm prints it (``4m0s``): the text does not change with time_scale."""
    return elapsed_text(seconds)


# -- wait-control-plane ----------------------------------------------------------------------------


def _api_healthy_through(rt, conf):
    client = rt.client(conf)

    def attempt():
        try:
            return client.request("GET", "/healthz", raw=True).strip() == b"ok"
        except (k8sclient.ApiError, k8sclient.TransportError):
            return False
    return attempt


def wait_control_plane(rt, advertise_address, bind_port, timeout_seconds, cri_socket, kubelet_timeout):
    """wait-control-plane per version (reference §5)."""
    v = rt.version
    rt.say('[wait-control-plane] Waiting for the kubelet to boot up the control plane as static Pods from '
           f'directory "{P.MANIFESTS_DIR}"' + (f". This can take up to {go_limit(timeout_seconds)}"
                                              if v < (1, 30) else ""))
    if v < (1, 30):
        limit = rt.scaled(timeout_seconds)
        check = _api_healthy_through(rt, P.ADMIN_CONF)
        initial = rt.scaled(40)
        state = {"warned": False}

        def attempt():
            if check():
                return True
            if not state["warned"] and elapsed_since(state) >= initial:
                state["warned"] = True
                rt.say("[kubelet-check] Initial timeout of 40s passed.")
            return False

        import time as _time
        state["start"] = _time.monotonic()
        ok, elapsed = poll(limit, attempt)
        if ok:
            rt.say(f"[apiclient] All control plane components are healthy after {elapsed:.6f} seconds")
            return
        rt.say(output.legacy_wait_failure_help(timed_out_text(v), cri_socket).rstrip("\n"))
        raise PhaseError("wait-control-plane", KubeadmError("couldn't initialize a Kubernetes cluster"))

    wait_kubelet(rt, kubelet_timeout, "wait-control-plane")
    if v < (1, 33):
        rt.say(f"[api-check] Waiting for a healthy API server. This can take up to {go_limit(timeout_seconds)}")
        ok, elapsed = poll(rt.scaled(timeout_seconds), _api_healthy_through(rt, P.ADMIN_CONF))
        if ok:
            rt.say(f"[api-check] The API server is healthy after {elapsed_text(elapsed)}")
            return
        rt.say(f"[api-check] The API server is not healthy after {elapsed_text(elapsed)}")
        if v < (1, 31):
            rt.say(output.legacy_wait_failure_help(timed_out_text(v), cri_socket).rstrip("\n"))
            raise PhaseError("wait-control-plane", KubeadmError("couldn't initialize a Kubernetes cluster"))
        rt.say("")
        rt.say(output.control_plane_failure_help(cri_socket).rstrip("\n"))
        rt.say("")
        raise PhaseError("wait-control-plane", KubeadmError(
            f"could not initialize a Kubernetes cluster: {timed_out_text(v)}"))
    wait_components(rt, advertise_address, bind_port, timeout_seconds, cri_socket)


def elapsed_since(state):
    import time as _time
    return _time.monotonic() - state["start"]


def wait_components(rt, advertise_address, bind_port, timeout_seconds, cri_socket):
    """1.33+: each component's own health endpoint, locally."""
    import threading
    components = [
        ("kube-apiserver", f"https://{url_host(advertise_address)}:{bind_port}", "/livez"),
        ("kube-controller-manager", "https://127.0.0.1:10257", "/healthz"),
        ("kube-scheduler", "https://127.0.0.1:10259", "/livez"),
    ]
    rt.say(f"[control-plane-check] Waiting for healthy control plane components. This can take up to "
           f"{go_limit(timeout_seconds)}")
    for name, base, path in components:
        rt.say(f"[control-plane-check] Checking {name} at {base}{path}")
    results, lock = {}, threading.Lock()
    limit = rt.scaled(timeout_seconds)

    def watch(name, base, path):
        client = k8sclient.Client(base, insecure=True, timeout=10.0, user_agent=f"kubeadm/{rt.version}")
        last = {"error": None}

        def attempt():
            try:
                return client.request("GET", path, raw=True).strip() == b"ok"
            except (k8sclient.ApiError, k8sclient.TransportError) as exc:
                last["error"] = exc
                return False
        ok, elapsed = poll(limit, attempt)
        with lock:
            results[name] = (ok, elapsed, last["error"])
            if ok:
                rt.say(f"[control-plane-check] {name} is healthy after {elapsed_text(elapsed)}")
            else:
                rt.say(f"[control-plane-check] {name} is not healthy after {elapsed_text(elapsed)}")

    threads = [threading.Thread(target=watch, args=c, daemon=True) for c in components]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    failed = [(name, base + path, results[name][2]) for name, base, path in components if not results[name][0]]
    if failed:
        rt.say("")
        rt.say(output.control_plane_failure_help(cri_socket).rstrip("\n"))
        rt.say("")
        details = ", ".join(f"{name} check failed at {url}: {error or timed_out_text(rt.version)}"
                            for name, url, error in failed)
        raise PhaseError("wait-control-plane", KubeadmError(
            f"failed while waiting for the control plane to start: [{details}]"))


# -- API objects ---------------------------------------------------------------------------------


def ensure_admin_binding(rt, timeout_seconds):
    """1.29+: create ClusterRoleBinding kubeadm:cluster-admins, with super-admin.conf when forbidden."""
    binding = cluster_role_binding("kubeadm:cluster-admins", "cluster-admin",
                                   [("Group", "kubeadm:cluster-admins")])
    admin = rt.client(P.ADMIN_CONF)
    state = {"error": None, "client": admin}

    def attempt():
        try:
            state["client"].create(rbac_path("clusterrolebindings"), binding)
            return True
        except k8sclient.ApiError as exc:
            if exc.status == 409:
                return True
            if exc.status == 403 and state["client"] is admin and os.path.exists(rt.paths(P.SUPER_ADMIN_CONF)):
                state["client"] = rt.client(P.SUPER_ADMIN_CONF)
                return attempt()
            state["error"] = exc
        except k8sclient.TransportError as exc:
            state["error"] = exc
        return False

    ok, _elapsed = poll(rt.scaled(timeout_seconds), attempt, interval=1.0)
    if not ok:
        raise KubeadmError("could not bootstrap the admin user in file admin.conf: unable to create "
                           f"ClusterRoleBinding: {state['error'] or timed_out_text(rt.version)}")


def _configmap(name, namespace, data):
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace},
            "data": data}


def upload_config(rt, client, cluster_yaml, kubelet_config):
    rt.say('[upload-config] Storing the configuration used in ConfigMap "kubeadm-config" in the '
           '"kube-system" Namespace')
    create_or_update(client, ns_path("kube-system", "configmaps"),
                     _configmap("kubeadm-config", "kube-system", {"ClusterConfiguration": cluster_yaml}))
    create_or_update(client, rbac_path("roles", "kube-system"), role(
        "kubeadm:nodes-kubeadm-config", "kube-system",
        [{"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["kubeadm-config"], "verbs": ["get"]}]))
    create_or_update(client, rbac_path("rolebindings", "kube-system"), role_binding(
        "kubeadm:nodes-kubeadm-config", "kube-system", "kubeadm:nodes-kubeadm-config",
        [("Group", "system:bootstrappers:kubeadm:default-node-token"), ("Group", "system:nodes")]))
    rt.say('[kubelet] Creating a ConfigMap "kubelet-config" in namespace kube-system with the configuration '
           'for the kubelets in the cluster')
    create_or_update(client, ns_path("kube-system", "configmaps"), _configmap(
        "kubelet-config", "kube-system", {"kubelet": yaml.safe_dump(kubelet_config, sort_keys=True)}))
    create_or_update(client, rbac_path("roles", "kube-system"), role(
        "kubeadm:kubelet-config", "kube-system",
        [{"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["kubelet-config"], "verbs": ["get"]}]))
    create_or_update(client, rbac_path("rolebindings", "kube-system"), role_binding(
        "kubeadm:kubelet-config", "kube-system", "kubeadm:kubelet-config",
        [("Group", "system:nodes"), ("Group", "system:bootstrappers:kubeadm:default-node-token")]))


def upload_certs(rt, client, store, certificate_key, print_key=True):
    """Secret kubeadm-certs, owned by a short-lived token so that it expires after 2 h (scaled)."""
    rt.say('[upload-certs] Storing the certificates in Secret "kubeadm-certs" in the "kube-system" Namespace')
    key = copycerts.decode_key(certificate_key)
    ttl_token = tokens.token_secret(tokens.new_token(), rt.scaled(2 * 3600), usages=(),
                                    description=tokens.CERTS_TOKEN_DESCRIPTION)
    owner = client.create(ns_path("kube-system", "secrets"), ttl_token)
    if not (owner.get("metadata") or {}).get("uid"):
        owner = client.get(ns_path("kube-system", "secrets", ttl_token["metadata"]["name"]))
    files = {}
    for name in SHARED_FILES:
        if os.path.exists(store.file(name)):
            files[name] = store.read_bytes(name)
    secret = copycerts.build_secret(files, key, owner)
    create_or_update(client, ns_path("kube-system", "secrets"), secret)
    create_or_update(client, rbac_path("roles", "kube-system"), role(
        "kubeadm:kubeadm-certs", "kube-system",
        [{"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["kubeadm-certs"], "verbs": ["get"]}]))
    create_or_update(client, rbac_path("rolebindings", "kube-system"), role_binding(
        "kubeadm:kubeadm-certs", "kube-system", "kubeadm:kubeadm-certs",
        [("Group", "system:bootstrappers:kubeadm:default-node-token")]))
    rt.say("[upload-certs] Using certificate key:")
    rt.say(certificate_key if print_key else "<value withheld>")


def mark_control_plane(rt, client, node_name, taints, timeout_seconds):
    labels = " ".join(CONTROL_PLANE_LABELS)
    rt.say(f"[mark-control-plane] Marking the node {node_name} as control-plane by adding the labels: [{labels}]")
    if taints:
        shown = " ".join(f"{t['key']}:{t['effect']}" if not t.get("value") else f"{t['key']}={t['value']}:{t['effect']}"
                         for t in taints)
        rt.say(f"[mark-control-plane] Marking the node {node_name} as control-plane by adding the taints [{shown}]")
    state = {"error": None}

    def attempt():
        try:
            node = client.get(f"/api/v1/nodes/{node_name}")
            current = (node.get("spec") or {}).get("taints") or []
            merged = list(current)
            for taint in taints or []:
                if not any(t.get("key") == taint["key"] and t.get("effect") == taint["effect"] for t in current):
                    merged.append({k: v for k, v in taint.items() if k in ("key", "value", "effect")})
            client.patch(f"/api/v1/nodes/{node_name}", {
                "metadata": {"labels": {label: "" for label in CONTROL_PLANE_LABELS}},
                "spec": {"taints": merged},
            })
            return True
        except (k8sclient.ApiError, k8sclient.TransportError) as exc:
            state["error"] = exc
            return False

    ok, _ = poll(rt.scaled(timeout_seconds), attempt, interval=1.0)
    if not ok:
        raise KubeadmError(f'error patching node "{node_name}" through apiserver: {timed_out_text(rt.version)}')


def create_token(client, token, ttl_seconds, usages, groups, description=""):
    secret = tokens.token_secret(token, ttl_seconds, usages, groups, description)
    return create_or_update(client, ns_path("kube-system", "secrets"), secret)


def bootstrap_token_phase(rt, client, bootstrap_tokens, show_token):
    for token in bootstrap_tokens:
        rt.say(f"[bootstrap-token] Using token: {show_token(token['token'])}")
    rt.say("[bootstrap-token] Configuring bootstrap tokens, cluster-info ConfigMap, RBAC Roles")
    for token in bootstrap_tokens:
        create_token(client, token["token"], rt.scaled(token["ttl"]), token["usages"], token["groups"],
                     token.get("description", ""))
    group = "system:bootstrappers:kubeadm:default-node-token"
    create_or_update(client, rbac_path("clusterroles"), {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "kubeadm:get-nodes"},
        "rules": [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get"]}]})
    create_or_update(client, rbac_path("clusterrolebindings"), cluster_role_binding(
        "kubeadm:get-nodes", "kubeadm:get-nodes", [("Group", group)]))
    rt.say("[bootstrap-token] Configured RBAC rules to allow Node Bootstrap tokens to get nodes")
    create_or_update(client, rbac_path("clusterrolebindings"), cluster_role_binding(
        "kubeadm:kubelet-bootstrap", "system:node-bootstrapper", [("Group", group)]))
    rt.say("[bootstrap-token] Configured RBAC rules to allow Node Bootstrap tokens to post CSRs in order for "
           "nodes to get long term certificate credentials")
    create_or_update(client, rbac_path("clusterrolebindings"), cluster_role_binding(
        "kubeadm:node-autoapprove-bootstrap", "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
        [("Group", group)]))
    rt.say("[bootstrap-token] Configured RBAC rules to allow the csrapprover controller automatically approve "
           "CSRs from a Node Bootstrap Token")
    create_or_update(client, rbac_path("clusterrolebindings"), cluster_role_binding(
        "kubeadm:node-autoapprove-certificate-rotation",
        "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient", [("Group", "system:nodes")]))
    rt.say("[bootstrap-token] Configured RBAC rules to allow certificate rotation for all node client "
           "certificates in the cluster")
    rt.say('[bootstrap-token] Creating the "cluster-info" ConfigMap in the "kube-public" namespace')
    admin = kubeconfig.load(rt.paths(P.ADMIN_CONF))
    cluster = copy.deepcopy(admin["clusters"][0]["cluster"])
    info = {"apiVersion": "v1", "clusters": [{"cluster": cluster, "name": ""}], "contexts": None,
            "current-context": "", "kind": "Config", "preferences": {}, "users": None}
    create_or_update(client, ns_path("kube-public", "configmaps"), _configmap(
        "cluster-info", "kube-public", {"kubeconfig": yaml.safe_dump(info, default_flow_style=False)}))
    create_or_update(client, rbac_path("roles", "kube-public"), role(
        "kubeadm:bootstrap-signer-clusterinfo", "kube-public",
        [{"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["cluster-info"], "verbs": ["get"]}]))
    create_or_update(client, rbac_path("rolebindings", "kube-public"), role_binding(
        "kubeadm:bootstrap-signer-clusterinfo", "kube-public", "kubeadm:bootstrap-signer-clusterinfo",
        [("User", "system:anonymous")]))


def kubelet_finalize(rt):
    """Point kubelet.conf at the rotatable client certificate, when the kubelet has written it."""
    current = rt.paths(P.KUBELET_CLIENT_CURRENT)
    if not os.path.exists(current):
        rt.klog("W", f"[kubelet-finalize] Skipping: the kubelet client certificate {P.KUBELET_CLIENT_CURRENT} "
                "does not exist", "kubeletfinalize.go:100")
        return
    rt.say(f'[kubelet-finalize] Updating "{P.KUBELET_CONF}" to point to a rotatable kubelet client '
           "certificate and key")
    config = kubeconfig.load(rt.paths(P.KUBELET_CONF))
    for user in config.get("users") or []:
        entry = user.get("user") or {}
        entry.pop("client-certificate-data", None)
        entry.pop("client-key-data", None)
        entry["client-certificate"] = P.KUBELET_CLIENT_CURRENT
        entry["client-key"] = P.KUBELET_CLIENT_CURRENT
    kubeconfig.write(rt.paths(P.KUBELET_CONF), config)


def ca_hashes_of(kubeconfig_path):
    creds = kubeconfig.load_credentials(kubeconfig_path)
    return [pki.ca_cert_hash(pki.load_cert(creds.ca_pem))], creds.server
