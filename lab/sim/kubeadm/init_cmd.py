"""``kubeadm init`` and ``kubeadm init phase upload-certs``."""

import os
from contextlib import contextmanager

from lab.sim import k8sclient
from lab.sim.config import Version
from lab.sim.kubeadm import apiconfig, certs, manifests, output, phases, preflight, tokens
from lab.sim.kubeadm import paths as P
from lab.sim.kubeadm.errors import KubeadmError, PhaseError
from lab.sim.kubeadm.flags import BOOL, DURATION, INT, STRING, STRINGS, check_mixed_arguments, parse

INIT_FLAGS = {
    "apiserver-advertise-address": (STRING, "", None),
    "apiserver-bind-port": (INT, "6443", None),
    "apiserver-cert-extra-sans": (STRINGS, "", None),
    "cert-dir": (STRING, P.PKI_DIR, None),
    "certificate-key": (STRING, "", None),
    "config": (STRING, "", None),
    "control-plane-endpoint": (STRING, "", None),
    "cri-socket": (STRING, "", None),
    "dry-run": (BOOL, "false", None),
    "feature-gates": (STRING, "", None),
    "ignore-preflight-errors": (STRINGS, "", None),
    "image-repository": (STRING, apiconfig.DEFAULT_IMAGE_REPOSITORY, None),
    "kubernetes-version": (STRING, "stable-1", None),
    "node-name": (STRING, "", None),
    "patches": (STRING, "", None),
    "pod-network-cidr": (STRING, "", None),
    "service-cidr": (STRING, apiconfig.DEFAULT_SERVICE_SUBNET, None),
    "service-dns-domain": (STRING, apiconfig.DEFAULT_DNS_DOMAIN, None),
    "skip-certificate-key-print": (BOOL, "false", None),
    "skip-phases": (STRINGS, "", None),
    "skip-token-print": (BOOL, "false", None),
    "token": (STRING, "", None),
    "token-ttl": (DURATION, "24h0m0s", None),
    "upload-certs": (BOOL, "false", None),
}

UPLOAD_CERTS_FLAGS = {
    "certificate-key": (STRING, "", None),
    "config": (STRING, "", None),
    "dry-run": (BOOL, "false", None),
    "kubeconfig": (STRING, P.ADMIN_CONF, None),
    "skip-certificate-key-print": (BOOL, "false", None),
    "upload-certs": (BOOL, "false", None),
}


def read_config_file(path):
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except OSError as exc:
        raise KubeadmError(f'unable to read config from "{path}" : open {path}: '
                           f'{os.strerror(exc.errno).lower() if exc.errno else exc}') from None


def resolve_kubernetes_version(rt, requested):
    """kubeadm's version resolution: labels fall back to the client version offline (with its warnings)."""
    sim_version = rt.version
    if not requested or requested.startswith("stable") or requested.startswith("latest"):
        label = requested or "stable-1"
        url = f"https://dl.k8s.io/release/{label}.txt"
        rt.klog("W", f'could not fetch a Kubernetes version from the internet: unable to get URL "{url}": '
                     f'Get "{url}": dial tcp: lookup dl.k8s.io on 127.0.0.1:53: dial udp 127.0.0.1:53: '
                     "connect: connection refused", "version.go:104")
        rt.klog("W", f"falling back to the local client version: {sim_version}", "version.go:105")
        return sim_version
    try:
        version = Version.parse(requested)
    except ValueError:
        raise KubeadmError(f'version "{requested}" doesn\'t match patterns for neither semantic version nor '
                           "labels (stable, latest, ...)") from None
    minimum = Version(sim_version.major, sim_version.minor - 1, 0)
    if version < minimum:
        raise KubeadmError("this version of kubeadm only supports deploying clusters with the control plane "
                           f"version >= {str(minimum)[1:]}. Current version: {requested}")
    return version


def _feature_gates(text):
    gates = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, value = item.partition("=")
        if value.lower() not in ("true", "false"):
            raise KubeadmError(f"invalid value of {name}: {value}, err: strconv.ParseBool: parsing \"{value}\": "
                               "invalid syntax")
        gates[name] = value.lower() == "true"
    return gates


def load_init_configuration(rt, flags):
    """(init, cluster, kubelet user config) from --config or the flags, defaulted and validated."""
    kubelet_user = None
    if flags.is_set("config"):
        found, warnings = apiconfig.split_documents(read_config_file(flags["config"]), rt.version)
        for warning in warnings:
            rt.klog("W", warning, "common.go:101")
        if "InitConfiguration" not in found and "ClusterConfiguration" not in found:
            raise KubeadmError(f"no InitConfiguration or ClusterConfiguration kind was found in the YAML file")
        init_doc = found.get("InitConfiguration", {})
        cluster_doc = found.get("ClusterConfiguration", {})
        kubelet_user = found.get("KubeletConfiguration")
    else:
        init_doc = {"localAPIEndpoint": {"advertiseAddress": flags["apiserver-advertise-address"],
                                         "bindPort": flags["apiserver-bind-port"]},
                    "nodeRegistration": {"name": flags["node-name"]},
                    "certificateKey": flags["certificate-key"],
                    "skipPhases": flags["skip-phases"]}
        if flags["cri-socket"]:
            init_doc["nodeRegistration"]["criSocket"] = flags["cri-socket"]
        if flags["token"] or flags.is_set("token-ttl"):
            init_doc["bootstrapTokens"] = [{"token": flags["token"] or tokens.new_token(),
                                            "ttl": flags["token-ttl"]}]
        cluster_doc = {
            "controlPlaneEndpoint": flags["control-plane-endpoint"],
            "networking": {"podSubnet": flags["pod-network-cidr"], "serviceSubnet": flags["service-cidr"],
                           "dnsDomain": flags["service-dns-domain"]},
            "kubernetesVersion": flags["kubernetes-version"],
            "apiServer": {"certSANs": flags["apiserver-cert-extra-sans"]},
            "certificatesDir": flags["cert-dir"],
            "imageRepository": flags["image-repository"],
            "featureGates": _feature_gates(flags["feature-gates"]),
        }
    cluster = apiconfig.default_cluster(cluster_doc)
    init = apiconfig.default_init(init_doc, rt.host.hostname(), rt.host.default_address, tokens.new_token)
    error = apiconfig.aggregate(apiconfig.validate_init(init, cluster))
    if error:
        raise error
    cluster["kubernetesVersion"] = str(resolve_kubernetes_version(rt, cluster["kubernetesVersion"]))
    return init, cluster, kubelet_user


class Workflow:
    """Runs phases in order; an error inside one is reported as ``error execution phase <name>: ...``."""

    def __init__(self, skip):
        self.skip = set(skip or [])

    def skipped(self, name):
        parts = name.split("/")
        return any("/".join(parts[:i]) in self.skip for i in range(1, len(parts) + 1))

    @contextmanager
    def phase(self, name, what=""):
        try:
            yield
        except PhaseError:
            raise
        except KubeadmError as exc:
            raise PhaseError(name, exc) from None
        except (k8sclient.ApiError, k8sclient.TransportError) as exc:
            raise PhaseError(name, KubeadmError(f"{what}: {exc}" if what else str(exc))) from None


def run_init(rt, argv):
    flags, args = parse(argv, INIT_FLAGS)
    if args:
        raise KubeadmError(f'unknown command "{args[0]}" for "kubeadm init"')
    check_mixed_arguments(flags)
    if flags["dry-run"]:
        raise KubeadmError("the lab simulator does not implement --dry-run")
    init, cluster, kubelet_user = load_init_configuration(rt, flags)
    ignored = preflight.parse_ignore_list(flags["ignore-preflight-errors"],
                                          init["nodeRegistration"].get("ignorePreflightErrors") or [])
    cluster_version = Version.parse(cluster["kubernetesVersion"])
    node_name = init["nodeRegistration"]["name"]
    address = init["localAPIEndpoint"]["advertiseAddress"]
    port = init["localAPIEndpoint"]["bindPort"]
    cri_socket = init["nodeRegistration"]["criSocket"]
    timeouts = init["timeouts"]
    upload = flags["upload-certs"]
    certificate_key = init.get("certificateKey") or ""
    if upload and not certificate_key:
        certificate_key = tokens.new_certificate_key()
    flow = Workflow(init.get("skipPhases"))
    paths = rt.paths
    store = certs.Pki(paths, cluster["certificatesDir"])

    rt.say(f"[init] Using Kubernetes version: {cluster['kubernetesVersion']}")
    if not flow.skipped("preflight"):
        with flow.phase("preflight"):
            rt.say("[preflight] Running pre-flight checks")
            preflight.run_checks([preflight.root_check(rt.host)], ignored, rt.warn)
            checks = preflight.control_plane_checks(
                rt.host, paths, rt.version, cluster_version, port,
                cluster["etcd"]["local"]["dataDir"] if cluster["etcd"].get("local") else P.ETCD_DATA_DIR)
            preflight.run_checks(checks, ignored, rt.warn)
            rt.say("[preflight] Pulling images required for setting up a Kubernetes cluster")
            rt.say("[preflight] This might take a minute or two, depending on the speed of your internet connection")
            rt.say("[preflight] You can also perform this action beforehand using 'kubeadm config images pull'")
    if not flow.skipped("certs"):
        with flow.phase("certs"):
            certs.create_certificates(store, node_name, address, cluster, rt.version, rt.say)
    if not flow.skipped("kubeconfig"):
        with flow.phase("kubeconfig"):
            certs.create_kubeconfigs(paths, store, node_name, address, port, cluster, rt.version, rt.say,
                                     certs.init_kubeconfig_files(rt.version))
    if not flow.skipped("etcd"):
        with flow.phase("etcd/local"):
            rt.say(f'[etcd] Creating static Pod manifest for local etcd in "{P.MANIFESTS_DIR}"')
            manifests.write(paths, "etcd", manifests.etcd(cluster, node_name, address, cluster_version))
    if not flow.skipped("control-plane"):
        with flow.phase("control-plane"):
            rt.say(f'[control-plane] Using manifest folder "{P.MANIFESTS_DIR}"')
            for name, pod in (("kube-apiserver", manifests.apiserver(cluster, address, port, cluster_version)),
                              ("kube-controller-manager", manifests.controller_manager(cluster, cluster_version)),
                              ("kube-scheduler", manifests.scheduler(cluster, cluster_version))):
                rt.say(f'[control-plane] Creating static Pod manifest for "{name}"')
                manifests.write(paths, name, pod)
    kubelet_config = phases.kubelet_configuration(cluster, kubelet_user)
    if not flow.skipped("kubelet-start"):
        with flow.phase("kubelet-start"):
            phases.write_kubelet_files(rt, kubelet_config, init["nodeRegistration"], cluster["imageRepository"])
            phases.start_kubelet(rt)
    if not flow.skipped("wait-control-plane"):
        with flow.phase("wait-control-plane"):
            phases.wait_control_plane(rt, address, port, timeouts["controlPlaneComponentHealthCheck"],
                                      cri_socket, timeouts["kubeletHealthCheck"])
    api_call = timeouts["kubernetesAPICall"]
    client = None
    if not flow.skipped("upload-config"):
        with flow.phase("upload-config/kubeadm", "error uploading the kubeadm ClusterConfiguration"):
            if rt.version >= (1, 29):
                phases.ensure_admin_binding(rt, api_call)
            client = rt.client(P.ADMIN_CONF)
            phases.upload_config(rt, client, apiconfig.encode_cluster(cluster, rt.version), kubelet_config)
    client = client or rt.client(P.ADMIN_CONF)
    if not flow.skipped("upload-certs"):
        with flow.phase("upload-certs", "error uploading certs"):
            if upload:
                phases.upload_certs(rt, client, store, certificate_key, not flags["skip-certificate-key-print"])
            else:
                rt.say("[upload-certs] Skipping phase. Please see --upload-certs")
    if not flow.skipped("mark-control-plane"):
        with flow.phase("mark-control-plane"):
            phases.mark_control_plane(rt, client, node_name, init["nodeRegistration"].get("taints"), api_call)
    show_token = (lambda t: "<value withheld>") if flags["skip-token-print"] else (lambda t: t)
    if not flow.skipped("bootstrap-token"):
        with flow.phase("bootstrap-token", "error creating bootstrap token"):
            phases.bootstrap_token_phase(rt, client, init["bootstrapTokens"], show_token)
    if not flow.skipped("kubelet-finalize"):
        with flow.phase("kubelet-finalize/enable-client-cert-rotation"):
            phases.kubelet_finalize(rt)
    if not flow.skipped("addon"):
        if not flow.skipped("addon/coredns") and not (cluster.get("dns") or {}).get("disabled"):
            rt.say("[addons] Applied essential addon: CoreDNS")
        if not flow.skipped("addon/kube-proxy") and not (cluster.get("proxy") or {}).get("disabled"):
            rt.say("[addons] Applied essential addon: kube-proxy")
    if not flow.skipped("show-join-command"):
        hashes, server = phases.ca_hashes_of(paths(P.ADMIN_CONF))
        endpoint = server.replace("https://", "", 1)
        key_text = "<value withheld>" if flags["skip-certificate-key-print"] else certificate_key
        for token in init["bootstrapTokens"]:
            rt.out.write(output.init_success(endpoint, show_token(token["token"]), hashes,
                                             bool(cluster.get("controlPlaneEndpoint")), key_text, upload))
        rt.out.flush()
    return 0


def run_upload_certs(rt, argv):
    flags, args = parse(argv, UPLOAD_CERTS_FLAGS)
    if args:
        raise KubeadmError(f'unknown command "{args[0]}" for "kubeadm init phase upload-certs"')
    check_mixed_arguments(flags)
    if not flags["upload-certs"]:
        rt.say("[upload-certs] Skipping phase. Please see --upload-certs")
        return 0
    cert_dir = P.PKI_DIR
    key = flags["certificate-key"]
    if flags.is_set("config"):
        found, warnings = apiconfig.split_documents(read_config_file(flags["config"]), rt.version)
        for warning in warnings:
            rt.klog("W", warning, "common.go:101")
        cert_dir = apiconfig.default_cluster(found.get("ClusterConfiguration"))["certificatesDir"]
        key = (found.get("InitConfiguration") or {}).get("certificateKey") or key
    else:
        resolve_kubernetes_version(rt, "stable-1")
    if key and not apiconfig.CERT_KEY_RE.match(key):
        raise KubeadmError(apiconfig.invalid("certificateKey", key, "certificate key size must be 32 bytes"))
    key = key or tokens.new_certificate_key()
    flow = Workflow([])
    with flow.phase("upload-certs", "error uploading certs"):
        kubeconfig_path = flags["kubeconfig"]
        if not os.path.exists(rt.paths(kubeconfig_path)):
            raise KubeadmError(f"failed to load admin kubeconfig: open {kubeconfig_path}: no such file or directory")
        client = rt.client(kubeconfig_path)
        phases.upload_certs(rt, client, certs.Pki(rt.paths, cert_dir), key, not flags["skip-certificate-key-print"])
    return 0
