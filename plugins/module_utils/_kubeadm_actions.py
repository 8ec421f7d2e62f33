# -*- coding: utf-8 -*-
# Copyright: vipadm developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The flows of the kubeadm modules: decide from the node's state, run kubeadm, build the result.

Each flow takes the module parameters, ``root`` (the directory standing for ``/``), ``run``
(argv -> (rc, stdout, stderr)), the kubeadm path and check/diff flags; it returns the result
dict or raises KubeadmError with a sentence. No Ansible import, so tests call them directly.
"""

from __future__ import annotations

import time

from ansible_collections.vipadm.kubeadm.plugins.module_utils import _kubeadm as kubeadm
from ansible_collections.vipadm.kubeadm.plugins.module_utils import _half_init as half_init
from ansible_collections.vipadm.kubeadm.plugins.module_utils import _kubeadm_state as state
from ansible_collections.vipadm.kubeadm.plugins.module_utils._kubeadm import KubeadmError

# Same lifetime as the token `kubeadm init` makes itself (reference 4).
INIT_TOKEN_TTL = '24h'
RESET_HINT = 'run the reset playbook on this node (vipadm.kubeadm.reset), then run again'
IP_ADDR_SHOW = ['ip', '-o', 'addr', 'show']
# Seconds between two probes of an init host's own API server that does not answer yet.
API_SERVER_RETRY = 2.0


# How long join credentials are retried while the API endpoint does not answer, and the pause between tries. The
# endpoint is the VIP: while etcd takes a new member, a slow machine's API server can miss kube-vip's lease
# renewal, and the VIP is gone for one leader election (seen on software-emulated VMs: "no route to host").
CREDENTIALS_RETRY_SECONDS = 90.0
CREDENTIALS_RETRY_PAUSE = 3.0


def _run_checked(run, argv, what, retry_until=None, sleep=time.sleep, clock=time.monotonic):
    """stdout of argv, or KubeadmError with kubeadm's reason. With retry_until (a clock() value), a failure
    because the API endpoint did not answer is tried again until then."""
    while True:
        rc, stdout, stderr = run(argv)
        if rc == 0:
            return stdout
        details = kubeadm.failure_details(stdout, stderr, rc)
        unreachable = kubeadm.ENDPOINT_UNREACHABLE.search('\n'.join((details['message'], stderr or '', stdout or '')))
        if retry_until is None or not unreachable or clock() + CREDENTIALS_RETRY_PAUSE > retry_until:
            raise KubeadmError('%s failed: %s.' % (what, details['message'].rstrip('.')),
                               rc=rc, stdout=stdout, stderr=stderr, cmd=argv)
        sleep(CREDENTIALS_RETRY_PAUSE)


def kubeadm_version(run, kubeadm_path):
    """``v1.32.4``, or '' when the binary cannot tell (the result then says so)."""
    rc, stdout, _stderr = run(kubeadm.version_argv(kubeadm_path))
    return kubeadm.parse_version_output(stdout) if rc == 0 else ''


def _diff(before, after, path):
    return {'before': before or '', 'after': after, 'before_header': path, 'after_header': path}


UPLOAD_CERTS_CONFIG = '/etc/kubernetes/vipadm-upload-certs.yaml'


def _upload_certs(run, kubeadm_path, kubeconfig, root, **retry):
    """`kubeadm init phase upload-certs`, with this node's API server address and version when its manifest
    gives them (the configuration file is removed afterwards); its stdout. retry: see _run_checked."""
    manifest = state.read_text(root, state.APISERVER_MANIFEST)
    address, port = half_init.local_api_endpoint(manifest)
    version = half_init.api_server_version(manifest)
    if not address or not port or not version:
        return _run_checked(run, kubeadm.upload_certs_argv(kubeadm_path, kubeconfig), 'kubeadm init phase upload-certs',
                            **retry)
    config_path = state.host_path(root, UPLOAD_CERTS_CONFIG)
    state.write_private_file(config_path, kubeadm.upload_certs_config(address, port, version))
    try:
        return _run_checked(run, kubeadm.upload_certs_argv(kubeadm_path, kubeconfig, config_path),
                            'kubeadm init phase upload-certs', **retry)
    finally:
        state.remove_file(config_path)


def fresh_credentials(run, kubeadm_path, kubeconfig, ttl, upload_certs=True, root='/', sleep=time.sleep,
                      clock=time.monotonic):
    """A new bootstrap token (+ join command facts) and, if asked, a new certificate key; both tried again for up to
    CREDENTIALS_RETRY_SECONDS while the API endpoint does not answer."""
    retry = dict(retry_until=clock() + CREDENTIALS_RETRY_SECONDS, sleep=sleep, clock=clock)
    stdout = _run_checked(run, kubeadm.token_create_argv(kubeadm_path, kubeconfig, ttl), 'kubeadm token create',
                          **retry)
    parsed = kubeadm.parse_join_command(stdout)
    if not parsed['token']:
        raise KubeadmError('kubeadm token create printed no join command: %r.' % stdout.strip()[-200:],
                           stdout=stdout)
    key = None
    if upload_certs:
        stdout = _upload_certs(run, kubeadm_path, kubeconfig, root, **retry)
        key = kubeadm.parse_upload_certs_output(stdout)
        if not key:
            raise KubeadmError('kubeadm init phase upload-certs printed no certificate key as its last line.',
                               stdout=stdout)
    parsed['certificate_key'] = key
    return parsed


# --- the kubelet unit ----------------------------------------------------------------------------

def enable_kubelet(run, systemctl_path, check_mode=False):
    """Enable the kubelet unit unless it is (kubeadm starts the kubelet but never enables it, so a node
    would not come back after a reboot). True when it was enabled now (or would be, in check mode)."""
    rc, stdout, stderr = run([systemctl_path, 'is-enabled', 'kubelet'])
    state_text = (stdout or '').strip()
    if rc == 0:
        return False
    if state_text == 'masked':
        raise KubeadmError('The kubelet unit is masked, so it cannot be enabled: run `systemctl unmask kubelet` '
                           'on this node (or prepare it with the node_prep playbook), then run again.',
                           rc=rc, stdout=stdout, stderr=stderr)
    if check_mode:
        return True
    rc, stdout, stderr = run([systemctl_path, 'enable', 'kubelet'])
    if rc != 0:
        raise KubeadmError('systemctl enable kubelet failed: %s; install the kubelet package (the node_prep '
                           'playbook does), then run again.' % ((stderr or stdout).strip() or 'rc %d' % rc),
                           rc=rc, stdout=stdout, stderr=stderr)
    return True


# --- init --------------------------------------------------------------------------------------

def init(params, root, run, kubeadm_path, check_mode=False, diff=False, systemctl_path=None):
    endpoint = params['control_plane_endpoint']
    documents = kubeadm.init_documents(params)  # validates version and endpoint first
    config = kubeadm.to_yaml_documents(documents)
    config_path = state.host_path(root, params['config_path'])
    admin_conf = state.host_path(root, state.ADMIN_CONF)

    node_state, found = state.init_state(root, endpoint)
    if node_state == 'other_cluster':
        raise KubeadmError(
            'This node already belongs to a cluster at %s (its /etc/kubernetes/admin.conf), not at %s: %s.'
            % (state.describe_server(found['server']), endpoint, RESET_HINT), found=found['found'])
    if node_state == 'partial':
        raise KubeadmError(
            'This node holds the files of an unfinished kubeadm init or join (%s) but no control plane of %s: %s.'
            % (', '.join(found['found']), endpoint, RESET_HINT), found=found['found'])

    result = {'changed': False, 'api_endpoint': endpoint, 'ca_cert_hash': '', 'token': '',
              'certificate_key': '', 'config': config, 'config_path': config_path,
              'kubeadm_version': kubeadm_version(run, kubeadm_path), 'kubelet_enabled': False}
    if params.get('enable_kubelet'):
        result['kubelet_enabled'] = enable_kubelet(run, systemctl_path, check_mode)
        result['changed'] = result['kubelet_enabled']

    if node_state == 'initialized':
        # No credentials: making them would add a bootstrap token and re-upload the certificates on every
        # re-run, for joins that take fresh ones from join_credentials right before they run anyway.
        result['ca_cert_hash'] = state.ca_hash_of_file(root) or ''
        return result

    result['changed'] = True
    if diff:
        result['diff'] = _diff(state.read_text('/', config_path), config, config_path)
    if check_mode:
        return result

    state.write_private_file(config_path, config)
    argv = kubeadm.init_argv(kubeadm_path, config_path)
    rc, stdout, stderr = run(argv)
    if rc != 0:
        details = kubeadm.failure_details(stdout, stderr, rc)
        raise KubeadmError(kubeadm.init_failure_message(details, endpoint), rc=rc, stdout=stdout, stderr=stderr,
                           cmd=argv, phase=details['phase'], preflight_errors=details['preflight_errors'])
    parsed = kubeadm.parse_init_output(stdout)
    admin = state.kubeconfig_cluster(state.read_text(root, state.ADMIN_CONF), root)
    result.update(
        api_endpoint=kubeadm.endpoint_of_server(admin['server']) or parsed['api_endpoint'] or endpoint,
        ca_cert_hash=state.ca_hash_of_file(root) or (parsed['ca_cert_hashes'] or [''])[0],
        token=parsed['token'] or '', certificate_key=parsed['certificate_key'] or '',
        stdout=stdout, stderr=stderr)
    if not result['token'] or not result['certificate_key']:
        # The cluster is up; only the printout was not what we expect: make fresh ones.
        fresh = fresh_credentials(run, kubeadm_path, admin_conf, INIT_TOKEN_TTL, root=root)
        result.update(token=fresh['token'], certificate_key=fresh['certificate_key'])
    return result


# --- join_credentials ----------------------------------------------------------------------------

def join_credentials(params, root, run, kubeadm_path, check_mode=False):
    ttl = params['token_ttl']
    if not kubeadm.DURATION_PATTERN.match(ttl):
        raise KubeadmError('token_ttl %r is not a duration kubeadm understands: use e.g. 15m, 2h or 1h30m.' % ttl)
    kubeconfig = state.host_path(root, params['kubeconfig'])
    text = state.read_text('/', kubeconfig)
    if text is None:
        raise KubeadmError('%s does not exist: join credentials are made on an initialized control plane; run '
                           'vipadm.kubeadm.init on this node first, or point kubeconfig at its admin.conf.'
                           % params['kubeconfig'])
    cluster = state.kubeconfig_cluster(text, root)
    ca_pem = cluster['ca_pem'] if state.hashes_of(cluster['ca_pem']) else state.read_text(root, state.CA_CERT)
    computed = state.hashes_of(ca_pem)
    result = {'changed': True, 'token': '', 'certificate_key': '',
              'ca_cert_hash': computed[0] if computed else '', 'ca_cert': ca_pem if computed else '',
              'api_endpoint': kubeadm.endpoint_of_server(cluster['server'])}
    if check_mode:
        return result
    fresh = fresh_credentials(run, kubeadm_path, kubeconfig, ttl, params['upload_certs'], root)
    result.update(token=fresh['token'], certificate_key=fresh['certificate_key'] or '',
                  ca_cert_hash=(fresh['ca_cert_hashes'] or [result['ca_cert_hash']])[0],
                  api_endpoint=fresh['api_endpoint'] or result['api_endpoint'])
    return result


# --- join --------------------------------------------------------------------------------------

def join(params, root, run, kubeadm_path, node_name, check_mode=False, diff=False, systemctl_path=None):
    # In check mode on a cluster that this very run would create, no credentials exist yet
    # (join_credentials makes none in check mode): the join is previewed without them.
    preview = check_mode and not params.get('token')
    if preview:
        kubeadm.split_endpoint(params['api_endpoint'], 'api_endpoint')
    else:
        kubeadm.validate_join_credentials(params)
    config = kubeadm.to_yaml(kubeadm.join_document(params))
    config_path = state.host_path(root, params['config_path'])
    endpoint = params['api_endpoint']
    control_plane = bool(params['control_plane'])
    role = 'control plane' if control_plane else 'worker'
    result = {'changed': False, 'node_name': params.get('node_name') or node_name,
              'control_plane': control_plane, 'config_path': config_path, 'kubelet_enabled': False}

    # Without a CA hash a preview cannot tell this cluster from another one: the files decide.
    expected_hashes = None if preview and not params['ca_cert_hash'] else params['ca_cert_hash']
    node_state, found = state.join_state(root, endpoint, expected_hashes, control_plane)
    if node_state == 'joined':
        if params.get('enable_kubelet'):
            result['kubelet_enabled'] = result['changed'] = enable_kubelet(run, systemctl_path, check_mode)
        return result
    if node_state == 'other_cluster':
        raise KubeadmError(
            'This node is already joined to another cluster (kubelet.conf points at %s with CA %s, expected %s '
            'with %s): %s.' % (state.describe_server(found['server']), ', '.join(found['ca_cert_hashes']) or 'unknown',
                               endpoint, ', '.join(params['ca_cert_hash']), RESET_HINT))
    if node_state == 'partial':
        what = ', '.join(found.get('found') or []) or 'kubelet.conf without %s' % ', '.join(found.get('missing', []))
        raise KubeadmError('This node holds the files of a join that did not finish as %s (%s): %s.'
                           % (role, what, RESET_HINT))

    if params.get('enable_kubelet'):
        result['kubelet_enabled'] = enable_kubelet(run, systemctl_path, check_mode)
    result['changed'] = True
    if diff:
        before = state.read_text('/', config_path)
        result['diff'] = _diff(kubeadm.masked_join_text(before or '', params),
                               kubeadm.masked_join_text(config, params), config_path)
    if check_mode:
        return result
    state.write_private_file(config_path, config)
    argv = kubeadm.join_argv(kubeadm_path, config_path)
    try:
        rc, stdout, stderr = run(argv)
    finally:
        # It holds the token and the certificate key, needed by this one kubeadm run only: leave no secret on
        # the node, whatever the outcome (a retry writes the file again with fresh credentials).
        state.remove_file(config_path)
    if rc != 0:
        details = kubeadm.failure_details(stdout, stderr, rc)
        kind, sentence = kubeadm.join_failure(details, endpoint, stdout, stderr)
        raise KubeadmError(sentence, rc=rc, stdout=stdout, stderr=stderr, cmd=argv, failure=kind,
                           phase=details['phase'], preflight_errors=details['preflight_errors'])
    result.update(stdout=stdout, stderr=stderr)
    return result


# --- reset -------------------------------------------------------------------------------------

def _vip_held(run, addresses):
    """Where the node holds the VIP addresses: ``[(address/prefix, interface)]``."""
    if not addresses:
        return []
    return state.held_addresses(_run_checked(run, IP_ADDR_SHOW, 'ip -o addr show'), addresses)


def reset(params, root, run, kubeadm_path_finder, check_mode=False):
    """``kubeadm reset -f`` when kubeadm's files are there, then the leftovers it does not clean, and the VIP
    of the node's kube-vip manifest off the node's interfaces: ``kubeadm reset`` stops kube-vip with SIGKILL
    (CRI StopPodSandbox), so the holder keeps the address and answers ARP for it until it reboots."""
    kubeadm_work = state.reset_work(root)
    extra = state.leftovers(root, params['remove_paths'])
    vip = state.kube_vip_addresses(root)  # read before kubeadm reset empties /etc/kubernetes/manifests
    result = {'changed': bool(kubeadm_work or extra), 'kubeadm_reset': bool(kubeadm_work),
              'removed': list(extra), 'found': kubeadm_work, 'half_init': False, 'vip_removed': []}
    if not result['changed']:
        return result
    if check_mode:
        result['vip_removed'] = ['%s dev %s' % held for held in _vip_held(run, vip)]
        return result
    if kubeadm_work:
        argv = kubeadm.reset_argv(kubeadm_path_finder(), params.get('cri_socket'))
        rc, stdout, stderr = run(argv)
        if rc != 0:
            details = kubeadm.failure_details(stdout, stderr, rc)
            raise KubeadmError('kubeadm reset failed%s: %s.' % (
                ' in phase %s' % details['phase'] if details['phase'] else '', details['message'].rstrip('.')),
                rc=rc, stdout=stdout, stderr=stderr, cmd=argv)
        result.update(stdout=stdout, stderr=stderr)
    # kubeadm reset may have emptied some of them already; remove what is still there.
    result['removed'] = []
    for path in params['remove_paths']:
        if state.has_content(root, path):
            state.remove_leftover(root, path)
        if path in extra:
            result['removed'].append(path)
    for address, interface in _vip_held(run, vip):
        _run_checked(run, ['ip', 'addr', 'del', address, 'dev', interface], 'Removing the VIP %s from %s'
                     % (address, interface))
        result['vip_removed'].append('%s dev %s' % (address, interface))
    return result


def reset_unfinished_init(params, root, run, kubeadm_path_finder, check_mode=False, probe=None,
                          clock=time.monotonic, sleep=time.sleep):
    """Reset the init host only when its init stopped half-way (module_utils/_half_init.decide).

    While no API server answers on the node and the cluster may be real, the probe is repeated for up to
    ``api_server_timeout`` seconds (the node may have just been powered on) before the refusal.

    No change when the init finished; a KubeadmError with the sentence when the cluster may be real or
    its state cannot be told; otherwise the reset of ``reset``, with ``half_init`` and ``msg`` saying why.
    """
    result = {'changed': False, 'kubeadm_reset': False, 'removed': [], 'found': [], 'half_init': False,
              'vip_removed': []}
    if not state.exists(root, state.APISERVER_MANIFEST):
        result['msg'] = 'No kube-apiserver.yaml: no init to check.'
        return result
    probe = probe or half_init.probe
    others = {name: node_state for name, node_state in (params.get('other_nodes') or {}).items()
              if node_state and node_state != 'none'}
    finalized = state.exists(root, half_init.KUBELET_CLIENT_CURRENT)
    outcome, detail = probe(root)
    decision, sentence = half_init.decide(outcome, detail, others, finalized)
    # No API server answers, and the cluster may be real: a node just powered on runs its kubelet, which
    # starts etcd and the API server within seconds. Wait for it before refusing (the run would stop on a
    # control plane that is merely booting).
    deadline = clock() + (params.get('api_server_timeout') or 0)
    while decision == half_init.REFUSE and outcome == half_init.NO_ANSWER and clock() < deadline:
        sleep(API_SERVER_RETRY)
        outcome, detail = probe(root)
        decision, sentence = half_init.decide(outcome, detail, others, finalized)
    if decision == half_init.REFUSE:
        raise KubeadmError(sentence, probe=outcome)
    if decision == half_init.FINISHED:
        result['msg'] = sentence
        return result
    result.update(reset(params, root, run, kubeadm_path_finder, check_mode))
    result.update(changed=True, half_init=True, msg=sentence)
    return result


# --- running a flow from a module ---------------------------------------------------------------

# kubeadm's texts are parsed, so it runs in the C locale.
C_LOCALE = {'LANG': 'C', 'LC_ALL': 'C'}


def run_in_module(module, flow, root, *args, **kwargs):
    """Run ``flow(module.params, root, run, *args, **kwargs)`` for a module and exit with its result:
    ``run`` is kubeadm through the module's run_command; a KubeadmError becomes fail_json."""
    try:
        result = flow(module.params, root, lambda argv: module.run_command(argv, environ_update=C_LOCALE),
                      *args, **kwargs)
    except KubeadmError as exc:
        module.fail_json(msg=str(exc), **exc.details)
    module.exit_json(**result)
