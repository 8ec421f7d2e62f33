# -*- coding: utf-8 -*-
"""Pure kubeadm knowledge: CA hash, versions, YAML writer, output parsing, failure sentences."""

import hashlib
import os
import shutil
import subprocess
import sys

import pytest
import yaml

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'fixtures', 'kubeadm'))

import harness as h  # noqa: E402
from harness import fixture  # noqa: E402

from ansible_collections.vipadm.kubeadm.plugins.module_utils import _kubeadm as k  # noqa: E402
from ansible_collections.vipadm.kubeadm.plugins.module_utils import _kubeadm_pki as pki  # noqa: E402


# --- CA hash -------------------------------------------------------------------------------------

@pytest.mark.parametrize('kind', ['ec', 'rsa'])
def test_ca_hash_matches_cryptography(kind):
    pem, _key, expected = h.make_ca('hash-test-' + kind, kind)
    assert pki.ca_cert_hashes(pem) == [expected]


@pytest.mark.skipif(not shutil.which('openssl'), reason='openssl not installed')
def test_ca_hash_matches_the_openssl_recipe_of_the_reference(tmp_path):
    pem = h.make_ca('openssl-recipe', 'rsa')[0]
    cert = h.put(tmp_path, '/ca.crt', pem)
    spki = subprocess.run('openssl x509 -pubkey -noout -in %s | openssl pkey -pubin -outform der' % cert,
                          shell=True, check=True, capture_output=True).stdout
    assert pki.ca_cert_hashes(pem) == ['sha256:' + hashlib.sha256(spki).hexdigest()]


def test_one_hash_per_certificate_in_a_bundle():
    first, second = h.make_ca('bundle-a'), h.make_ca('bundle-b')
    assert pki.ca_cert_hashes(first[0] + second[0]) == [first[2], second[2]]


@pytest.mark.parametrize('text', [
    '-----BEGIN CERTIFICATE-----\nMAo=\n-----END CERTIFICATE-----\n',  # SEQUENCE of 2 bytes, no tbs
    '-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n',
])
def test_garbage_certificates_are_refused(text):
    with pytest.raises(pki.CertificateError):
        pki.ca_cert_hashes(text)


# --- versions ------------------------------------------------------------------------------------

@pytest.mark.parametrize('version, api', [
    ('1.29.0', k.API_V1BETA3), ('v1.30.14', k.API_V1BETA3), ('1.31.0', k.API_V1BETA4),
    ('1.33.0-rc.1', k.API_V1BETA4), ('1.36.2', k.API_V1BETA4),
])
def test_config_api_per_version(version, api):
    assert k.config_api_version(k.checked_kubernetes_version(version)) == api


@pytest.mark.parametrize('version', ['1.28.9', '1.38.0', '2.0.0', '0.29.1'])
def test_unsupported_versions(version):
    with pytest.raises(k.KubeadmError, match=r'supported are 1\.29 to 1\.37'):
        k.checked_kubernetes_version(version)


@pytest.mark.parametrize('version', ['1.32', 'latest', 'stable-1.32', ''])
def test_versions_that_are_not_releases(version):
    with pytest.raises(k.KubeadmError, match='is not a Kubernetes release'):
        k.checked_kubernetes_version(version)


@pytest.mark.parametrize('endpoint, split', [
    ('198.51.100.254:6443', ('198.51.100.254', 6443)),
    ('api.example.test:443', ('api.example.test', 443)),
    ('[2001:db8::10]:6443', ('2001:db8::10', 6443)),
])
def test_endpoints(endpoint, split):
    assert k.split_endpoint(endpoint) == split


@pytest.mark.parametrize('endpoint', ['198.51.100.254', 'https://vip:6443', '2001:db8::10:6443', 'vip:0', 'vip:'])
def test_bad_endpoints(endpoint):
    with pytest.raises(k.KubeadmError, match='must be HOST:PORT'):
        k.split_endpoint(endpoint)


# --- YAML writer ----------------------------------------------------------------------------------

@pytest.mark.parametrize('value', [
    'yes', 'no', 'on', 'off', 'true', 'null', '~', '6443', '1.30', '0x1f', '010', '1e3', '', ' lead',
    'a: b', '#x', '- x', '*alias', '&anchor', '!tag', '{x}', '[x]', '%x', '@x', '`x', 'x #y', "it's", 'a"b',
    '198.51.100.11', 'unix:///run/containerd/containerd.sock', '10:30', 'multi\nline', 'tab\there', 'ünïcode',
])
def test_yaml_strings_round_trip(value):
    document = {'key': value, 'list': [value], 'nested': {value or 'empty': value}}
    assert yaml.safe_load(k.to_yaml(document)) == document


def test_yaml_structures_round_trip():
    document = {'a': [{'name': 'x', 'value': '1', 'sub': {'deep': [1, 2]}}, {'name': 'y'}], 'empty_list': [],
                'empty_map': {}, 'n': None, 't': True, 'i': 3, 'f': 0.5}
    assert yaml.safe_load(k.to_yaml(document)) == document


# --- config documents: cgroup driver, kubelet and kube-proxy ------------------------------------------

INIT_PARAMS = {'kubernetes_version': '1.36.3', 'control_plane_endpoint': h.ENDPOINT}


def kinds(documents):
    return [document['kind'] for document in documents]


def test_without_component_settings_only_init_and_cluster_are_written():
    assert kinds(k.init_documents(INIT_PARAMS)) == ['InitConfiguration', 'ClusterConfiguration']


# --- IPv6 and dual stack ---------------------------------------------------------------------------

IPV6_PARAMS = dict(INIT_PARAMS, kubernetes_version='1.37.2', control_plane_endpoint='[2001:db8:c633:6400::fe]:6443',
                   advertise_address='2001:db8:c633:6400::b', pod_subnet='2001:db8:1::/56',
                   service_subnet='2001:db8:2::/112', node_ip=['2001:db8:c633:6400::b'])


def test_an_ipv6_init_config_has_the_bracketed_endpoint_the_bare_vip_in_the_certificate_and_the_node_ip():
    init, cluster = k.init_documents(IPV6_PARAMS)
    assert cluster['controlPlaneEndpoint'] == '[2001:db8:c633:6400::fe]:6443'
    assert cluster['apiServer']['certSANs'] == ['2001:db8:c633:6400::fe']
    assert init['localAPIEndpoint'] == {'advertiseAddress': '2001:db8:c633:6400::b'}
    assert init['nodeRegistration']['kubeletExtraArgs'] == [{'name': 'node-ip', 'value': '2001:db8:c633:6400::b'}]
    assert cluster['networking'] == {'podSubnet': '2001:db8:1::/56', 'serviceSubnet': '2001:db8:2::/112'}
    text = k.to_yaml_documents(k.init_documents(IPV6_PARAMS))
    # quoted: a plain [ would start a YAML list, and kubeadm would read no endpoint
    assert 'controlPlaneEndpoint: "[2001:db8:c633:6400::fe]:6443"\n' in text
    assert 'advertiseAddress: "2001:db8:c633:6400::b"\n' in text
    assert list(yaml.safe_load_all(text))[1]['controlPlaneEndpoint'] == '[2001:db8:c633:6400::fe]:6443'


def test_dual_stack_node_ips_are_one_comma_separated_flag_beside_the_other_kubelet_flags():
    params = dict(INIT_PARAMS, node_ip=['198.51.100.11', '2001:db8:c633:6400::b'],
                  extra_args={'kubelet': {'v': '2'}})
    registration = k.init_documents(params)[0]['nodeRegistration']
    assert registration['kubeletExtraArgs'] == [{'name': 'v', 'value': '2'},
                                                {'name': 'node-ip', 'value': '198.51.100.11,2001:db8:c633:6400::b'}]


def test_a_join_carries_the_node_ip_too():
    document = k.join_document(dict(kubernetes_version='1.37.2', api_endpoint='[2001:db8:c633:6400::fe]:6443',
                                    token='abcdef.0123456789abcdef', ca_cert_hash=['sha256:' + '0' * 64],
                                    node_ip=['2001:db8:c633:6400::d']))
    assert document['nodeRegistration']['kubeletExtraArgs'] == [{'name': 'node-ip', 'value': '2001:db8:c633:6400::d'}]
    assert document['discovery']['bootstrapToken']['apiServerEndpoint'] == '[2001:db8:c633:6400::fe]:6443'


def test_node_ip_and_a_node_ip_kubelet_flag_together_are_refused():
    with pytest.raises(k.KubeadmError, match='node_ip and extra_args.kubelet.node-ip are both set'):
        k.init_documents(dict(INIT_PARAMS, node_ip=['198.51.100.11'], extra_args={'kubelet': {'node-ip': '1.2.3.4'}}))


@pytest.mark.parametrize('driver', ['systemd', 'cgroupfs'])
def test_the_cgroup_driver_alone_makes_a_kubelet_configuration(driver):
    documents = k.init_documents(dict(INIT_PARAMS, cgroup_driver=driver))
    assert documents[2] == {'apiVersion': 'kubelet.config.k8s.io/v1beta1', 'kind': 'KubeletConfiguration',
                            'cgroupDriver': driver}


def test_the_cgroup_driver_joins_the_kubelet_fields_which_pass_unchanged():
    # failCgroupV1: false keeps a 1.35+ kubelet running on a cgroup v1 host; it is passed through as given.
    fields = {'failCgroupV1': False, 'failSwapOn': False, 'evictionHard': {'memory.available': '100Mi'}}
    kubelet = k.init_documents(dict(INIT_PARAMS, cgroup_driver='cgroupfs', kubelet_config=fields))[2]
    assert kubelet == dict(fields, apiVersion=k.KUBELET_API, kind='KubeletConfiguration', cgroupDriver='cgroupfs')
    assert 'failCgroupV1: false\n' in k.to_yaml(kubelet)
    assert k.init_documents(dict(INIT_PARAMS, kubelet_config=fields))[2] == dict(
        fields, apiVersion=k.KUBELET_API, kind='KubeletConfiguration')


def test_a_kubelet_cgroup_driver_equal_to_cgroup_driver_is_accepted():
    kubelet = k.init_documents(dict(INIT_PARAMS, cgroup_driver='cgroupfs',
                                    kubelet_config={'cgroupDriver': 'cgroupfs'}))[2]
    assert kubelet['cgroupDriver'] == 'cgroupfs'


def test_without_cgroup_driver_the_kubelet_config_keeps_its_own():
    kubelet = k.init_documents(dict(INIT_PARAMS, kubelet_config={'cgroupDriver': 'cgroupfs'}))[2]
    assert kubelet['cgroupDriver'] == 'cgroupfs'


@pytest.mark.parametrize('kubelet_driver, driver', [('systemd', 'cgroupfs'), ('cgroupfs', 'systemd')])
def test_a_kubelet_cgroup_driver_that_contradicts_cgroup_driver_is_refused(kubelet_driver, driver):
    params = dict(INIT_PARAMS, cgroup_driver=driver, kubelet_config={'cgroupDriver': kubelet_driver})
    with pytest.raises(k.KubeadmError) as refused:
        k.init_documents(params)
    assert str(refused.value) == (
        'kubelet_config.cgroupDriver is %s but cgroup_driver is %s: the kubelet must use the cgroup driver of the '
        'container runtime; remove cgroupDriver from kubelet_config and set cgroup_driver to that driver.'
        % (kubelet_driver, driver))


@pytest.mark.parametrize('params, name', [
    (dict(cgroup_driver='cgroupsfs'), 'cgroup_driver'),
    (dict(kubelet_config={'cgroupDriver': 'Systemd'}), 'kubelet_config.cgroupDriver'),
])
def test_a_cgroup_driver_that_is_not_one_is_refused(params, name):
    with pytest.raises(k.KubeadmError, match=r'^%s is .*, which is not a cgroup driver: use systemd or cgroupfs'
                       % name.replace('.', r'\.')):
        k.init_documents(dict(INIT_PARAMS, **params))


def test_kube_proxy_config_is_a_kube_proxy_configuration_document_after_the_kubelet():
    documents = k.init_documents(dict(INIT_PARAMS, cgroup_driver='systemd',
                                      kube_proxy_config={'conntrack': {'maxPerCore': 0}, 'mode': 'ipvs'}))
    assert kinds(documents) == ['InitConfiguration', 'ClusterConfiguration', 'KubeletConfiguration',
                                'KubeProxyConfiguration']
    assert k.to_yaml(documents[3]) == (
        'apiVersion: kubeproxy.config.k8s.io/v1alpha1\n'
        'kind: KubeProxyConfiguration\n'
        'conntrack:\n'
        '  maxPerCore: 0\n'
        'mode: ipvs\n')


def test_kube_proxy_config_alone_and_its_own_header_ignored():
    documents = k.init_documents(dict(INIT_PARAMS, kube_proxy_config={'kind': 'Other', 'apiVersion': 'x/v9',
                                                                      'mode': 'iptables'}))
    assert documents[2:] == [{'apiVersion': k.KUBE_PROXY_API, 'kind': 'KubeProxyConfiguration', 'mode': 'iptables'}]


# --- output parsing --------------------------------------------------------------------------------

@pytest.mark.parametrize('name', ['init-success-v1.29.stdout', 'init-success-v1.31.stdout',
                                  'init-success-v1.34.stdout'])
def test_init_output(name):
    assert k.parse_init_output(fixture(name)) == {
        'api_endpoint': h.ENDPOINT, 'token': h.TOKEN, 'ca_cert_hashes': [h.OUTPUT_CA_HASH],
        'certificate_key': h.KEY}


def test_init_output_without_endpoint_section_still_gives_token_and_key():
    # no controlPlaneEndpoint: kubeadm prints only the worker command; the key is still above
    text = fixture('init-success-v1.34.stdout')
    text = text[:text.index('You can now join any number of the control-plane')] + text[text.index('Then you'):]
    parsed = k.parse_init_output(text)
    assert (parsed['token'], parsed['certificate_key']) == (h.TOKEN, h.KEY)


def test_print_join_command_with_certificate_key():
    line = ('kubeadm join %s --token %s --discovery-token-ca-cert-hash %s --control-plane --certificate-key %s\n'
            % (h.ENDPOINT, h.TOKEN, h.OUTPUT_CA_HASH, h.KEY))
    assert k.parse_join_command(line) == {'api_endpoint': h.ENDPOINT, 'token': h.TOKEN,
                                          'ca_cert_hashes': [h.OUTPUT_CA_HASH], 'certificate_key': h.KEY}


def test_upload_certs_key_is_the_last_line():
    assert k.parse_upload_certs_output(fixture('upload-certs.stdout')) == h.NEW_KEY
    assert k.parse_upload_certs_output('[upload-certs] Skipping phase. Please see --upload-certs\n') is None


@pytest.mark.parametrize('stdout, version', [('v1.32.4\n', 'v1.32.4'), ('', ''), ('garbage\n', '')])
def test_version_output(stdout, version):
    assert k.parse_version_output(stdout) == version


# --- failures ----------------------------------------------------------------------------------------

@pytest.mark.parametrize('name, phase, message_start, preflight_count', [
    ('init-preflight-rerun-v1.32.stderr', 'preflight', '[preflight] Some fatal errors occurred:', 11),
    ('init-preflight-host-v1.35.stderr', 'preflight', 'preflight checks failed', 2),
    ('init-wait-control-plane-v1.34.stderr', 'wait-control-plane', 'failed while waiting for the control plane', 0),
    ('init-wait-control-plane-v1.29.stderr', 'wait-control-plane', "couldn't initialize a Kubernetes cluster", 0),
    ('init-upload-config-vip-v1.34.stderr', 'upload-config/kubeadm', 'could not bootstrap the admin user', 0),
    ('join-certs-expired-v1.31.stderr', 'control-plane-prepare/download-certs', 'error downloading certs', 0),
    ('join-no-control-plane-endpoint-v1.30.stderr', 'preflight', 'One or more conditions for hosting', 0),
])
def test_failure_details(name, phase, message_start, preflight_count):
    details = k.failure_details('', fixture(name))
    assert details['phase'] == phase
    assert details['message'].startswith(message_start)
    assert len(details['preflight_errors']) == preflight_count


def test_warnings_are_not_errors():
    details = k.failure_details('', fixture('init-preflight-host-v1.35.stderr'))
    assert [name for name, _ in details['preflight_errors']] == ['NumCPU', 'FileContent--proc-sys-net-ipv4-ip_forward']


def test_failure_without_phase_uses_last_meaningful_line():
    details = k.failure_details('', 'something odd happened\nTo see the stack trace of this error execute with '
                                    '--v=5 or higher\n')
    assert (details['phase'], details['message']) == (None, 'something odd happened')


def test_warnings_are_not_the_cause_of_a_failure_without_an_error_line():
    # Real kubeadm 1.35+ on cgroup v1 ends stderr with this warning whatever happens next.
    stderr = fixture('init-killed-v1.36.stderr')
    details = k.failure_details('[kubelet-start] Starting the kubelet\n', stderr.replace('E1205', 'W1205'))
    assert details['message'] == '[kubelet-start] Starting the kubelet' and details['signal'] is None


def test_init_ended_by_a_signal_says_so_and_how_far_it_got():
    """kubeadm 1.36.3 killed (SIGKILL) once it had started the kubelet (real output): the sentence named the
    last stderr line, the cgroup v1 deprecation warning, as the cause."""
    details = k.failure_details(fixture('init-killed-v1.36.stdout'), fixture('init-killed-v1.36.stderr'), -9)
    assert (details['phase'], details['signal']) == (None, 9)
    assert details['message'] == 'ended by SIGKILL before it finished, after "[kubelet-start] Starting the kubelet"'
    sentence = k.init_failure_message(details, h.ENDPOINT)
    assert sentence.startswith('kubeadm init ended by SIGKILL before it finished, after "[kubelet-start] '
                               'Starting the kubelet": run the site playbook again')
    assert 'cgroups' not in sentence and 'WARNING' not in sentence


def test_join_ended_by_a_signal_before_any_output():
    kind, sentence = k.join_failure(k.failure_details('', '', -15), h.ENDPOINT)
    assert kind == 'killed'
    assert sentence.startswith('kubeadm join ended by SIGTERM before it finished, before any output: ')


def test_an_error_line_wins_over_the_signal():
    stderr = 'error execution phase kubelet-start: error uploading crisocket: timed out\n'
    details = k.failure_details('', stderr, -9)
    assert (details['phase'], details['signal']) == ('kubelet-start', None)


@pytest.mark.parametrize('name, kind', [
    ('join-token-invalid-v1.33.stderr', 'token_invalid'),
    ('join-ca-hash-mismatch-v1.30.stderr', 'ca_hash_mismatch'),
    ('join-connection-refused-v1.32.stderr', 'endpoint_unreachable'),
    ('join-no-route-v1.35.stderr', 'endpoint_unreachable'),
    ('join-timeout-v1.29.stderr', 'endpoint_unreachable'),
    ('join-certs-expired-v1.31.stderr', 'certificate_key_expired'),
    ('join-already-joined-v1.32.stderr', 'already_joined'),
    ('join-preflight-v1.36.stderr', 'preflight'),
    ('join-no-control-plane-endpoint-v1.30.stderr', 'no_control_plane_endpoint'),
])
def test_join_failure_kinds(name, kind):
    stderr = fixture(name)
    found, sentence = k.join_failure(k.failure_details('', stderr), h.ENDPOINT, '', stderr)
    assert found == kind
    assert sentence.endswith('.') and '\n' not in sentence


# kubeadm 1.37's texts (cmd/kubeadm/app/cmd/phases/join: kubelet.go, waitcontrolplane.go) of a join that ran out
# of time after discovery, with the check failures kubeadm's waiter prints (as in init-wait-control-plane-v1.34).
JOIN_WAIT_CONTROL_PLANE = (
    'error: error execution phase wait-control-plane: failed while waiting for the control plane to start: '
    '[kube-apiserver check failed at https://198.51.100.12:6443/livez: Get "https://198.51.100.12:6443/livez?timeout=10s": '
    'context deadline exceeded, kube-scheduler check failed at https://127.0.0.1:10259/livez: Get '
    '"https://127.0.0.1:10259/livez": dial tcp 127.0.0.1:10259: connect: connection refused]\n'
    'To see the stack trace of this error execute with --v=5 or higher\n')
JOIN_TLS_BOOTSTRAP = ('error: error execution phase kubelet-wait-bootstrap: failed while waiting for TLS bootstrap: '
                      'context deadline exceeded\n')


def test_a_join_out_of_time_on_its_own_components_names_the_phase_and_the_timeouts_not_the_vip():
    kind, sentence = k.join_failure(k.failure_details('', JOIN_WAIT_CONTROL_PLANE), h.ENDPOINT, '', JOIN_WAIT_CONTROL_PLANE)
    assert kind == 'node_timeout'
    assert sentence.startswith('kubeadm join failed in phase wait-control-plane: failed while waiting for the control '
                               'plane to start: [kube-apiserver check failed at https://198.51.100.12:6443/livez')
    assert ('The control plane endpoint %s answered (the join got past discovery); what ran out of time is this '
            'node\'s part of the join (no answer from 198.51.100.12, 127.0.0.1): look at its kubelet' % h.ENDPOINT) in sentence
    assert sentence.endswith('raise vipadm_kubeadm_timeouts (the timeouts option of init and join).')
    assert 'VIP' not in sentence


def test_a_join_out_of_time_waiting_for_the_tls_bootstrap_names_no_address():
    kind, sentence = k.join_failure(k.failure_details('', JOIN_TLS_BOOTSTRAP), h.ENDPOINT, '', JOIN_TLS_BOOTSTRAP)
    assert kind == 'node_timeout'
    assert sentence.startswith('kubeadm join failed in phase kubelet-wait-bootstrap: failed while waiting for TLS '
                               'bootstrap: context deadline exceeded. The control plane endpoint')
    assert "this node's part of the join: look at its kubelet" in sentence


def test_after_discovery_an_endpoint_that_does_not_answer_is_still_the_endpoint():
    host = h.ENDPOINT.split(':')[0]
    stderr = ('error execution phase control-plane-prepare/download-certs: error downloading certs: Get "https://%s/api/v1/'
              'namespaces/kube-system/secrets/kubeadm-certs?timeout=10s": context deadline exceeded\n' % h.ENDPOINT)
    kind, sentence = k.join_failure(k.failure_details('', stderr), h.ENDPOINT, '', stderr)
    assert kind == 'endpoint_unreachable' and host in h.ENDPOINT
    assert sentence.startswith('The API endpoint %s does not answer (no answer before the timeout: context deadline '
                               'exceeded): check that the VIP is up' % h.ENDPOINT)


def test_wrong_certificate_key():
    stderr = ('error execution phase control-plane-prepare/download-certs: error downloading certs: error decoding '
              'secret data with provided key: cipher: message authentication failed\n')
    assert k.join_failure(k.failure_details('', stderr), h.ENDPOINT)[0] == 'certificate_key_invalid'


def test_unknown_join_failure_names_the_phase():
    stderr = 'error execution phase kubelet-start: error uploading crisocket: timed out\n'
    kind, sentence = k.join_failure(k.failure_details('', stderr), h.ENDPOINT)
    assert (kind, sentence) == ('failed', 'kubeadm join failed in phase kubelet-start: error uploading crisocket: '
                                          'timed out.')


def test_masked_join_text_hides_both_secrets():
    params = {'token': h.TOKEN, 'certificate_key': h.KEY}
    text = k.masked_join_text('token: %s\ncertificateKey: %s\n' % (h.TOKEN, h.KEY), params)
    assert text == 'token: <hidden>\ncertificateKey: <hidden>\n'


# --- kubeadm's waits (timeouts) --------------------------------------------------------------------

ALL_TIMEOUTS = {'control_plane_component_health_check': '10m', 'kubelet_health_check': '8m', 'kubernetes_api_call': '90s',
                'etcd_api_call': '3m', 'tls_bootstrap': '10m', 'discovery': '10m0s'}
JOIN_PARAMS = dict(kubernetes_version='1.36.3', api_endpoint=h.ENDPOINT, token='abcdef.0123456789abcdef',
                   ca_cert_hash=['sha256:' + '0' * 64])


def test_timeouts_are_the_v1beta4_timeouts_of_init_and_join():
    expected = {'controlPlaneComponentHealthCheck': '10m', 'kubeletHealthCheck': '8m', 'kubernetesAPICall': '90s',
                'etcdAPICall': '3m', 'tlsBootstrap': '10m', 'discovery': '10m0s'}
    init, cluster = k.init_documents(dict(INIT_PARAMS, timeouts=ALL_TIMEOUTS))
    assert init['timeouts'] == expected
    assert 'timeoutForControlPlane' not in cluster['apiServer']
    join = k.join_document(dict(JOIN_PARAMS, timeouts=ALL_TIMEOUTS))
    assert join['timeouts'] == expected
    assert 'timeout' not in join['discovery']


def test_timeouts_left_out_or_empty_are_kubeadms_defaults():
    assert 'timeouts' not in k.init_documents(INIT_PARAMS)[0]
    assert 'timeouts' not in k.join_document(dict(JOIN_PARAMS, timeouts={'discovery': None, 'tls_bootstrap': ''}))


def test_below_1_31_the_two_timeouts_of_v1beta3_go_where_v1beta3_keeps_them():
    timeouts = {'control_plane_component_health_check': '10m', 'discovery': '7m'}
    init, cluster = k.init_documents(dict(INIT_PARAMS, kubernetes_version='1.30.14', timeouts=timeouts))
    assert 'timeouts' not in init
    assert cluster['apiServer']['timeoutForControlPlane'] == '10m'
    join = k.join_document(dict(JOIN_PARAMS, kubernetes_version='1.30.14', timeouts=timeouts))
    assert 'timeouts' not in join
    assert join['discovery']['timeout'] == '7m'
    assert join['discovery']['bootstrapToken']['token'] == 'abcdef.0123456789abcdef'


@pytest.mark.parametrize('name', ['kubelet_health_check', 'kubernetes_api_call', 'etcd_api_call', 'tls_bootstrap'])
def test_below_1_31_the_timeouts_v1beta3_has_not_are_refused(name):
    with pytest.raises(k.KubeadmError, match=r'timeouts.%s needs kubeadm.k8s.io/v1beta4 \(Kubernetes 1.31 or newer\)' % name):
        k.join_document(dict(JOIN_PARAMS, kubernetes_version='1.29.15', timeouts={name: '5m'}))


@pytest.mark.parametrize('value', ['600', '10 m', '0', '0s', '-5m', 'ten minutes', '5M'])
def test_a_timeout_that_is_not_a_positive_duration_is_refused(value):
    with pytest.raises(k.KubeadmError, match='timeouts.discovery is .* which is not a duration: give a positive Go duration'):
        k.join_document(dict(JOIN_PARAMS, timeouts={'discovery': value}))


def test_an_unknown_timeout_is_refused_with_the_known_names():
    with pytest.raises(k.KubeadmError, match='timeouts.join is not one of kubeadm.s timeouts: use control_plane_component_health_check, '):
        k.init_documents(dict(INIT_PARAMS, timeouts={'join': '5m'}))
