"""Self-made TLS certificates for tests: a certificate authority of the test's
own (trustme) and a server certificate it issued for 127.0.0.1 and localhost,
written as the PEM files an operator would give chatbus or nginx."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

import trustme


@dataclass(frozen=True)
class Certificates:
    """PEM files: the authority's certificate, the server's chain and its key."""

    ca: Path
    cert: Path
    key: Path

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts only the test's authority, as a user's with ``--cafile``."""
        return ssl.create_default_context(cafile=self.ca)


def make_certificates(folder: Path, *names: str) -> Certificates:
    """A new authority and a server certificate for 127.0.0.1, ::1, localhost and ``names``, in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    authority = trustme.CA()
    issued = authority.issue_cert("127.0.0.1", "::1", "localhost", *names)
    files = Certificates(folder / "ca.pem", folder / "cert.pem", folder / "key.pem")
    authority.cert_pem.write_to_path(str(files.ca))
    files.cert.write_bytes(b"".join(blob.bytes() for blob in issued.cert_chain_pems))
    issued.private_key_pem.write_to_path(str(files.key))
    return files
