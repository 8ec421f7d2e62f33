# -*- coding: utf-8 -*-
# Copyright: vipadm developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""CA certificate hash as kubeadm computes it, with the standard library only.

kubeadm pins the cluster CA by ``sha256:`` + hex SHA-256 over the DER SubjectPublicKeyInfo
of the CA certificate. Nodes are not guaranteed to have ``cryptography``, so a small DER
walker finds the SubjectPublicKeyInfo inside the certificate.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re

_PEM_CERTIFICATE = re.compile(
    r'-----BEGIN CERTIFICATE-----\s*(.+?)\s*-----END CERTIFICATE-----', re.DOTALL)

_TAG_SEQUENCE = 0x30
_TAG_VERSION = 0xA0  # [0] EXPLICIT, context specific, constructed


class CertificateError(ValueError):
    """The bytes are not a certificate this walker understands."""


def pem_certificates(pem_text):
    """Return the DER bytes of every certificate in a PEM text, in order."""
    ders = []
    for body in _PEM_CERTIFICATE.findall(pem_text):
        try:
            ders.append(base64.b64decode(''.join(body.split()), validate=True))
        except (binascii.Error, ValueError) as exc:
            raise CertificateError('a PEM certificate block is not valid base64: %s' % exc)
    return ders


def _read_tlv(der, offset):
    """Return (tag, start of content, end of content) of the DER element at offset."""
    if offset + 2 > len(der):
        raise CertificateError('truncated DER element at byte %d' % offset)
    tag = der[offset]
    first = der[offset + 1]
    pos = offset + 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0 or count > 4 or pos + count > len(der):
            raise CertificateError('unsupported DER length at byte %d' % offset)
        length = int.from_bytes(der[pos:pos + count], 'big')
        pos += count
    end = pos + length
    if end > len(der):
        raise CertificateError('DER element at byte %d runs past the end' % offset)
    return tag, pos, end


def subject_public_key_info(der):
    """Return the DER SubjectPublicKeyInfo (tag and length included) of an X.509 certificate."""
    tag, cert_start, _cert_end = _read_tlv(der, 0)
    if tag != _TAG_SEQUENCE:
        raise CertificateError('a certificate must start with a SEQUENCE')
    tag, pos, tbs_end = _read_tlv(der, cert_start)
    if tag != _TAG_SEQUENCE:
        raise CertificateError('tbsCertificate must be a SEQUENCE')
    tag, _start, end = _read_tlv(der, pos)
    if tag == _TAG_VERSION:
        pos = end
    # serialNumber, signature, issuer, validity, subject, then subjectPublicKeyInfo
    for _field in range(5):
        _tag, _start, pos = _read_tlv(der, pos)
    if pos >= tbs_end:
        raise CertificateError('tbsCertificate ends before subjectPublicKeyInfo')
    tag, _start, end = _read_tlv(der, pos)
    if tag != _TAG_SEQUENCE:
        raise CertificateError('subjectPublicKeyInfo must be a SEQUENCE')
    return der[pos:end]


def ca_cert_hash(der):
    """kubeadm's discovery hash of one certificate: ``sha256:<64 hex>``."""
    return 'sha256:' + hashlib.sha256(subject_public_key_info(der)).hexdigest()


def ca_cert_hashes(pem_text):
    """kubeadm's discovery hashes of every certificate in a PEM text (one per CA)."""
    return [ca_cert_hash(der) for der in pem_certificates(pem_text)]
