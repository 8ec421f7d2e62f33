"""kube-vip in a lab node: control-plane VIP with Lease leader election and ARP.

Run by the simulated kubelet from the kube-vip static Pod (``python3 -m lab.sim.kube_vip manager``),
with the container's env. It behaves like the kube-vip version named by the image tag
(``../shared/reference/kube-vip.md`` §3, §6, §7):

* only the env variables that version reads are used; an unusable value ends the process with a
  log line (the kubelet then restarts it with back-off: a crash loop);
* the kubeconfig is the file mounted at /etc/kubernetes/admin.conf (the hostPath behind it), the
  server is overridden to ``https://kubernetes:<port>``, resolved through the Pod's hostAliases or
  the node's /etc/hosts, and the certificate is verified for the name ``kubernetes``;
* leader election on a coordination.k8s.io/v1 Lease with client-go's rules (identity = node name);
  the leader adds the VIP to the interface, sends gratuitous ARP every 3 s and re-adds a removed
  VIP; losing the lease removes the VIP and exits ("lost leadership, restarting kube-vip"); SIGTERM
  removes the VIP and releases the lease.
* BGP mode is not simulated: it says so and stays down.
"""

import fcntl
import ipaddress
import os
import random
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone

from lab.sim import pods

KUBECONFIG_IN_CONTAINER = "/etc/kubernetes/admin.conf"
LEASE_API = "/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"

# Env names and the first version whose runtime reads them; (name, since, until-excluded).
ENV_READ = (
    ("vip_arp", (0, 4, 0), None),
    ("port", (0, 4, 0), None),
    ("vip_interface", (0, 4, 0), None),
    ("vip_cidr", (0, 4, 0), (0, 9, 0)),
    ("vip_subnet", (0, 5, 6), None),
    ("cp_enable", (0, 4, 0), None),
    ("cp_namespace", (0, 4, 0), None),
    ("svc_enable", (0, 4, 0), None),
    ("vip_leaderelection", (0, 4, 0), None),
    ("vip_leasename", (0, 6, 1), None),
    ("vip_leaseduration", (0, 4, 0), None),
    ("vip_renewdeadline", (0, 4, 0), None),
    ("vip_retryperiod", (0, 4, 0), None),
    ("vip_nodename", (0, 8, 0), None),
    ("vip_arpRate", (0, 4, 0), None),
    ("bgp_enable", (0, 4, 0), None),
    ("address", (0, 4, 0), None),
    ("vip_address", (0, 4, 0), None),
)
NEW_LEASE_DEFAULTS = (1, 1, 0)  # 15/10/2 from v1.1.0, 5/3/1 before


class SettingsError(Exception):
    """An env value kube-vip cannot use: it logs the text and exits non-zero."""


@dataclass
class Settings:
    version: tuple
    version_text: str
    address: str
    prefix_len: int
    interface: str
    port: int
    control_plane: bool
    services: bool
    arp: bool
    bgp: bool
    leader_election: bool
    lease_name: str
    namespace: str
    lease_duration: int
    renew_deadline: int
    retry_period: int
    node_name: str
    arp_rate_ms: int


def parse_version(tag):
    """``v0.8.9`` -> (0, 8, 9); an unparsable tag counts as the newest behaviour."""
    core = tag.lstrip("v").split("-", 1)[0]
    parts = core.split(".")
    if len(parts) == 3 and all(p.isdigit() for p in parts):
        return tuple(int(p) for p in parts)
    return (99, 0, 0)


def env_read(environ, version):
    """The subset of ``environ`` this version of kube-vip reads; anything else is ignored."""
    names = {name for name, since, until in ENV_READ
             if version >= since and (until is None or version < until)}
    return {name: value for name, value in environ.items() if name in names}


def _go_bool(name, value, default=False):
    if value is None or value == "":
        return default
    if value in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if value in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise SettingsError(f'strconv.ParseBool: parsing "{value}": invalid syntax')


def _go_int(name, value, default):
    if value is None or value == "":
        return default
    try:
        return int(value, 10)
    except ValueError:
        raise SettingsError(f'strconv.Atoi: parsing "{value}": invalid syntax') from None


def parse_settings(environ, version_text, hostname):
    """Settings from the container env as this kube-vip version reads it (raises SettingsError)."""
    version = parse_version(version_text)
    env = env_read(environ, version)
    new_defaults = version >= NEW_LEASE_DEFAULTS
    address = env.get("address") or env.get("vip_address") or ""
    if not address:
        raise SettingsError("no address is specified for kube-vip to expose services on")
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        # A name would be resolved through DNS; lab nodes have none (resolv.conf -> 127.0.0.1).
        raise SettingsError(f"dial tcp: lookup {address} on 127.0.0.1:53: no such host") from None
    prefix_text = env.get("vip_subnet") or env.get("vip_cidr") or ""
    max_len = 32 if ip.version == 4 else 128
    prefix_len = _go_int("vip_subnet", prefix_text.split(",")[0] if prefix_text else "", max_len)
    if not 0 <= prefix_len <= max_len:
        raise SettingsError(f"invalid CIDR address: {address}/{prefix_len}")
    arp_rate = _go_int("vip_arpRate", env.get("vip_arpRate"), 3000)
    return Settings(
        version=version,
        version_text=version_text,
        address=str(ip),
        prefix_len=prefix_len,
        interface=env.get("vip_interface", ""),
        port=_go_int("port", env.get("port"), 6443),
        control_plane=_go_bool("cp_enable", env.get("cp_enable")),
        services=_go_bool("svc_enable", env.get("svc_enable")),
        arp=_go_bool("vip_arp", env.get("vip_arp")),
        bgp=_go_bool("bgp_enable", env.get("bgp_enable")),
        leader_election=_go_bool("vip_leaderelection", env.get("vip_leaderelection")),
        lease_name=env.get("vip_leasename") or "plndr-cp-lock",
        namespace=env.get("cp_namespace") or "kube-system",
        lease_duration=_go_int("vip_leaseduration", env.get("vip_leaseduration"), 15 if new_defaults else 5),
        renew_deadline=_go_int("vip_renewdeadline", env.get("vip_renewdeadline"), 10 if new_defaults else 3),
        retry_period=_go_int("vip_retryperiod", env.get("vip_retryperiod"), 2 if new_defaults else 1),
        node_name=env.get("vip_nodename") or hostname,
        arp_rate_ms=arp_rate if arp_rate >= 500 else 3000,
    )


# -- logging: logrus text up to v0.8.9, slog text from v0.8.10 ---------------------------------

class Log:
    def __init__(self, version, stream=None):
        self.slog = version >= (0, 8, 10)
        self.stream = stream or sys.stderr
        self.lock = threading.Lock()

    def __call__(self, level, msg):
        now = datetime.now(timezone.utc)
        if self.slog:
            line = f'time={now.isoformat(timespec="milliseconds").replace("+00:00", "Z")} ' \
                   f'level={level.upper()} msg="{msg}"'
        else:
            line = f'time="{now.strftime("%Y-%m-%dT%H:%M:%SZ")}" level={level} msg="{msg}"'
        with self.lock:
            self.stream.write(line + "\n")
            self.stream.flush()


# -- leader election with client-go's rules ----------------------------------------------------

def micro_time(epoch):
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    """client-go ``tryAcquireOrRenew`` on a Lease.

    ``api`` has ``get(path)``, ``create(path, obj)``, ``update(path, obj)`` and raises an error
    with ``status == 404`` when the Lease does not exist. A follower takes over only once
    ``lease_duration`` has passed on its own clock since it last saw the Lease change.
    """

    def __init__(self, api, namespace, name, identity, lease_duration,
                 clock=time.monotonic, wallclock=time.time):
        self.api = api
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.lease_duration = lease_duration
        self.clock = clock
        self.wallclock = wallclock
        self.observed_spec = None
        self.observed_time = None
        self.resource_version = None

    @property
    def path(self):
        return LEASE_API.format(namespace=self.namespace) + "/" + self.name

    @property
    def is_leader(self):
        return bool(self.observed_spec) and self.observed_spec.get("holderIdentity") == self.identity

    @property
    def holder(self):
        return (self.observed_spec or {}).get("holderIdentity") or ""

    def _lease(self, spec):
        metadata = {"name": self.name, "namespace": self.namespace}
        if self.resource_version:
            metadata["resourceVersion"] = self.resource_version
        return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": metadata, "spec": spec}

    def _observe(self, lease):
        spec = dict(lease.get("spec") or {})
        if spec != self.observed_spec:
            self.observed_spec = spec
            self.observed_time = self.clock()
        self.resource_version = (lease.get("metadata") or {}).get("resourceVersion")

    def try_acquire_or_renew(self):
        """One attempt; True when this identity holds the Lease afterwards. API errors propagate."""
        now = micro_time(self.wallclock())
        desired = {"holderIdentity": self.identity, "leaseDurationSeconds": self.lease_duration,
                   "acquireTime": now, "renewTime": now, "leaseTransitions": 0}
        try:
            current = self.api.get(self.path)
        except Exception as exc:  # pylint: disable=broad-except
            if getattr(exc, "status", None) != 404:
                raise
            self.resource_version = None
            created = self.api.create(LEASE_API.format(namespace=self.namespace), self._lease(desired))
            self._observe(created)
            return True
        self._observe(current)
        old = self.observed_spec
        if old.get("holderIdentity") and not self.is_leader \
                and self.observed_time + self.lease_duration > self.clock():
            return False
        if self.is_leader:
            desired["acquireTime"] = old.get("acquireTime") or now
            desired["leaseTransitions"] = old.get("leaseTransitions") or 0
        else:
            desired["leaseTransitions"] = (old.get("leaseTransitions") or 0) + 1
        updated = self.api.update(self.path, self._lease(desired))
        self._observe(updated)
        return True

    def release(self):
        """Give the Lease up (client-go ReleaseOnCancel): empty holder, 1 s duration."""
        if not self.is_leader:
            return False
        now = micro_time(self.wallclock())
        spec = {"holderIdentity": "", "leaseDurationSeconds": 1, "acquireTime": now, "renewTime": now,
                "leaseTransitions": self.observed_spec.get("leaseTransitions") or 0}
        self._observe(self.api.update(self.path, self._lease(spec)))
        return True


# -- the VIP on an interface --------------------------------------------------------------------

SIOCGIFHWADDR = 0x8927


def interface_mac(interface):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        data = fcntl.ioctl(sock.fileno(), SIOCGIFHWADDR, struct.pack("256s", interface.encode()[:15]))
    return data[18:24]


def gratuitous_arp_frame(mac, address):
    """An ARP request for ``address`` from ``address`` (what ``arping -U`` broadcasts)."""
    ip = socket.inet_aton(address)
    broadcast = b"\xff" * 6
    ethernet = broadcast + mac + struct.pack("!H", 0x0806)
    arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + mac + ip + broadcast + ip
    return ethernet + arp


class Vip:
    """The VIP as an extra address of ``interface`` (``ip addr``) plus gratuitous ARP."""

    def __init__(self, address, prefix_len, interface, log):
        self.address = address
        self.prefix_len = prefix_len
        self.interface = interface
        self.log = log

    @property
    def cidr(self):
        return f"{self.address}/{self.prefix_len}"

    def _ip(self, *args):
        return subprocess.run(["ip", *args], capture_output=True, text=True, check=False)

    def interface_exists(self):
        return self._ip("link", "show", "dev", self.interface).returncode == 0

    def present(self):
        out = self._ip("-o", "addr", "show", "dev", self.interface).stdout
        return any(f" {self.address}/" in line for line in out.splitlines())

    def add(self):
        if self.present():
            return False
        result = self._ip("addr", "add", self.cidr, "dev", self.interface)
        if result.returncode != 0 and "File exists" not in result.stderr:
            raise OSError(f"could not add {self.cidr} to {self.interface}: {result.stderr.strip()}")
        return True

    def remove(self):
        if not self.present():
            return False
        self._ip("addr", "del", self.cidr, "dev", self.interface)
        return True

    def announce(self):
        if ":" in self.address:
            return  # unsolicited NDP is not simulated; the lab is IPv4
        frame = gratuitous_arp_frame(interface_mac(self.interface), self.address)
        with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as sock:
            sock.bind((self.interface, 0))
            sock.send(frame)


def default_route_interface():
    out = subprocess.run(["ip", "-4", "route", "show", "default"], capture_output=True, text=True,
                         check=False).stdout.split()
    return out[out.index("dev") + 1] if "dev" in out else ""


# -- talking to the API server ------------------------------------------------------------------

def resolve_kubernetes(environ):
    """IP of ``kubernetes``: the Pod's hostAliases, else the node's /etc/hosts (no DNS in the lab)."""
    alias = pods.host_aliases(environ).get("kubernetes")
    if alias:
        return alias
    try:
        return socket.getaddrinfo("kubernetes", None, socket.AF_INET, socket.SOCK_STREAM)[0][4][0]
    except OSError:
        return None


def api_client(settings, environ):
    """A client for ``https://kubernetes:<port>`` with the mounted kubeconfig's credentials."""
    # Imported here: the crash paths above must not pay for TLS and YAML.
    from lab.sim import k8sclient, kubeconfig  # pylint: disable=import-outside-toplevel
    path = pods.host_path(KUBECONFIG_IN_CONTAINER, environ)
    if path is None:
        raise SettingsError(f"stat {KUBECONFIG_IN_CONTAINER}: no such file or directory")
    try:
        creds = kubeconfig.load_credentials(path)
    except IsADirectoryError:
        raise SettingsError(f"read {KUBECONFIG_IN_CONTAINER}: is a directory") from None
    except FileNotFoundError:
        raise SettingsError(f"stat {KUBECONFIG_IN_CONTAINER}: no such file or directory") from None
    except (OSError, ValueError) as exc:
        raise SettingsError(f"error loading config file \"{KUBECONFIG_IN_CONTAINER}\": {exc}") from None

    class Api:
        """Resolves ``kubernetes`` before each call, as Go's dialer does."""

        def __init__(self):
            self.client = None
            self.ip = None

        def _client(self):
            ip = resolve_kubernetes(environ)
            if ip is None:
                raise k8sclient.TransportError(
                    f"dial tcp: lookup kubernetes on {k8sclient._nameserver()}: no such host")  # pylint: disable=protected-access
            if ip != self.ip:
                self.ip = ip
                self.client = k8sclient.Client(
                    f"https://{ip}:{settings.port}", ca_pem=creds.ca_pem, cert_pem=creds.cert_pem,
                    key_pem=creds.key_pem, token=creds.token, tls_server_name="kubernetes",
                    timeout=max(1.0, float(settings.renew_deadline)), user_agent="kube-vip")
            return self.client

        def get(self, path):
            return self._client().get(path)

        def create(self, path, obj):
            return self._client().create(path, obj)

        def update(self, path, obj):
            return self._client().update(path, obj)

    return Api()


# -- the manager ----------------------------------------------------------------------------------

class Manager:
    def __init__(self, settings, api, vip, log):
        self.settings = settings
        self.api = api
        self.vip = vip
        self.log = log
        self.stopping = threading.Event()
        self.lease = f"{settings.namespace}/{settings.lease_name}"

    def stop(self, *_):
        self.stopping.set()

    def _sleep(self, seconds):
        return self.stopping.wait(seconds)

    def _announce(self):
        try:
            if self.vip.add():
                self.log("info", f"added {self.vip.cidr} to {self.vip.interface}")
            if self.settings.arp:
                self.vip.announce()
        except OSError as exc:
            self.log("error", f"unable to add or announce the VIP {self.vip.cidr} on "
                              f"{self.vip.interface}: {exc}")

    def run_without_election(self):
        self.log("info", "starting the VIP without leader election")
        while True:
            self._announce()
            if self._sleep(self.settings.arp_rate_ms / 1000):
                break
        self.vip.remove()
        return 0

    def run_election(self):
        s = self.settings
        elector = LeaderElector(self.api, s.namespace, s.lease_name, s.node_name, s.lease_duration)
        self.log("info", f"Beginning cluster membership, namespace [{s.namespace}], "
                         f"lock name [{s.lease_name}], id [{s.node_name}]")
        self.log("info", f"attempting to acquire leader lease {self.lease}...")
        last_holder = None
        # Candidate: try every retry period (client-go jitter factor 1.2).
        while not elector.is_leader:
            try:
                acquired = elector.try_acquire_or_renew()
            except Exception as exc:  # pylint: disable=broad-except
                self.log("error", f"error retrieving resource lock {self.lease}: {exc}")
                acquired = False
            if not acquired and elector.holder and elector.holder != last_holder:
                last_holder = elector.holder
                self.log("info", f"Node [{last_holder}] is assuming leadership of the cluster")
            if acquired:
                break
            if self._sleep(s.retry_period * (1 + random.random() * 1.2)):
                return 0
        self.log("info", f"successfully acquired lease {self.lease}")
        self.log("info", f"Node [{s.node_name}] is assuming leadership of the cluster")
        self.log("info", f"Gratuitous Arp broadcast will repeat every {s.arp_rate_ms // 1000} seconds "
                         f"for [{s.address}/{self.vip.interface}]")
        # Leader: renew every retry period; give up when renew_deadline passes without success.
        next_arp = next_renew = time.monotonic()
        next_renew += s.retry_period
        last_renew = time.monotonic()
        while True:
            now = time.monotonic()
            if now >= next_arp:
                self._announce()
                next_arp = now + s.arp_rate_ms / 1000
            if now >= next_renew:
                next_renew = now + s.retry_period
                try:
                    if elector.try_acquire_or_renew():
                        last_renew = time.monotonic()
                except Exception as exc:  # pylint: disable=broad-except
                    self.log("error", f"error retrieving resource lock {self.lease}: {exc}")
                if not elector.is_leader or time.monotonic() - last_renew > s.renew_deadline:
                    self.log("info", f"failed to renew lease {self.lease}: timed out waiting for the condition")
                    if self.vip.remove():
                        self.log("info", f"removed {self.vip.cidr} from {self.vip.interface}")
                    self.log("fatal", "lost leadership, restarting kube-vip")
                    return 1
            if self._sleep(max(0.0, min(next_arp, next_renew) - time.monotonic())):
                break
        # SIGTERM: stop announcing, drop the VIP, hand the Lease over at once.
        self.vip.remove()
        self.log("info", f"removed {self.vip.cidr} from {self.vip.interface}")
        try:
            if elector.release():
                self.log("info", f"released lease {self.lease}")
        except Exception as exc:  # pylint: disable=broad-except
            self.log("error", f"failed to release lock: {exc}")
        return 0


def main(argv=None, environ=None):
    argv = sys.argv[1:] if argv is None else argv
    environ = dict(os.environ if environ is None else environ)
    image = environ.get(pods.IMAGE_ENV, "")
    version_text = image.rsplit(":", 1)[1] if ":" in image.rsplit("/", 1)[-1] else "latest"
    log = Log(parse_version(version_text))
    if argv[:1] != ["manager"]:
        log("fatal", f'unknown command "{" ".join(argv)}" for "kube-vip"')
        return 1
    try:
        settings = parse_settings(environ, version_text, socket.gethostname())
    except SettingsError as exc:
        log("fatal", str(exc))
        return 1
    mode = "BGP" if settings.bgp else "ARP" if settings.arp else "Table"
    log("info", f"Starting kube-vip.io [{version_text}]")
    log("info", f"namespace [{settings.namespace}], Mode: [{mode}], Features(s): Control Plane:"
                f"[{str(settings.control_plane).lower()}], Services:[{str(settings.services).lower()}]")
    manager = Manager(settings, None, None, log)
    signal.signal(signal.SIGTERM, manager.stop)
    signal.signal(signal.SIGINT, manager.stop)
    if settings.bgp:
        log("error", "BGP mode is not simulated by the lab: the VIP stays down")
        manager.stopping.wait()
        return 0
    if not settings.control_plane:
        log("info", "services mode is not simulated by the lab: nothing to do")
        manager.stopping.wait()
        return 0
    interface = settings.interface or default_route_interface()
    vip = Vip(settings.address, settings.prefix_len, interface, log)
    if not interface or not vip.interface_exists():
        log("fatal", f"could not get link for interface '{interface}': Link not found")
        return 1
    manager.vip = vip
    if not settings.leader_election:
        return manager.run_without_election()
    try:
        manager.api = api_client(settings, environ)
    except SettingsError as exc:
        log("fatal", str(exc))
        return 1
    return manager.run_election()


if __name__ == "__main__":
    sys.exit(main())
