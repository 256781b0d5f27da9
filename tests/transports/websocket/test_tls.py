"""TLS without a reverse proxy: ``certfile`` and ``keyfile`` in ``[websocket]``.

A certificate made for the test (trustme) for 127.0.0.1 and localhost; the
real ``chatbus serve`` with it; real clients that trust only the test's
authority, as a user's would with ``--cafile``: the page and ``/healthz``
over https, the chat over wss, on one port. Plain clients on that port fail
and the server goes on. Mistakes in the certificate settings stop start-up
with one line that names the file.
"""

from __future__ import annotations

import json
import re
import ssl
import time
import urllib.error
import urllib.request
import warnings
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from websockets.exceptions import InvalidMessage
from websockets.sync.client import ClientConnection, connect

from chatbus import ConfigError
from chatbus.transports.websocket import WebSocketSettings
from tests.certificates import Certificates, make_certificates
from tests.support import ChatbusProcess, chatbus_env, run_chatbus

from .helpers import Client, running

TIMEOUT = 10.0
LISTENING = re.compile(r"listening on wss://127\.0\.0\.1:(\d+)/; open the web chat at https://127\.0\.0\.1:(\d+)/$")


@pytest.fixture
def certs(tmp_path: Path) -> Certificates:
    return make_certificates(tmp_path / "tls")


def serve_with_tls(tmp_path: Path, certs: Certificates) -> tuple[ChatbusProcess, int]:
    """``chatbus serve`` configured as the README says: certfile and keyfile in chatbus.toml."""
    (tmp_path / "chatbus.toml").write_text(f'[websocket]\ncertfile = "{certs.cert}"\nkeyfile = "{certs.key}"\n')
    server = ChatbusProcess("serve", "--port", "0", "--db", "chat.db", cwd=tmp_path)
    match = LISTENING.search(server.stderr.wait_for("listening on", 30))
    assert match is not None, server.stderr.lines
    assert match.group(1) == match.group(2)
    return server, int(match.group(1))


def https_get(url: str, context: ssl.SSLContext) -> tuple[int, str, bytes]:
    with urllib.request.urlopen(url, timeout=TIMEOUT, context=context) as answer:
        return answer.status, answer.headers["Content-Type"], answer.read()


class Person:
    """A real websockets client over wss."""

    def __init__(self, url: str, user: str, context: ssl.SSLContext | None) -> None:
        self.ws: ClientConnection = connect(url, open_timeout=TIMEOUT, close_timeout=2, ssl=context, legacy=True)
        self.ws.send(json.dumps({"type": "auth", "data": {"userId": user}}))
        self.auth = self.expect("auth_response")

    def say(self, text: str) -> None:
        self.ws.send(json.dumps({"type": "message", "data": {"text": text}}))

    def expect(self, kind: str, text: str | None = None) -> dict[str, Any]:
        deadline = time.monotonic() + TIMEOUT
        while (left := deadline - time.monotonic()) > 0:
            frame = json.loads(self.ws.recv(timeout=left))
            if frame["type"] == kind and (text is None or frame["data"].get("text") == text):
                return frame["data"]  # type: ignore[no-any-return]
        raise AssertionError(f"no {kind} frame came")


def test_the_page_health_and_chat_are_served_over_tls_on_one_port(tmp_path: Path, certs: Certificates) -> None:
    server, port = serve_with_tls(tmp_path, certs)
    trusted = certs.client_context()
    with server:
        status, kind, body = https_get(f"https://127.0.0.1:{port}/", trusted)
        assert (status, kind) == (200, "text/html; charset=utf-8")
        assert b"<title>chatbus</title>" in body
        assert https_get(f"https://localhost:{port}/healthz", trusted)[2] == b"ok\n"

        alice = Person(f"wss://127.0.0.1:{port}/", "alice", trusted)
        bob = Person(f"wss://localhost:{port}/", "bob", trusted)
        bob.say("hello over wss")
        assert alice.expect("message", "hello over wss")["sender"] == "bob"

        # A client that does not speak TLS gets nowhere, and nobody else notices.
        with pytest.raises(InvalidMessage):
            connect(f"ws://127.0.0.1:{port}/", open_timeout=TIMEOUT)
        with pytest.raises((urllib.error.URLError, ConnectionError)):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=TIMEOUT)
        # One that does not trust the certificate stops at the handshake.
        with pytest.raises(ssl.SSLCertVerificationError):
            connect(f"wss://127.0.0.1:{port}/", open_timeout=TIMEOUT, ssl=ssl.create_default_context())

        bob.say("still here")
        assert alice.expect("message", "still here")["sender"] == "bob"
        carol = Person(f"wss://127.0.0.1:{port}/", "carol", trusted)
        assert "alice" in carol.auth["agents"] and "bob" in carol.auth["agents"]
        for person in (alice, bob, carol):
            person.ws.close()
        assert server.terminate() == 0
    lines = server.stderr.drain()
    assert not [line for line in lines if "Traceback" in line or " ERROR " in line], lines
    assert any("session" in line and "(alice): signed in from 127.0.0.1" in line for line in lines), lines


def test_status_and_send_talk_to_an_https_server(tmp_path: Path, certs: Certificates) -> None:
    server, port = serve_with_tls(tmp_path, certs)
    url = f"https://127.0.0.1:{port}"
    with server:
        status = run_chatbus("status", "--url", url, "--cafile", str(certs.ca), cwd=tmp_path)
        assert status.returncode == 0, status.stderr
        assert f"chatbus at {url}/ws-info: running" in status.stdout
        assert re.search(rf"websocket\s+healthy\s+listening on wss://127\.0\.0\.1:{port}/", status.stdout)

        untrusted = run_chatbus("status", "--url", url, cwd=tmp_path)
        assert untrusted.returncode == 1
        assert untrusted.stderr.startswith(f"chatbus: error: the certificate of {url}/ws-info is not trusted")
        assert "--cafile PATH (or SSL_CERT_FILE)" in untrusted.stderr
        assert untrusted.stderr.count("\n") == 1

        sent = run_chatbus("send", "deployed", "--user", "ci", "--url", url, "--cafile", str(certs.ca))
        assert (sent.returncode, sent.stdout.strip()) == (0, "sent message 1 to #general"), sent.stderr
        env = chatbus_env({"SSL_CERT_FILE": str(certs.ca)})
        again = run_chatbus("send", "twice", "--user", "ci", "--url", f"wss://localhost:{port}", env=env)
        assert (again.returncode, again.stdout.strip()) == (0, "sent message 2 to #general"), again.stderr
        refused = run_chatbus("send", "nope", "--user", "ci", "--url", url)
        assert refused.returncode == 1 and "is not trusted" in refused.stderr

        # Without --url, the address comes from the settings: https when they give a certificate.
        (tmp_path / "client.toml").write_text(
            f'[websocket]\nport = {port}\ncertfile = "{certs.cert}"\nkeyfile = "{certs.key}"\n'
        )
        configured = run_chatbus("status", "--config", "client.toml", "--cafile", str(certs.ca), cwd=tmp_path)
        assert configured.returncode == 0, configured.stderr
        assert f"chatbus at {url}/ws-info: running" in configured.stdout
        assert server.terminate() == 0


def test_plain_status_of_a_tls_server_and_tls_status_of_a_plain_one_say_what_to_do(tmp_path: Path) -> None:
    with ChatbusProcess("serve", "--port", "0", "--db", "chat.db", cwd=tmp_path) as server:
        match = re.search(r"listening on ws://127\.0\.0\.1:(\d+)/", server.stderr.wait_for("listening on", 30))
        assert match is not None
        port = int(match.group(1))
        wrong = run_chatbus("status", "--url", f"https://127.0.0.1:{port}", cwd=tmp_path)
        assert wrong.returncode == 1
        assert "no TLS conversation with" in wrong.stderr and "use http://" in wrong.stderr
        assert "Traceback" not in wrong.stderr
        assert server.terminate() == 0


def _encrypted_key(certs: Certificates, password: bytes) -> Path:
    key = serialization.load_pem_private_key(certs.key.read_bytes(), None)
    path = certs.key.with_name("encrypted.pem")
    encryption = serialization.BestAvailableEncryption(password)
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption))
    return path


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        (
            "only certfile",
            "invalid setting websocket.keyfile (CHATBUS_WEBSOCKET__KEYFILE): Value error, certfile is set",
        ),
        ("only keyfile", "invalid setting websocket.keyfile (CHATBUS_WEBSOCKET__KEYFILE): Value error, keyfile is set"),
        ("missing certfile", "cannot read {tls}/nothere.pem (websocket.certfile): no such file or directory"),
        ("missing keyfile", "cannot read {tls}/nothere.pem (websocket.keyfile): no such file or directory"),
        ("key as certificate", "{tls}/key.pem (websocket.certfile) holds no PEM certificate"),
        ("certificate as key", "{tls}/cert.pem (websocket.keyfile) holds no usable PEM private key"),
        ("key of another certificate", "the private key in {tls}/other.pem (websocket.keyfile) does not belong"),
        ("encrypted key", "the private key in {tls}/encrypted.pem (websocket.keyfile) is encrypted; set"),
        ("wrong password", "websocket.keyfile_password does not decrypt the private key in {tls}/encrypted.pem"),
    ],
)
def test_certificate_mistakes_stop_start_up_with_one_line(
    tmp_path: Path, certs: Certificates, case: str, expected: str
) -> None:
    other = make_certificates(tmp_path / "other")
    other.key.rename(certs.key.with_name("other.pem"))
    tls = certs.cert.parent
    settings = {
        "only certfile": {"CERTFILE": certs.cert},
        "only keyfile": {"KEYFILE": certs.key},
        "missing certfile": {"CERTFILE": tls / "nothere.pem", "KEYFILE": certs.key},
        "missing keyfile": {"CERTFILE": certs.cert, "KEYFILE": tls / "nothere.pem"},
        "key as certificate": {"CERTFILE": certs.key, "KEYFILE": certs.key},
        "certificate as key": {"CERTFILE": certs.cert, "KEYFILE": certs.cert},
        "key of another certificate": {"CERTFILE": certs.cert, "KEYFILE": tls / "other.pem"},
        "encrypted key": {"CERTFILE": certs.cert, "KEYFILE": _encrypted_key(certs, b"s3cret")},
        "wrong password": {
            "CERTFILE": certs.cert,
            "KEYFILE": _encrypted_key(certs, b"s3cret"),
            "KEYFILE_PASSWORD": "guess",
        },
    }[case]
    env = chatbus_env({f"CHATBUS_WEBSOCKET__{key}": str(value) for key, value in settings.items()})
    result = run_chatbus("serve", "--port", "0", "--db", "chat.db", env=env, cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert lines[-1].startswith("chatbus: error: " + expected.format(tls=tls)), result.stderr
    assert [line for line in lines if "error" in line.lower()] == lines[-1:], result.stderr


async def test_an_encrypted_key_with_its_password_serves(certs: Certificates) -> None:
    options = {"certfile": certs.cert, "keyfile": _encrypted_key(certs, b"s3cret"), "keyfile_password": "s3cret"}
    async with running(**options) as server:
        assert server.transport.url == f"wss://127.0.0.1:{server.port}/"
        async with await Client.open(f"wss://localhost:{server.port}/", ssl=certs.client_context()) as alice:
            await alice.sign_in("alice")
            await alice.say("secret key, open chat")
            assert (await alice.chat(1))[0]["data"]["text"] == "secret key, open chat"


async def test_only_tls_1_2_and_newer_are_spoken(certs: Certificates) -> None:
    async with running(certfile=certs.cert, keyfile=certs.key) as server:
        for newest, accepted in ((ssl.TLSVersion.TLSv1_1, False), (ssl.TLSVersion.TLSv1_2, True)):
            context = certs.client_context()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # asking for TLS 1.1 on purpose
                context.minimum_version = ssl.TLSVersion.TLSv1
                context.set_ciphers("DEFAULT:@SECLEVEL=0")
                context.maximum_version = newest
            if accepted:
                async with await Client.open(f"wss://127.0.0.1:{server.port}/", ssl=context) as client:
                    await client.still_works()
                    assert client.ws.transport.get_extra_info("ssl_object").version() == "TLSv1.2"
            else:
                # The server refuses the handshake (OpenSSL resets it, or alerts).
                with pytest.raises((ssl.SSLError, ConnectionResetError)):
                    await Client.open(f"wss://127.0.0.1:{server.port}/", ssl=context)


def test_certfile_and_keyfile_go_together() -> None:
    assert WebSocketSettings().tls is False
    assert WebSocketSettings(certfile="c.pem", keyfile="k.pem").tls is True
    assert WebSocketSettings(certfile="", keyfile="").tls is False
    with pytest.raises(ValueError, match="certfile is set but keyfile is not"):
        WebSocketSettings(certfile="c.pem")


def test_a_certificate_problem_in_process_is_a_config_error(tmp_path: Path) -> None:
    from chatbus.transports.websocket.tls import server_context

    with pytest.raises(ConfigError, match=r"cannot read .*none\.pem \(websocket\.certfile\)"):
        server_context(WebSocketSettings(certfile=tmp_path / "none.pem", keyfile=tmp_path / "none.pem"))
