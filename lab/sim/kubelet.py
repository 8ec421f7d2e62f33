"""The kubelet of a lab node: static Pods, TLS bootstrap, Node registration, /healthz.

``python3 -m lab.sim.kubelet [flags]``, run by the node's service manager. As the real kubelet:

* without its config file it exits with the real error, and the service manager restarts it;
* flags come from the command line and ``/var/lib/kubelet/kubeadm-flags.env``; without flags it
  uses those of kubeadm's ``10-kubeadm.conf`` drop-in (``--config``, ``--kubeconfig``,
  ``--bootstrap-kubeconfig``), because that is how every kubeadm node starts it; unknown flags are
  rejected;
* it serves ``http://127.0.0.1:10248/healthz``;
* it uses kubelet.conf, or performs TLS bootstrap with bootstrap-kubelet.conf (CSR, wait for the
  controller-manager to sign it, kubelet-client-current.pem, kubelet.conf), then registers its
  Node and renews its Lease in kube-node-lease;
* it runs every manifest of ``staticPodPath`` as a process group (``lab.sim.pods`` chooses the
  program from the image), restarts it with CrashLoopBackOff-like back-off (10 s doubling to
  5 min, scaled by the simulator's time scale), restarts it at once when the manifest changes and
  stops it when the file goes. Output of each Pod goes to ``<root-dir>/sim-logs/<pod>.log``.

Unlike a real node, stopping the kubelet stops its Pods: a real container runtime keeps
containers running without the kubelet, but the lab has no runtime apart from the kubelet, and
orphaned processes would hold ports and the VIP with nobody supervising them.
"""

import ctypes
import hashlib
import http.server
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone

import yaml

from lab.sim import config as sim_config
from lab.sim import kubelet_api, pods
from lab.sim.kubelet_api import log

# The flags of kubeadm's systemd drop-in 10-kubeadm.conf.
KUBEADM_DROPIN_FLAGS = {
    "config": "/var/lib/kubelet/config.yaml",
    "kubeconfig": "/etc/kubernetes/kubelet.conf",
    "bootstrap-kubeconfig": "/etc/kubernetes/bootstrap-kubelet.conf",
}
FLAGS_ENV_FILE = "/var/lib/kubelet/kubeadm-flags.env"
FLAGS_ENV_NAMES = ("KUBELET_KUBEADM_ARGS", "KUBELET_EXTRA_ARGS")

# Flags the simulated kubelet accepts (value-taking). Others are rejected like the real one does.
KNOWN_FLAGS = {
    "config", "kubeconfig", "bootstrap-kubeconfig", "root-dir", "cert-dir", "hostname-override",
    "node-ip", "node-labels", "register-with-taints", "container-runtime-endpoint",
    "pod-infra-container-image", "cgroup-driver", "cloud-provider", "v", "provider-id",
    "runtime-request-timeout", "max-pods", "fail-swap-on", "resolv-conf", "rotate-certificates",
}
BOOLEAN_FLAGS = {"fail-swap-on", "rotate-certificates"}

BACKOFF_INITIAL = 10.0
BACKOFF_MAX = 300.0
BACKOFF_RESET_AFTER = 600.0  # a Pod that ran this long starts its back-off again from 10 s
SYNC_PERIOD = 0.5
NODE_LEASE_DURATION = 40
NODE_LEASE_RENEW = 10.0


class FlagError(Exception):
    pass


def parse_flags(args):
    """``--name=value`` / ``--name value`` -> dict; unknown flags raise FlagError (kubelet's text)."""
    flags = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--"):
            raise FlagError(f'unknown command "{arg}" for "kubelet"')
        name, sep, value = arg[2:].partition("=")
        if name not in KNOWN_FLAGS:
            raise FlagError(f"unknown flag: --{name}")
        if not sep:
            if name in BOOLEAN_FLAGS:
                value = "true"
            elif i + 1 < len(args):
                i += 1
                value = args[i]
            else:
                raise FlagError(f"flag needs an argument: --{name}")
        flags[name] = value
        i += 1
    return flags


def read_flags_env(path=FLAGS_ENV_FILE):
    """Arguments from kubeadm's environment file (``KUBELET_KUBEADM_ARGS="..."``), as systemd expands them."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        return []
    args = []
    for line in text.splitlines():
        name, sep, value = line.strip().partition("=")
        if sep and name in FLAGS_ENV_NAMES:
            args += shlex.split(shlex.split(value)[0] if value.strip() else "")
    return args


def effective_flags(cli_args, flags_env_path=FLAGS_ENV_FILE):
    flags = dict(KUBEADM_DROPIN_FLAGS)
    flags.update(parse_flags(read_flags_env(flags_env_path)))
    flags.update(parse_flags(cli_args))
    flags.setdefault("root-dir", "/var/lib/kubelet")
    flags.setdefault("cert-dir", os.path.join(flags["root-dir"], "pki"))
    return flags


def load_config(path):
    """The KubeletConfiguration; the real kubelet's error text when it cannot be read."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise FlagError(
            f'failed to load kubelet config file, path: {path}, error: failed to load Kubelet config '
            f'file {path}, error failed to read kubelet config file "{path}", error: open {path}: '
            f"{exc.strerror.lower()}") from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise FlagError(f"failed to load kubelet config file, path: {path}, error: {exc}") from None
    if data.get("kind") != "KubeletConfiguration" or \
            data.get("apiVersion") != "kubelet.config.k8s.io/v1beta1":
        raise FlagError(f"failed to load kubelet config file, path: {path}, error: "
                        f'no kind "{data.get("kind")}" is registered for version '
                        f'"{data.get("apiVersion")}"')
    return data


def node_ip_default():
    """The first address of the default-route interface (what the kubelet picks without --node-ip)."""
    route = subprocess.run(["ip", "-4", "route", "show", "default"], capture_output=True, text=True,
                           check=False).stdout.split()
    if "dev" not in route:
        return "127.0.0.1"
    dev = route[route.index("dev") + 1]
    for line in subprocess.run(["ip", "-4", "-o", "addr", "show", "dev", dev], capture_output=True,
                               text=True, check=False).stdout.splitlines():
        words = line.split()
        if "inet" in words and "secondary" not in words:
            return words[words.index("inet") + 1].split("/")[0]
    return "127.0.0.1"


def _die_with_parent():
    """Runs in the child: SIGTERM when the kubelet (the forking thread) dies, even by SIGKILL."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def prepare_host_paths(pod):
    """What the runtime does with hostPath volumes before starting the container; errors say why."""
    notes = []
    for mount_path, path in pod.mounts.items():
        kind = pod.mount_types.get(mount_path, "")
        if kind == "DirectoryOrCreate":
            os.makedirs(path, mode=0o755, exist_ok=True)
        elif kind == "FileOrCreate" and not os.path.exists(path):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "a", encoding="utf-8"):
                pass
        elif kind == "Directory" and not os.path.isdir(path):
            raise pods.ManifestError(f"hostPath type check failed: {path} is not a directory")
        elif kind == "File" and not os.path.isfile(path):
            raise pods.ManifestError(f"hostPath type check failed: {path} is not a file")
        elif kind == "" and not os.path.exists(path):
            # containerd creates a missing bind-mount source as a directory.
            os.makedirs(path, mode=0o755, exist_ok=True)
            notes.append(f"hostPath {path} did not exist: created as a directory, as the runtime does")
    return notes


class StaticPod:
    """One manifest file and the process running it."""

    def __init__(self, kubelet, path, digest, spec):
        self.kubelet = kubelet
        self.path = path
        self.digest = digest
        self.spec = spec
        self.process = None
        self.started_at = 0.0
        self.restarts = 0
        self.backoff = 0.0
        self.next_start = 0.0
        self.error = None

    @property
    def log_path(self):
        return os.path.join(self.kubelet.log_dir, f"{self.spec.name}.log")

    def _log_line(self, text):
        with open(self.log_path, "a", encoding="utf-8") as handle:
            handle.write(f"--- kubelet {datetime.now(timezone.utc).isoformat()}: {text}\n")

    def start(self):
        kubelet = self.kubelet
        try:
            argv = pods.process_argv(self.spec)
            env = pods.process_env(self.spec, kubelet.node_name, kubelet.node_ip, os.environ)
            notes = prepare_host_paths(self.spec)
            if self.spec.image_name == "etcd":
                argv, etcd_notes = pods.translate_etcd_flags(argv)
                notes += etcd_notes
        except pods.ManifestError as exc:
            self._fail(str(exc))
            return
        os.makedirs(kubelet.log_dir, exist_ok=True)
        for note in notes:
            self._log_line(note)
        self._log_line(f"starting container {self.spec.name} (restart {self.restarts}): "
                       f"{pods.describe_argv(argv)}")
        with open(self.log_path, "ab") as out:
            self.process = subprocess.Popen(  # pylint: disable=consider-using-with
                argv, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                cwd="/", start_new_session=True, preexec_fn=_die_with_parent)
        self.started_at = time.monotonic()
        log(f'Started static pod "{self.spec.name}" from {self.path} (pid {self.process.pid})')

    def _fail(self, reason):
        self.error = reason
        log(f'Error syncing pod "{self.spec.name}": {reason}')
        self._schedule_restart()

    def _schedule_restart(self):
        scale = self.kubelet.time_scale
        if self.started_at and time.monotonic() - self.started_at > BACKOFF_RESET_AFTER * scale:
            self.backoff = 0.0
        self.backoff = min(BACKOFF_MAX, self.backoff * 2 or BACKOFF_INITIAL)
        self.next_start = time.monotonic() + self.backoff * scale
        self.restarts += 1

    def sync(self):
        """Start the process when due; notice when it exited and schedule the back-off restart."""
        if self.process is not None:
            code = self.process.poll()
            if code is None:
                return
            self.process = None
            self._schedule_restart()
            message = (f'Back-off {sim_config.go_duration(self.backoff)} restarting failed container '
                       f'"{self.spec.name}": exit code {code}')
            log(message)
            self._log_line(message)
        if time.monotonic() >= self.next_start:
            self.start()

    def stop(self):
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=min(self.spec.grace_seconds, 30.0))
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        except ProcessLookupError:
            pass
        # The group may hold children of the container's process.
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        log(f'Killed static pod "{self.spec.name}"')


class Kubelet:
    def __init__(self, flags, kubelet_config, sim):
        self.flags = flags
        self.config = kubelet_config
        self.sim = sim
        self.time_scale = sim.time_scale
        self.root_dir = flags["root-dir"]
        self.log_dir = os.path.join(self.root_dir, "sim-logs")
        self.static_pod_path = kubelet_config.get("staticPodPath") or ""
        self.node_name = (flags.get("hostname-override") or os.uname().nodename).lower()
        self.node_ip = flags.get("node-ip") or node_ip_default()
        self.pods = {}  # manifest path -> StaticPod
        self.bad_manifests = {}  # manifest path -> digest already reported as invalid
        self.stopping = threading.Event()
        self.healthz = None

    # -- static Pods ---------------------------------------------------------------------------

    def _manifest_files(self):
        if not self.static_pod_path:
            return {}
        try:
            names = os.listdir(self.static_pod_path)
        except FileNotFoundError:
            return {}
        files = {}
        for name in sorted(names):
            path = os.path.join(self.static_pod_path, name)
            if name.startswith(".") or not os.path.isfile(path):
                continue
            try:
                with open(path, "rb") as handle:
                    files[path] = handle.read()
            except OSError:
                continue
        return files

    def sync_pods(self):
        files = self._manifest_files()
        for path in list(self.pods):
            if path not in files:
                log(f"Static pod manifest {path} removed")
                self.pods.pop(path).stop()
        for path, data in files.items():
            digest = hashlib.sha256(data).hexdigest()
            pod = self.pods.get(path)
            if pod is not None and pod.digest == digest:
                pod.sync()
                continue
            try:
                spec = pods.parse_manifest(data, path)
            except pods.ManifestError as exc:
                if self.bad_manifests.get(path) != digest:
                    self.bad_manifests[path] = digest
                    log(f"Could not process manifest file {path}: {exc}")
                if pod is not None:
                    self.pods.pop(path).stop()
                continue
            if pod is not None:
                log(f'Static pod manifest {path} changed: restarting "{spec.name}"')
                pod.stop()
            self.pods[path] = StaticPod(self, path, digest, spec)
            self.pods[path].sync()

    def stop_pods(self):
        for pod in self.pods.values():
            pod.stop()
        self.pods.clear()

    # -- /healthz --------------------------------------------------------------------------------

    def serve_healthz(self):
        port = int(self.config.get("healthzPort", 10248))
        if port == 0:
            return
        address = self.config.get("healthzBindAddress", "127.0.0.1")

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                code, body = (200, b"ok") if self.path.split("?")[0] == "/healthz" else (404, b"404 page not found\n")
                self.send_response(code)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_):
                pass

        try:
            self.healthz = http.server.ThreadingHTTPServer((address, port), Handler)
        except OSError as exc:
            raise FlagError(f"failed to listen on {address}:{port}: listen tcp {address}:{port}: "
                            f"bind: {exc.strerror.lower()}") from None
        threading.Thread(target=self.healthz.serve_forever, name="healthz", daemon=True).start()

    # -- API server: TLS bootstrap, Node, Lease ---------------------------------------------------

    def api_loop(self):
        kubelet_api.run(self)

    # -- main loop --------------------------------------------------------------------------------

    def run(self):
        threading.Thread(target=self.api_loop, name="api", daemon=True).start()
        log(f'Starting kubelet {self.sim.kubernetes_version} on node "{self.node_name}" ({self.node_ip}); '
            f'static pods from "{self.static_pod_path}"')
        try:
            while not self.stopping.wait(SYNC_PERIOD):
                self.sync_pods()
        finally:
            self.stop_pods()
            if self.healthz is not None:
                self.healthz.shutdown()
        return 0


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    try:
        flags = effective_flags(argv)
        kubelet_config = load_config(flags["config"])
        kubelet = Kubelet(flags, kubelet_config, sim_config.load())
        signal.signal(signal.SIGTERM, lambda *_: kubelet.stopping.set())
        signal.signal(signal.SIGINT, lambda *_: kubelet.stopping.set())
        kubelet.serve_healthz()
    except FlagError as exc:
        sys.stderr.write(f'E{datetime.now(timezone.utc).strftime("%m%d %H:%M:%S.%f")} '
                         f'{os.getpid():>7} run.go:72] "command failed" err="{exc}"\n')
        return 1
    return kubelet.run()


if __name__ == "__main__":
    sys.exit(main())
