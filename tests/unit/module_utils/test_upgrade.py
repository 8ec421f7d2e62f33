# -*- coding: utf-8 -*-
"""The upgrade's decisions (module_utils/_upgrade): the steps left per node, and the refusals before any change."""

import pytest

from ansible_collections.vipadm.kubeadm.plugins.module_utils import _upgrade as upgrade


def report(host, role='control_plane', kubeadm='v1.36.3', kubelet='Kubernetes v1.36.3', api_server='v1.36.3'):
    return {'host': host, 'name': host, 'role': role, 'kubeadm_version': kubeadm, 'kubelet_version': kubelet,
            'api_server_version': api_server if role == 'control_plane' else None}


def listed(name, kubelet='v1.36.3', unschedulable=False, drained_for=None):
    return {'name': name, 'ready': True, 'control_plane': name.startswith('cp'), 'unschedulable': unschedulable,
            'kubelet_version': kubelet, 'drained_for': drained_for}


FRESH = [report('cp1'), report('cp2'), report('cp3'), report('worker1', role='worker')]
FRESH_NODES = [listed(n) for n in ('cp1', 'cp2', 'cp3', 'worker1')]
EVERYTHING = {'install_kubeadm': True, 'kubelet': True, 'uncordon': True}


def test_a_cluster_of_the_older_minor_gets_every_step_in_kubeadms_order():
    outcome = upgrade.plan('1.37.2', 'v1.36.3', FRESH, FRESH_NODES)
    assert outcome['target'] == '1.37.2' and outcome['cluster'] == '1.36.3' and outcome['apply_host'] == 'cp1'
    assert outcome['nodes'] == {
        'cp1': dict(EVERYTHING, kubeadm_upgrade='apply'),
        'cp2': dict(EVERYTHING, kubeadm_upgrade='node'),
        'cp3': dict(EVERYTHING, kubeadm_upgrade='node'),
        'worker1': dict(EVERYTHING, kubeadm_upgrade='node'),
    }
    assert upgrade.describe(outcome)[0] == ('cp1: install kubeadm 1.37.2, kubeadm upgrade apply v1.37.2, drain, '
                                            'kubelet and kubectl 1.37.2, restart the kubelet, uncordon')
    assert outcome['warnings'] == [] and outcome['outside'] == []


def test_a_run_stopped_after_the_drain_of_cp2_resumes_there():
    nodes = [report('cp1', kubeadm='v1.37.2', kubelet='Kubernetes v1.37.2', api_server='v1.37.2'),
             report('cp2', kubeadm='v1.37.2', api_server='v1.37.2'), report('cp3'), report('worker1', role='worker')]
    listed_nodes = [listed('cp1', 'v1.37.2'), listed('cp2', unschedulable=True, drained_for='upgrade'),
                    listed('cp3'), listed('worker1')]
    outcome = upgrade.plan('1.37.2', 'v1.37.2', nodes, listed_nodes)
    assert outcome['apply_host'] is None
    assert outcome['nodes']['cp1'] == {'install_kubeadm': False, 'kubeadm_upgrade': None, 'kubelet': False,
                                       'uncordon': False}
    assert outcome['nodes']['cp2'] == {'install_kubeadm': False, 'kubeadm_upgrade': None, 'kubelet': True,
                                       'uncordon': True}
    assert outcome['nodes']['cp3'] == dict(EVERYTHING, kubeadm_upgrade='node')
    assert outcome['left'] == ['cp2', 'cp3', 'worker1']
    lines = upgrade.describe(outcome)
    assert lines[:2] == ['cp1: at 1.37.2 already', 'cp2: drain, kubelet and kubectl 1.37.2, restart the kubelet, uncordon']


def test_an_apply_that_stopped_before_the_configuration_was_uploaded_runs_again_on_the_first_control_plane():
    nodes = [report('cp1', kubeadm='v1.37.2', api_server='v1.37.2')] + FRESH[1:]
    outcome = upgrade.plan('1.37.2', 'v1.36.3', nodes, FRESH_NODES)
    assert outcome['apply_host'] == 'cp1' and outcome['nodes']['cp1']['kubeadm_upgrade'] == 'apply'
    assert outcome['nodes']['cp1']['install_kubeadm'] is False


def test_a_finished_upgrade_has_nothing_left():
    nodes = [report(n, role='worker' if n == 'worker1' else 'control_plane', kubeadm='v1.37.2',
                    kubelet='Kubernetes v1.37.2', api_server='v1.37.2') for n in ('cp1', 'cp2', 'worker1')]
    outcome = upgrade.plan('1.37.2', 'v1.37.2', nodes, [listed(n, 'v1.37.2') for n in ('cp1', 'cp2', 'worker1')])
    assert all(not any(steps.values()) for steps in outcome['nodes'].values()), outcome['nodes']
    assert outcome['left'] == []
    assert upgrade.describe(outcome) == ['cp1: at 1.37.2 already', 'cp2: at 1.37.2 already',
                                         'worker1: at 1.37.2 already']


def test_a_kubelet_replaced_but_not_restarted_is_restarted():
    nodes = [report('cp1', kubeadm='v1.37.2', kubelet='Kubernetes v1.37.2', api_server='v1.37.2')]
    outcome = upgrade.plan('1.37.2', '1.37.2', nodes, [listed('cp1', 'v1.36.3')])
    assert outcome['nodes']['cp1']['kubelet'] is True


def test_a_node_cordoned_by_somebody_else_is_not_planned_for_an_uncordon():
    nodes = [report('cp1', kubeadm='v1.37.2', kubelet='Kubernetes v1.37.2', api_server='v1.37.2')]
    outcome = upgrade.plan('1.37.2', '1.37.2', nodes, [listed('cp1', 'v1.37.2', unschedulable=True)])
    assert outcome['nodes']['cp1']['uncordon'] is False


def test_a_patch_upgrade_within_the_minor():
    outcome = upgrade.plan('1.36.4', 'v1.36.3', FRESH, FRESH_NODES)
    assert outcome['apply_host'] == 'cp1' and outcome['nodes']['worker1']['kubeadm_upgrade'] == 'node'


@pytest.mark.parametrize('target, cluster, message', [
    ('1.35.8', 'v1.36.3', r'The cluster runs Kubernetes 1\.36\.3 and vipadm_kubernetes_version is 1\.35\.8: that is a '
                          r'downgrade, which vipadm does not do .* Set vipadm_kubernetes_version to 1\.36\.3 or newer'),
    ('1.36.2', 'v1.36.3', r'that is a downgrade'),
    ('1.37.2', 'v1.35.8', r'kubeadm upgrades one minor release at a time, so upgrade to a 1\.36 release first '
                          r'\(vipadm_kubernetes_version: 1\.36\.x, and its bundle or packages\), then to 1\.37\.2'),
    ('1.38.0', 'v1.37.2', r'vipadm supports Kubernetes 1\.29 to 1\.37, not 1\.38\.0'),
    ('1.37', 'v1.36.3', r"vipadm_kubernetes_version '1\.37' is not a Kubernetes release \(such as 1\.37\.2\)"),
    ('latest', 'v1.36.3', r'is not a Kubernetes release'),
    ('1.37.2', None, r"The cluster's Kubernetes version cannot be read"),
])
def test_refusals_name_the_problem_and_the_way_out(target, cluster, message):
    with pytest.raises(upgrade.UpgradeError, match=message) as refused:
        upgrade.plan(target, cluster, FRESH, FRESH_NODES)
    assert 'Nothing was changed' in str(refused.value)


def test_every_problem_of_the_nodes_is_named_at_once():
    nodes = FRESH[:2] + [report('cp3', api_server=None), report('worker9', role='worker')]
    listed_nodes = FRESH_NODES[:3] + [listed('old', kubelet='v1.33.13')]
    with pytest.raises(upgrade.UpgradeError) as refused:
        upgrade.plan('1.37.2', 'v1.36.3', nodes, listed_nodes)
    text = str(refused.value)
    assert text.startswith('The upgrade to 1.37.2 is refused, nothing was changed: ')
    assert 'cp3 holds no kube-apiserver manifest with a version' in text
    assert 'worker9 (Node worker9) is not a Node of this cluster: run site.yml to join it first' in text
    assert 'Node old is not in the inventory and runs kubelet 1.33.13, more than 3 minors older than 1.37.2' in text


def test_a_node_outside_the_inventory_within_the_skew_is_a_warning():
    outcome = upgrade.plan('1.37.2', 'v1.36.3', FRESH, FRESH_NODES + [listed('worker2')])
    assert outcome['outside'] == ['worker2']
    assert outcome['warnings'] == ['Nodes worker2 are not in the inventory: their kubelets stay at the version they run '
                                   '(worker2 v1.36.3 may be up to 3 minors older than the control plane); add them to '
                                   'the inventory to upgrade them.']


def test_an_api_server_newer_than_the_target_is_another_upgrade_half_done():
    nodes = [report('cp1', api_server='v1.37.2')] + FRESH[1:]
    with pytest.raises(upgrade.UpgradeError, match=r'cp1 runs kube-apiserver 1\.37\.2, newer than 1\.36\.4: the '
                                                  r'cluster is half-way through another upgrade'):
        upgrade.plan('1.36.4', 'v1.36.3', nodes, FRESH_NODES)


def test_kubeadm_argv():
    assert upgrade.upgrade_argv('/usr/bin/kubeadm', 'apply', '1.37.2', ['SystemVerification']) == [
        '/usr/bin/kubeadm', 'upgrade', 'apply', 'v1.37.2', '--yes', '--ignore-preflight-errors=SystemVerification']
    assert upgrade.upgrade_argv('kubeadm', 'node', '1.37.2') == ['kubeadm', 'upgrade', 'node']
    assert upgrade.plan_argv('kubeadm', 'v1.37.2') == ['kubeadm', 'upgrade', 'plan', 'v1.37.2']


def test_kubeadm_refusal_is_its_last_error_line():
    output = ('[upgrade/versions] Cluster version: 1.36.3\n[upgrade/versions] kubeadm version: v1.37.2\n'
              'error: [upgrade/version] FATAL: the --version argument is invalid due to these errors:\n\n'
              '\t- Specified version to upgrade to "v1.39.0" is too high\n\nTo see the stack trace of this error '
              'execute with --v=5 or higher\n')
    assert upgrade.kubeadm_refusal(output).startswith('error: [upgrade/version] FATAL')
    assert upgrade.kubeadm_refusal('just a line\n') == 'just a line'
    assert upgrade.kubeadm_refusal('') == 'no output'
