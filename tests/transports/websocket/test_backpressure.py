"""A client that stops reading is cut off; everyone else keeps receiving."""

from __future__ import annotations

import base64
import random
import socket
import time

from .helpers import Client, running, wait_until

BACKLOG = 64 * 1024


async def test_a_client_that_never_reads_is_cut_off_and_can_resume() -> None:
    async with running(max_backlog_bytes=BACKLOG, close_timeout=5) as server:
        fast = await server.client("fast")
        # A client with a tiny socket buffer that never reads a frame.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", server.port))  # loopback: the kernel accepts at once
        sock.setblocking(False)
        slow = await Client.open(server.url, sock=sock, max_queue=1)
        await slow.sign_in("slow")

        # Random text: compression (on by default) cannot make it small.
        text = base64.b64encode(random.Random(15).randbytes(2250)).decode()
        peak = 0
        cut_off_after = None
        worst_delay = 0.0
        for i in range(1, 5001):
            await server.hub.send(f"{i} {text}", sender="coder")
            peak = max(peak, server.transport.status()["largest_backlog"])
            if i % 25 == 0:
                started = time.monotonic()
                frames = await fast.chat(25)
                worst_delay = max(worst_delay, time.monotonic() - started)
                assert [f["data"]["id"] for f in frames] == list(range(i - 24, i + 1))
            if "slow" not in server.transport.connected_users():
                cut_off_after = i
                break
        assert cut_off_after is not None, "the client that never reads was never cut off"
        # Memory stayed bounded: never more than the bound plus one frame waiting for it.
        assert peak <= BACKLOG + len(text) + 200
        # The reader was never held up by the one that did not read.
        assert worst_delay < 2.0

        # Once it reads again it finds the close code, then resumes where it stopped.
        code, reason = await slow.closed(timeout=5)
        assert code == 1013 and reason and "lastSeenId" in reason
        cut_offs = server.hub.metrics.registry.get_sample_value(
            "chatbus_slow_consumers_cut_off_total", {"transport": "websocket"}
        )
        assert cut_offs == 1
        back = await server.client("slow", lastSeenId=0)
        # The newest messages, as many as fit the replay budget, up to the last one sent.
        replayed = [f["data"]["id"] for f in back.auth["missed"]]
        assert replayed == list(range(cut_off_after - len(replayed) + 1, cut_off_after + 1))
        assert len(replayed) >= 100 and back.auth["missedHasMore"] is True
        await server.hub.send("after the cut", sender="coder")
        [frame] = await back.chat(1)
        assert frame["data"]["text"] == "after the cut"
        await back.close()
        await fast.close()


async def test_a_cut_off_that_never_answers_counts_as_the_close_chatbus_chose() -> None:
    """The operator's close codes say 1013 (chatbus cut it off) for a client that
    never read the close frame either, not 1006 (a dropped connection)."""
    async with running(max_backlog_bytes=BACKLOG, close_timeout=0.5) as server:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", server.port))
        sock.setblocking(False)
        slow = await Client.open(server.url, sock=sock, max_queue=1)
        await slow.sign_in("slow")
        text = base64.b64encode(random.Random(15).randbytes(2250)).decode()
        for i in range(5000):
            await server.hub.send(f"{i} {text}", sender="coder")
            if "slow" not in server.transport.connected_users():
                break
        # The close frame is never read: the connection is dropped after close_timeout.
        await wait_until(lambda: server.transport.status()["connections"] == 0)
        registry = server.hub.metrics.registry
        closed = {
            code: registry.get_sample_value(
                "chatbus_connections_closed_total", {"transport": "websocket", "code": code}
            )
            for code in ("1013", "1006")
        }
        assert closed == {"1013": 1, "1006": None}
        slow.ws.transport.abort()
