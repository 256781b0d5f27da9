"""The baseline of the fan-out benchmark: a bare ``websockets`` chat server.

It speaks WebSocket protocol version 1 (PROTOCOL.md) as far as the load
generator needs, and does the least that work needs: ``auth`` is answered
with ``auth_response`` (success, userId, role, sessionId, agents); a
``message`` frame is parsed, given a sender, an id and a timestamp, encoded
once and handed to ``websockets.asyncio.server.broadcast`` for every signed-in
connection, the sender included; ``ping`` gets ``pong``. No storage, no
plugins, no rate limits, no presence: whatever chatbus costs beyond this is
the price of its pipeline.

Run it alone with ``python bench/baseline_server.py --port 8765``; it prints
``listening on ws://HOST:PORT/`` once it accepts connections.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import signal
import sys
from datetime import UTC, datetime
from typing import Any

from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.exceptions import ConnectionClosed

__all__ = ["BaselineServer", "main"]

_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _error(code: str, message: str) -> str:
    return _encode({"type": "error", "data": {"code": code, "message": message, "timestamp": _now()}})


class BaselineServer:
    """The chat state of the baseline: who is signed in, and the next id."""

    def __init__(self) -> None:
        self.live: set[ServerConnection] = set()
        self.online: dict[str, int] = {}
        self.ids = itertools.count(1)

    async def handle(self, connection: ServerConnection) -> None:
        """Read one connection's frames in order until it closes."""
        user: str | None = None
        try:
            async for raw in connection:
                try:
                    frame = json.loads(raw)
                    kind = frame["type"]
                    data = frame.get("data") or {}
                except (ValueError, TypeError, KeyError, AttributeError):
                    await connection.send(_error("INVALID_JSON", "Send one JSON object per frame."))
                    continue
                if kind == "message" and user is not None:
                    text = data.get("text") if isinstance(data, dict) else None
                    if not isinstance(text, str) or not text.strip():
                        await connection.send(_error("INVALID_MESSAGE", "A message needs text."))
                        continue
                    data["sender"] = user
                    data["id"] = next(self.ids)
                    data["timestamp"] = _now()
                    broadcast(self.live, _encode(frame))
                elif kind == "ping":
                    await connection.send(_encode({"type": "pong", "data": {"timestamp": _now()}}))
                elif kind == "auth" and user is None:
                    user_id = data.get("userId") if isinstance(data, dict) else None
                    if not isinstance(user_id, str) or not user_id:
                        await connection.send(_error("MISSING_USER_ID", "Say who you are in auth.userId."))
                        continue
                    user = user_id
                    self.online[user] = self.online.get(user, 0) + 1
                    answer: dict[str, Any] = {
                        "success": True,
                        "userId": user,
                        "role": data.get("role") or "user",
                        "sessionId": connection.id.hex[:16],
                        "agents": list(self.online),
                    }
                    await connection.send(_encode({"type": "auth_response", "data": answer}))
                    self.live.add(connection)
                elif user is None:
                    await connection.send(_error("NOT_AUTHENTICATED", "Sign in first with an auth frame."))
                else:
                    await connection.send(_error("UNKNOWN_TYPE", "This server understands auth, message and ping."))
        except ConnectionClosed:
            pass
        finally:
            self.live.discard(connection)
            if user is not None:
                left = self.online.get(user, 1) - 1
                if left:
                    self.online[user] = left
                else:
                    self.online.pop(user, None)


async def run(host: str, port: int, compression: str | None) -> None:
    """Serve until SIGINT or SIGTERM."""
    state = BaselineServer()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with serve(state.handle, host, port, compression=compression, max_size=64 * 1024) as server:
        bound = server.sockets[0].getsockname()[1]
        print(f"listening on ws://{host}:{bound}/", flush=True)
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Bare websockets chat server: the benchmark's baseline.")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="TCP port; 0 picks a free one (default 8765)")
    parser.add_argument(
        "--compression",
        choices=("deflate", "none"),
        default="none",
        help="accept permessage-deflate when clients offer it, or not (default none)",
    )
    args = parser.parse_args(argv)
    asyncio.run(run(args.host, args.port, None if args.compression == "none" else "deflate"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
