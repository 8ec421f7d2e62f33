"""Static Pod manifests as the simulated kubelet understands them, and what a Pod's process sees.

Pure functions: the kubelet (``lab.sim.kubelet``) turns a manifest into a :class:`PodSpec`, then into
the argv and environment of a process. The simulated programs (kube-vip) read back what the kubelet
passed through the ``LAB_SIM_*`` variables below: the hostPath behind a container path, and the
Pod's hostAliases (what the container runtime would bind-mount and write into the Pod's /etc/hosts).
"""

import json
import os
import shlex
import sys
from dataclasses import dataclass, field

import yaml

# The kubelet passes these to every Pod process; nothing else of the simulator sets them.
MOUNTS_ENV = "LAB_SIM_MOUNTS"  # JSON {mountPath: hostPath}
HOST_ALIASES_ENV = "LAB_SIM_HOST_ALIASES"  # JSON [{"ip": ..., "hostnames": [...]}]
POD_NAME_ENV = "LAB_SIM_POD"
IMAGE_ENV = "LAB_SIM_IMAGE"  # the container image: simulated programs take their version from its tag

# Image repository name (last path element) -> how the simulator runs that container.
# ``None`` = the container's own command (etcd: Debian's real binary).
SIMULATED_IMAGES = {
    "etcd": "etcd",
    "kube-apiserver": "lab.sim.apiserver",
    "kube-controller-manager": "lab.sim.controller_manager",
    "kube-scheduler": "lab.sim.scheduler",
    "kube-vip": "lab.sim.kube_vip",
}
ETCD_BINARY = "/usr/bin/etcd"

# Flags of kubeadm's etcd manifest that Debian's etcd 3.4 does not know. etcd 3.6 renamed the
# experimental flags; the 3.4 spelling means the same thing, so they are translated, not dropped.
ETCD_RENAMED_FLAGS = {
    "--watch-progress-notify-interval": "--experimental-watch-progress-notify-interval",
    "--initial-corrupt-check": "--experimental-initial-corrupt-check",
    "--corrupt-check-time": "--experimental-corrupt-check-time",
}
# etcd 3.6 ``--feature-gates`` entries and their 3.4 flag. A gate without a 3.4 equivalent is
# dropped with a log line (it changes nothing that kubeadm, vipadm or kube-vip can observe).
ETCD_FEATURE_GATE_FLAGS = {
    "InitialCorruptCheck": "--experimental-initial-corrupt-check",
}


class ManifestError(ValueError):
    """A manifest the kubelet cannot run (logged; the file is skipped until it changes)."""


@dataclass
class PodSpec:
    """The part of a static Pod the simulator acts on (one container)."""

    name: str
    namespace: str
    image: str
    command: list
    args: list
    env: list  # raw container env entries
    mounts: dict  # mountPath -> hostPath (hostPath volumes only)
    mount_types: dict  # mountPath -> hostPath.type ("" when unset)
    host_aliases: list = field(default_factory=list)
    host_network: bool = False
    grace_seconds: float = 30.0

    @property
    def image_name(self):
        """``registry.k8s.io/kube-apiserver:v1.32.4`` -> ``kube-apiserver``."""
        repo = self.image.split("@", 1)[0]
        last = repo.rsplit("/", 1)[-1]
        return last.split(":", 1)[0]

    @property
    def image_tag(self):
        repo = self.image.split("@", 1)[0]
        last = repo.rsplit("/", 1)[-1]
        return last.split(":", 1)[1] if ":" in last else "latest"


def parse_manifest(text, source="manifest"):
    """Parse a static Pod manifest; raise :class:`ManifestError` with the kubelet's kind of reason."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ManifestError(f"{source}: invalid pod: {exc}") from None
    if not isinstance(doc, dict) or doc.get("kind") != "Pod" or doc.get("apiVersion") != "v1":
        raise ManifestError(f"{source}: invalid pod: not a v1 Pod")
    meta = doc.get("metadata") or {}
    spec = doc.get("spec") or {}
    if not meta.get("name"):
        raise ManifestError(f"{source}: invalid pod: metadata.name: Required value")
    containers = spec.get("containers") or []
    if len(containers) != 1:
        raise ManifestError(f"{source}: the simulator runs Pods of exactly one container, "
                            f"this one has {len(containers)}")
    container = containers[0]
    if not container.get("image"):
        raise ManifestError(f"{source}: invalid pod: spec.containers[0].image: Required value")
    volumes = {}
    for volume in spec.get("volumes") or []:
        if "hostPath" in volume:
            volumes[volume.get("name")] = volume["hostPath"] or {}
    mounts, mount_types = {}, {}
    for mount in container.get("volumeMounts") or []:
        host = volumes.get(mount.get("name"))
        if host is None:
            raise ManifestError(f'{source}: invalid pod: volumeMounts "{mount.get("name")}": '
                                "not found (only hostPath volumes are simulated)")
        mounts[mount["mountPath"]] = host.get("path")
        mount_types[mount["mountPath"]] = host.get("type") or ""
    return PodSpec(
        name=meta["name"],
        namespace=meta.get("namespace") or "default",
        image=container["image"],
        command=[str(a) for a in container.get("command") or []],
        args=[str(a) for a in container.get("args") or []],
        env=list(container.get("env") or []),
        mounts=mounts,
        mount_types=mount_types,
        host_aliases=list(spec.get("hostAliases") or []),
        host_network=bool(spec.get("hostNetwork")),
        grace_seconds=float(spec.get("terminationGracePeriodSeconds", 30)),
    )


def resolve_env(pod, node_name, node_ip):
    """The container's environment: literal values and the downward-API fields kube-vip uses."""
    fields = {"spec.nodeName": node_name, "status.podIP": node_ip, "status.hostIP": node_ip,
              "metadata.name": f"{pod.name}-{node_name}", "metadata.namespace": pod.namespace}
    env = {}
    for entry in pod.env:
        name = entry.get("name")
        if "valueFrom" in entry:
            path = ((entry["valueFrom"] or {}).get("fieldRef") or {}).get("fieldPath")
            if path not in fields:
                raise ManifestError(f'CreateContainerConfigError: env "{name}": only fieldRef '
                                    f"{sorted(fields)} is simulated")
            env[name] = fields[path]
        else:
            env[name] = str(entry.get("value", ""))
    return env


def translate_etcd_flags(argv):
    """Make kubeadm's etcd command line acceptable to etcd 3.4: (argv, log lines about changes).

    Only flags listed in ETCD_RENAMED_FLAGS / ETCD_FEATURE_GATE_FLAGS are touched; any other flag
    reaches etcd unchanged, so a wrong one makes etcd fail as it would in a real cluster.
    """
    out, notes = [], []
    for arg in argv:
        name, sep, value = arg.partition("=")
        if name in ETCD_RENAMED_FLAGS:
            new = ETCD_RENAMED_FLAGS[name]
            out.append(f"{new}{sep}{value}")
            notes.append(f"etcd 3.4: {name} passed as {new}")
        elif name == "--feature-gates":
            for gate in filter(None, value.split(",")):
                gate_name, _, gate_value = gate.partition("=")
                if gate_name in ETCD_FEATURE_GATE_FLAGS:
                    out.append(f"{ETCD_FEATURE_GATE_FLAGS[gate_name]}={gate_value or 'true'}")
                    notes.append(f"etcd 3.4: feature gate {gate} passed as "
                                 f"{ETCD_FEATURE_GATE_FLAGS[gate_name]}")
                else:
                    notes.append(f"etcd 3.4: feature gate {gate} has no etcd 3.4 equivalent, dropped")
        else:
            out.append(arg)
    return out, notes


def process_argv(pod):
    """The argv that runs the Pod's container in the simulator, or raise ManifestError (ErrImagePull)."""
    image = pod.image_name
    if image not in SIMULATED_IMAGES:
        raise ManifestError(f'ErrImagePull: image "{pod.image}" is not simulated by the lab')
    words = pod.command + pod.args
    if image == "etcd":
        if words and os.path.basename(words[0]) == "etcd":
            words = words[1:]
        return [ETCD_BINARY] + words
    if words and os.path.basename(words[0]) == image:
        words = words[1:]  # the component's own binary name; its flags follow
    return [sys.executable, "-m", SIMULATED_IMAGES[image]] + words


def process_env(pod, node_name, node_ip, base_env):
    """Environment of the Pod process: the container env plus the simulator's plumbing."""
    env = {key: base_env[key] for key in ("PATH", "PYTHONPATH", "LAB_SIM_CONFIG", "LANG")
           if key in base_env}
    env.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    env.update(resolve_env(pod, node_name, node_ip))
    env[MOUNTS_ENV] = json.dumps(pod.mounts, sort_keys=True)
    env[HOST_ALIASES_ENV] = json.dumps(pod.host_aliases)
    env[POD_NAME_ENV] = pod.name
    env[IMAGE_ENV] = pod.image
    return env


def describe_argv(argv):
    return " ".join(shlex.quote(a) for a in argv)


# -- read back inside a Pod process ----------------------------------------------------------

def host_path(container_path, environ=None):
    """The node path behind ``container_path``: the hostPath whose mountPath covers it.

    Without a covering mount the file does not exist in the container: ``None``.
    """
    mounts = json.loads((environ or os.environ).get(MOUNTS_ENV) or "{}")
    best = None
    for mount_path, node_path in mounts.items():
        prefix = mount_path.rstrip("/")
        if container_path == mount_path or container_path.startswith(prefix + "/"):
            if best is None or len(mount_path) > len(best[0]):
                best = (mount_path, node_path)
    if best is None:
        return None
    rest = container_path[len(best[0].rstrip("/")):]
    return best[1].rstrip("/") + rest if rest else best[1]


def host_aliases(environ=None):
    """``{hostname: ip}`` from the Pod's hostAliases (first entry wins, as in /etc/hosts)."""
    aliases = {}
    for entry in json.loads((environ or os.environ).get(HOST_ALIASES_ENV) or "[]"):
        for name in entry.get("hostnames") or []:
            aliases.setdefault(name, entry.get("ip"))
    return aliases
