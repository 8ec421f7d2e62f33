# -*- coding: utf-8 -*-
# Copyright: vipadm developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Restart the static Pods of a control plane the way the kubeadm documentation does it: move the manifests out
of the kubelet's static Pod directory, wait until the kubelet has stopped them, move them back, wait until they
run again.

kube-vip goes out first and comes back last: stopped by the kubelet (SIGTERM), it releases its Lease (client-go's
ReleaseOnCancel) and the VIP, so another control plane takes the VIP before this node's API server stops; it
comes back once the API server answers again, with the admin.conf that was just renewed.

A process is known by the name of its program (``/proc/<pid>/cmdline``), which is its manifest's name for
kubeadm's four Pods and kube-vip. Everything that touches the node is passed in, so the flow is tested with
fakes: ``processes`` (``{pid: program}``), ``checks`` (``{pod: callable -> (ok, detail)}``), ``clock``, ``sleep``.
"""

from __future__ import annotations

import os
import re
import socket
import ssl
import time

from ansible_collections.vipadm.kubeadm.plugins.module_utils import _etcd as etcd
from ansible_collections.vipadm.kubeadm.plugins.module_utils import _half_init as half_init
from ansible_collections.vipadm.kubeadm.plugins.module_utils import _kubeadm_state as state
from ansible_collections.vipadm.kubeadm.plugins.module_utils import _removal as removal
from ansible_collections.vipadm.kubeadm.plugins.module_utils import _vip_probe as probe
from ansible_collections.vipadm.kubeadm.plugins.module_utils._kubeadm import KubeadmError
from ansible_collections.vipadm.kubeadm.plugins.module_utils._kubeadm_pki import CertificateError, pem_certificates

MANIFEST_DIR = '/etc/kubernetes/manifests'
# Outside the static Pod directory (the kubelet reads every file there), inside the directory vipadm's reset removes.
HOLDING_DIR = '/etc/kubernetes/vipadm/static-pods-restarting'
KUBE_VIP = 'kube-vip'
KUBEADM_PODS = ('etcd', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler')
DEFAULT_PODS = KUBEADM_PODS + (KUBE_VIP,)
APISERVER_CERT = '/etc/kubernetes/pki/apiserver.crt'
ETCD_SERVER_CERT = '/etc/kubernetes/pki/etcd/server.crt'
POLL = 0.5

_ETCD_NAME = re.compile(r'--name=(\S+)')


def processes(proc='/proc'):
    """``{pid: program}`` of the node's processes, the program being the base name of argv[0]."""
    table = {}
    for entry in os.listdir(proc):
        if not entry.isdigit():
            continue
        try:
            with open(os.path.join(proc, entry, 'cmdline'), 'rb') as handle:
                argv0 = handle.read().split(b'\0', 1)[0].decode('utf-8', 'replace')
        except (IOError, OSError):
            continue
        if argv0:
            table[int(entry)] = os.path.basename(argv0)
    return table


def pids_of(table, program):
    return sorted(pid for pid, name in table.items() if name == program)


def manifest(name, directory=MANIFEST_DIR):
    return '%s/%s.yaml' % (directory, name)


def left_out(root):
    """The manifests an earlier run moved out and did not put back (it was stopped), by pod name."""
    directory = state.host_path(root, HOLDING_DIR)
    if not os.path.isdir(directory):
        return []
    return sorted(name[:-len('.yaml')] for name in os.listdir(directory) if name.endswith('.yaml'))


def _move(root, source, target):
    target_path = state.host_path(root, target)
    directory = os.path.dirname(target_path)
    if not os.path.isdir(directory):
        os.makedirs(directory, 0o700)
    os.rename(state.host_path(root, source), target_path)


def take_out(root, names):
    for name in names:
        if state.exists(root, manifest(name)):
            _move(root, manifest(name), manifest(name, HOLDING_DIR))


def put_back(root, names):
    for name in names:
        if state.exists(root, manifest(name, HOLDING_DIR)):
            _move(root, manifest(name, HOLDING_DIR), manifest(name))


def wait_until(condition, timeout, clock, sleep):
    """True once ``condition()`` is true, False when ``timeout`` seconds passed first."""
    deadline = clock() + timeout
    while True:
        if condition():
            return True
        if clock() >= deadline:
            return False
        sleep(POLL)


def wait_for_check(check, timeout, clock, sleep):
    """(ok, detail) of the first passing ``check()``, or of the last one once ``timeout`` seconds passed."""
    outcome = [False, '']

    def passes():
        outcome[:] = check()
        return outcome[0]
    wait_until(passes, timeout, clock, sleep)
    return outcome[0], outcome[1]


# --- what must hold before, and after ---------------------------------------------------------------------

def etcd_name(root):
    found = _ETCD_NAME.search(state.read_text(root, manifest('etcd')) or '')
    return found.group(1).strip('"\'') if found else None


def check_etcd_quorum(members, own_name):
    """Refuse to stop this node's etcd member when the others that answer are not a quorum without it."""
    voters = [member for member in members if not member['learner']]
    own = [member for member in voters if member['name'] == own_name]
    if not own:
        return
    others_up = [member for member in voters if member['healthy'] and member['name'] != own_name]
    needed = removal.quorum(len(voters))
    if len(others_up) < needed:
        down = sorted(member['name'] or member['id'] for member in voters
                      if not member['healthy'] and member['name'] != own_name)
        raise KubeadmError(
            'Restarting etcd on %s would stop etcd: it has %d members, %d are needed, and without %s only %d answer '
            '(not answering: %s). Nothing was changed. Bring %s back first, or remove %s for good '
            '(vipadm.kubeadm.remove_node), then run again.'
            % (own_name, len(voters), needed, own_name, len(others_up), ', '.join(down) or 'none',
               'them' if len(down) > 1 else 'it', 'them' if len(down) > 1 else 'it'))


def served_certificate(address, port, timeout=2.0):
    """The DER of the certificate the TLS server at address:port presents (not verified: compared, not trusted)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection((address, port), timeout=timeout) as raw:
        with context.wrap_socket(raw, server_hostname=address) as tls:
            return tls.getpeercert(binary_form=True)


def serves_file(root, address, port, path):
    """(ok, detail): the server at address:port presents the first certificate of ``path``."""
    try:
        expected = pem_certificates(state.read_text(root, path) or '')
    except CertificateError as exc:
        return False, '%s: %s' % (path, exc)
    if not expected:
        return False, 'no certificate in %s' % path
    try:
        served = served_certificate(address, port)
    except (OSError, ValueError) as exc:
        return False, 'nothing answers TLS on %s:%d (%s)' % (address, port, exc)
    if served != expected[0]:
        return False, '%s:%d serves another certificate than %s' % (address, port, path)
    return True, '%s:%d serves %s' % (address, port, path)


def default_checks(root):
    """What tells that a restarted Pod works: the API server and etcd answer and serve the certificates on disk."""
    def api_server():
        address, port = half_init.local_api_endpoint(state.read_text(root, state.APISERVER_MANIFEST))
        if not address:
            return False, 'kube-apiserver.yaml names no --advertise-address'
        ok, detail = serves_file(root, address, port, APISERVER_CERT)
        if not ok:
            return ok, detail
        answer = probe.probe_once(address, port, probe.tls_context(state.read_text(root, state.CA_CERT)))
        return answer.ok, '%s; /livez: %s' % (detail, answer.reason)

    def etcd_server():
        ok, detail = serves_file(root, '127.0.0.1', 2379, ETCD_SERVER_CERT)
        if not ok:
            return ok, detail
        try:
            healthy = etcd.Client(root, timeout=2.0).healthy({'client_urls': [etcd.LOCAL_ENDPOINT]})
        except KubeadmError as exc:
            return False, str(exc)
        return healthy, '%s; /health %s' % (detail, 'true' if healthy else 'not true')

    return {'kube-apiserver': api_server, 'etcd': etcd_server}


# --- the flow -------------------------------------------------------------------------------------------

def restart(params, root, check_mode=False, processes=processes, checks=None, members=None, clock=time.monotonic,
            sleep=time.sleep):
    """Restart ``params['pods']`` (manifest names), or only stop them (``state: stopped``: the manifests stay out, in
    HOLDING_DIR). Returns the result dict; raises KubeadmError with a sentence.

    ``members``: a callable returning etcd's members with their health (the quorum check before etcd stops)."""
    started = clock()
    timeout = params['timeout']
    resumed = left_out(root)
    wanted = list(params['pods'])
    present = [name for name in wanted if state.exists(root, manifest(name)) or name in resumed]
    missing = [name for name in wanted if name not in present and name != KUBE_VIP]
    if missing:
        raise KubeadmError('No static Pod manifest %s on this node: it is not a kubeadm control plane (or those Pods '
                           'are not static Pods here), so nothing was restarted.'
                           % ', '.join(manifest(name) for name in missing))
    stopping = params.get('state') == 'stopped'
    if stopping:  # the manifests already out stay out: nothing to do for them
        present = [name for name in present if state.exists(root, manifest(name))]
        resumed = []
    result = {'changed': bool(present or resumed), 'restarted': {}, 'resumed': resumed, 'pods': present,
              'checks': {}, 'elapsed': 0.0}
    if 'etcd' in present and 'etcd' not in resumed:
        own = etcd_name(root)
        check_etcd_quorum((members or (lambda: etcd.Client(root).members_with_health()))(), own)
    if check_mode or not present:
        return result

    first = [name for name in present if name == KUBE_VIP]
    rest = [name for name in present if name != KUBE_VIP]
    table = processes()
    before = dict((name, pids_of(table, name)) for name in present)
    checks = checks if checks is not None else default_checks(root)

    def gone(names):
        def condition():
            now = processes()
            return all(not set(before[name]) & set(pids_of(now, name)) for name in names)
        return condition

    def running_again(names):
        def condition():
            now = processes()
            return all(set(pids_of(now, name)) - set(before[name]) for name in names)
        return condition

    def stage(names, what, condition):
        if names and not wait_until(condition, timeout, clock, sleep):
            put_back(root, present)
            raise KubeadmError(
                'The kubelet did not %s %s within %d s: check it on this node (systemctl status kubelet, journalctl -u '
                'kubelet). Every manifest was put back in %s.' % (what, ', '.join(names), timeout, MANIFEST_DIR),
                pods=present, before=before, resumed=resumed)

    put_back(root, resumed)  # an earlier run was stopped with these out: they are back, and restart with the others
    take_out(root, first)
    stage(first, 'stop', gone(first))
    take_out(root, rest)
    stage(rest, 'stop', gone(rest))
    if stopping:
        result['restarted'] = dict((name, {'before': before[name], 'after': []}) for name in present)
        result['elapsed'] = round(clock() - started, 1)
        return result
    put_back(root, rest)
    stage(rest, 'start again', running_again(rest))
    for name in rest:
        if name in checks:
            ok, detail = wait_for_check(checks[name], timeout, clock, sleep)
            if not ok:
                put_back(root, present)
                raise KubeadmError('%s runs again but does not work within %d s: %s.' % (name, timeout, detail),
                                   pods=present, before=before)
            result['checks'][name] = detail
    put_back(root, first)
    stage(first, 'start again', running_again(first))
    table = processes()
    result['restarted'] = dict((name, {'before': before[name], 'after': pids_of(table, name)}) for name in present)
    result['elapsed'] = round(clock() - started, 1)
    return result
