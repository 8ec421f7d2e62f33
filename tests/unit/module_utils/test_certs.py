# -*- coding: utf-8 -*-
"""kubeadm's certificates (module_utils/_certs): the real output of `kubeadm certs check-expiration` of kubeadm
1.37.2 on the lab's init host and on a joined control plane, days left and warnings, and the renewal flow."""

import json
import os
import re

import pytest

from ansible_collections.vipadm.kubeadm.plugins.module_utils import _certs as certs
from ansible_collections.vipadm.kubeadm.plugins.module_utils._kubeadm import KubeadmError

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'fixtures', 'day2')
KUBEADM = '/usr/bin/kubeadm'
CHECK = [KUBEADM, 'certs', 'check-expiration', '-o', 'json']
RENEW = [KUBEADM, 'certs', 'renew', 'all']
# When the fixtures were captured (the lab's clock): 2026-12-05 19:52 UTC.
CAPTURED = certs.epoch('2026-12-05T19:52:00Z')
CERTIFICATES = [
    'admin.conf',
    'apiserver',
    'apiserver-etcd-client',
    'apiserver-kubelet-client',
    'controller-manager.conf',
    'etcd-healthcheck-client',
    'etcd-peer',
    'etcd-server',
    'front-proxy-client',
    'scheduler.conf',
    'super-admin.conf',
]


def fixture(name):
    with open(os.path.join(FIXTURES, name), encoding='utf-8') as handle:
        return handle.read()


def test_the_init_host_of_kubeadm_1_37_2():
    report = certs.parse_expiration(fixture('check-expiration-init-host-v1.37.2.json'), CAPTURED)
    assert sorted(report['certificates']) == CERTIFICATES
    assert report['certificates']['apiserver'] == {
        'expires': '2027-12-05T19:47:30Z',
        'days_left': 364,
        'missing': False,
        'externally_managed': False,
        'ca': 'ca',
    }
    assert report['certificates']['etcd-peer']['ca'] == 'etcd-ca'
    assert report['certificates']['front-proxy-client']['ca'] == 'front-proxy-ca'
    assert sorted(report['certificate_authorities']) == ['ca', 'etcd-ca', 'front-proxy-ca']
    assert (
        report['certificate_authorities']['ca']['days_left'] == 3649
        and 'ca' not in report['certificate_authorities']['ca']
    )
    assert certs.soonest(report) == ('admin.conf', 364)


def test_days_left_agree_with_kubeadms_own_table():
    """The text output of the same run: RESIDUAL TIME 364d for each certificate, 9y for each CA."""
    report = certs.parse_expiration(fixture('check-expiration-init-host-v1.37.2.json'), CAPTURED)
    rows = re.findall(
        r'^(\S+)\s+\w{3} \d\d, \d{4} \d\d:\d\d UTC\s+(\d+)([dy])\s',
        fixture('check-expiration-init-host-v1.37.2.txt'),
        re.M,
    )
    assert len(rows) == 14
    for name, number, unit in rows:
        entry = report['certificates'].get(name) or report['certificate_authorities'][name]
        assert entry['days_left'] // (365 if unit == 'y' else 1) == int(number), name


def test_a_joined_control_plane_has_no_super_admin_conf():
    report = certs.parse_expiration(fixture('check-expiration-joined-v1.37.2.json'), CAPTURED)
    assert report['certificates']['super-admin.conf'] == {
        'expires': None,
        'days_left': None,
        'missing': True,
        'externally_managed': False,
    }
    assert certs.renewable(report) == [name for name in CERTIFICATES if name != 'super-admin.conf']
    assert certs.expiring(report, 400) == [name for name in CERTIFICATES if name != 'super-admin.conf']


@pytest.mark.parametrize(
    'days_later, warn_days, expected',
    [
        (0, 30, []),
        (
            340,
            30,
            [
                'certificate admin.conf expires 2027-12-05T19:47:30Z (24 days left, under 30): renew it with the '
                'renew_certs '
                'playbook (vipadm.kubeadm.renew_certs).'
            ],
        ),
        (366, 30, ['certificate admin.conf expires 2027-12-05T19:47:30Z (expired, under 30)']),
        (
            3640,
            30,
            [
                'CA ca expires 2036-12-02T19:47:30Z (9 days left, under 30): kubeadm does not renew CAs: plan a CA '
                'rotation'
            ],
        ),
    ],
)
def test_warnings(days_later, warn_days, expected):
    report = certs.parse_expiration(
        fixture('check-expiration-init-host-v1.37.2.json'), CAPTURED + days_later * certs.DAY
    )
    sentences = certs.warnings(report, warn_days)
    for sentence in expected:
        assert any(found.startswith(sentence) for found in sentences), sentences
    if not expected:
        assert sentences == []


def test_rfc3339_with_an_offset():
    assert certs.epoch('2027-12-05T20:47:30+01:00') == certs.epoch('2027-12-05T19:47:30Z')
    assert certs.epoch('2027-12-05T19:47:30.123456Z') == certs.epoch('2027-12-05T19:47:30Z')


@pytest.mark.parametrize(
    'text, message',
    [
        ('not json', r'^kubeadm certs check-expiration printed no JSON'),
        ('{"kind": "Status"}', r'^kubeadm certs check-expiration printed no certificates'),
        ('{"certificates": [{"name": "x", "expirationDate": "yesterday"}]}', r'cannot read: not an RFC 3339 time'),
    ],
)
def test_unreadable_output(text, message):
    with pytest.raises(KubeadmError, match=message):
        certs.parse_expiration(text, CAPTURED)


# --- flows ------------------------------------------------------------------------------------------------------


def later(text, seconds):
    """The same check-expiration output, every certificate (not CA) renewed ``seconds`` later."""
    document = json.loads(text)
    for item in document['certificates']:
        if item['expirationDate']:
            item['expirationDate'] = '2027-12-05T19:%02d:30Z' % (47 + seconds // 60)
    return json.dumps(document)


class Run:
    def __init__(self, *answers):
        self.answers = list(answers)
        self.calls = []

    def __call__(self, argv):
        self.calls.append(argv)
        expected, answer = self.answers.pop(0)
        assert argv == expected
        return answer


def test_certs_expiration_flow_as_facts():
    run = Run((CHECK, (0, fixture('check-expiration-init-host-v1.37.2.json'), '')))
    result = certs.certs_expiration({'warn_days': 365}, '/', run, KUBEADM, clock=lambda: CAPTURED)
    assert result['changed'] is False and result['soonest'] == 'admin.conf' and result['days_left'] == 364
    assert result['ansible_facts']['kubeadm_certs']['expiring'] == CERTIFICATES
    assert len(result['warnings']) == 11


def test_certs_expiration_on_a_worker_fails_with_kubeadms_message():
    run = Run((CHECK, (1, '', fixture('check-expiration-worker-v1.37.2.stderr'))))
    with pytest.raises(KubeadmError, match=r'^kubeadm certs check-expiration failed: .*apiserver.key: no such file'):
        certs.certs_expiration({'warn_days': 30}, '/', run, KUBEADM, clock=lambda: CAPTURED)


def test_renewal_runs_kubeadm_and_says_what_was_renewed():
    before = fixture('check-expiration-joined-v1.37.2.json')
    run = Run(
        (CHECK, (0, before, '')),
        (RENEW, (0, 'certificate for serving the Kubernetes API renewed\n', '')),
        (CHECK, (0, later(before, 120), '')),
    )
    result = certs.certs_renew({'within_days': 0}, '/', run, KUBEADM, clock=lambda: CAPTURED)
    assert result['changed'] is True
    assert result['renewed'] == [name for name in CERTIFICATES if name != 'super-admin.conf']
    assert result['after']['certificates']['apiserver']['expires'] == '2027-12-05T19:49:30Z'
    assert result['msg'].startswith('Renewed admin.conf, apiserver, ')


def test_renewal_in_check_mode_runs_only_check_expiration():
    run = Run((CHECK, (0, fixture('check-expiration-init-host-v1.37.2.json'), '')))
    result = certs.certs_renew({'within_days': 0}, '/', run, KUBEADM, check_mode=True, clock=lambda: CAPTURED)
    assert result['changed'] is True and result['renewed'] == CERTIFICATES
    assert result['msg'] == 'kubeadm certs renew all would renew %s.' % ', '.join(CERTIFICATES)


def test_renewal_not_due_changes_nothing():
    run = Run((CHECK, (0, fixture('check-expiration-init-host-v1.37.2.json'), '')))
    result = certs.certs_renew({'within_days': 90}, '/', run, KUBEADM, clock=lambda: CAPTURED)
    assert result['changed'] is False and result['renewed'] == []
    assert result['msg'] == (
        'Not renewed: the first certificate to expire, admin.conf, has 364 days left, not fewer ' 'than within_days 90.'
    )


def test_renewal_due_within_days():
    text = fixture('check-expiration-init-host-v1.37.2.json')
    run = Run((CHECK, (0, text, '')), (RENEW, (0, '', '')), (CHECK, (0, later(text, 60), '')))
    result = certs.certs_renew({'within_days': 90}, '/', run, KUBEADM, clock=lambda: CAPTURED + 300 * certs.DAY)
    assert result['changed'] is True and result['days_left'] == 64


def test_a_renewal_that_renews_nothing_fails():
    text = fixture('check-expiration-init-host-v1.37.2.json')
    run = Run((CHECK, (0, text, '')), (RENEW, (0, 'Done renewing certificates.\n', '')), (CHECK, (0, text, '')))
    with pytest.raises(KubeadmError, match=r'no certificate has a new expiration date'):
        certs.certs_renew({'within_days': 0}, '/', run, KUBEADM, clock=lambda: CAPTURED)
