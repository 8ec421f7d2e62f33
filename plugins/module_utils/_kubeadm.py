# -*- coding: utf-8 -*-
# Copyright: vipadm developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What vipadm knows about kubeadm: versions, config documents, argv, output and failures.

Pure functions only: no file system, no processes. The section numbers in the comments point
into the team's kubeadm reference (observed kubeadm behaviour, 1.28 to 1.36).
"""

from __future__ import annotations

import json
import re
import signal

from ansible_collections.vipadm.kubeadm.plugins.module_utils._versions import SUPPORTED_KUBERNETES_MINORS, SUPPORTED_KUBERNETES_TEXT

# kubeadm.k8s.io/v1beta4 is served from 1.31 (reference section 6); v1beta3 before.
V1BETA4_FROM_MINOR = 31
API_V1BETA3 = 'kubeadm.k8s.io/v1beta3'
API_V1BETA4 = 'kubeadm.k8s.io/v1beta4'
KUBELET_API = 'kubelet.config.k8s.io/v1beta1'
KUBE_PROXY_API = 'kubeproxy.config.k8s.io/v1alpha1'
# The kubelet's cgroupDriver values; the container runtime must use the same one.
CGROUP_DRIVERS = ('systemd', 'cgroupfs')

TOKEN_PATTERN = re.compile(r'\A[a-z0-9]{6}\.[a-z0-9]{16}\Z')
CA_HASH_PATTERN = re.compile(r'\Asha256:[0-9a-f]{64}\Z')
CERTIFICATE_KEY_PATTERN = re.compile(r'\A[0-9a-f]{64}\Z')
# Go time.Duration as kubeadm's --ttl takes it ("0" = never expires).
DURATION_PATTERN = re.compile(r'\A(0|([0-9]+(\.[0-9]+)?(h|m|s|ms|us|ns))+)\Z')

# Component keys of the extra_args parameter -> where they live in the config documents.
EXTRA_ARGS_COMPONENTS = ('api_server', 'controller_manager', 'scheduler', 'etcd', 'kubelet')


class KubeadmError(Exception):
    """A failure with a sentence for the user; details go into the module result."""

    def __init__(self, message, **details):
        super().__init__(message)
        self.details = details


# --- versions ----------------------------------------------------------------------------------

_VERSION_PATTERN = re.compile(r'\Av?(\d+)\.(\d+)\.(\d+)(-[0-9A-Za-z.-]+)?\Z')


def parse_kubernetes_version(text):
    """Return (major, minor, patch, suffix) of ``1.32.4`` / ``v1.32.4`` / ``v1.33.0-rc.1``."""
    match = _VERSION_PATTERN.match(str(text).strip())
    if not match:
        raise KubeadmError(
            'kubernetes_version %r is not a Kubernetes release: give MAJOR.MINOR.PATCH, e.g. 1.32.4.' % (text,))
    return int(match.group(1)), int(match.group(2)), int(match.group(3)), match.group(4) or ''


def checked_kubernetes_version(text):
    """Return the ``v``-prefixed version kubeadm expects, or fail outside the supported range."""
    major, minor, patch, suffix = parse_kubernetes_version(text)
    if major != 1 or not SUPPORTED_KUBERNETES_MINORS[0] <= minor <= SUPPORTED_KUBERNETES_MINORS[1]:
        raise KubeadmError(
            'Kubernetes %s is not supported by vipadm: supported are %s; set kubernetes_version to a '
            'release in that range.' % (text, SUPPORTED_KUBERNETES_TEXT))
    return 'v%d.%d.%d%s' % (major, minor, patch, suffix)


def config_api_version(kubernetes_version):
    """The kubeadm config API for a Kubernetes version (v1beta4 from 1.31)."""
    minor = parse_kubernetes_version(kubernetes_version)[1]
    return API_V1BETA4 if minor >= V1BETA4_FROM_MINOR else API_V1BETA3


# --- endpoints ---------------------------------------------------------------------------------

def split_endpoint(endpoint, parameter='control_plane_endpoint'):
    """Split ``host:port`` / ``[v6]:port`` into (host, port); fail with a sentence otherwise."""
    text = str(endpoint).strip()
    match = re.match(r'\A\[([0-9A-Fa-f:.]+)\]:(\d+)\Z', text) or re.match(r'\A([^:\[\]/\s]+):(\d+)\Z', text)
    if not match or not 0 < int(match.group(2)) < 65536:
        raise KubeadmError(
            '%s %r must be HOST:PORT (e.g. 198.51.100.254:6443, [2001:db8::10]:6443).' % (parameter, endpoint))
    return match.group(1), int(match.group(2))


def server_url(endpoint):
    """The kubeconfig ``server`` kubeadm writes for an endpoint."""
    return 'https://' + endpoint


def endpoint_of_server(server):
    """``https://host:port`` -> ``host:port`` (what kubeadm prints in join commands)."""
    return re.sub(r'\Ahttps://', '', server or '').rstrip('/')


# --- a small YAML writer -----------------------------------------------------------------------
# Nodes are not guaranteed to have PyYAML; the documents are plain maps, lists and scalars.

_PLAIN_SAFE = re.compile(r'\A[A-Za-z0-9_][A-Za-z0-9_./-]*\Z')
_YAML_SPECIAL = re.compile(
    r'\A(y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF|'
    r'null|Null|NULL|~|[-+]?(\d[\d_]*)?\.?\d[\d_.eE+-]*|0x[0-9a-fA-F]+|0o?[0-7]+)\Z')


def _scalar(value):
    if value is None:
        return 'null'
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, (int, float)):
        return json.dumps(value)
    text = str(value)
    if _PLAIN_SAFE.match(text) and not _YAML_SPECIAL.match(text):
        return text
    return json.dumps(text)  # a JSON string is a valid YAML double-quoted scalar


def _emit(value, indent, lines):
    pad = '  ' * indent
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, (dict, list)) and item:
                lines.append('%s%s:' % (pad, _scalar(key)))
                _emit(item, indent + 1 if isinstance(item, dict) else indent, lines)
            else:
                lines.append('%s%s: %s' % (pad, _scalar(key), _empty_or_scalar(item)))
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict) and item:
                sub = []
                _emit(item, indent + 1, sub)
                sub[0] = pad + '- ' + sub[0][len(pad) + 2:]
                lines.extend(sub)
            elif isinstance(item, list) and item:
                raise ValueError('nested lists are not used in kubeadm documents')
            else:
                lines.append('%s- %s' % (pad, _empty_or_scalar(item)))
    else:
        lines.append(pad + _scalar(value))


def _empty_or_scalar(value):
    if isinstance(value, dict):
        return '{}'
    if isinstance(value, list):
        return '[]'
    return _scalar(value)


def to_yaml(document):
    """Block-style YAML of one document made of dicts, lists and scalars (keys keep their order)."""
    lines = []
    _emit(document, 0, lines)
    return '\n'.join(lines) + '\n'


def to_yaml_documents(documents):
    """Several documents separated by ``---`` as kubeadm reads them."""
    return '---\n'.join(to_yaml(doc) for doc in documents)


# --- config documents --------------------------------------------------------------------------

def extra_args_value(flags, api_version, component):
    """Flags {name: value} in the shape of the API: a map (v1beta3) or a list of {name, value}."""
    if api_version == API_V1BETA3:
        result = {}
        for name, value in flags.items():
            if isinstance(value, list):
                raise KubeadmError(
                    'extra_args.%s.%s repeats a flag, which kubeadm.k8s.io/v1beta3 (Kubernetes below 1.31) '
                    'cannot express: give one value.' % (component, name))
            result[str(name)] = _flag_text(value)
        return result
    result = []
    for name, value in flags.items():
        for one in value if isinstance(value, list) else [value]:
            result.append({'name': str(name), 'value': _flag_text(one)})
    return result


def _flag_text(value):
    if isinstance(value, bool):
        return 'true' if value else 'false'
    return str(value)


def _drop_empty(mapping):
    """Remove keys whose value is None, '' or an empty list/dict (kubeadm defaults apply)."""
    return {key: value for key, value in mapping.items() if value not in (None, '', [], {})}


def kubelet_flags(params):
    """The kubelet's extra flags: extra_args.kubelet, and --node-ip from node_ip (one address, or one per family for
    dual stack, comma-separated as the kubelet reads them). Both setting node-ip is refused."""
    flags = dict((params.get('extra_args') or {}).get('kubelet') or {})
    node_ip = [str(address).strip() for address in params.get('node_ip') or [] if str(address).strip()]
    if node_ip:
        if 'node-ip' in flags:
            raise KubeadmError('node_ip and extra_args.kubelet.node-ip are both set: keep node_ip (the kubelet\'s '
                               'node-ip flag is written from it) and remove node-ip from extra_args.kubelet.')
        flags['node-ip'] = ','.join(node_ip)
    return flags


# The timeouts option -> kubeadm's v1beta4 Timeouts fields (reference section 6; defaults: health checks 4m,
# kubernetesAPICall 1m, etcdAPICall 2m, tlsBootstrap 5m, discovery 5m). The same map goes to init and join: a
# field the command does not use is harmless to kubeadm.
TIMEOUT_FIELDS = {
    'control_plane_component_health_check': 'controlPlaneComponentHealthCheck',
    'kubelet_health_check': 'kubeletHealthCheck',
    'kubernetes_api_call': 'kubernetesAPICall',
    'etcd_api_call': 'etcdAPICall',
    'tls_bootstrap': 'tlsBootstrap',
    'discovery': 'discovery',
}
# v1beta3 (below 1.31) has two of them, elsewhere: ClusterConfiguration.apiServer.timeoutForControlPlane (init)
# and JoinConfiguration.discovery.timeout (join).
V1BETA3_TIMEOUTS = ('control_plane_component_health_check', 'discovery')


def checked_timeouts(timeouts, api_version):
    """The given timeouts {option name: Go duration}, in the option's order; fail on an unknown name, a value that
    is not a positive duration, or a field the config API cannot express."""
    result = {}
    for name, value in (timeouts or {}).items():
        if value in (None, ''):
            continue
        if name not in TIMEOUT_FIELDS:
            raise KubeadmError('timeouts.%s is not one of kubeadm\'s timeouts: use %s.' % (name, ', '.join(TIMEOUT_FIELDS)))
        text = str(value).strip()
        if not DURATION_PATTERN.match(text) or not re.search(r'[1-9]', text):
            raise KubeadmError('timeouts.%s is %r, which is not a duration: give a positive Go duration such as '
                               '10m or 90s.' % (name, value))
        if api_version == API_V1BETA3 and name not in V1BETA3_TIMEOUTS:
            raise KubeadmError('timeouts.%s needs kubeadm.k8s.io/v1beta4 (Kubernetes 1.31 or newer); below 1.31 kubeadm '
                               'takes only %s: remove it.' % (name, ' and '.join(V1BETA3_TIMEOUTS)))
        result[name] = text
    return result


def timeouts_document(timeouts):
    """The v1beta4 ``timeouts`` map of checked timeouts."""
    return {TIMEOUT_FIELDS[name]: value for name, value in timeouts.items()}


def node_registration(params, api_version):
    flags = kubelet_flags(params)
    return _drop_empty({
        'name': params.get('node_name'),
        'criSocket': params.get('cri_socket'),
        'ignorePreflightErrors': list(params.get('ignore_preflight_errors') or []),
        'kubeletExtraArgs': extra_args_value(flags, api_version, 'kubelet') if flags else None,
    })


def cert_sans(control_plane_endpoint, extra_sans):
    """certSANs: the endpoint host (the VIP) first, then the user's, without duplicates."""
    host = split_endpoint(control_plane_endpoint)[0]
    result = []
    for name in [host] + list(extra_sans or []):
        if name and name not in result:
            result.append(name)
    return result


def init_documents(params):
    """InitConfiguration + ClusterConfiguration (+ KubeletConfiguration, KubeProxyConfiguration) for ``kubeadm init``."""
    version = checked_kubernetes_version(params['kubernetes_version'])
    api_version = config_api_version(version)
    endpoint = params['control_plane_endpoint']
    split_endpoint(endpoint)
    extra_args = params.get('extra_args') or {}

    init = {'apiVersion': api_version, 'kind': 'InitConfiguration'}
    local_endpoint = _drop_empty({'advertiseAddress': params.get('advertise_address'),
                                  'bindPort': params.get('bind_port')})
    if local_endpoint:
        init['localAPIEndpoint'] = local_endpoint
    registration = node_registration(params, api_version)
    if registration:
        init['nodeRegistration'] = registration
    if params.get('skip_phases'):
        init['skipPhases'] = list(params['skip_phases'])
    timeouts = checked_timeouts(params.get('timeouts'), api_version)
    if timeouts and api_version != API_V1BETA3:
        init['timeouts'] = timeouts_document(timeouts)

    cluster = {'apiVersion': api_version, 'kind': 'ClusterConfiguration',
               'kubernetesVersion': version, 'controlPlaneEndpoint': endpoint}
    networking = _drop_empty({'podSubnet': params.get('pod_subnet'),
                              'serviceSubnet': params.get('service_subnet')})
    if networking:
        cluster['networking'] = networking
    api_server = {'certSANs': cert_sans(endpoint, params.get('cert_sans'))}
    if api_version == API_V1BETA3 and 'control_plane_component_health_check' in timeouts:
        api_server['timeoutForControlPlane'] = timeouts['control_plane_component_health_check']
    if extra_args.get('api_server'):
        api_server['extraArgs'] = extra_args_value(extra_args['api_server'], api_version, 'api_server')
    cluster['apiServer'] = api_server
    for component, key in (('controller_manager', 'controllerManager'), ('scheduler', 'scheduler')):
        if extra_args.get(component):
            cluster[key] = {'extraArgs': extra_args_value(extra_args[component], api_version, component)}
    if extra_args.get('etcd'):
        cluster['etcd'] = {'local': {'extraArgs': extra_args_value(extra_args['etcd'], api_version, 'etcd')}}
    if params.get('image_repository'):
        cluster['imageRepository'] = params['image_repository']

    documents = [init, cluster]
    kubelet_fields = kubelet_config(params.get('kubelet_config'), params.get('cgroup_driver'))
    if kubelet_fields:
        documents.append(component_document(KUBELET_API, 'KubeletConfiguration', kubelet_fields))
    if params.get('kube_proxy_config'):
        documents.append(component_document(KUBE_PROXY_API, 'KubeProxyConfiguration', params['kube_proxy_config']))
    return documents


def component_document(api_version, kind, fields):
    """A component configuration document (kubelet, kube-proxy) with the user's fields after its header;
    an apiVersion or kind among the fields is ignored (the header is the one kubeadm reads)."""
    document = {'apiVersion': api_version, 'kind': kind}
    document.update((key, value) for key, value in fields.items() if key not in ('apiVersion', 'kind'))
    return document


def kubelet_config(fields, cgroup_driver=None):
    """The KubeletConfiguration fields: the user's, with ``cgroupDriver`` set to ``cgroup_driver`` when given.

    The kubelet and the container runtime must use the same cgroup driver (kubeadm's default is systemd),
    so a ``cgroupDriver`` in ``fields`` that contradicts ``cgroup_driver`` is refused, as is a driver
    that is neither systemd nor cgroupfs.
    """
    fields = dict(fields or {})
    given = fields.get('cgroupDriver')
    for name, value in (('cgroup_driver', cgroup_driver), ('kubelet_config.cgroupDriver', given)):
        if value is not None and value not in CGROUP_DRIVERS:
            raise KubeadmError('%s is %r, which is not a cgroup driver: use systemd or cgroupfs, the driver of '
                               'the container runtime.' % (name, value))
    if cgroup_driver is None:
        return fields
    if given is not None and given != cgroup_driver:
        raise KubeadmError(
            'kubelet_config.cgroupDriver is %s but cgroup_driver is %s: the kubelet must use the cgroup driver of '
            'the container runtime; remove cgroupDriver from kubelet_config and set cgroup_driver to that driver.'
            % (given, cgroup_driver))
    ordered = {'cgroupDriver': cgroup_driver}
    ordered.update((key, value) for key, value in fields.items() if key != 'cgroupDriver')
    return ordered


def join_document(params):
    """JoinConfiguration for ``kubeadm join`` (worker, or control plane with a certificate key)."""
    version = checked_kubernetes_version(params['kubernetes_version'])
    api_version = config_api_version(version)
    document = {
        'apiVersion': api_version,
        'kind': 'JoinConfiguration',
        'discovery': {'bootstrapToken': {
            'apiServerEndpoint': params['api_endpoint'],
            'token': params['token'],
            'caCertHashes': list(params['ca_cert_hash']),
        }},
    }
    registration = node_registration(params, api_version)
    if registration:
        document['nodeRegistration'] = registration
    if params.get('control_plane'):
        control_plane = {}
        local_endpoint = _drop_empty({'advertiseAddress': params.get('advertise_address'),
                                      'bindPort': params.get('bind_port')})
        if local_endpoint:
            control_plane['localAPIEndpoint'] = local_endpoint
        control_plane['certificateKey'] = params['certificate_key']
        document['controlPlane'] = control_plane
    timeouts = checked_timeouts(params.get('timeouts'), api_version)
    if api_version == API_V1BETA3:
        if 'discovery' in timeouts:
            document['discovery']['timeout'] = timeouts['discovery']
    elif timeouts:
        document['timeouts'] = timeouts_document(timeouts)
    return document


def validate_join_credentials(params):
    """Fail early, without echoing secrets, when a join credential has the wrong shape."""
    split_endpoint(params['api_endpoint'], 'api_endpoint')
    if not TOKEN_PATTERN.match(params.get('token') or ''):
        raise KubeadmError('token is not a bootstrap token (6 + 16 lowercase letters or digits, "abcdef.0123456789abcdef"): '
                           'pass the token that join_credentials returns.')
    hashes = params.get('ca_cert_hash') or []
    bad = [h for h in hashes if not CA_HASH_PATTERN.match(h)]
    if not hashes or bad:
        raise KubeadmError('ca_cert_hash must be "sha256:" followed by 64 lowercase hex digits (got %s): pass the '
                           'ca_cert_hash that init or join_credentials returns.' % (', '.join(bad) or 'nothing'))
    if params.get('control_plane') and not CERTIFICATE_KEY_PATTERN.match(params.get('certificate_key') or ''):
        raise KubeadmError('A control plane join needs certificate_key (64 lowercase hex digits) from the last upload '
                           'of the certificates: pass the certificate_key that join_credentials returns.')


def masked_join_text(text, params):
    """The join config text with the token secret and the certificate key hidden, for diffs."""
    for secret in (params.get('token'), params.get('certificate_key')):
        if secret:
            text = text.replace(secret, '<hidden>')
    return text


# --- argv --------------------------------------------------------------------------------------

def init_argv(kubeadm, config_path):
    return [kubeadm, 'init', '--config', config_path, '--upload-certs']


def join_argv(kubeadm, config_path):
    return [kubeadm, 'join', '--config', config_path]


def version_argv(kubeadm):
    return [kubeadm, 'version', '-o', 'short']


def token_create_argv(kubeadm, kubeconfig, ttl):
    return [kubeadm, 'token', 'create', '--kubeconfig', kubeconfig, '--ttl', ttl, '--print-join-command']


def upload_certs_argv(kubeadm, kubeconfig, config_path=None):
    argv = [kubeadm, 'init', 'phase', 'upload-certs', '--upload-certs', '--kubeconfig', kubeconfig]
    return argv + ['--config', config_path] if config_path else argv


def upload_certs_config(advertise_address, bind_port, kubernetes_version):
    """The configuration `kubeadm init phase upload-certs` reads: without one, kubeadm takes its advertise
    address from the default route (and fails on a node without one: "cannot use \"0.0.0.0\" as the bind
    address") and looks the Kubernetes version up on dl.k8s.io. This node's API server says both."""
    api = config_api_version(kubernetes_version)
    return to_yaml_documents([
        {'apiVersion': api, 'kind': 'InitConfiguration',
         'localAPIEndpoint': {'advertiseAddress': advertise_address, 'bindPort': bind_port}},
        {'apiVersion': api, 'kind': 'ClusterConfiguration', 'kubernetesVersion': kubernetes_version},
    ])


def reset_argv(kubeadm, cri_socket=None):
    argv = [kubeadm, 'reset', '-f']
    if cri_socket:
        argv += ['--cri-socket', cri_socket]
    return argv


# --- output parsing ----------------------------------------------------------------------------

_JOIN_COMMAND = re.compile(r'kubeadm join (\S+) --token ([a-z0-9]{6}\.[a-z0-9]{16})')
_CA_HASH_FLAG = re.compile(r'--discovery-token-ca-cert-hash (sha256:[0-9a-f]{64})')
_CERTIFICATE_KEY_FLAG = re.compile(r'--certificate-key ([0-9a-f]{64})')
_USING_TOKEN = re.compile(r'^\[bootstrap-token\] Using token: ([a-z0-9]{6}\.[a-z0-9]{16})\s*$', re.M)


def parse_join_command(text):
    """Endpoint, token, CA hashes and certificate key from kubeadm's join command(s) in a text.

    Works on the multi-line form of ``kubeadm init`` (TAB continuation lines, reference 2.2)
    and the one-line form of ``kubeadm token create --print-join-command`` (2.3).
    """
    flat = re.sub(r'\\\r?\n\s*', ' ', text)
    result = {'api_endpoint': None, 'token': None, 'ca_cert_hashes': [], 'certificate_key': None}
    match = _JOIN_COMMAND.search(flat)
    if match:
        result['api_endpoint'], result['token'] = match.group(1), match.group(2)
    for found in _CA_HASH_FLAG.findall(flat):
        if found not in result['ca_cert_hashes']:
            result['ca_cert_hashes'].append(found)
    key = _CERTIFICATE_KEY_FLAG.search(flat)
    if key:
        result['certificate_key'] = key.group(1)
    return result


def parse_init_output(stdout):
    """What ``kubeadm init --upload-certs`` prints that the next steps need."""
    result = parse_join_command(stdout)
    token = _USING_TOKEN.search(stdout)
    if token and not result['token']:
        result['token'] = token.group(1)
    lines = stdout.splitlines()
    for index, line in enumerate(lines):
        # The key is the line after this one (reference 2.1 and 2.4).
        if line.strip() == '[upload-certs] Using certificate key:' and index + 1 < len(lines):
            candidate = lines[index + 1].strip()
            if CERTIFICATE_KEY_PATTERN.match(candidate):
                result['certificate_key'] = candidate
    return result


def parse_upload_certs_output(stdout):
    """The certificate key: the last non-empty stdout line of ``init phase upload-certs``."""
    lines = [line.strip() for line in stdout.splitlines() if line.strip()]
    if lines and CERTIFICATE_KEY_PATTERN.match(lines[-1]):
        return lines[-1]
    return None


def parse_version_output(stdout):
    """``kubeadm version -o short`` prints ``v1.32.4``."""
    text = stdout.strip().splitlines()[-1].strip() if stdout.strip() else ''
    return text if _VERSION_PATTERN.match(text) else ''


# --- failures ----------------------------------------------------------------------------------

_PHASE_LINE = re.compile(r'^(?:error: )?error execution phase ([^\s:]+): (.*)$', re.M)
_ERROR_LINE = re.compile(r'^error: (.*)$', re.M)
_PREFLIGHT_ERROR = re.compile(r'^\s*\[ERROR ([^\]]+)\]: (.*?)\s*$', re.M)
_NOISE = ('To see the stack trace of this error', '[preflight] If you know what you are doing')
# Lines that never say why kubeadm failed: its [WARNING ...] lines (preflight, e.g. the cgroup v1 deprecation
# that real kubeadm 1.35+ prints on stderr) and klog warning/info lines ("W1205 13:40:01.123456 ...").
_NOT_A_CAUSE = re.compile(r'^(\[WARNING [^\]]*\]|[IW]\d{4} \d\d:\d\d:\d\d)')


def _last_meaningful_line(*texts):
    """The last line of the first text that has one, skipping noise and warnings."""
    for text in texts:
        lines = [line.strip() for line in (text or '').splitlines()
                 if line.strip() and not line.strip().startswith(_NOISE) and not _NOT_A_CAUSE.match(line.strip())]
        if lines:
            return lines[-1]
    return None


def _signal_name(number):
    try:
        return signal.Signals(number).name
    except ValueError:
        return 'signal %d' % number


def failure_details(stdout, stderr, rc=None):
    """The failed phase, kubeadm's message and the preflight errors, from a failed run.

    Handles ``error execution phase <phase>: <msg>`` with and without the ``error: `` prefix
    of newer releases, and the ``[ERROR <check>]: <msg>`` lines of the preflight block,
    which newer releases print to stderr separately from the final error line (reference 1.1).
    ``rc`` below 0 (a process ended by a signal, as Python reports it) with no error line from kubeadm:
    ``signal`` is the signal's number and the message says kubeadm was ended, after its last output line.
    """
    text = '\n'.join(part for part in (stderr, stdout) if part)
    phase, message = None, None
    signaled = -rc if rc is not None and rc < 0 else None
    killed = None
    matches = list(_PHASE_LINE.finditer(text))
    if matches:
        phase, message = matches[-1].group(1), matches[-1].group(2).strip()
        if not message:
            # Some errors start on the next line (e.g. "not satisfied" blocks of a control plane join).
            following = []
            for line in text[matches[-1].end():].splitlines():
                if line.strip().startswith(_NOISE):
                    break
                if line.strip():
                    following.append(line.strip())
            message = ' '.join(following)
    else:
        errors = _ERROR_LINE.findall(text)
        if errors:
            message = errors[-1]
        elif signaled:
            # Progress lines ("[control-plane-check] ...") go to stdout: the last one tells how far it got.
            killed, last = signaled, _last_meaningful_line(stdout, stderr)
            message = 'ended by %s before it finished%s' % (
                _signal_name(killed), ', after "%s"' % last.rstrip('.') if last else ', before any output')
        else:
            message = _last_meaningful_line(stderr, stdout) or 'no error text'
    preflight = list(_PREFLIGHT_ERROR.findall(text))
    if preflight and phase is None:
        phase = 'preflight'
    return {'phase': phase, 'message': message.strip(), 'preflight_errors': preflight, 'signal': killed}


def _preflight_sentence(command, errors):
    listed = '; '.join('%s (%s)' % (name, msg) for name, msg in errors)
    return ('kubeadm %s failed its preflight checks: %s. Fix these on the node, or list the check names in '
            'ignore_preflight_errors if they are expected.' % (command, listed))


# Files that only an earlier init or join leaves: preflight errors on them mean "reset first".
_LEFTOVER_CHECKS = re.compile(
    r'^(FileAvailable--etc-kubernetes-.*|DirAvailable--var-lib-etcd|Port-(6443|10250|10257|10259|2379|2380))$', re.I)


def init_failure_message(details, control_plane_endpoint):
    """One sentence for a failed ``kubeadm init``."""
    phase, message, preflight = details['phase'], details['message'], details['preflight_errors']
    if details.get('signal'):
        return ('kubeadm init %s: run the site playbook again (it resets an init that stopped half-way and '
                'initializes this node once more), or reset this node before running init again.' % message)
    if preflight:
        leftovers = [name for name, _msg in preflight if _LEFTOVER_CHECKS.match(name)]
        if leftovers:
            return ('kubeadm init found an earlier Kubernetes installation on this node (%s): run the reset '
                    'playbook on this node, then run init again.' % ', '.join(leftovers))
        return _preflight_sentence('init', preflight)
    sentence = 'kubeadm init failed in phase %s: %s.' % (phase or 'unknown', message.rstrip('.'))
    if phase and (phase.startswith('wait-control-plane') or phase.startswith('upload-config')) \
            and re.search(r'deadline exceeded|timed out|connection refused|no route to host|i/o timeout', message):
        named = _hosts_named(message)
        endpoint_host = split_endpoint(control_plane_endpoint)[0]
        if named and endpoint_host not in named:
            # kubeadm checks the control plane components on the node itself, and since kubernetes PR #138449
            # (1.34-1.36 patch releases of 2026) makes all of init's API calls there too: the addresses it could
            # not reach are the node's, and the VIP has nothing to do with it.
            sentence += (' The addresses that did not answer are this node\'s own (%s), not the control plane '
                         'endpoint %s: the API server or etcd on this node did not come up or answer in time; look '
                         'at their static Pods (crictl ps -a, their logs under /var/log/pods).'
                         % (', '.join(named), control_plane_endpoint))
        else:
            sentence += (' The control plane endpoint %s must answer while init runs: check that kube-vip holds '
                         'the VIP (its manifest in /etc/kubernetes/manifests, using super-admin.conf on Kubernetes '
                         '1.29+ during init).' % control_plane_endpoint)
    return sentence


# The hosts of the URLs and dial targets in a kubeadm error: "https://10.0.0.1:6443/livez", "dial tcp [::1]:6443".
_HOST_IN_ERROR = re.compile(r'(?:https?://|dial tcp )(?:\[([0-9A-Fa-f:.]+)\]|([0-9A-Za-z.-]+)):\d+')


def _hosts_named(message):
    """The distinct hosts a kubeadm error message names, in order."""
    hosts = []
    for v6, other in _HOST_IN_ERROR.findall(message):
        host = v6 or other
        if host not in hosts:
            hosts.append(host)
    return hosts


# A kubeadm error of an API endpoint that does not answer (yet): nobody at the address, or no answer in time.
ENDPOINT_UNREACHABLE = re.compile(r'connect: (connection refused|no route to host|network is unreachable)'
                                  r'|(i/o timeout|Client\.Timeout exceeded|context deadline exceeded'
                                  r'|timed out waiting for the condition)')


# (kind, pattern, sentence template); first match wins, most specific first.
_JOIN_FAILURES = (
    ('ca_hash_mismatch', re.compile(r'none of the public keys "([^"]*)" are pinned'),
     'The cluster at {endpoint} presents a CA whose public key hash is {found}, which is not in ca_cert_hash: '
     'pass the hash of this cluster\'s /etc/kubernetes/pki/ca.crt (init and join_credentials return it).'),
    ('token_invalid', re.compile(r'could not find a JWS signature in the cluster-info ConfigMap for token ID "([^"]*)"'
                                 r'|there is no JWS signed token in the cluster-info ConfigMap'),
     'The cluster at {endpoint} does not know the bootstrap token with ID "{found}", or it expired: create fresh '
     'credentials with join_credentials right before the join.'),
    ('certificate_key_expired', re.compile(r'Secret "kubeadm-certs" was not found'),
     'The uploaded control plane certificates (Secret kube-system/kubeadm-certs) are gone; they expire 2 hours '
     'after the upload: create a fresh certificate key with join_credentials right before the join.'),
    ('certificate_key_invalid', re.compile(r'error decoding secret data with provided key|message authentication failed'
                                           r'|error decoding certificate key'),
     'The certificate key does not decrypt the uploaded certificates: pass the certificate_key of the last upload '
     '(join_credentials returns it).'),
    ('no_control_plane_endpoint', re.compile(r"doesn't have a stable controlPlaneEndpoint address"),
     'The cluster has no controlPlaneEndpoint, so no control plane can be added: initialize it with '
     'control_plane_endpoint set to the VIP and port.'),
    ('endpoint_unreachable', ENDPOINT_UNREACHABLE,
     'The API endpoint {endpoint} does not answer ({found}): check that the VIP is up and reachable from this '
     'node (wait_for_vip) and that nothing blocks the port.'),
)


def _past_discovery(details):
    """A join that failed after its preflight, i.e. after discovery through the endpoint worked."""
    phase = details.get('phase') or ''
    return bool(phase) and not phase.startswith('preflight')


def _node_timeout_sentence(details, endpoint, named):
    """A join out of time, after discovery, on something that is not the control plane endpoint (``named``: the
    addresses the error names): kubeadm waiting for what it started on this node (the kubelet, the etcd member, the
    control plane components), seen on software-emulated VMs."""
    return ('kubeadm join failed in phase %s: %s. The control plane endpoint %s answered (the join got past '
            'discovery); what ran out of time is this node\'s part of the join%s: look at its kubelet '
            '(journalctl -u kubelet) and static Pods (crictl ps -a, /var/log/pods). On a slow machine kubeadm gives up '
            'on components that would come up: raise vipadm_kubeadm_timeouts (the timeouts option of init and join).'
            % (details['phase'], details['message'].rstrip('.'), endpoint,
               ' (no answer from %s)' % ', '.join(named) if named else ''))


def join_failure(details, endpoint, stdout='', stderr=''):
    """(kind, sentence) for a failed ``kubeadm join``."""
    if details.get('signal'):
        return 'killed', ('kubeadm join %s: run the site playbook again (it resets a join that stopped half-way '
                          'and joins this node once more), or reset this node before joining it again.'
                          % details['message'])
    preflight = details['preflight_errors']
    names = [name.lower() for name, _msg in preflight]
    if 'fileavailable--etc-kubernetes-kubelet.conf' in names:
        return ('already_joined', 'This node is already part of a cluster (/etc/kubernetes/kubelet.conf exists): '
                                  'run the reset playbook on this node, then join it again.')
    if preflight:
        return 'preflight', _preflight_sentence('join', preflight)
    text = '\n'.join((details['message'], stderr or '', stdout or ''))
    for kind, pattern, template in _JOIN_FAILURES:
        match = pattern.search(text)
        if match:
            found = next((group for group in match.groups() if group), match.group(0))
            if kind == 'endpoint_unreachable':
                named = _hosts_named(details['message'])
                if _past_discovery(details) and split_endpoint(endpoint, 'api_endpoint')[0] not in named:
                    return 'node_timeout', _node_timeout_sentence(details, endpoint, named)
                if found != 'connection refused' and 'route' not in found and 'unreachable' not in found:
                    found = 'no answer before the timeout: %s' % found
            return kind, template.format(endpoint=endpoint, found=found)
    return 'failed', 'kubeadm join failed in phase %s: %s.' % (details['phase'] or 'unknown',
                                                               details['message'].rstrip('.'))
