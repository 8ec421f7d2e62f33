"""``kubeadm join``: token discovery, worker TLS bootstrap, control plane join with a new etcd member."""

import os
import time
import urllib.parse

import yaml

from lab.sim import etcd as etcd_mod
from lab.sim import jws, k8sclient, kubeconfig, pki
from lab.sim.kubeadm import apiconfig, certs, copycerts, manifests, output, phases, preflight
from lab.sim.kubeadm import paths as P
from lab.sim.kubeadm.errors import KubeadmError, PhaseError
from lab.sim.kubeadm.flags import BOOL, INT, STRING, STRINGS, check_mixed_arguments, parse
from lab.sim.kubeadm.init_cmd import Workflow, read_config_file
from lab.sim.kubeadm.runtime import ns_path, poll
from lab.sim.config import Version, go_duration

JOIN_FLAGS = {
    "apiserver-advertise-address": (STRING, "", None),
    "apiserver-bind-port": (INT, "6443", None),
    "certificate-key": (STRING, "", None),
    "config": (STRING, "", None),
    "control-plane": (BOOL, "false", None),
    "cri-socket": (STRING, "", None),
    "discovery-file": (STRING, "", None),
    "discovery-token": (STRING, "", None),
    "discovery-token-ca-cert-hash": (STRINGS, "", None),
    "discovery-token-unsafe-skip-ca-verification": (BOOL, "false", None),
    "dry-run": (BOOL, "false", None),
    "ignore-preflight-errors": (STRINGS, "", None),
    "node-name": (STRING, "", None),
    "patches": (STRING, "", None),
    "skip-phases": (STRINGS, "", None),
    "tls-bootstrap-token": (STRING, "", None),
    "token": (STRING, "", None),
}

TLS_BOOTSTRAP_USER = "tls-bootstrap-token-user"
CLUSTER_INFO = ns_path("kube-public", "configmaps", "cluster-info")
NOT_READY_FOR_CONTROL_PLANE = """
One or more conditions for hosting a new control plane instance is not satisfied.

{reason}

Please ensure that:
* The cluster has a stable controlPlaneEndpoint address.
* The certificates that must be shared among control plane instances are provided.

"""


def load_join_configuration(rt, flags, args):
    if len(args) > 1:
        raise KubeadmError(f"accepts at most 1 arg(s), received {len(args)}")
    if flags.is_set("config"):
        found, warnings = apiconfig.split_documents(read_config_file(flags["config"]), rt.version)
        for warning in warnings:
            rt.klog("W", warning, "common.go:101")
        if "JoinConfiguration" not in found:
            raise KubeadmError("no JoinConfiguration kind was found in the YAML file")
        doc = found["JoinConfiguration"]
    else:
        token = flags["discovery-token"] or flags["token"]
        doc = {"nodeRegistration": {"name": flags["node-name"]}, "skipPhases": flags["skip-phases"],
               "discovery": {"tlsBootstrapToken": flags["tls-bootstrap-token"] or flags["token"]}}
        if flags["cri-socket"]:
            doc["nodeRegistration"]["criSocket"] = flags["cri-socket"]
        if flags["discovery-file"]:
            doc["discovery"]["file"] = {"kubeConfigPath": flags["discovery-file"]}
        elif token or args:
            doc["discovery"]["bootstrapToken"] = {
                "token": token, "apiServerEndpoint": args[0] if args else "",
                "caCertHashes": flags["discovery-token-ca-cert-hash"],
                "unsafeSkipCAVerification": flags["discovery-token-unsafe-skip-ca-verification"],
            }
        if flags["control-plane"]:
            doc["controlPlane"] = {"localAPIEndpoint": {"advertiseAddress": flags["apiserver-advertise-address"],
                                                        "bindPort": flags["apiserver-bind-port"]},
                                   "certificateKey": flags["certificate-key"]}
    join = apiconfig.default_join(doc, rt.host.hostname(), rt.host.default_address)
    error = apiconfig.aggregate(apiconfig.validate_join(join))
    if error:
        raise error
    if join["discovery"].get("file"):
        raise KubeadmError("the lab simulator implements token discovery only (discovery.file is not supported)")
    return join


# -- discovery -------------------------------------------------------------------------------------


def discover(rt, join):
    """Token discovery (kubeadm's discovery/token): returns the validated cluster-info kubeconfig dict."""
    bootstrap = join["discovery"]["bootstrapToken"]
    token_id, token_secret = bootstrap["token"].split(".")
    endpoint = bootstrap["apiServerEndpoint"]
    insecure = k8sclient.Client(f"https://{endpoint}", insecure=True, timeout=10.0,
                                user_agent=f"kubeadm/{rt.version}")
    state = {"error": None, "configmap": None}
    key = f"jws-kubeconfig-{token_id}"

    def attempt():
        try:
            configmap = insecure.get(CLUSTER_INFO)
        except (k8sclient.ApiError, k8sclient.TransportError) as exc:
            state["error"] = exc
            if rt.verbosity >= 1:
                rt.klog("I", f"[discovery] Failed to request cluster-info, will try again: {exc}", "token.go:234")
            return False
        if key not in (configmap.get("data") or {}):
            state["error"] = KubeadmError(
                f'could not find a JWS signature in the cluster-info ConfigMap for token ID "{token_id}"')
            if rt.verbosity >= 1:
                rt.klog("I", "[discovery] The cluster-info ConfigMap does not yet contain a JWS signature for "
                             f'token ID "{token_id}", will try again', "token.go:246")
            return False
        state["configmap"] = configmap
        return True

    ok, _ = poll(rt.scaled(join["timeouts"]["discovery"]), attempt, interval=1.0)
    if not ok:
        raise KubeadmError(f"couldn't validate the identity of the API Server: {state['error']}")
    data = state["configmap"]["data"]
    content = data.get("kubeconfig", "")
    if not jws.verify(data[key], content, token_id, token_secret):
        raise KubeadmError("couldn't validate the identity of the API Server: failed to verify JWS signature "
                           "of received cluster info object, can't trust this API Server")
    info = yaml.safe_load(content) or {}
    clusters = info.get("clusters") or []
    if not clusters:
        raise KubeadmError("couldn't validate the identity of the API Server: the cluster-info ConfigMap "
                           "holds no cluster")
    cluster = clusters[0]["cluster"]
    import base64
    ca_pem = base64.b64decode(cluster.get("certificate-authority-data", ""))
    if not bootstrap.get("unsafeSkipCAVerification"):
        pins = set(bootstrap.get("caCertHashes") or [])
        try:
            found = [pki.ca_cert_hash(pki.load_cert(ca_pem))]
        except ValueError:
            found = []
        if not pins.intersection(found):
            raise KubeadmError("couldn't validate the identity of the API Server: cluster CA found in "
                               "cluster-info ConfigMap is invalid: none of the public keys "
                               f'"{", ".join(found)}" are pinned')
    # A second request, now verifying the server certificate against the discovered CA.
    secure = k8sclient.Client(f"https://{endpoint}", ca_pem=ca_pem, timeout=10.0, user_agent=f"kubeadm/{rt.version}")
    try:
        secure.get(CLUSTER_INFO)
    except (k8sclient.ApiError, k8sclient.TransportError) as exc:
        raise KubeadmError(f"couldn't validate the identity of the API Server: {exc}") from None
    return cluster["server"], ca_pem


def bootstrap_client(rt, server, ca_pem, token):
    return k8sclient.Client(server, ca_pem=ca_pem, token=token, timeout=10.0, user_agent=f"kubeadm/{rt.version}")


# -- control plane helpers -----------------------------------------------------------------------------


def etcd_endpoints(rt, admin_client):
    """Client URLs of the existing members: the control plane Nodes' InternalIP (or their names)."""
    nodes = admin_client.get("/api/v1/nodes").get("items") or []
    urls = []
    for node in nodes:
        labels = (node.get("metadata") or {}).get("labels") or {}
        if "node-role.kubernetes.io/control-plane" not in labels:
            continue
        address = next((a["address"] for a in (node.get("status") or {}).get("addresses") or []
                        if a.get("type") == "InternalIP"), None)
        if address is None:
            try:
                address = rt.host.resolve(node["metadata"]["name"])
            except OSError:
                continue
        urls.append(f"https://{certs.url_host(address)}:2379")
    return urls


def sync_endpoints(etcd):
    """clientv3's ``Sync()``, which kubeadm's NewFromCluster calls: the endpoints become the client URLs
    of the started voting members (a Node left by ``kubeadm reset`` is no member and is not dialled)."""
    urls = []
    for member in etcd.member_list():
        if member.get("name") and not member.get("is_learner"):
            urls += [u for u in member.get("client_urls") or [] if u not in urls]
    if urls:
        etcd.set_endpoints(urls)


def etcd_client(rt, store, endpoints):
    return etcd_mod.Etcd(endpoints, ca_file=store.file("etcd/ca.crt"),
                         cert_file=store.file("apiserver-etcd-client.crt"),
                         key_file=store.file("apiserver-etcd-client.key"), timeout=5.0)


# kubeadm's etcd client: every call is retried every 500 ms until the etcdAPICall timeout; after the
# promotion it checks every endpoint (the new one included) up to 8 times, 5 s apart ("up to 40s").
ETCD_RETRY_INTERVAL = 0.5
ETCD_HEALTHY_CHECK_INTERVAL = 5.0
ETCD_HEALTHY_CHECK_RETRIES = 8


def _retry(rt, timeout, call, what):
    """Call ``call()`` every 500 ms until it returns without an EtcdError; raise the last error after
    ``timeout`` (scaled) seconds, as kubeadm's ``wait.PollUntilContextTimeout`` loops do."""
    state = {"error": None, "result": None}

    def attempt():
        try:
            state["result"] = call()
            return True
        except etcd_mod.EtcdError as exc:
            state["error"] = exc
            if rt.verbosity >= 5:
                rt.klog("I", f"{what}: {exc}", "etcd.go:0")
            return False

    ok, _ = poll(rt.scaled(timeout), attempt, interval=ETCD_RETRY_INTERVAL)
    if not ok:
        raise state["error"]
    return state["result"]


def add_etcd_member(rt, etcd, node_name, address, learner, api_timeout, write_manifest):
    """kubeadm's CreateStackedEtcdStaticPodManifestFile: add this node's member (as a learner when
    EtcdLearnerMode is on), write the etcd manifest with the initial cluster, promote the learner once
    etcd lets it, then wait until every endpoint answers. etcd's own refusals (strict reconfiguration
    check: "etcdserver: unhealthy cluster" until the local member has been connected to every voting
    member for 5 s; "can only promote a learner member which is in sync with leader") are retried
    like kubeadm retries them, and are the error when the timeout passes."""
    peer_url = f"https://{certs.url_host(address)}:2380"
    client_url = f"https://{certs.url_host(address)}:2379"

    def add():
        members = etcd.member_list()
        existing = next((m for m in members if (m.get("peer_urls") or [None])[0] == peer_url), None)
        if existing is not None:  # a previous attempt got it in: kubeadm skips the addition
            return members
        return etcd.member_add([peer_url], learner=learner)["members"]

    members = _retry(rt, api_timeout, add, "Failed to add etcd member")
    initial = []
    for member in members:
        urls = member.get("peer_urls") or []
        if not urls:
            continue
        name = node_name if urls[0] == peer_url else member.get("name") or format(member["id"], "x")
        initial.append((name, urls[0]))
    rt.say("[etcd] Announced new etcd member joining to the existing etcd cluster")
    rt.say('[etcd] Creating static Pod manifest for "etcd"')
    write_manifest(initial)
    if client_url not in etcd.endpoints:
        etcd.set_endpoints(etcd.endpoints + [client_url])

    if learner:
        member_id = next(m["id"] for m in members if (m.get("peer_urls") or [None])[0] == peer_url)

        def promote():
            member = next((m for m in etcd.member_list() if m["id"] == member_id), None)
            if member is None:
                raise etcd_mod.EtcdError("etcdserver: member not found")
            if member.get("is_learner"):
                etcd.member_promote(member_id)
                if rt.verbosity >= 1:
                    rt.klog("I", f"[etcd] The learner was promoted as a voting member: {member_id:x}", "etcd.go:0")
            return True

        _retry(rt, api_timeout, promote, f"[etcd] Promoting the learner {member_id:x} failed")

    rt.say("[etcd] Waiting for the new etcd member to join the cluster. This can take up to "
           f"{go_duration(ETCD_HEALTHY_CHECK_INTERVAL * ETCD_HEALTHY_CHECK_RETRIES)}")
    for attempt in range(ETCD_HEALTHY_CHECK_RETRIES):
        if attempt:
            time.sleep(rt.scaled(ETCD_HEALTHY_CHECK_INTERVAL))
        try:
            for endpoint in list(etcd.endpoints):
                _retry(rt, api_timeout, lambda e=endpoint: etcd.status(e), f"Failed to get etcd status for {endpoint}")
        except etcd_mod.EtcdError as exc:
            if rt.verbosity >= 1:
                rt.klog("I", f"[etcd] Attempt failed with error: {exc}", "etcd.go:0")
            continue
        return
    raise KubeadmError("timeout waiting for etcd cluster to be available")


def run_join(rt, argv):
    flags, args = parse(argv, JOIN_FLAGS)
    check_mixed_arguments(flags)
    if flags["dry-run"]:
        raise KubeadmError("the lab simulator does not implement --dry-run")
    join = load_join_configuration(rt, flags, args)
    control_plane = join.get("controlPlane")
    ignored = preflight.parse_ignore_list(flags["ignore-preflight-errors"],
                                          join["nodeRegistration"].get("ignorePreflightErrors") or [])
    registration = join["nodeRegistration"]
    node_name = registration["name"]
    timeouts = join["timeouts"]
    flow = Workflow(join.get("skipPhases"))
    v = rt.version

    with flow.phase("preflight"):
        rt.say("[preflight] Running pre-flight checks")
        preflight.run_checks([preflight.root_check(rt.host)], ignored, rt.warn)
        preflight.run_checks(preflight.join_checks(rt.host, rt.paths, v, bool(control_plane), join["caCertPath"]),
                             ignored, rt.warn)
        server, ca_pem = discover(rt, join)
        if v >= (1, 31):
            rt.say('[preflight] Reading configuration from the "kubeadm-config" ConfigMap in namespace "kube-system"...')
            rt.say("[preflight] Use 'kubeadm init phase upload-config kubeadm --config your-config-file' to re-upload it.")
        else:
            rt.say("[preflight] Reading configuration from the cluster...")
            rt.say("[preflight] FYI: You can look at this config file with 'kubectl -n kube-system get cm kubeadm-config -o yaml'")
        client = bootstrap_client(rt, server, ca_pem, join["discovery"]["tlsBootstrapToken"])
        try:
            stored = client.get(ns_path("kube-system", "configmaps", "kubeadm-config"))
        except (k8sclient.ApiError, k8sclient.TransportError) as exc:
            raise KubeadmError(f"unable to fetch the kubeadm-config ConfigMap: {exc}") from None
        cluster = apiconfig.decode_stored_cluster(stored["data"]["ClusterConfiguration"], v)
        cluster_version = Version.parse(cluster["kubernetesVersion"])
        store = certs.Pki(rt.paths, cluster["certificatesDir"])
        if control_plane:
            key = control_plane.get("certificateKey") or ""
            reason = None
            if not cluster.get("controlPlaneEndpoint"):
                reason = ("unable to add a new control plane instance a cluster that doesn't have a stable "
                          "controlPlaneEndpoint address")
            elif not key:
                missing = [n for n in certs.SHARED_FILES if not os.path.exists(store.file(n))]
                if missing:
                    reason = (f"failure loading certificate for CA: couldn't load the certificate file "
                              f"{cluster['certificatesDir']}/{missing[0]}: open {cluster['certificatesDir']}/"
                              f"{missing[0]}: no such file or directory")
            if reason:
                raise KubeadmError(NOT_READY_FOR_CONTROL_PLANE.format(reason=reason))
            rt.say("[preflight] Running pre-flight checks before initializing the new control plane instance")
            endpoint = control_plane["localAPIEndpoint"]
            checks = preflight.control_plane_checks(
                rt.host, rt.paths, v, cluster_version, endpoint["bindPort"],
                cluster["etcd"]["local"]["dataDir"], secondary=True)
            preflight.run_checks(checks, ignored, rt.warn)
            rt.say("[preflight] Pulling images required for setting up a Kubernetes cluster")
            rt.say("[preflight] This might take a minute or two, depending on the speed of your internet connection")
            rt.say("[preflight] You can also perform this action beforehand using 'kubeadm config images pull'")

    if control_plane:
        address = control_plane["localAPIEndpoint"]["advertiseAddress"]
        port = control_plane["localAPIEndpoint"]["bindPort"]
        key = control_plane.get("certificateKey") or ""
        if key:
            with flow.phase("control-plane-prepare/download-certs"):
                rt.say('[download-certs] Downloading the certificates in Secret "kubeadm-certs" in the '
                       '"kube-system" Namespace')
                try:
                    secret = client.get(ns_path("kube-system", "secrets", copycerts.SECRET_NAME))
                except k8sclient.ApiError as exc:
                    if exc.status == 404:
                        raise KubeadmError(
                            'error downloading certs: error downloading the secret: Secret "kubeadm-certs" was not '
                            'found in the "kube-system" Namespace. This Secret might have expired. Please, run '
                            "`kubeadm init phase upload-certs --upload-certs` on a control plane to generate a "
                            "new one") from None
                    raise KubeadmError(f"error downloading certs: error downloading the secret: {exc}") from None
                try:
                    files = copycerts.open_secret(secret, copycerts.decode_key(key))
                except KubeadmError as exc:
                    raise KubeadmError(f"error downloading certs: {exc}") from None
                for name, content in files.items():
                    store.write_bytes(name, content)
        with flow.phase("control-plane-prepare/certs"):
            certs.create_certificates(store, node_name, address, cluster, v, rt.say, secondary=True)
        with flow.phase("control-plane-prepare/kubeconfig"):
            rt.say("[kubeconfig] Generating kubeconfig files")
            certs.create_kubeconfigs(rt.paths, store, node_name, address, port, cluster, v, rt.say,
                                     ["admin.conf", "controller-manager.conf", "scheduler.conf"])
        with flow.phase("control-plane-prepare/control-plane"):
            rt.say(f'[control-plane] Using manifest folder "{P.MANIFESTS_DIR}"')
            for name, pod in (("kube-apiserver", manifests.apiserver(cluster, address, port, cluster_version)),
                              ("kube-controller-manager", manifests.controller_manager(cluster, cluster_version)),
                              ("kube-scheduler", manifests.scheduler(cluster, cluster_version))):
                rt.say(f'[control-plane] Creating static Pod manifest for "{name}"')
                manifests.write(rt.paths, name, pod)
        admin = rt.client(P.ADMIN_CONF)
        with flow.phase("check-etcd", "etcd cluster is not healthy"):
            rt.say("[check-etcd] Checking that the etcd cluster is healthy")
            endpoints = etcd_endpoints(rt, admin)
            if not endpoints:
                raise KubeadmError("etcd cluster is not healthy: no control plane node with an etcd member was found")
            etcd = etcd_client(rt, store, endpoints)
            try:
                sync_endpoints(etcd)
            except etcd_mod.EtcdError as exc:  # NewFromCluster fails before any health check
                raise KubeadmError(f"error syncing endpoints with etcd: {exc}") from None
            unhealthy = [e for e in etcd.endpoints if not etcd.health(e)]
            if unhealthy:
                raise KubeadmError(f"etcd cluster is not healthy: failed to dial endpoint {unhealthy[0]} "
                                   "with maintenance client: context deadline exceeded")

    with flow.phase("kubelet-start"):
        kubelet_config = {}
        try:
            kubelet_cm = client.get(ns_path("kube-system", "configmaps", "kubelet-config"))
            kubelet_config = yaml.safe_load(kubelet_cm["data"]["kubelet"]) or {}
        except (k8sclient.ApiError, k8sclient.TransportError, KeyError) as exc:
            raise KubeadmError(f"error downloading the kubelet configuration from the ConfigMap "
                               f"\"kubelet-config\" in the \"kube-system\" Namespace: {exc}") from None
        pki.write_file(rt.paths(join["caCertPath"]), ca_pem, 0o644)
        bootstrap_conf = kubeconfig.build(server, TLS_BOOTSTRAP_USER, ca_pem,
                                          token=join["discovery"]["tlsBootstrapToken"])
        os.makedirs(rt.paths(P.KUBERNETES_DIR), exist_ok=True)
        kubeconfig.write(rt.paths(P.BOOTSTRAP_KUBELET_CONF), bootstrap_conf)
        phases.write_kubelet_files(rt, kubelet_config, registration, cluster["imageRepository"], join=True)
        phases.start_kubelet(rt)
        if v >= (1, 30):
            phases.wait_kubelet(rt, timeouts["kubeletHealthCheck"], "kubelet-start")
        rt.say("[kubelet-start] Waiting for the kubelet to perform the TLS Bootstrap" + ("..." if v < (1, 31) else ""))

        def bootstrapped():
            try:
                kubeconfig.load_credentials(rt.paths(P.KUBELET_CONF))
                return True
            except (OSError, ValueError):
                return False

        ok, _ = poll(rt.scaled(timeouts["tlsBootstrap"]), bootstrapped)
        if not ok:
            raise KubeadmError(f"error waiting for the kubelet to perform the TLS Bootstrap: "
                               f"{phases.timed_out_text(v)}")
        try:
            os.remove(rt.paths(P.BOOTSTRAP_KUBELET_CONF))
        except FileNotFoundError:
            pass

    if not control_plane:
        rt.out.write(output.worker_join_success(v))
        rt.out.flush()
        return 0

    with flow.phase("control-plane-join/etcd", "error creating local etcd static pod manifest file"):
        learner = cluster.get("featureGates", {}).get("EtcdLearnerMode", cluster_version >= (1, 29))
        try:
            add_etcd_member(rt, etcd, node_name, address, learner, timeouts["etcdAPICall"],
                            lambda initial: manifests.write(rt.paths, "etcd", manifests.etcd(
                                cluster, node_name, address, cluster_version, initial)))
        except (etcd_mod.EtcdError, KubeadmError) as exc:
            raise KubeadmError(f"error creating local etcd static pod manifest file: {exc}") from None
    if v >= (1, 33):
        with flow.phase("wait-control-plane"):
            phases.wait_components(rt, address, port, timeouts["controlPlaneComponentHealthCheck"],
                                   registration["criSocket"])
    if v < (1, 31):
        rt.say("The 'update-status' phase is deprecated and will be removed in a future release. "
               "Currently it performs no operation")
    with flow.phase("control-plane-join/mark-control-plane"):
        phases.mark_control_plane(rt, admin, node_name, registration.get("taints"), timeouts["kubernetesAPICall"])
    rt.out.write(output.control_plane_join_success())
    rt.out.flush()
    return 0
