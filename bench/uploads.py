"""Upload throughput and peak memory of a 100 MB ``POST /files`` through ``chatbus serve``,
against a baseline doing the same work with the stdlib and python-multipart, in the same run.

The baseline (``--baseline-server``, started by this script) is ``http.server``
reading the body 64 KiB at a time into python-multipart's streaming parser,
which writes the file's bytes to a file in its folder while hashing them with
SHA-256, and answers ``201`` with the id: what chatbus does for an upload,
minus the checks, the store and the HTTP framing of its own. Both servers are
separate processes, started fresh for each upload; the client sends the same
body to each (with ``os.sendfile``, so it is never the bottleneck) and
alternates which goes first. Peak memory is the server's ``VmHWM`` (the most
resident memory it ever had), read after the upload, and its growth over what
it held idle before the upload. Prints the medians and chatbus / baseline.

Run: ``.venv/bin/python bench/uploads.py [--megabytes 100] [--repetitions 3]``. Linux only (``/proc``).
"""

from __future__ import annotations

import argparse
import hashlib
import http.server
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from python_multipart.multipart import MultipartParser, parse_options_header

_CHUNK = 64 * 1024
_LISTENING = re.compile(r"listening on ws://127\.0\.0\.1:(\d+)/")
_BOUNDARY = "bench-boundary-0123456789"


# the baseline server ----------------------------------------------------------
class _Baseline(http.server.BaseHTTPRequestHandler):
    folder = Path(".")

    def do_POST(self) -> None:
        _, options = parse_options_header(self.headers["Content-Type"])
        left = int(self.headers["Content-Length"])
        digest = hashlib.sha256()
        with (self.folder / uuid.uuid4().hex).open("wb") as out:

            def on_part_data(data: bytes, start: int, end: int) -> None:
                digest.update(data[start:end])
                out.write(data[start:end])

            parser = MultipartParser(options[b"boundary"], {"on_part_data": on_part_data})
            while left:
                chunk = self.rfile.read(min(_CHUNK, left))
                if not chunk:
                    break
                left -= len(chunk)
                parser.write(chunk)
        body = json.dumps({"id": digest.hexdigest()[:32]}).encode()
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def run_baseline(folder: Path) -> None:
    _Baseline.folder = folder
    server = http.server.HTTPServer(("127.0.0.1", 0), _Baseline)
    print(f"listening on ws://127.0.0.1:{server.server_address[1]}/", file=sys.stderr, flush=True)
    server.serve_forever()


# the servers as processes -------------------------------------------------------
@dataclass
class Server:
    name: str
    proc: subprocess.Popen[bytes]
    port: int

    def memory(self, key: str) -> int:
        """``VmRSS`` or ``VmHWM`` of the server process, in bytes."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
        raise RuntimeError(f"no {key} in /proc")

    def cpu(self) -> float:
        """User and system CPU seconds the server process has used."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def start(name: str, scratch: Path) -> Server:
    folder = scratch / name
    folder.mkdir()
    if name == "chatbus":
        command = [sys.executable, "-m", "chatbus.cli", "serve", "--host", "127.0.0.1", "--port", "0"]
        command += ["--db", str(folder / "bench.db"), "--transport", "websocket", "--log-level", "INFO"]
    else:
        command = [sys.executable, __file__, "--baseline-server", str(folder)]
    proc = subprocess.Popen(command, cwd=folder, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
    assert proc.stderr is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stderr.readline().decode()
        match = _LISTENING.search(line)
        if match:
            return Server(name, proc, int(match.group(1)))
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise SystemExit(f"{name} did not start")


# the client -------------------------------------------------------------------------
def upload(port: int, source: Path, prefix: bytes) -> tuple[float, dict[str, object]]:
    """Send ``prefix`` + ``source`` as the field ``file``; seconds from the first byte to the answer."""
    part = (
        f'--{_BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="bench.zip"\r\n'
        "Content-Type: application/zip\r\n\r\n"
    ).encode() + prefix
    tail = f"\r\n--{_BOUNDARY}--\r\n".encode()
    length = len(part) + source.stat().st_size + len(tail)
    head = (
        f"POST /files HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Chatbus-User: bench\r\n"
        f"Content-Type: multipart/form-data; boundary={_BOUNDARY}\r\nContent-Length: {length}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", port)) as sock, source.open("rb") as file:
        started = time.perf_counter()
        sock.sendall(head + part)
        sock.sendfile(file)
        sock.sendall(tail)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        seconds = time.perf_counter() - started
    status_line, _, rest = answer.partition(b"\r\n")
    if b" 201 " not in status_line + b" ":
        raise SystemExit(f"upload refused: {answer[:500]!r}")
    return seconds, json.loads(rest.partition(b"\r\n\r\n")[2])


def measure(name: str, scratch: Path, source: Path, prefix: bytes) -> dict[str, float]:
    server = start(name, scratch)
    try:
        time.sleep(0.5)
        idle, cpu = server.memory("VmRSS"), server.cpu()
        seconds, _ = upload(server.port, source, prefix)
        peak, cpu = server.memory("VmHWM"), server.cpu() - cpu
    finally:
        server.stop()
        shutil.rmtree(scratch / name, ignore_errors=True)
    megabytes = (source.stat().st_size + len(prefix)) / 1e6
    return {
        "mb_per_s": megabytes / seconds,
        "cpu_s": cpu,
        "peak_mb": peak / 1e6,
        "growth_mb": (peak - idle) / 1e6,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=int, default=100, help="size of the upload in MB (default 100)")
    parser.add_argument("--repetitions", type=int, default=3, help="uploads to each server (default 3)")
    parser.add_argument("--dir", type=Path, help="scratch folder (default: the system's temporary folder)")
    parser.add_argument("--baseline-server", metavar="DIR", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.baseline_server:
        run_baseline(Path(args.baseline_server))
        return 0
    results: dict[str, list[dict[str, float]]] = {"chatbus": [], "baseline": []}
    with tempfile.TemporaryDirectory(prefix="chatbus-bench-uploads-", dir=args.dir) as folder:
        scratch = Path(folder)
        source = scratch / "upload.bin"
        with source.open("wb") as out:
            for _ in range(args.megabytes):
                out.write(os.urandom(1_000_000))
        for rep in range(args.repetitions):
            order = ("chatbus", "baseline") if rep % 2 == 0 else ("baseline", "chatbus")
            for name in order:
                run = scratch / f"{rep}"
                run.mkdir(exist_ok=True)
                results[name].append(measure(name, run, source, f"repetition {rep:04d}".encode()))
    where = args.dir or Path(tempfile.gettempdir())
    print(f"{args.megabytes} MB upload into {where}, {args.repetitions} repetition(s), medians:")
    print(f"{'':10} {'MB/s':>8} {'CPU s':>7} {'peak RSS MB':>12} {'growth MB':>10}")
    medians = {
        name: {key: statistics.median(r[key] for r in runs) for key in runs[0]} for name, runs in results.items()
    }
    for name, f in medians.items():
        print(f"{name:10} {f['mb_per_s']:8.1f} {f['cpu_s']:7.2f} {f['peak_mb']:12.1f} {f['growth_mb']:10.1f}")
    ours, base = medians["chatbus"], medians["baseline"]
    print(
        f"{'ratio':10} {ours['mb_per_s'] / base['mb_per_s']:8.2f} {ours['cpu_s'] / base['cpu_s']:7.2f} "
        f"{ours['peak_mb'] / base['peak_mb']:12.2f} {'-':>10}   (chatbus / baseline)"
    )
    print("CPU s: the server's CPU time for the upload; growth: what the upload added to the idle server's memory")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
