"""A real redis-server for the engine's tests: one per test module, emptied before each test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from chatbus.core.engine.redis import RedisEngine

from .redis_server import RedisServer

#: Opens a Redis engine (keyword arguments: RedisEngine's options), as each node of a chat does.
Nodes = Callable[..., Awaitable[RedisEngine]]


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with RedisServer(Path(tmp_path_factory.mktemp("redis"))) as server:
        yield server


@pytest.fixture
async def node(redis_server: RedisServer) -> AsyncIterator[Nodes]:
    """Opens engines on the test's Redis, emptied first; all closed at the end."""
    await redis_server.emptied()
    opened: list[RedisEngine] = []

    async def make(**options: object) -> RedisEngine:
        engine = RedisEngine(redis_server.url, **options)  # type: ignore[arg-type]
        await engine.open()
        opened.append(engine)
        return engine

    yield make
    for engine in opened:
        await engine.close()
