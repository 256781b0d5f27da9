"""Webhook mode: Telegram posts updates to python-telegram-bot's webhook server."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest

from chatbus import TransportError
from tests.support import free_port

from .conftest import CHAT, build_hub, sqlite
from .fakebot import FakeBotAPI


async def test_updates_arrive_by_webhook_with_the_secret_and_only_once(api: FakeBotAPI) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/telegram/hook"
    hub, web, telegram = build_hub(api, webhook_url=url, webhook_port=port)
    async with hub:
        assert api.webhook is not None and api.webhook["url"] == url
        secret = api.webhook["secret_token"]
        assert secret  # generated when none is configured
        assert telegram.status()["mode"] == "webhook"
        assert api.calls_of("getUpdates") == []

        message = api.post(CHAT, "hello by webhook", user=api.user(5, username="alice"))
        arrived = await web.wait_for(lambda m: m.text == "hello by webhook")
        assert arrived.sender == "tg:5" and arrived.transport == "telegram"

        async with httpx.AsyncClient() as client:
            forged = {"update_id": 5000, "message": {**message, "message_id": 99, "text": "forged"}}
            refused = await client.post(url, json=forged, headers={"X-Telegram-Bot-Api-Secret-Token": "wrong"})
            assert refused.status_code == 403
            # Telegram delivering the same update again (it retries when unsure).
            again = {"update_id": api.confirmed_up_to, "message": message}
            answer = await client.post(url, json=again, headers={"X-Telegram-Bot-Api-Secret-Token": secret})
            assert answer.status_code == 200

        api.post(CHAT, "second", user=api.user(5, username="alice"))
        await web.wait_for(lambda m: m.text == "second")
        assert [m.text for m in web.delivered if m.transport == "telegram"] == ["hello by webhook", "second"]

        await web.say("ana", "and back to Telegram")
        [sent] = await api.wait_sent(1)
        assert sent.text == "ana: and back to Telegram"


async def test_a_taken_webhook_port_is_a_clear_start_up_error(api: FakeBotAPI) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        hub, _web, _telegram = build_hub(api, webhook_url="https://example.invalid/hook", webhook_port=port)
        with pytest.raises(TransportError) as caught:
            await hub.start()
    assert f"127.0.0.1:{port}" in str(caught.value)
    assert "webhook_port" in str(caught.value)
    assert not hub.running


async def test_a_hundred_updates_posted_at_once_across_a_restart_are_each_stored_exactly_once(
    api: FakeBotAPI, db_path: Path
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/telegram/hook"
    api.webhook_connections = 20  # Telegram posts several updates at once
    hub, _web, _telegram = build_hub(api, store=sqlite(db_path), webhook_url=url, webhook_port=port)
    await hub.start()
    try:
        for n in range(100):
            api.post(CHAT, f"update {n}", user=api.user(1000 + n, username=f"person{n}"))
        await api.wait_for(lambda: len(api.webhook_answered) >= 25)
    finally:
        await hub.stop()
    answered = set(api.webhook_answered)
    assert 25 <= len(answered) < 100, "the stop came while updates were still being posted"
    store = sqlite(db_path)
    await store.open()
    stored_before_restart = {m.client_id for m in await store.since(0, 500)}
    await store.close()
    # Every update Telegram was told is done is in the hub.
    assert len(stored_before_restart) >= len(answered)

    hub, _web, _telegram = build_hub(api, store=sqlite(db_path), webhook_url=url, webhook_port=port)
    async with hub:
        await api.wait_for(lambda: not api.updates, timeout=30)
        messages = await hub.store.since(0, 500)
    texts = [m.text for m in messages]
    assert sorted(texts) == sorted(f"update {n}" for n in range(100))
    assert len(set(texts)) == 100
