# -*- coding: utf-8 -*-
# Copyright: vipadm developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What kubeadm left on a node: has it been initialized or joined, to which cluster, half-way?

Every function takes ``root``, the directory that stands for ``/`` (``/`` on a node, a
temporary directory in tests), and reads absolute paths below it.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import os
import re
import shutil
import tempfile

from ansible_collections.vipadm.kubeadm.plugins.module_utils._kubeadm import endpoint_of_server, server_url
from ansible_collections.vipadm.kubeadm.plugins.module_utils._kubeadm_pki import CertificateError, ca_cert_hashes

KUBERNETES_DIR = '/etc/kubernetes'
ADMIN_CONF = '/etc/kubernetes/admin.conf'
KUBELET_CONF = '/etc/kubernetes/kubelet.conf'
CA_CERT = '/etc/kubernetes/pki/ca.crt'
APISERVER_MANIFEST = '/etc/kubernetes/manifests/kube-apiserver.yaml'
ETCD_MANIFEST = '/etc/kubernetes/manifests/etcd.yaml'
ETCD_DATA_DIR = '/var/lib/etcd'

# The four static Pod manifests kubeadm owns; other files there (kube-vip.yaml) are not its.
KUBEADM_MANIFESTS = tuple('/etc/kubernetes/manifests/%s.yaml' % name for name in
                          ('etcd', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler'))
# Files an init writes (reference 3.1), in the order it writes them.
INIT_FILES = ('/etc/kubernetes/pki/ca.crt', '/etc/kubernetes/pki/ca.key', ADMIN_CONF,
              '/etc/kubernetes/super-admin.conf', KUBELET_CONF, '/etc/kubernetes/controller-manager.conf',
              '/etc/kubernetes/scheduler.conf') + KUBEADM_MANIFESTS
# Files a worker join writes (reference 3.3) besides kubelet.conf.
WORKER_JOIN_FILES = ('/etc/kubernetes/bootstrap-kubelet.conf', CA_CERT)
# What `kubeadm reset` cleans (reference 7.1): any of these present means reset has work to do.
RESET_FILES = ('/etc/kubernetes/admin.conf', '/etc/kubernetes/super-admin.conf', KUBELET_CONF,
               '/etc/kubernetes/bootstrap-kubelet.conf', '/etc/kubernetes/controller-manager.conf',
               '/etc/kubernetes/scheduler.conf', '/var/lib/kubelet/config.yaml',
               '/var/lib/kubelet/kubeadm-flags.env') + KUBEADM_MANIFESTS
RESET_DIRS = ('/etc/kubernetes/pki', ETCD_DATA_DIR)
KUBE_VIP_MANIFEST = '/etc/kubernetes/manifests/kube-vip.yaml'


def host_path(root, path):
    """The file that stands for the absolute ``path`` under ``root``."""
    expanded = os.path.expanduser(path)
    if root in (None, '', '/'):
        return expanded
    return os.path.join(root, expanded.lstrip('/'))


def exists(root, path):
    return os.path.lexists(host_path(root, path))


def has_content(root, path):
    """A file that exists, or a directory that is not empty."""
    full = host_path(root, path)
    if os.path.isdir(full) and not os.path.islink(full):
        return bool(os.listdir(full))
    return os.path.lexists(full)


def read_text(root, path):
    try:
        with open(host_path(root, path), 'r', encoding='utf-8') as handle:
            return handle.read()
    except (IOError, OSError, UnicodeDecodeError):
        return None


# --- kubeconfig --------------------------------------------------------------------------------

_SERVER = re.compile(r'^\s*server:\s*["\']?([^"\'\s]+)["\']?\s*$', re.M)
_CA_DATA = re.compile(r'^\s*certificate-authority-data:\s*["\']?([A-Za-z0-9+/=]+)["\']?\s*$', re.M)
_CA_FILE = re.compile(r'^\s*certificate-authority:\s*["\']?([^"\'\s]+)["\']?\s*$', re.M)
_CLIENT_DATA = re.compile(r'^\s*(client-certificate-data|client-key-data):\s*["\']?([A-Za-z0-9+/=]+)', re.M)


def kubeconfig_cluster(text, root='/'):
    """``server`` and CA PEM of the (first) cluster of a kubeconfig written by kubeadm or the kubelet."""
    server = _SERVER.search(text or '')
    ca_pem = None
    data = _CA_DATA.search(text or '')
    if data:
        try:
            ca_pem = base64.b64decode(data.group(1)).decode('ascii', 'replace')
        except (binascii.Error, ValueError):
            ca_pem = None
    else:
        ca_file = _CA_FILE.search(text or '')
        if ca_file:
            ca_pem = read_text(root, ca_file.group(1))
    return {'server': server.group(1) if server else None, 'ca_pem': ca_pem}


def kubeconfig_client(text):
    """(certificate PEM, key PEM) embedded in a kubeconfig written by kubeadm; None when missing."""
    found = dict(_CLIENT_DATA.findall(text or ''))
    try:
        cert = base64.b64decode(found['client-certificate-data']).decode('ascii')
        key = base64.b64decode(found['client-key-data']).decode('ascii')
    except (KeyError, binascii.Error, ValueError):
        return None
    return cert, key


def hashes_of(pem_text):
    """CA hashes of a PEM text; [] when it holds no readable certificate."""
    try:
        return ca_cert_hashes(pem_text or '')
    except CertificateError:
        return []


def ca_hash_of_file(root, path=CA_CERT):
    hashes = hashes_of(read_text(root, path))
    return hashes[0] if hashes else None


# --- init --------------------------------------------------------------------------------------

def init_state(root, control_plane_endpoint):
    """Classify the node before ``kubeadm init`` (reference 7.2).

    Returns (state, details): ``absent`` (nothing of kubeadm), ``initialized`` (the manifests,
    an admin.conf pointing at this endpoint and the CA exist), ``other_cluster`` (an admin.conf
    for another endpoint), or ``partial`` (some kubeadm files but not a running control plane).
    """
    found = [path for path in INIT_FILES if exists(root, path)]
    etcd_data = has_content(root, ETCD_DATA_DIR)
    if not found and not etcd_data:
        return 'absent', {}
    admin = kubeconfig_cluster(read_text(root, ADMIN_CONF), root) if exists(root, ADMIN_CONF) else None
    expected = server_url(control_plane_endpoint)
    if admin and admin['server'] and admin['server'] != expected:
        return 'other_cluster', {'server': admin['server'], 'found': found}
    if admin and admin['server'] == expected and exists(root, APISERVER_MANIFEST) and exists(root, CA_CERT):
        return 'initialized', {'server': admin['server'], 'found': found}
    if etcd_data:
        found.append(ETCD_DATA_DIR + '/ (not empty)')
    return 'partial', {'found': found}


# --- join --------------------------------------------------------------------------------------

def join_state(root, api_endpoint, expected_hashes, control_plane):
    """Classify the node before ``kubeadm join`` (reference 7.2).

    Returns (state, details): ``absent``, ``joined`` (kubelet.conf of this cluster, and for a
    control plane the etcd and kube-apiserver manifests), ``other_cluster`` (kubelet.conf of
    another cluster), or ``partial`` (files of a join that did not finish). ``expected_hashes``
    None skips the cluster identity check (nothing to compare with).
    """
    if not exists(root, KUBELET_CONF):
        owned = KUBEADM_MANIFESTS + ('/etc/kubernetes/pki/ca.key', ADMIN_CONF) if control_plane else ()
        found = [path for path in WORKER_JOIN_FILES + owned if exists(root, path)]
        if control_plane and has_content(root, ETCD_DATA_DIR):
            found.append(ETCD_DATA_DIR + '/ (not empty)')
        return ('partial', {'found': found}) if found else ('absent', {})

    kubelet = kubeconfig_cluster(read_text(root, KUBELET_CONF), root)
    hashes = hashes_of(kubelet['ca_pem']) or hashes_of(read_text(root, CA_CERT))
    details = {'server': kubelet['server'], 'ca_cert_hashes': hashes}
    if expected_hashes is None:
        pass  # a check-mode preview without credentials: the cluster's identity is unknown, the files decide
    elif hashes:
        if not set(hashes) & set(expected_hashes):
            return 'other_cluster', details
    elif kubelet['server'] != server_url(api_endpoint):
        # Without a readable CA the server is the only identity left.
        return 'other_cluster', details
    if control_plane:
        missing = [path for path in (ETCD_MANIFEST, APISERVER_MANIFEST) if not exists(root, path)]
        if missing:
            details['missing'] = missing
            return 'partial', details
    return 'joined', details


def describe_server(server):
    return endpoint_of_server(server) if server else 'an unknown endpoint'


# --- reset -------------------------------------------------------------------------------------

def reset_work(root):
    """The kubeadm-owned files and directories present, i.e. what ``kubeadm reset`` would clean."""
    found = [path for path in RESET_FILES if exists(root, path)]
    found += [path for path in RESET_DIRS if has_content(root, path)]
    return found


# The VIP in kube-vip's manifest: env ``address`` (one address, or an IPv4 and an IPv6 one, comma-separated),
# ``vip_address`` before kube-vip v0.5.
_KUBE_VIP_ADDRESS = re.compile(r'^\s*-\s*name:\s*["\']?(?:vip_)?address["\']?\s*\n\s*value:\s*["\']?([^"\'\s]+)', re.M)
# A line of `ip -o addr show`: "2: eth0    inet 198.51.100.254/32 scope global eth0 ..." (eth0@if12 for a veth).
_IP_ADDR_LINE = re.compile(r'^\d+:\s+([^\s@:]+)(?:@\S+)?:?\s+inet6?\s+(\S+)/(\d+)\s', re.M)


def kube_vip_addresses(root):
    """The VIP address(es) of the node's kube-vip manifest (IP literals only; a DNS name cannot be matched)."""
    found = []
    for value in _KUBE_VIP_ADDRESS.findall(read_text(root, KUBE_VIP_MANIFEST) or ''):
        for text in value.split(','):
            try:
                address = ipaddress.ip_address(text.strip())
            except ValueError:
                continue
            if address not in found:
                found.append(address)
    return found


def held_addresses(ip_addr_output, addresses):
    """``[(address/prefix, interface)]`` of ``addresses`` that ``ip -o addr show`` lists on an interface."""
    held = []
    for interface, text, prefix in _IP_ADDR_LINE.findall(ip_addr_output or ''):
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            continue
        if address in addresses:
            held.append(('%s/%s' % (address, prefix), interface))
    return held


def leftovers(root, paths):
    """The paths of ``paths`` that still hold something (files, or directories with content)."""
    return [path for path in paths if has_content(root, path)]


def remove_leftover(root, path):
    """Remove a file, or the content of a directory (the directory stays, with its owner and mode)."""
    full = host_path(root, path)
    if os.path.isdir(full) and not os.path.islink(full):
        for name in os.listdir(full):
            child = os.path.join(full, name)
            if os.path.isdir(child) and not os.path.islink(child):
                shutil.rmtree(child)
            else:
                os.unlink(child)
    elif os.path.lexists(full):
        os.unlink(full)


# --- files -------------------------------------------------------------------------------------

def remove_file(path):
    """Remove ``path`` if it exists (a file or a symbolic link)."""
    if os.path.lexists(path):
        os.unlink(path)


def write_private_file(path, text):
    """Write ``text`` to ``path`` atomically, mode 0600, creating missing directories with 0700."""
    directory = os.path.dirname(path)
    if directory and not os.path.isdir(directory):
        os.makedirs(directory, 0o700)
        os.chmod(directory, 0o700)  # makedirs' mode is filtered by the umask
    handle, temporary = tempfile.mkstemp(dir=directory or '.', prefix='.vipadm-')
    try:
        with os.fdopen(handle, 'w', encoding='utf-8') as stream:
            stream.write(text)
        os.chmod(temporary, 0o600)
        os.rename(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
