"""A small PKI for the simulator: certificate authorities, signed certificates, keys, kubeadm's CA pin.

Real X.509 made with python3-cryptography (Debian's 38.x API: no ``backend`` argument needed,
``not_valid_before``/``not_valid_after`` naive UTC). Files are written with the modes client-go
uses: certificates 0644, private keys and public keys 0600, parent directories 0755.
"""

import datetime
import hashlib
import ipaddress
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_VALIDITY = datetime.timedelta(days=3650)
LEAF_VALIDITY = datetime.timedelta(days=365)
# kubeadm back-dates certificates a little so that small clock skews between nodes do not matter.
BACKDATE = datetime.timedelta(minutes=5)
RSA_KEY_SIZE = 2048

SERVER = "server"
CLIENT = "client"


def new_private_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=RSA_KEY_SIZE)


def _name(common_name, organizations=()):
    attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org) for org in organizations]
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attributes)


def _now():
    return datetime.datetime.utcnow().replace(microsecond=0)


def new_ca(common_name, key=None, validity=CA_VALIDITY):
    """A self-signed CA certificate and its key, as kubeadm makes ``ca``, ``front-proxy-ca``, ``etcd/ca``."""
    key = key or new_private_key()
    now = _now()
    subject = _name(common_name)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + validity)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=True,
                data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=False,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def new_signed_cert(ca_cert, ca_key, common_name, organizations=(), usages=(CLIENT,),
                    dns_names=(), ip_addresses=(), key=None, validity=LEAF_VALIDITY):
    """A leaf certificate signed by the CA. ``usages``: any of SERVER, CLIENT."""
    key = key or new_private_key()
    now = _now()
    not_after = min(now + validity, not_valid_after(ca_cert))
    eku = []
    if SERVER in usages:
        eku.append(ExtendedKeyUsageOID.SERVER_AUTH)
    if CLIENT in usages:
        eku.append(ExtendedKeyUsageOID.CLIENT_AUTH)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name, organizations))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=True,
                data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage(eku), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()), critical=False
        )
    )
    alt_names = [x509.DNSName(name) for name in _unique(dns_names)]
    alt_names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in _unique(str(i) for i in ip_addresses)]
    if alt_names:
        builder = builder.add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
    return builder.sign(ca_key, hashes.SHA256()), key


def not_valid_after(cert):
    """Naive UTC expiry under both cryptography 38 (Debian, in the nodes) and newer (the venv)."""
    aware = getattr(cert, "not_valid_after_utc", None)
    return aware.replace(tzinfo=None) if aware is not None else cert.not_valid_after


def _unique(items):
    seen = []
    for item in items:
        if item and item not in seen:
            seen.append(item)
    return seen


def cert_pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


def key_pem(key):
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


def public_key_pem(key):
    public = key.public_key() if hasattr(key, "public_key") else key
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def load_cert(pem):
    return x509.load_pem_x509_certificate(pem if isinstance(pem, bytes) else pem.encode())


def load_key(pem):
    return serialization.load_pem_private_key(pem if isinstance(pem, bytes) else pem.encode(), password=None)


def load_public_key(pem):
    return serialization.load_pem_public_key(pem if isinstance(pem, bytes) else pem.encode())


def ca_cert_hash(cert):
    """kubeadm's public key pin: ``sha256:`` + hex SHA-256 of the DER SubjectPublicKeyInfo."""
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return "sha256:" + hashlib.sha256(spki).hexdigest()


def san_dns_names(cert):
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    return ext.value.get_values_for_type(x509.DNSName)


def san_ip_addresses(cert):
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    return [str(ip) for ip in ext.value.get_values_for_type(x509.IPAddress)]


def write_file(path, data, mode, dir_mode=0o755):
    """Write atomically with ``mode``; create missing parents with ``dir_mode``."""
    os.makedirs(os.path.dirname(path) or ".", mode=dir_mode, exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data if isinstance(data, bytes) else data.encode())
    finally:
        os.close(fd)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def write_cert(path, cert):
    write_file(path, cert_pem(cert), 0o644)


def write_key(path, key):
    write_file(path, key_pem(key), 0o600)


def write_public_key(path, key):
    # kubeadm writes sa.pub with the key writer, hence 0600 like the private key.
    write_file(path, public_key_pem(key), 0o600)
