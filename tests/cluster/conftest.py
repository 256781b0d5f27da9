"""A real redis-server (append-only file on, as a deployment runs it) and a cluster of
real ``chatbus serve`` nodes on it, fresh for each test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.core.engine.redis_server import RedisServer

from .nodes import Cluster


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    with RedisServer(tmp_path / "redis", appendonly=True) as server:
        yield server


@pytest.fixture
async def cluster(redis: RedisServer, tmp_path: Path) -> AsyncIterator[Cluster]:
    nodes = Cluster(redis, tmp_path / "nodes")
    try:
        yield nodes
    finally:
        nodes.stop()
        # shown with the test's output when it fails
        print(nodes.logs())
