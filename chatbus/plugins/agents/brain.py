"""The built-in chat brain: an agent with a model answers conversation through ``llm``.

An agent whose roster entry names a model (``chatbus agents hire alice
developer --model gpt-4o-mini``) answers questions and conversation with that
model, through Simon Willison's `llm <https://llm.datasette.io>`_ library
(``pip install 'chatbus[llm]'``): whatever model ``llm`` is configured with
works, API models with their keys (``llm keys set openai``) and local models
through ``llm`` plugins; the model name ``default`` is ``llm``'s default model
(``llm models default``).

The model gets the agent's role in its system prompt and, as context, the
recent conversation of the room: at most ``agents.context_messages`` messages
and about ``agents.context_tokens`` tokens (four characters to a token),
newest kept. The answer is posted at once as one message with
``streaming=True`` and edited as tokens arrive: the first words at once, then
at most once every ``agents.stream_interval`` seconds; it is finished with
``streaming=False``. A model that fails or takes longer than
``agents.answer_timeout`` seconds ends the message with a sentence saying so
(the reason is logged, never posted).

:func:`converse` is what the agents plugin calls for a message that is not a
task; a plugin replaces it through the agents plugin's ``agent_converse`` hook.
Without a model it answers nothing (``False``) and the built-in texts stay.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Sequence
from contextlib import aclosing
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from pydantic import Field

from chatbus import Agent, ChatbusError, Hub, Identity, Message, PluginSettings
from chatbus.core.cluster import ON_MESSAGE

from .texts import duration

if TYPE_CHECKING:
    import llm

__all__ = [
    "BrainSettings",
    "converse",
    "finish_interrupted",
    "model_of",
    "prompt_for",
    "recent_messages",
    "system_prompt",
    "unknown_model",
]

log = logging.getLogger("chatbus.agents.brain")

#: What the model is told about itself; ``{agent}`` and ``{role}`` are filled in.
SYSTEM_PROMPT = (
    "You are {agent}, an AI agent in a team chat shared by people and other agents. "
    "Your role in the team: {role}. Answer the last message, which is addressed to you, as {agent}: "
    "briefly, in plain text, in the language it is written in, using the earlier conversation when it helps. "
    'People give you work by mentioning you with a task, like "@{agent} please fix the tests".'
)

#: Posted at once, replaced by the first tokens.
_THINKING = "…"
_CHARS_PER_TOKEN = 4


class BrainSettings(PluginSettings):
    """The chat brain's part of ``[agents]``: how much conversation a model sees and how answers stream."""

    context_messages: int = Field(20, ge=0, le=1000, description="most earlier messages of the room a model sees")
    context_tokens: int = Field(2000, ge=0, le=1_000_000, description="about how many tokens of them (4 chars each)")
    stream_interval: float = Field(1.0, ge=0, le=60, description="least seconds between edits of a growing answer")
    answer_timeout: float = Field(120.0, gt=0, description="seconds a model may take to answer")
    system_prompt: str = Field(SYSTEM_PROMPT, description="the model's system prompt ({agent}, {role})")


def model_of(agent: Agent) -> str | None:
    """The model the agent answers with, or None when its roster entry names none."""
    return agent.model.strip() if agent.model and agent.model.strip() else None


def system_prompt(agent: Agent, template: str = SYSTEM_PROMPT) -> str:
    """``template`` filled in for ``agent``; the built-in one when it does not fit."""
    try:
        return template.format(agent=agent.name, role=agent.role)
    except (KeyError, IndexError, ValueError):
        return SYSTEM_PROMPT.format(agent=agent.name, role=agent.role)


def _speaker(message: Message, agent: Agent) -> str:
    name = message.display_name or message.sender
    return f"{name} (you)" if message.sender == agent.name else name


def _line(message: Message, agent: Agent) -> str:
    return f"{_speaker(message, agent)}: {' '.join(message.text.split())}"


def _said(message: Message) -> bool:
    return not message.deleted and not message.streaming and bool(message.text.strip())


async def recent_messages(hub: Hub, message: Message, settings: BrainSettings) -> list[Message]:
    """The room's messages before ``message``, oldest first, within the context bounds; the
    message it replies to is always among them (cut to the token bound)."""
    limit, budget = settings.context_messages, settings.context_tokens
    if limit <= 0 or budget <= 0:
        return []
    earlier, _more = await hub.history(message.room, before=message.id, limit=limit)
    kept: list[Message] = []
    for candidate in reversed([m for m in earlier if _said(m)]):
        budget -= len(candidate.text) // _CHARS_PER_TOKEN + 4
        if budget < 0:
            break
        kept.append(candidate)
    kept.reverse()
    if message.reply_to is not None and all(m.id != message.reply_to for m in kept):
        quoted = await hub.store.get(message.reply_to)
        if quoted is not None and _said(quoted) and quoted.room == message.room:
            most = settings.context_tokens * _CHARS_PER_TOKEN
            kept.insert(0, replace(quoted, text=quoted.text[:most]))
    return kept


def prompt_for(agent: Agent, message: Message, context: Sequence[Message]) -> str:
    """The prompt: the recent conversation as ``name: text`` lines, then the message to answer."""
    parts: list[str] = []
    if context:
        lines = "\n".join(_line(m, agent) for m in context)
        parts.append(f"The conversation so far, oldest first:\n{lines}\n")
    parts.append(f"{_speaker(message, agent)} says to you:\n{message.text.strip()}")
    return "\n".join(parts)


def _trouble(exc: BaseException, name: str) -> str:
    """What went wrong, in words for the chat (the exception itself goes to the log)."""
    if isinstance(exc, ImportError):
        return "I can't answer with a model: the llm library is not installed on the server (install chatbus[llm])."
    if isinstance(exc, TimeoutError):
        return "I stopped: my model took too long to answer. Ask me again in a moment."
    import llm

    if isinstance(exc, llm.UnknownModelError):
        return f'I can\'t answer: my model "{name}" is not one llm knows on the server ("llm models" lists them).'
    if isinstance(exc, llm.NeedsKeyException):
        return f'I can\'t answer: my model "{name}" needs an API key on the server ("llm keys set").'
    return f'Sorry, I couldn\'t answer: my model "{name}" failed (the server log says why). Try again in a moment.'


class _Answer:
    """The agent's streaming message: grows as tokens arrive, edited at most every ``interval`` seconds."""

    def __init__(self, hub: Hub, agent: Agent, posted: Message, interval: float) -> None:
        self.hub = hub
        self.agent = agent
        self.posted = posted
        self.interval = interval
        self.text = ""
        self.gone = False
        self._shown = posted.text
        self._last = float("-inf")  # the first words show at once, then at most one edit per interval

    def fit(self, text: str, limit: int | None = None) -> str:
        """``text`` cut to ``limit`` characters (default: the longest message text) with "…"."""
        limit = self.hub.settings.max_text_length if limit is None else limit
        return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"

    async def add(self, chunk: str) -> None:
        self.text += chunk
        now = asyncio.get_running_loop().time()
        if now - self._last >= self.interval and self.text.strip():
            self._last = now
            await self._edit(self.text, streaming=True)

    async def finish(self, text: str) -> None:
        await self._edit(text, streaming=False)

    async def _edit(self, text: str, *, streaming: bool) -> None:
        text = self.fit(text)
        if self.gone or (text == self._shown and streaming):
            return
        if not await self.hub.cluster.holds(ON_MESSAGE):  # another node runs the agents now: it ends this
            self.gone = True
            return
        try:
            await self.hub.edit(self.agent.identity, self.posted.id, text, streaming=streaming)
        except ChatbusError as exc:
            log.warning("agent %s: could not update its answer %d: %s", self.agent.name, self.posted.id, exc)
            self.gone = True
            return
        self._shown = text


def unknown_model(name: str) -> bool:
    """True when ``llm`` is installed and knows no model called ``name`` (hiring with it deserves a
    warning); False when it knows it, for ``default``, and when ``llm`` is not installed."""
    try:
        import llm
    except ImportError:
        return False
    if name == "default":
        return False
    for get in (llm.get_model, llm.get_async_model):
        try:
            get(name)
            return False
        except llm.UnknownModelError:
            continue
        except Exception:  # noqa: BLE001 - a plugin that fails to load: the answer will say so, not the hire
            return False
    return True


def _resolve(name: str) -> tuple[llm.AsyncModel | None, llm.Model | None]:
    """The model called ``name`` (``default``: llm's default), async when llm has it so."""
    import llm

    wanted = None if name == "default" else name
    try:
        return llm.get_async_model(wanted), None
    except llm.UnknownModelError:
        return None, llm.get_model(wanted)


async def _chunks(name: str, prompt: str, system: str) -> AsyncGenerator[str, None]:
    """The model's answer as it arrives; a sync-only model runs in a thread of its own."""
    async_model, model = await asyncio.to_thread(_resolve, name)
    if async_model is not None:
        async for chunk in async_model.prompt(prompt, system=system):
            yield chunk
        return
    assert model is not None
    async for chunk in _in_thread(model.prompt(prompt, system=system)):
        yield chunk


async def _in_thread(response: Iterable[str]) -> AsyncIterator[str]:
    """Iterate a blocking ``response`` in a daemon thread, handing its chunks to the event loop."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
    stop = threading.Event()

    def hand(kind: str, value: Any) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, (kind, value))
        except RuntimeError:  # the loop is closed: nobody is listening any more
            stop.set()

    def work() -> None:
        try:
            for chunk in response:
                if stop.is_set():
                    return
                hand("chunk", chunk)
        except Exception as exc:  # noqa: BLE001 - raised again in the event loop
            hand("error", exc)
        else:
            hand("done", None)

    threading.Thread(target=work, name="chatbus-llm", daemon=True).start()
    try:
        while True:
            kind, value = await queue.get()
            if kind == "done":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()


async def _stream(answer: _Answer, name: str, prompt: str, system: str, timeout: float) -> str:
    """Stream the model's answer into ``answer``; the final text, with a sentence when the model failed."""
    try:
        async with asyncio.timeout(timeout):
            async with aclosing(_chunks(name, prompt, system)) as chunks:
                async for chunk in chunks:
                    await answer.add(chunk)
                    if answer.gone:
                        break
    except Exception as exc:
        if isinstance(exc, TimeoutError):
            log.warning("agent %s: model %s took longer than %s", answer.agent.name, name, duration(timeout))
        else:
            log.warning("agent %s: model %s failed: %r", answer.agent.name, name, exc, exc_info=exc)
        trouble, said = _trouble(exc, name), answer.text.strip()
        room = answer.hub.settings.max_text_length - len(trouble) - 6  # the sentence always fits
        return f"{answer.fit(said, room)}\n\n⚠️ {trouble}" if said and room > 0 else trouble
    return answer.text.strip() or "I have nothing to add."


async def converse(hub: Hub, agent: Agent, message: Message, settings: BrainSettings) -> bool:
    """Answer ``message`` as ``agent`` with its model, streaming; False (nothing posted) when it has none.

    ``settings``: the agents plugin's (``AgentSettings`` is a ``BrainSettings``). Model errors
    end the answer with a sentence and are logged; errors of the hub (``ChatbusError`` from
    posting) are raised, as for any reply.
    """
    name = model_of(agent)
    if name is None:
        return False
    context = await recent_messages(hub, message, settings)
    prompt = prompt_for(agent, message, context)
    system = system_prompt(agent, settings.system_prompt)
    posted = await hub.send(_THINKING, sender=agent.name, reply_to=message.id, room=message.room, streaming=True)
    answer = _Answer(hub, agent, posted, settings.stream_interval)
    final = await _stream(answer, name, prompt, system, settings.answer_timeout)
    await answer.finish(final)
    return True


#: How an answer cut off by a stop of the server ends, when it starts again.
CUT_OFF = "⚠️ Cut off: the server stopped while this was being written."


async def finish_interrupted(hub: Hub, *, look_back: int = 500) -> int:
    """End the agents' messages a stop of the server left being written (``streaming``) among the
    last ``look_back`` messages: their text so far and :data:`CUT_OFF`. Returns how many were ended.

    Called once the hub has started (the agents plugin does it), so no page shows a cursor forever."""
    recent, _more = await hub.history(None, limit=look_back)
    ended = 0
    for message in recent:
        if not message.streaming or message.kind != "agent" or message.deleted:
            continue
        said = message.text.strip()
        text = f"{said}\n\n{CUT_OFF}" if said and said != _THINKING else CUT_OFF
        identity = Identity(message.sender, message.sender_role or "agent", "agent")
        try:
            await hub.edit(identity, message.id, text, streaming=False)
        except ChatbusError as exc:
            log.warning("could not end message %d that a stop left being written: %s", message.id, exc)
            continue
        ended += 1
    return ended
