"""Debian's nginx, run by a test as the current user with examples/deploy/nginx.conf.

The site configuration is the example itself, with only what must differ on
a test machine substituted: loopback ports instead of 80 and 443 (no IPv6
listeners), the test's chatbus instead of port 8081, and the test's
certificate instead of certbot's. Each substituted line must be in the
example exactly once, so an edit there that these tests would no longer
cover fails here instead of passing unnoticed. Everything else (headers,
timeouts, locations) is run as written.

The main configuration around it is the test's own scaffolding: one process
in the foreground (``daemon off``, ``master_process off``), its pid, logs and
temporary files in the test's folder, ports picked free on 127.0.0.1.
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Self

from tests.certificates import Certificates
from tests.support import free_port, require_program

NGINX = Path("/usr/sbin/nginx")
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "deploy" / "nginx.conf"


def require_nginx() -> None:
    """Skip without Debian's nginx; in CI (``CI=true``, where .ci/run installs it) fail instead."""
    require_program(NGINX, "nginx")


def site_config(
    *, https_port: int, http_port: int, chatbus_port: int, certs: Certificates, timeouts: str | None = None
) -> str:
    """examples/deploy/nginx.conf for this machine; ``timeouts`` replaces the proxy timeouts (``2s``)."""
    text = EXAMPLE.read_text()
    substitutions = {
        "listen 443 ssl;": f"listen 127.0.0.1:{https_port} ssl;",
        "listen [::]:443 ssl;": "",
        "listen 80;": f"listen 127.0.0.1:{http_port};",
        "listen [::]:80;": "",
        "server 127.0.0.1:8081;": f"server 127.0.0.1:{chatbus_port};",
        "/etc/letsencrypt/live/chat.example.org/fullchain.pem": str(certs.cert),
        "/etc/letsencrypt/live/chat.example.org/privkey.pem": str(certs.key),
    }
    if timeouts is not None:
        substitutions |= {
            "proxy_read_timeout 1h;": f"proxy_read_timeout {timeouts};",
            "proxy_send_timeout 1h;": f"proxy_send_timeout {timeouts};",
        }
    for old, new in substitutions.items():
        assert text.count(old) == 1, f"{EXAMPLE} no longer has {old!r} once; update {__file__}"
        text = text.replace(old, new)
    return text


class Nginx:
    """nginx in the foreground with a site configuration, stopped on exit.

    ``site(https_port, http_port)`` writes the site for two free loopback
    ports; when another program takes one of them before nginx binds it,
    nginx is started again on two others.
    """

    def __init__(self, folder: Path, site: Callable[[int, int], str]) -> None:
        require_nginx()
        folder.mkdir(parents=True)
        self.folder = folder
        self.site = site
        self.https_port = self.http_port = 0
        temp = "\n".join(
            f"    {kind}_temp_path {folder / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        (folder / "nginx.conf").write_text(
            f"daemon off;\nmaster_process off;\nworker_processes 1;\npid {folder / 'nginx.pid'};\n"
            f"error_log {folder / 'error.log'} info;\nevents {{\n    worker_connections 256;\n}}\n"
            f"http {{\n    access_log {folder / 'access.log'};\n{temp}\n    include {folder / 'site.conf'};\n}}\n"
        )
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Self:
        for _ in range(3):
            self.https_port, self.http_port = free_port(), free_port()
            (self.folder / "site.conf").write_text(self.site(self.https_port, self.http_port))
            if self._start():
                return self
        raise AssertionError(f"nginx found no free ports in three tries:\n{self.errors()}")

    def _start(self) -> bool:
        """Start nginx; False when a port was taken meanwhile."""
        (self.folder / "nginx.pid").unlink(missing_ok=True)
        command = [str(NGINX), "-p", str(self.folder), "-e", str(self.folder / "error.log")]
        self.process = subprocess.Popen(
            [*command, "-c", str(self.folder / "nginx.conf")],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        # nginx writes its pid file once it has bound every port, so the ports answer nginx itself.
        while not (self.folder / "nginx.pid").exists() or not self._accepts(self.https_port, self.http_port):
            if self.process.poll() is not None:
                if "Address already in use" in self.errors():
                    return False
                raise AssertionError(f"nginx did not start:\n{self.errors()}")
            if time.monotonic() > deadline:
                self.__exit__(None, None, None)
                raise AssertionError(f"nginx did not start within 10 s:\n{self.errors()}")
            time.sleep(0.05)
        return True

    @staticmethod
    def _accepts(*ports: int) -> bool:
        try:
            for port in ports:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            return False
        return True

    def errors(self) -> str:
        path = self.folder / "error.log"
        return path.read_text() if path.exists() else "(no error log)"

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)
