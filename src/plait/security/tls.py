"""TLS for the server when it listens beyond this machine: the owner's certificate, or a self-signed one.

Without a certificate of the owner's (``--tls-cert``/``--tls-key``), plait makes a self-signed one on first
use, in ``$PLAIT_HOME/tls/`` (key 0600), valid for this machine's names and addresses and renewed when it
nears its end; its SHA-256 fingerprint is printed so a client can pin it (``curl --pinnedpubkey`` needs the
key's hash; browsers show the certificate's). An ECDSA P-256 key and a 397-day certificate: what browsers
accept for a server certificate.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import socket
from dataclasses import dataclass
from pathlib import Path

from plait.security.crypto import write_file_atomic
from plait.security.deps import require_crypto
from plait.security.permissions import private_dir

VALID_DAYS = 397
RENEW_DAYS = 30


@dataclass(frozen=True)
class Certificate:
    cert: Path
    key: Path
    fingerprint: str  # SHA-256 of the DER certificate, colon-separated hex
    generated: bool


def machine_names(extra: tuple[str, ...] = ()) -> list[str]:
    """localhost, loopback addresses, this machine's host names and addresses, and ``extra``."""
    names = ["localhost", "127.0.0.1", "::1"]
    for name in (socket.gethostname(), socket.getfqdn()):
        if name and name not in names:
            names.append(name)
        try:
            for info in socket.getaddrinfo(name, None):
                address = str(info[4][0]).split("%", 1)[0]
                if address not in names:
                    names.append(address)
        except OSError:
            continue
    for name in extra:
        if name and name not in ("0.0.0.0", "::") and name not in names:
            names.append(name)
    return names


def fingerprint(cert_path: Path) -> str:
    require_crypto()
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    digest = hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest().upper()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


def _still_good(cert_path: Path, names: list[str]) -> bool:
    from cryptography import x509

    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        alt = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (OSError, ValueError, x509.ExtensionNotFound):
        return False
    have = {str(n) for n in alt.get_values_for_type(x509.DNSName)} | \
        {str(n) for n in alt.get_values_for_type(x509.IPAddress)}
    left = cert.not_valid_after_utc - dt.datetime.now(dt.UTC)
    return left > dt.timedelta(days=RENEW_DAYS) and set(names) <= have


def self_signed(folder: Path, names: list[str]) -> Certificate:
    """The self-signed certificate in ``folder`` for ``names``, made (or remade) when missing, expiring or
    lacking a name."""
    require_crypto()
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    if key_path.exists() and _still_good(cert_path, names):
        return Certificate(cert_path, key_path, fingerprint(cert_path), False)
    private_dir(folder)
    key = ec.generate_private_key(ec.SECP256R1())
    alt: list[x509.GeneralName] = []
    for name in names:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alt.append(x509.DNSName(name))
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"plait on {socket.gethostname()}")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=VALID_DAYS))
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(key, hashes.SHA256()))
    write_file_atomic(key_path, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                  serialization.NoEncryption()))
    write_file_atomic(cert_path, cert.public_bytes(serialization.Encoding.PEM))
    return Certificate(cert_path, key_path, fingerprint(cert_path), True)
