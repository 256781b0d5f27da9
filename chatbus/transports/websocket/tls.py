"""TLS for a chatbus that faces the network itself, without a reverse proxy.

With ``certfile`` and ``keyfile`` set, the WebSocket transport listens with
the :class:`ssl.SSLContext` built here: the page and ``/healthz`` over
https, the chat over wss, on the same port. The context accepts TLS 1.2 and
newer only.

Every way the certificate or key can be wrong (missing, unreadable, not PEM,
encrypted without a password, a key of another certificate) is a
:class:`~chatbus.core.errors.ConfigError` that names the file and says what
to do, raised before the port is opened; the operator never sees OpenSSL's
own words or a traceback.
"""

from __future__ import annotations

import os
import ssl
from pathlib import Path

from chatbus.core.errors import ConfigError

from .settings import WebSocketSettings

__all__ = ["server_context"]

_ENCRYPTED_MARKERS = (b"-----BEGIN ENCRYPTED PRIVATE KEY-----", b"Proc-Type: 4,ENCRYPTED")


def server_context(settings: WebSocketSettings) -> ssl.SSLContext:
    """The server-side TLS context of ``settings``; a ``ConfigError`` naming the file when it cannot be built."""
    certfile, keyfile = settings.certfile, settings.keyfile
    if certfile is None or keyfile is None:
        raise ConfigError("TLS needs both websocket.certfile and websocket.keyfile")
    _readable(certfile, "certfile")
    key = _readable(keyfile, "keyfile")
    _check_certificate(certfile)
    password = settings.keyfile_password.get_secret_value() if settings.keyfile_password is not None else None
    encrypted = any(marker in key for marker in _ENCRYPTED_MARKERS)
    if password is None and encrypted:
        raise ConfigError(
            f"the private key in {keyfile} (websocket.keyfile) is encrypted; set websocket.keyfile_password "
            "(CHATBUS_WEBSOCKET__KEYFILE_PASSWORD) or give a key without a password"
        )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        # A callable password, even for a plain key: OpenSSL never prompts on a terminal.
        context.load_cert_chain(certfile, keyfile, password=lambda: (password or "").encode())
    except ssl.SSLError as exc:
        raise ConfigError(_key_problem(exc, certfile, keyfile, encrypted)) from None
    except OSError as exc:  # changed between the checks and the load
        raise ConfigError(f"cannot read {certfile} or {keyfile}: {_reason(exc)}") from None
    return context


def _readable(path: Path, key: str) -> bytes:
    """The bytes of ``path``, or a ``ConfigError`` saying why chatbus cannot read it."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"cannot read {path} (websocket.{key}): {_reason(exc)}; give the path of a PEM file "
            "that the user running chatbus can read"
        ) from None


def _reason(exc: OSError) -> str:
    return os.strerror(exc.errno).lower() if exc.errno else str(exc)


def _check_certificate(certfile: Path) -> None:
    """Blame the certificate file on its own, so a later failure is the key's."""
    probe = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        probe.load_verify_locations(cafile=certfile)
    except ssl.SSLError:
        raise ConfigError(
            f"{certfile} (websocket.certfile) holds no PEM certificate; give the certificate chain "
            "(-----BEGIN CERTIFICATE-----, the server's own certificate first)"
        ) from None


def _key_problem(exc: ssl.SSLError, certfile: Path, keyfile: Path, encrypted: bool) -> str:
    """What a failed ``load_cert_chain`` means for the operator (OpenSSL says only "PEM lib"
    for a bad key and a wrong password alike)."""
    if "KEY_VALUES_MISMATCH" in (exc.reason or "").upper():
        return (
            f"the private key in {keyfile} (websocket.keyfile) does not belong to the certificate in {certfile} "
            "(websocket.certfile); give the key the certificate was issued for"
        )
    if encrypted:
        return (
            f"websocket.keyfile_password does not decrypt the private key in {keyfile}; "
            "check CHATBUS_WEBSOCKET__KEYFILE_PASSWORD"
        )
    return (
        f"{keyfile} (websocket.keyfile) holds no usable PEM private key for {certfile}; "
        "give the key file (-----BEGIN PRIVATE KEY-----) the certificate was issued for"
    )
