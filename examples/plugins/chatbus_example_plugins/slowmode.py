"""A replacement rate limiter: "slow mode", one message per person per room
every ``interval`` seconds (``[slowmode] interval = 10`` in chatbus.toml, or
``CHATBUS_SLOWMODE__INTERVAL``; default 10).

Installed, it answers ``rate_limit`` before the built-in limiter (which is
``trylast``), so it replaces it with no configuration. Agents and the system
are not limited. The clock is the hub's, so tests are exact.
"""

from __future__ import annotations

from pydantic import Field

from chatbus import Hub, Identity, Incoming, PluginSettings, RateDecision, hookimpl


class SlowModeSettings(PluginSettings):
    """``[slowmode]``: seconds between two messages of one person in one room."""

    interval: float = Field(10.0, gt=0)


class SlowMode:
    name = "slowmode"
    settings_model = SlowModeSettings

    def __init__(self, hub: Hub, settings: SlowModeSettings) -> None:
        self.interval = settings.interval
        self.clock = hub.clock
        self.last_sent: dict[tuple[str, str], float] = {}

    @hookimpl
    def rate_limit(self, identity: Identity, message: Incoming) -> RateDecision:
        if identity.kind != "human":
            return RateDecision.allow()
        key = (identity.user_id, message.room)
        now = self.clock()
        last = self.last_sent.get(key)
        if last is not None and now - last < self.interval:
            return RateDecision.refuse(self.interval - (now - last))
        self.last_sent[key] = now
        return RateDecision.allow()
