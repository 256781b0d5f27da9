"""``[agents]``: how the built-in agents' worker commands run and how they speak."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator, model_validator

from chatbus.core.settings import split_names

from .brain import BrainSettings

__all__ = ["AgentSettings"]

_GREETING = (
    'Hi {sender}! I\'m {agent} ({role}). Give me a task, like "@{agent} please add a test", or ask "@{agent} status?".'
)


class AgentSettings(BrainSettings):
    """The built-in agents: how their worker commands run and how they speak (and, from
    ``BrainSettings``, how agents with a model converse).

    ``stuck_after`` seconds into a task the agent asks the team for help;
    at ``timeout`` seconds its command is killed. Each agent works in
    ``workdir/<name>``. ``roster_refresh`` is how often the running server
    re-reads the roster, so agents hired with the CLI join within seconds.

    ``allow_roles``: who may give an agent work when its roster entry says
    nobody in particular (``--allow``): people whose role is one of these.
    ``live_interval``: least seconds between edits of a task's live status
    message, which shows its last ``live_lines`` lines of output.
    ``idle_after``: seconds an agent shows ``completed`` before ``idle``.
    """

    stuck_after: float = Field(600.0, gt=0)
    timeout: float = Field(3600.0, gt=0)
    workdir: str = "./agents"
    output_lines: int = Field(10, ge=1, le=1000)
    output_chars: int = Field(1500, ge=80, le=100_000)
    kill_grace: float = Field(5.0, ge=0)
    roster_refresh: float = Field(5.0, gt=0)
    greeting: str = _GREETING
    allow_roles: list[str] = Field(default_factory=lambda: ["manager", "developer"])
    live_interval: float = Field(1.0, ge=0, le=60)
    live_lines: int = Field(5, ge=0, le=50)
    idle_after: float = Field(300.0, ge=0)

    @field_validator("allow_roles", mode="before")
    @classmethod
    def _roles_from_text(cls, value: Any) -> Any:
        return split_names(value)

    @model_validator(mode="after")
    def _timeout_after_stuck(self) -> AgentSettings:
        if self.timeout < self.stuck_after:
            raise ValueError("agents.timeout must be at least agents.stuck_after")
        return self
