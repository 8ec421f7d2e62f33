# -*- coding: utf-8 -*-
# Copyright: vipadm developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The certificates kubeadm manages on a control plane: their expiration, their renewal.

``kubeadm certs check-expiration -o json`` prints a ``CertificateExpirationInfo``
(``output.kubeadm.k8s.io/v1alpha3``): ``certificates`` and ``certificateAuthorities``, each with ``name``,
``expirationDate`` (RFC 3339, null when missing), ``residualTime``, ``caName`` (certificates only),
``externallyManaged`` and ``missing``. The days left are counted from ``expirationDate``, so the result does
not depend on the unit of ``residualTime``. Parsing is pure; the flows take ``run`` and ``now``.
"""

from __future__ import annotations

import calendar
import json
import re
import time

from ansible_collections.vipadm.kubeadm.plugins.module_utils import _kubeadm_actions as actions
from ansible_collections.vipadm.kubeadm.plugins.module_utils._kubeadm import KubeadmError

DAY = 86400
_RFC3339 = re.compile(r'\A(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.\d+)?(Z|[+-]\d\d:\d\d)\Z')


def check_expiration_argv(kubeadm):
    return [kubeadm, 'certs', 'check-expiration', '-o', 'json']


def renew_all_argv(kubeadm):
    return [kubeadm, 'certs', 'renew', 'all']


def epoch(text):
    """Seconds since the epoch of an RFC 3339 time; None for None."""
    if text is None:
        return None
    match = _RFC3339.match(text)
    if not match:
        raise ValueError('not an RFC 3339 time: %r' % text)
    year, month, day, hour, minute, second = (int(part) for part in match.groups()[:6])
    seconds = calendar.timegm((year, month, day, hour, minute, second))
    zone = match.group(7)
    if zone != 'Z':
        sign = 1 if zone[0] == '+' else -1
        seconds -= sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    return seconds


def _entry(item, now):
    expires = item.get('expirationDate')
    seconds_left = None if expires is None else epoch(expires) - now
    entry = {
        'expires': expires,
        'days_left': None if seconds_left is None else int(seconds_left // DAY),
        'missing': bool(item.get('missing')),
        'externally_managed': bool(item.get('externallyManaged')),
    }
    if 'caName' in item or 'certificateAuthority' in item:
        entry['ca'] = item.get('caName') or item.get('certificateAuthority') or ''
    return entry


def parse_expiration(text, now):
    """``{certificates: {name: entry}, certificate_authorities: {name: entry}}`` of the JSON output; an entry
    holds ``expires``, ``days_left`` (whole days from ``now``, negative once expired, null when missing),
    ``missing``, ``externally_managed`` and, for certificates, ``ca``."""
    try:
        document = json.loads(text)
    except ValueError:
        raise KubeadmError('kubeadm certs check-expiration printed no JSON: %r' % (text or '').strip()[:200])
    if not isinstance(document, dict) or 'certificates' not in document:
        raise KubeadmError('kubeadm certs check-expiration printed no certificates: %r' % (text or '').strip()[:200])
    try:
        return {
            'certificates': dict((item['name'], _entry(item, now)) for item in document.get('certificates') or []),
            'certificate_authorities': dict((item['name'], _entry(item, now))
                                            for item in document.get('certificateAuthorities') or []),
        }
    except (KeyError, ValueError, TypeError) as exc:
        raise KubeadmError('kubeadm certs check-expiration printed a certificate this module cannot read: %s' % exc)


def present(entries):
    return dict((name, entry) for name, entry in entries.items() if not entry['missing'])


def soonest(report):
    """(name, days left) of the certificate (not CA) that expires first; (None, None) when none is present."""
    found = sorted((entry['days_left'], name) for name, entry in present(report['certificates']).items())
    return (found[0][1], found[0][0]) if found else (None, None)


def expiring(report, days):
    """Names of the certificates and CAs present with fewer than ``days`` days left, soonest first."""
    found = []
    for group in ('certificates', 'certificate_authorities'):
        found += [(entry['days_left'], name) for name, entry in present(report[group]).items()
                  if entry['days_left'] < days]
    return [name for _days, name in sorted(found)]


def warnings(report, days):
    """One sentence per certificate or CA with fewer than ``days`` days left."""
    sentences = []
    for group, what in (('certificates', 'certificate'), ('certificate_authorities', 'CA')):
        for name, entry in sorted(present(report[group]).items(), key=lambda item: item[1]['days_left']):
            if entry['days_left'] >= days:
                continue
            if what == 'CA':
                todo = ('kubeadm does not renew CAs: plan a CA rotation (kubernetes.io: "Manual rotation of CA '
                        'certificates")')
            elif entry['externally_managed']:
                todo = 'it is managed outside kubeadm: renew it where it was made'
            else:
                todo = 'renew it with the renew_certs playbook (vipadm.kubeadm.renew_certs)'
            state = 'expired' if entry['days_left'] < 0 else '%d days left' % entry['days_left']
            sentences.append('%s %s expires %s (%s, under %d): %s.' % (what, name, entry['expires'], state, days, todo))
    return sentences


def renewable(report):
    """The certificates ``kubeadm certs renew all`` renews: present and not managed outside kubeadm."""
    return sorted(name for name, entry in present(report['certificates']).items() if not entry['externally_managed'])


def renewed(before, after):
    """Names of the certificates whose expiration moved."""
    return sorted(name for name, entry in after['certificates'].items()
                  if not entry['missing'] and before['certificates'].get(name, {}).get('expires') != entry['expires'])


# --- flows ----------------------------------------------------------------------------------------

def read_expiration(run, kubeadm_path, now):
    report = parse_expiration(actions._run_checked(run, check_expiration_argv(kubeadm_path),
                                                   'kubeadm certs check-expiration'), now)
    if not present(report['certificates']):
        raise KubeadmError('kubeadm certs check-expiration found none of the certificates of a control plane on this '
                           'node (all missing): run it on a control plane.')
    return report


def certs_expiration(params, root, run, kubeadm_path, clock=time.time):
    """The report of ``read_expiration`` as facts (``kubeadm_certs``), the soonest certificate, warnings."""
    report = read_expiration(run, kubeadm_path, clock())
    name, days = soonest(report)
    facts = dict(report, soonest=name, days_left=days, expiring=expiring(report, params['warn_days']))
    return dict(changed=False, ansible_facts={'kubeadm_certs': facts}, warnings=warnings(report, params['warn_days']),
                **facts)


def certs_renew(params, root, run, kubeadm_path, check_mode=False, clock=time.time):
    """``kubeadm certs renew all``, unless ``within_days`` is set and no certificate expires within it."""
    before = read_expiration(run, kubeadm_path, clock())
    name, days = soonest(before)
    within = params['within_days']
    result = {'changed': False, 'renewed': [], 'before': before, 'after': before, 'soonest': name, 'days_left': days}
    if within and days >= within:
        result['msg'] = ('Not renewed: the first certificate to expire, %s, has %d days left, not fewer than '
                         'within_days %d.' % (name, days, within))
        return result
    result['changed'] = True
    if check_mode:
        result['renewed'] = renewable(before)
        result['msg'] = 'kubeadm certs renew all would renew %s.' % ', '.join(result['renewed'])
        return result
    argv = renew_all_argv(kubeadm_path)
    result['stdout'] = actions._run_checked(run, argv, 'kubeadm certs renew all')
    after = read_expiration(run, kubeadm_path, clock())
    result.update(after=after, renewed=renewed(before, after))
    if not result['renewed']:
        raise KubeadmError('kubeadm certs renew all ended without error, but no certificate has a new expiration date '
                           '(check-expiration before and after agree): look at its output.', stdout=result['stdout'])
    result['msg'] = ('Renewed %s; the static Pods must restart to use them (vipadm.kubeadm.restart_static_pods).'
                     % ', '.join(result['renewed']))
    return result
