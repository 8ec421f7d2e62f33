# -*- coding: utf-8 -*-
# Copyright: vipadm developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Air-gapped bundles on a host: read and hash the files, ask containerd, import, fetch with skopeo.

The flows of the bundle modules. Each takes paths and, where it runs commands, a ``run(argv)`` callable
returning ``(rc, stdout, stderr)``; a bundle that cannot be used raises ``BundleError`` (one sentence per
problem). The decisions are the pure functions of ``_bundle``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import hashlib
import os
import posixpath
import stat

from ansible_collections.vipadm.kubeadm.plugins.module_utils._bundle import (
    BINARIES,
    CONTAINERD_NAMESPACE,
    MANIFEST,
    REBUILD,
    SHA256SUMS,
    BundleError,
    build_manifest,
    check_manifest,
    images_to_fetch,
    node_plan,
    parse_manifest,
    render_manifest,
    render_sha256sums,
    sha256sums_problems,
    wanted_images,
)
from ansible_collections.vipadm.kubeadm.plugins.module_utils._kube_vip import (
    DEFAULT_VERSION as DEFAULT_KUBE_VIP_VERSION,
    KubeVipOptionError,
    manifest_image,
)

CHUNK = 1024 * 1024


def file_sha256(path):
    """The hex SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_text(path):
    """A file's text, or None when it does not exist."""
    try:
        with open(path) as handle:
            return handle.read()
    except (IOError, OSError) as error:
        if error.errno == errno.ENOENT:
            return None
        raise


def write_text(path, text):
    """Write ``text`` to ``path`` (through a temporary file and a rename) unless it holds it already."""
    if read_text(path) == text:
        return False
    temporary = path + ".partial"
    with open(temporary, "w") as handle:
        handle.write(text)
    os.chmod(temporary, 0o644)
    os.rename(temporary, path)
    return True


# ---- the controller: read and verify a bundle --------------------------------------------------------


def load_manifest(directory):
    """The parsed bundle.json of a bundle directory, or BundleError saying what is wrong."""
    if not directory:
        raise BundleError(["No bundle directory was given: set node_prep_bundle_dir to the directory on the "
                           "controller that holds bundle.json (see docs/air-gapped.md)."])
    if not os.path.isdir(directory):
        raise BundleError(["The bundle directory %s does not exist on the controller: copy the bundle there, or "
                           "set node_prep_bundle_dir to the directory that holds bundle.json." % directory])
    text = read_text(os.path.join(directory, MANIFEST))
    if text is None:
        raise BundleError(["%s has no bundle.json: set node_prep_bundle_dir to the bundle's top directory (the one "
                           "holding bundle.json, SHA256SUMS, bin/ and images/)." % directory])
    try:
        return parse_manifest(text)
    except BundleError as error:
        raise BundleError(error.problems, context="The bundle %s cannot be used: " % directory)


def file_problems(directory, manifest):
    """Sentences for each file of bundle.json that is missing, not a regular file inside the bundle, or whose
    SHA-256 differs from bundle.json's (every file is hashed)."""
    root = os.path.realpath(directory)
    problems = []
    for entry in manifest["files"]:
        path = os.path.join(directory, entry["path"])
        real = os.path.realpath(path)
        if not real.startswith(root + os.sep):
            problems.append("%s leads outside the bundle (to %s): copy the file itself into the bundle, not a link "
                            "(%s)." % (entry["path"], real, REBUILD))
        elif not os.path.lexists(path):
            problems.append("The bundle has no %s, which bundle.json lists: copy the whole bundle again from the "
                            "machine that built it." % entry["path"])
        elif not os.path.isfile(real):
            problems.append("%s in the bundle is not a regular file: %s." % (entry["path"], REBUILD))
        else:
            found = file_sha256(real)
            if found != entry["sha256"]:
                problems.append(
                    "%s does not match its sha256 in bundle.json (expected %s, found %s): the copy is damaged or "
                    "incomplete; copy it again from the machine that built the bundle (sha256sum -c SHA256SUMS in "
                    "the bundle shows every damaged file)." % (entry["path"], entry["sha256"], found))
    return problems


def verify_bundle(directory, kubernetes_version, image_repository=None, pause=None, kube_vip_version=None,
                  kube_vip_image=None):
    """The manifest of a bundle that can install this cluster, every file checked; else BundleError."""
    manifest = load_manifest(directory)
    try:
        problems = check_manifest(manifest, kubernetes_version, image_repository, pause, kube_vip_version,
                                  kube_vip_image)
    except BundleError as error:
        problems = error.problems
    problems.extend(sha256sums_problems(read_text(os.path.join(directory, SHA256SUMS)), manifest))
    problems.extend(file_problems(directory, manifest))
    if problems:
        raise BundleError(problems, context="The bundle %s cannot be used: " % directory)
    return manifest


# ---- a node: what it has, importing images ------------------------------------------------------------


def installed_binaries(bin_dir, names):
    """binary name -> {"sha256", "mode"} of the regular files ``bin_dir/<name>`` (absent ones left out)."""
    installed = {}
    for name in names:
        path = os.path.join(bin_dir, name)
        try:
            info = os.stat(path)
        except OSError:
            continue
        if stat.S_ISREG(info.st_mode):
            installed[name] = {"sha256": file_sha256(path), "mode": stat.S_IMODE(info.st_mode)}
    return installed


def ctr_argv(ctr, *words):
    return [ctr, "-n", CONTAINERD_NAMESPACE, "images"] + list(words)


def list_images(run, ctr):
    """(the references containerd lists in the k8s.io namespace, None) or (None, why it could not list them)."""
    if not ctr:
        return None, "this node has no ctr command (it comes with containerd)"
    rc, stdout, stderr = run(ctr_argv(ctr, "ls", "-q"))
    if rc != 0:
        return None, (stderr or stdout).strip() or "ctr exited with %d" % rc
    return [line.strip() for line in stdout.splitlines() if line.strip()], None


def _no_containerd(error):
    return ("containerd did not list its images (ctr -n %s images ls -q: %s): node_prep imports the bundle's images "
            "into a running containerd; start containerd (node_prep_manage_services: true does), then run again."
            % (CONTAINERD_NAMESPACE, error))


def plan_node(manifest, bin_dir, run, ctr):
    """node_plan of this node: its binaries in ``bin_dir`` and the images containerd lists (all lacking when
    containerd does not answer: a fresh node); ``containerd_answered`` says which."""
    installed = installed_binaries(bin_dir, [entry["name"] for entry in manifest["files"] if entry["kind"] == "binary"])
    listed, _error = list_images(run, ctr)
    return dict(node_plan(manifest, installed, listed), containerd_answered=listed is not None)


def import_images(entries, archive_dir, run, ctr, check_mode=False):
    """Import the archives (``archive_dir/<file name>``) of the image entries whose references containerd lacks,
    then check that it lists them. Returns the entries imported (or, in check mode, to import)."""
    for entry in entries:
        references = entry.get("references")
        if not isinstance(entry.get("path"), str) or not isinstance(references, list) or not references:
            raise BundleError(["Each image to import needs its path and references, as bundle_plan returns them; "
                               "got %r." % (entry,)])
    manifest = {"files": [dict(entry, kind="image") for entry in entries]}
    listed, error = list_images(run, ctr)
    if listed is None and not check_mode:
        raise BundleError([_no_containerd(error)])
    lacking = node_plan(manifest, {}, listed)["images"]
    if check_mode or not lacking:
        return lacking
    for entry in lacking:
        archive = os.path.join(archive_dir, posixpath.basename(entry["path"]))
        if not os.path.isfile(archive):
            raise BundleError(["%s is not on this node, so %s cannot be imported: run node_prep again (it copies the "
                               "archive there first)." % (archive, ", ".join(entry["missing"]))])
        rc, stdout, stderr = run(ctr_argv(ctr, "import", archive))
        if rc != 0:
            raise BundleError(["ctr could not import %s (%s): check that it is an image archive ctr accepts "
                               "(docker-archive or OCI), or %s." % (
                                   entry["path"], (stderr or stdout).strip() or "exit %d" % rc, REBUILD)])
    listed, error = list_images(run, ctr)
    if listed is None:
        raise BundleError([_no_containerd(error)])
    still = node_plan(manifest, {}, listed)["images"]
    if still:
        raise BundleError([
            "After importing %s, containerd does not list %s: the archive must name the image as bundle.json does "
            "(RepoTags of a docker-archive, the image name annotation of an OCI archive); %s." % (
                entry["path"], ", ".join(entry["missing"]), REBUILD) for entry in still])
    return lacking


# ---- the connected machine: build a bundle -------------------------------------------------------------


def skopeo_argv(skopeo, architecture, reference, archive, options=()):
    """skopeo copy of one image of ``architecture`` into a docker-archive that names it ``reference``."""
    return ([skopeo, "copy", "--override-os", "linux", "--override-arch", architecture] + list(options)
            + ["docker://" + reference, "docker-archive:%s:%s" % (archive, reference)])


def _previous_manifest(directory):
    try:
        return load_manifest(directory)
    except BundleError:
        return None


def build_bundle(directory, kubernetes_version, architecture, kubeadm_images, run, skopeo=None,
                 skopeo_options=(), extra_images=(), extra_binaries=(), image_repository=None, pause=None,
                 kube_vip_version=None, kube_vip_image=None, check_mode=False):
    """Fetch the images a bundle lacks, then write bundle.json and SHA256SUMS.

    The binaries (kubeadm, kubelet, kubectl and ``extra_binaries``, such as crictl) must already be in
    ``directory/bin``; ``skopeo`` is the path of skopeo (None: not installed).
    The images are ``kubeadm_images`` (what that kubeadm's ``config images list`` prints), kube-vip's as its
    manifest names it, and ``extra_images``. An archive an earlier build left with the checksum its bundle.json
    gives is not fetched again. The result is checked as node_prep checks it; nothing is written when it fails.
    Returns ``fetched`` (image entries), ``written`` (file names) and ``manifest`` (None in check mode when an
    image would be fetched).
    """
    kube_vip_version = kube_vip_version or DEFAULT_KUBE_VIP_VERSION
    try:  # fetched under the name its manifest gives it
        kube_vip = manifest_image(kube_vip_version, kube_vip_image or None)
    except KubeVipOptionError as error:
        raise BundleError(["kube_vip_version/kube_vip_image: %s" % error])
    wanted = wanted_images(list(kubeadm_images) + [kube_vip] + list(extra_images))
    present = {}
    for entry in wanted:
        path = os.path.join(directory, entry["path"])
        if os.path.isfile(path):
            present[entry["path"]] = file_sha256(path)
    fetch = images_to_fetch(wanted, _previous_manifest(directory), present)
    names = list(BINARIES) + [name for name in extra_binaries if name not in BINARIES]
    missing = [name for name in names if not os.path.isfile(os.path.join(directory, "bin", name))]
    if missing:
        raise BundleError(["The bundle directory has no %s: put %s there first (playbooks/bundle.yml downloads "
                           "kubeadm, kubelet and kubectl)." % (
                               ", ".join("bin/" + name for name in missing), "them" if len(missing) > 1 else "it")])
    if check_mode and fetch:
        return {"fetched": fetch, "written": [MANIFEST, SHA256SUMS], "manifest": None}
    if fetch and not skopeo:
        raise BundleError(["This machine has no skopeo, which fetches %s: install it (apt-get install skopeo, "
                           "dnf install skopeo), then run again." % ", ".join(
                               entry["references"][0] for entry in fetch)])
    for entry in fetch:
        archive = os.path.join(directory, entry["path"])
        partial = archive + ".partial"
        if os.path.lexists(partial):
            os.remove(partial)  # skopeo refuses to add to an existing docker-archive
        reference = entry["references"][0]
        rc, stdout, stderr = run(skopeo_argv(skopeo, architecture, reference, partial, skopeo_options))
        if rc != 0:
            raise BundleError(["skopeo could not fetch %s (%s): check the name and that this machine reaches its "
                               "registry (skopeo login for a private one), then run again." % (
                                   reference, (stderr or stdout).strip() or "exit %d" % rc)])
        os.rename(partial, archive)
        present[entry["path"]] = file_sha256(archive)
    files = [{"path": "bin/" + name, "kind": "binary", "name": name,
              "sha256": file_sha256(os.path.join(directory, "bin", name))} for name in names]
    files.extend(dict(entry, sha256=present[entry["path"]]) for entry in wanted)
    manifest = build_manifest(kubernetes_version, kube_vip_version, architecture, files)
    problems = check_manifest(manifest, kubernetes_version, image_repository, pause, kube_vip_version,
                              kube_vip_image)
    if problems:
        raise BundleError(problems)
    texts = ((MANIFEST, render_manifest(manifest)), (SHA256SUMS, render_sha256sums(manifest)))
    if check_mode:
        written = [name for name, text in texts if read_text(os.path.join(directory, name)) != text]
    else:
        written = [name for name, text in texts if write_text(os.path.join(directory, name), text)]
    return {"fetched": fetch, "written": written, "manifest": manifest}
