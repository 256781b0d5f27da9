"""Deterministic ``llm`` models for the tests: registered with llm's plugin manager, never the network.

``chatbus-echo``       answers "I read: <the whole prompt>" in chunks of ``CHUNK`` characters,
                       ``DELAY`` seconds apart (sync and async, like an API model)
``chatbus-echo-sync``  the same with only a sync model (a local model's plugin often is)
``chatbus-broken``     says a few words (about 280 characters), then fails with an internal error
``chatbus-silent``     never answers (for the timeout)
``chatbus-broken-sync``, ``chatbus-slow-sync``  sync-only models that fail, and that take two seconds
``chatbus-keyed``      needs an API key that is not set

Every prompt and system prompt a model got is in ``PROMPTS`` (newest last).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import llm
import pytest

CHUNK = 12
DELAY = 0.02
SECRET = "database password hunter2 leaked in a traceback"


@dataclass
class Prompted:
    model: str
    prompt: str
    system: str


PROMPTS: list[Prompted] = []


def _answer(model_id: str, prompt: llm.Prompt) -> list[str]:
    PROMPTS.append(Prompted(model_id, prompt.prompt or "", prompt.system or ""))
    text = f"I read: {prompt.prompt}"
    return [text[i : i + CHUNK] for i in range(0, len(text), CHUNK)]


class Echo(llm.Model):
    can_stream = True

    def __init__(self, model_id: str = "chatbus-echo") -> None:
        self.model_id = model_id

    def execute(self, prompt: llm.Prompt, stream: bool, response: Any, conversation: Any) -> Iterator[str]:
        for chunk in _answer(self.model_id, prompt):
            time.sleep(DELAY)
            yield chunk


class AsyncEcho(llm.AsyncModel):
    can_stream = True
    model_id = "chatbus-echo"

    async def execute(self, prompt: llm.Prompt, stream: bool, response: Any, conversation: Any) -> AsyncIterator[str]:
        for chunk in _answer(self.model_id, prompt):
            await asyncio.sleep(DELAY)
            yield chunk


class AsyncBroken(llm.AsyncModel):
    can_stream = True
    model_id = "chatbus-broken"

    async def execute(self, prompt: llm.Prompt, stream: bool, response: Any, conversation: Any) -> AsyncIterator[str]:
        PROMPTS.append(Prompted(self.model_id, prompt.prompt or "", prompt.system or ""))
        yield "Let me think"
        await asyncio.sleep(DELAY)
        yield " about it" * 30
        raise RuntimeError(SECRET)


class Broken(Echo):
    def execute(self, prompt: llm.Prompt, stream: bool, response: Any, conversation: Any) -> Iterator[str]:
        raise RuntimeError(SECRET)


class SlowSync(Echo):
    def execute(self, prompt: llm.Prompt, stream: bool, response: Any, conversation: Any) -> Iterator[str]:
        time.sleep(2)
        yield "too late"


class AsyncSilent(llm.AsyncModel):
    can_stream = True
    model_id = "chatbus-silent"

    async def execute(self, prompt: llm.Prompt, stream: bool, response: Any, conversation: Any) -> AsyncIterator[str]:
        await asyncio.sleep(3600)
        yield "too late"


class AsyncKeyed(llm.AsyncKeyModel):
    can_stream = True
    model_id = "chatbus-keyed"
    needs_key = "chatbus-test"
    key_env_var = "CHATBUS_TEST_MODEL_KEY"

    async def execute(
        self, prompt: llm.Prompt, stream: bool, response: Any, conversation: Any, key: str | None
    ) -> AsyncIterator[str]:
        yield f"my key is {key}"


class TestModels:
    """The llm plugin: registers the models above."""

    @llm.hookimpl
    def register_models(self, register: Any) -> None:
        register(Echo(), AsyncEcho())
        register(Echo("chatbus-echo-sync"))
        register(Broken("chatbus-broken"), AsyncBroken())
        register(Echo("chatbus-silent"), AsyncSilent())
        register(Echo("chatbus-keyed"), AsyncKeyed())
        register(Broken("chatbus-broken-sync"))
        register(SlowSync("chatbus-slow-sync"))


_PLUGIN = "chatbus-test-models"


@pytest.fixture
def llm_models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Prompted]]:
    """The test models registered with llm (its configuration in a fresh directory); yields ``PROMPTS``."""
    monkeypatch.setenv("LLM_USER_PATH", str(tmp_path / "llm"))
    monkeypatch.delenv("CHATBUS_TEST_MODEL_KEY", raising=False)
    llm.pm.register(TestModels(), name=_PLUGIN)
    PROMPTS.clear()
    try:
        yield PROMPTS
    finally:
        llm.pm.unregister(name=_PLUGIN)
        PROMPTS.clear()
