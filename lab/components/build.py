"""The builder: Kubernetes, etcd, CoreDNS, pause and kube-vip from upstream sources, with images.

Each result is a directory in the cache (`~/.cache/vipadm/components`, or `$VIPADM_CACHE_DIR/components`)
named `<component>-<version>-<key>`, where the key hashes what was built and how (recipes.cache_key).
A result is built in a temporary directory and renamed into place when whole, under a lock per key,
so a half-written result is never taken for a whole one and concurrent builders do not collide.
Every result holds `bin/`, `images/` (docker-archive tarballs) and `build.json`.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Callable

from . import images as image_files
from . import pins as pin_data
from . import recipes

REPO_ROOT = Path(__file__).resolve().parents[2]
KUBE_VIP_SOURCE_ENV = "VIPADM_KUBE_VIP_SRC"
CACHE_ENV = "VIPADM_CACHE_DIR"
SHARED_KUBE_VIP = REPO_ROOT.parent / "shared" / "upstream" / "kube-vip"
ERROR_TAIL_LINES = 25
REGISTRY = "registry.k8s.io"
KUBE_VIP_REPOSITORY = "ghcr.io/kube-vip/kube-vip"
# The lab's own test server for Services of type LoadBalancer (lab/components/http_echo, standard library
# only): no lab node runs it unless a test imports it (Builder.http_echo); .test is a reserved name, never pulled.
HTTP_ECHO_SOURCE = Path(__file__).resolve().parent / "http_echo"
HTTP_ECHO_VERSION = "v1"
HTTP_ECHO_REFERENCE = f"vipadm.test/http-echo:{HTTP_ECHO_VERSION}"


class BuildError(RuntimeError):
    """A component could not be built; the message says what and where in one sentence (plus the
    tail of the compiler's output for a failed build)."""


def cache_root() -> Path:
    base = os.environ.get(CACHE_ENV) or os.path.join(os.path.expanduser("~"), ".cache", "vipadm")
    return Path(base) / "components"


@dataclasses.dataclass(frozen=True)
class Result:
    """One built component in the cache."""

    component: str
    version: str
    path: Path
    built: bool  # False when it came from the cache
    info: dict

    def binary(self, name: str) -> Path:
        return self.path / "bin" / name

    @property
    def images(self) -> list[Path]:
        return sorted((self.path / "images").glob("*.tar"))


@dataclasses.dataclass(frozen=True)
class PinBuild:
    """Everything a lab node needs for one Kubernetes pin and one kube-vip tag."""

    kubernetes_version: str
    kube_vip_tag: str
    results: dict[str, Result]

    def binary(self, name: str) -> Path:
        for result in self.results.values():
            if result.binary(name).exists():
                return result.binary(name)
        raise BuildError(f"no component of this build has a binary named {name}")

    @property
    def images(self) -> list[Path]:
        return [image for result in self.results.values() for image in result.images]

    @property
    def image_references(self) -> list[str]:
        return sorted(ref for result in self.results.values() for ref in result.info.get("images", {}).values())


def _seconds(value: float) -> str:
    return f"{int(value // 60)} min {value % 60:.0f} s" if value >= 60 else f"{value:.1f} s"


def _tail(path: Path, lines: int = ERROR_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(text[-lines:])


class Builder:
    """Builds (or takes from the cache) components and whole pins; `log` receives one line per event."""

    def __init__(
        self,
        cache_dir: Path | None = None,
        jobs: int = 1,
        log: Callable[[str], None] = print,
        pins: pin_data.Pins | None = None,
    ):
        self.cache = Path(cache_dir) if cache_dir else cache_root()
        self.jobs = max(1, jobs)
        self.log = log
        self.pins = pins or pin_data.load()
        self._go_version: str | None = None

    # ---- the environment ----------------------------------------------------------------------

    @property
    def go_version(self) -> str:
        if self._go_version is None:
            if shutil.which("go") is None:
                raise BuildError("the builder needs Go on PATH (go1.24 or newer): none was found")
            self._go_version = subprocess.run(
                ["go", "env", "GOVERSION"], capture_output=True, text=True, check=True
            ).stdout.strip()
        return self._go_version

    @staticmethod
    def _go_env() -> dict[str, str]:
        env = dict(os.environ)
        env.update({"CGO_ENABLED": "0", "GOFLAGS": "-mod=mod -buildvcs=false", "GOTOOLCHAIN": "local", "GOWORK": "off"})
        return env

    def _run(self, argv: list[str], log_path: Path, what: str, cwd: Path | None = None, env=None) -> int:
        """Run argv with its output appended to log_path; return the peak RSS (KiB) of it and its
        children. Raise BuildError with the tail of the output when it fails."""
        with open(log_path, "ab") as log:
            log.write(f"\n$ {' '.join(argv)}\n".encode())
            log.flush()
            proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            raise BuildError(
                f"{what} failed (rc {proc.returncode}, full log {log_path}); the last lines of its output:\n"
                + _tail(log_path)
            )
        return usage.ru_maxrss

    def _output(self, argv: list[str], what: str) -> str:
        result = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if result.returncode != 0:
            raise BuildError(f"{what} failed (rc {result.returncode}): {(result.stderr or result.stdout).strip()[-2000:]}")
        return result.stdout

    # ---- the cache ----------------------------------------------------------------------------

    def _cached(self, component: str, version: str, key: str, produce: Callable[[Path, Path], dict],
                build: bool = True) -> Result | None:
        """The result of component/version/key: from the cache, or made by produce(tmp_dir, log_path)
        into a temporary directory that is renamed into place when produce returned. build=False: None
        when it is not in the cache (tests that use a component only when CI has built it)."""
        name = f"{component}-{version}-{key}"
        final = self.cache / name
        label = f"{component} {version}"
        result = self._load(component, version, final)
        if result is not None:
            self.log(f"{label}: cached, nothing to build ({final})")
            return result
        if not build:
            return None
        for sub in ("locks", "tmp", "logs"):
            (self.cache / sub).mkdir(parents=True, exist_ok=True)
        with open(self.cache / "locks" / f"{name}.lock", "a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                self.log(f"{label}: another builder is making it; waiting")
                fcntl.flock(lock, fcntl.LOCK_EX)
            result = self._load(component, version, final)
            if result is not None:
                self.log(f"{label}: built by another builder ({final})")
                return result
            log_path = self.cache / "logs" / f"{name}.log"
            log_path.write_text(f"# {label}, key {key}\n")
            self.log(f"{label}: building (log {log_path})")
            started = time.monotonic()
            tmp = Path(tempfile.mkdtemp(prefix=f"{name}.", dir=self.cache / "tmp"))
            try:
                (tmp / "bin").mkdir()
                (tmp / "images").mkdir()
                info = produce(tmp, log_path)
                info.update(
                    component=component,
                    version=version,
                    key=key,
                    go=self.go_version,
                    recipe=recipes.RECIPE_REVISION,
                    seconds=round(time.monotonic() - started, 1),
                    built_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                )
                for scratch in ("src", "work"):
                    shutil.rmtree(tmp / scratch, ignore_errors=True)
                (tmp / "build.json").write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
                if final.exists():  # an incomplete result (no build.json): not ours to trust
                    stale = Path(tempfile.mkdtemp(prefix=f"{name}.stale.", dir=self.cache / "tmp"))
                    os.rename(final, stale / "result")
                    shutil.rmtree(stale, ignore_errors=True)
                os.rename(tmp, final)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
        size = sum(f.stat().st_size for f in final.rglob("*") if f.is_file())
        peak = info.get("peak_rss_kib", 0) / 1024 / 1024
        self.log(f"{label}: built in {_seconds(info['seconds'])}, peak RSS {peak:.1f} GiB, {size / 1e6:.0f} MB -> {final}")
        return Result(component, version, final, True, info)

    def newest_cached(self, component: str, version: str) -> Result | None:
        """The newest complete cache entry of component/version, whatever its key; None when there is none."""
        if not self.cache.is_dir():
            return None
        entries = [path for path in self.cache.iterdir() if path.name.startswith(f"{component}-{version}-")]
        for path in sorted(entries, key=lambda path: path.stat().st_mtime, reverse=True):
            result = self._load(component, version, path)
            if result is not None:
                return result
        return None

    @staticmethod
    def _load(component: str, version: str, path: Path) -> Result | None:
        try:
            info = json.loads((path / "build.json").read_text())
        except (OSError, ValueError):
            return None
        return Result(component, version, path, False, info)

    # ---- components ---------------------------------------------------------------------------

    def _module_dir(self, module: str, version: str, log_path: Path) -> dict:
        """`go mod download -json module@version`: its GoMod (go.mod file) and Dir (sources)."""
        with tempfile.TemporaryDirectory(prefix="vipadm-gomod.") as scratch:
            result = subprocess.run(
                ["go", "mod", "download", "-json", f"{module}@{version}"],
                cwd=scratch, env=self._go_env(), capture_output=True, text=True, stdin=subprocess.DEVNULL,
            )  # fmt: skip
        with open(log_path, "a") as log:
            log.write(result.stdout + result.stderr)
        try:
            data = json.loads(result.stdout)
        except ValueError:
            data = {"Error": result.stderr.strip()}
        if result.returncode != 0 or data.get("Error"):
            raise BuildError(f"the Go module proxy did not give {module}@{version}: {data.get('Error') or result.stderr.strip()}")
        return data

    def _wrapper_build(self, out: Path, log_path: Path, gomod: str, version: str, binaries: dict[str, str]) -> int:
        """`go build` of each main package (binary name -> package) of a wrapper module; the peak RSS."""
        work = out / "work"
        work.mkdir()
        (work / "go.mod").write_text(gomod)
        peak = 0
        for binary, package in binaries.items():
            peak = max(peak, self._run(
                ["go", "build", "-trimpath", "-ldflags", "-s -w", "-o", str(out / "bin" / binary), package],
                log_path, f"go build of {binary} {version}", cwd=work, env=self._go_env(),
            ))  # fmt: skip
        return peak

    def kubernetes(self, version: str, build: bool = True) -> Result | None:
        """kubeadm, kubelet, kubectl, the control plane and kube-proxy, stamped with the version, and
        the images kubeadm runs (kube-apiserver, kube-controller-manager, kube-scheduler, kube-proxy).
        build=False: None unless it is in the cache."""
        recipes.parse_version(version)
        ldflags = recipes.kubernetes_ldflags(version)
        iptables = _iptables_files()
        key = recipes.cache_key(
            "kubernetes", version, self.go_version, ldflags=ldflags,
            packages=" ".join(recipes.kubernetes_packages()), iptables=iptables.digest,
        )  # fmt: skip

        def produce(out: Path, log_path: Path) -> dict:
            _, listed, peak = self._kubeadm_build(out, log_path, version, ldflags, recipes.kubernetes_packages())
            references = {}
            for name in recipes.KUBERNETES_IMAGES:
                reference = _reference_named(listed, name)
                references[name] = reference
                files = {f"usr/local/bin/{name}": str(out / "bin" / name)}
                symlinks = {}
                if name == "kube-proxy":  # kube-proxy runs iptables-restore and friends in its container
                    files.update(iptables.files)
                    symlinks.update(iptables.symlinks)
                image_files.write_image(
                    image_files.ImageSpec((reference,), files, (f"/usr/local/bin/{name}",), symlinks),
                    out / "images" / f"{name}.tar",
                )
            return {"images": references, "kubeadm_images": listed, "peak_rss_kib": peak,
                    "source": f"k8s.io/kubernetes@v{version} (Go module proxy)"}  # fmt: skip

        return self._cached("kubernetes", version, key, produce, build=build)

    def kubeadm(self, version: str, build: bool = True) -> Result | None:
        """kubeadm alone, stamped with the version, and the images it asks for: what the per-minor config
        validation needs of a release the lab's nodes do not run (one package to build, not seven).
        build=False: None unless it is in the cache. A cached build of all of this release serves as is."""
        whole = self.kubernetes(version, build=False)
        if whole is not None:
            return whole
        recipes.parse_version(version)
        ldflags = recipes.kubernetes_ldflags(version)
        key = recipes.cache_key("kubeadm", version, self.go_version, ldflags=ldflags)

        def produce(out: Path, log_path: Path) -> dict:
            kubeadm, listed, peak = self._kubeadm_build(out, log_path, version, ldflags, ["k8s.io/kubernetes/cmd/kubeadm"])
            return {"kubeadm_images": listed, "peak_rss_kib": peak,
                    "source": f"k8s.io/kubernetes@v{version} (Go module proxy)"}  # fmt: skip

        return self._cached("kubeadm", version, key, produce, build=build)

    def _kubeadm_build(self, out: Path, log_path: Path, version: str, ldflags: str, packages: list[str]):
        """go build of packages (kubeadm among them) in a wrapper module of k8s.io/kubernetes; returns the
        kubeadm path, what `kubeadm config images list` names for the version, and the peak RSS."""
        module = self._module_dir("k8s.io/kubernetes", f"v{version}", log_path)
        work = out / "work"
        work.mkdir()
        (work / "go.mod").write_text(recipes.kubernetes_wrapper_gomod(version, Path(module["GoMod"]).read_text()))
        peak = self._run(
            ["go", "build", "-trimpath", "-ldflags", ldflags, "-o", f"{out / 'bin'}/", *packages],
            log_path, f"go build of Kubernetes {version}", cwd=work, env=self._go_env(),
        )  # fmt: skip
        kubeadm = str(out / "bin" / "kubeadm")
        stamped = self._output([kubeadm, "version", "-o", "short"], "kubeadm version").strip()
        if stamped != f"v{version}":
            raise BuildError(f"the built kubeadm says it is {stamped!r}, not v{version}: the version stamp did not take")
        listed = self._output(
            [kubeadm, "config", "images", "list", "--kubernetes-version", f"v{version}"], "kubeadm config images list"
        ).split()
        return kubeadm, listed, peak

    def etcd(self, image_tag: str) -> Result:
        version = recipes.etcd_source_version(image_tag)
        gomod = recipes.etcd_wrapper_gomod(version)
        key = recipes.cache_key("etcd", image_tag, self.go_version, gomod=gomod)

        def produce(out: Path, log_path: Path) -> dict:
            peak = self._wrapper_build(
                out, log_path, gomod, version, {"etcd": "go.etcd.io/etcd/server/v3", "etcdctl": "go.etcd.io/etcd/etcdctl/v3"}
            )
            said = self._output([str(out / "bin" / "etcd"), "--version"], "etcd --version")
            if f"etcd Version: {version.lstrip('v')}" not in said:
                raise BuildError(f"the built etcd does not say it is {version}: {said.strip()}")
            reference = f"{REGISTRY}/etcd:{image_tag}"
            files = {f"usr/local/bin/{b}": str(out / "bin" / b) for b in ("etcd", "etcdctl")}
            image_files.write_image(
                image_files.ImageSpec((reference,), files, ("/usr/local/bin/etcd",)), out / "images" / "etcd.tar"
            )
            return {"images": {"etcd": reference}, "peak_rss_kib": peak, "source": f"go.etcd.io/etcd {version}"}

        return self._cached("etcd", image_tag, key, produce)

    def coredns(self, version: str) -> Result:
        gomod = recipes.coredns_wrapper_gomod(version)
        key = recipes.cache_key("coredns", version, self.go_version, gomod=gomod)

        def produce(out: Path, log_path: Path) -> dict:
            peak = self._wrapper_build(out, log_path, gomod, version, {"coredns": "github.com/coredns/coredns"})
            said = self._output([str(out / "bin" / "coredns"), "-version"], "coredns -version")
            if version.lstrip("v") not in said:
                raise BuildError(f"the built CoreDNS does not say it is {version}: {said.strip()}")
            reference = f"{REGISTRY}/coredns/coredns:{version}"
            image_files.write_image(
                image_files.ImageSpec((reference,), {"coredns": str(out / "bin" / "coredns")}, ("/coredns",)),
                out / "images" / "coredns.tar",
            )
            return {"images": {"coredns": reference}, "peak_rss_kib": peak, "source": f"github.com/coredns/coredns@{version}"}

        return self._cached("coredns", version, key, produce)

    def pause(self, version: str, kubernetes_version: str) -> Result:
        """pause from the pause.c in the k8s.io/kubernetes module of kubernetes_version."""
        key = recipes.cache_key("pause", version, self.go_version, source=f"k8s.io/kubernetes@v{kubernetes_version}")

        def produce(out: Path, log_path: Path) -> dict:
            if shutil.which("gcc") is None:
                raise BuildError("building pause needs gcc (apt-get install gcc libc6-dev)")
            module = self._module_dir("k8s.io/kubernetes", f"v{kubernetes_version}", log_path)
            source = Path(module["Dir"]) / "build" / "pause" / "linux" / "pause.c"
            binary = out / "bin" / "pause"
            peak = self._run(
                ["gcc", "-Os", "-Wall", "-Werror", "-static", f"-DVERSION=v{version}", "-o", str(binary), str(source)],
                log_path, f"gcc of pause {version}",
            )  # fmt: skip
            said = self._output([str(binary), "-v"], "pause -v")
            if version not in said:
                raise BuildError(f"the built pause does not say it is {version}: {said.strip()}")
            reference = f"{REGISTRY}/pause:{version}"
            image_files.write_image(
                image_files.ImageSpec((reference,), {"pause": str(binary)}, ("/pause",)), out / "images" / "pause.tar"
            )
            return {"images": {"pause": reference}, "peak_rss_kib": peak, "source": str(source)}

        return self._cached("pause", version, key, produce)

    def kube_vip(self, tag: str, build: bool = True) -> Result | None:
        """kube-vip of a tag with the tag's own ldflags, and its image. build=False: None unless it is in the
        cache; without the tag's source, the newest cached build of the tag (a clone that has only the cache)."""
        try:
            source = kube_vip_source(tag)
            digest = _source_digest(source)
            key = recipes.cache_key("kube-vip", tag, self.go_version, source=digest)
        except BuildError:  # no source, or no Go to name the key with
            if build:
                raise
            return self.newest_cached("kube-vip", tag)

        def produce(out: Path, log_path: Path) -> dict:
            src = out / "src"
            if source.is_dir():
                shutil.copytree(source, src, symlinks=True)
            else:
                src.mkdir()
                with tarfile.open(source) as tar:
                    tar.extractall(src, filter="data")
                entries = list(src.iterdir())
                if len(entries) == 1 and entries[0].is_dir():  # kube-vip-<tag>/...
                    src = entries[0]
            makefile = (src / "Makefile").read_text() if (src / "Makefile").exists() else ""
            ldflags = recipes.kube_vip_ldflags(makefile, tag, f"src-{digest[:12]}")
            if recipes.kube_vip_needs_checklinkname(tag):
                ldflags += " -checklinkname=0"
            peak = self._run(
                ["go", "build", "-trimpath", "-ldflags", ldflags, "-o", str(out / "bin" / "kube-vip"), "."],
                log_path, f"go build of kube-vip {tag}", cwd=src, env=self._go_env(),
            )  # fmt: skip
            reference = f"{KUBE_VIP_REPOSITORY}:{tag}"
            image_files.write_image(
                image_files.ImageSpec((reference,), {"kube-vip": str(out / "bin" / "kube-vip")}, ("/kube-vip",)),
                out / "images" / "kube-vip.tar",
            )
            return {"images": {"kube-vip": reference}, "peak_rss_kib": peak, "ldflags": ldflags, "source": str(source)}

        return self._cached("kube-vip", tag, key, produce, build=build)

    def http_echo(self, build: bool = True) -> Result | None:
        """The lab's test HTTP server (HTTP_ECHO_SOURCE): a static binary in an image of its own, which answers
        with the pod, its node and the client address it saw. Not part of any pin: a test imports it into the
        nodes that need it. build=False: None unless it is in the cache."""
        key = recipes.cache_key("http-echo", HTTP_ECHO_VERSION, self.go_version, source=_source_digest(HTTP_ECHO_SOURCE))

        def produce(out: Path, log_path: Path) -> dict:
            work = out / "work"
            shutil.copytree(HTTP_ECHO_SOURCE, work)
            binary = out / "bin" / "http-echo"
            peak = self._run(
                ["go", "build", "-trimpath", "-ldflags", "-s -w", "-o", str(binary), "."],
                log_path, "go build of http-echo", cwd=work, env=self._go_env(),
            )  # fmt: skip
            image_files.write_image(
                image_files.ImageSpec((HTTP_ECHO_REFERENCE,), {"http-echo": str(binary)}, ("/http-echo",)),
                out / "images" / "http-echo.tar",
            )
            return {"images": {"http-echo": HTTP_ECHO_REFERENCE}, "peak_rss_kib": peak, "source": str(HTTP_ECHO_SOURCE)}

        return self._cached("http-echo", HTTP_ECHO_VERSION, key, produce, build=build)

    # ---- whole pins ---------------------------------------------------------------------------

    def build_pin(self, kubernetes_version: str | None = None, kube_vip_tag: str | None = None) -> PinBuild:
        """Every component a lab of this Kubernetes pin and kube-vip tag runs, built or cached."""
        pin = self.pins.kubernetes_pin(kubernetes_version)
        tag = self.pins.kube_vip_tag(kube_vip_tag)
        kube_vip_source(tag)  # refuse a missing source before hours of building
        with concurrent.futures.ThreadPoolExecutor(max_workers=self.jobs) as pool:
            kubernetes = pool.submit(self.kubernetes, pin.version)
            kube_vip = pool.submit(self.kube_vip, tag)
            kubernetes_result = kubernetes.result()
            wanted = _asked_images(kubernetes_result, pin)
            rest = {
                "etcd": pool.submit(self.etcd, wanted["etcd"]),
                "coredns": pool.submit(self.coredns, wanted["coredns"]),
                "pause": pool.submit(self.pause, wanted["pause"], pin.version),
            }
            results = {"kubernetes": kubernetes_result, "kube-vip": kube_vip.result()}
            results.update({name: future.result() for name, future in rest.items()})
        return PinBuild(pin.version, tag, results)


def _asked_images(kubernetes: Result, pin: pin_data.KubernetesPin) -> dict[str, str]:
    """etcd/CoreDNS/pause versions the built kubeadm asks for, checked against the pins."""
    asked = recipes.image_list_versions(kubernetes.info["kubeadm_images"])
    wanted = {name: asked[name] for name in pin_data.IMAGE_NAMES}
    if pin.images is not None and pin.images != wanted:
        raise BuildError(
            f"kubeadm v{pin.version} asks for {wanted} but {pin_data.PINS_FILE} pins {pin.images}: "
            "run `python -m lab pins --refresh` to record what kubeadm asks for"
        )
    return wanted


def _reference_named(references: list[str], name: str) -> str:
    for reference in references:
        if reference.rpartition(":")[0].rsplit("/", 1)[-1] == name:
            return reference
    raise BuildError(f"kubeadm config images list names no {name} image: {references}")


def kube_vip_source(tag: str) -> Path:
    """The kube-vip source of a tag: $VIPADM_KUBE_VIP_SRC (a directory or tarball), else
    ../shared/upstream/kube-vip/kube-vip-<tag>.tar.gz beside the repository."""
    named = os.environ.get(KUBE_VIP_SOURCE_ENV)
    candidates = []
    if named:
        path = Path(named)
        if path.is_dir() and (path / f"kube-vip-{tag}.tar.gz").exists():
            return path / f"kube-vip-{tag}.tar.gz"
        if path.is_dir() and (path / "go.mod").exists():
            return path
        if path.is_file():
            return path
        candidates.append(f"{path} (${KUBE_VIP_SOURCE_ENV}: a kube-vip source directory, a tarball, or a directory of kube-vip-<tag>.tar.gz)")
    shared = SHARED_KUBE_VIP / f"kube-vip-{tag}.tar.gz"
    if shared.exists():
        return shared
    candidates.append(str(shared))
    raise BuildError(
        f"no source of kube-vip {tag}: looked in {' and '.join(candidates)}; set {KUBE_VIP_SOURCE_ENV} to a "
        "kube-vip source directory or tarball (kube-vip is not on the Go module proxy)"
    )


def _source_digest(source: Path) -> str:
    digest = hashlib.sha256()
    if source.is_file():
        with open(source, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        return digest.hexdigest()
    for path in sorted(p for p in source.rglob("*") if p.is_file() and ".git" not in p.parts):
        digest.update(str(path.relative_to(source)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


@dataclasses.dataclass(frozen=True)
class _Iptables:
    files: dict[str, str]
    symlinks: dict[str, str]
    digest: str


def _iptables_files() -> _Iptables:
    """This machine's iptables (the variant its `iptables` alternative points at), its xtables
    extensions and their shared libraries, for the kube-proxy image."""
    found = shutil.which("iptables") or "/usr/sbin/iptables"
    if not os.path.exists(found):
        raise BuildError("the kube-proxy image needs this machine's iptables: apt-get install iptables")
    multi = os.path.realpath(found)
    programs = [multi]
    extensions = []
    for directory in ("/usr/lib/x86_64-linux-gnu/xtables", "/usr/lib/xtables", "/lib/xtables"):
        if os.path.isdir(directory):
            extensions = sorted(str(p) for p in Path(directory).glob("*.so"))
            break
    files = {multi.lstrip("/"): multi}
    for path in programs + extensions:
        files[path.lstrip("/")] = path
        ldd = subprocess.run(["ldd", path], capture_output=True, text=True)
        for library in image_files.parse_ldd(ldd.stdout):
            files[library.lstrip("/")] = os.path.realpath(library)
    for extra in ("/etc/protocols", "/etc/ethertypes"):
        if os.path.exists(extra):
            files[extra.lstrip("/")] = extra
    symlinks = {f"usr/sbin/{name}": os.path.basename(multi) for name in image_files.IPTABLES_NAMES}
    symlinks = {k: v for k, v in symlinks.items() if k != multi.lstrip("/")}
    digest = hashlib.sha256(json.dumps([sorted(files), sorted(symlinks.items())]).encode())
    for source in sorted(set(files.values())):
        digest.update(str(os.stat(source).st_size).encode())
    return _Iptables(files, symlinks, digest.hexdigest())

