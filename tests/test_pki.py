"""The local CA's certificates pass strict X.509 verification (Python 3.13's ssl uses it)."""
from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509

from plinth.localenv.pki import CertificateAuthority, KeyPair

ISSUED: dict[str, tuple[Callable[[CertificateAuthority], KeyPair], str]] = {
    "server": (lambda ca: ca.issue("apiserver", "kube-apiserver",
                                   server_hosts=("127.0.0.1", "localhost")), "sslserver"),
    "client": (lambda ca: ca.issue("admin", "plinth-admin", organization="system:masters"),
               "sslclient"),
}


def load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


@pytest.mark.parametrize("kind", sorted(ISSUED))
def test_issued_cert_names_its_own_key_and_the_cas_key(kind: str, tmp_path: Path) -> None:
    ca = CertificateAuthority(tmp_path)
    issue, _ = ISSUED[kind]
    cert = load(issue(ca).cert)
    ca_key_id = load(ca.pair.cert).extensions.get_extension_for_class(
        x509.SubjectKeyIdentifier).value.digest
    own_key_id = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    authority = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    assert own_key_id == x509.SubjectKeyIdentifier.from_public_key(cert.public_key())
    assert authority.key_identifier == ca_key_id


@pytest.mark.parametrize("kind", sorted(ISSUED))
def test_openssl_strict_verify_accepts_the_issued_cert(kind: str, tmp_path: Path) -> None:
    ca = CertificateAuthority(tmp_path)
    issue, purpose = ISSUED[kind]
    pair = issue(ca)
    proc = subprocess.run(["openssl", "verify", "-x509_strict", "-purpose", purpose,
                           "-CAfile", str(ca.pair.cert), str(pair.cert)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == f"{pair.cert}: OK"
