"""The built-in ``on_auth``: open or token authentication.

``open``: anyone may join with any valid user id and the role they give. It is
meant for a chat on loopback or a trusted network, so start-up is refused when
a transport listens on another address, unless ``auth.allow_open_public`` is
set (``--allow-open-auth``).

``token``: a configured token says who the user is and which role they have;
the role the client claims is ignored.

Either way, a transport that has verified a user itself (Telegram does) passes
``extra={"verified": True}`` and is trusted.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator

from chatbus import (
    AuthError,
    ConfigError,
    Credentials,
    Hub,
    Identity,
    PluginSettings,
    Reachable,
    hookimpl,
    valid_name,
    valid_user_id,
)
from chatbus.core.identity import reserved_name
from chatbus.core.settings import split_names

__all__ = ["AuthSettings", "Authenticator", "TokenGrant"]

log = logging.getLogger("chatbus.auth")

_BAD_USER_ID = "User ids are 1-64 Latin letters (a-z, A-Z), digits, '_', '-' or '.'; choose another one."


def _role(value: Any) -> str:
    if value is None or value == "":
        return "user"
    if not isinstance(value, str) or len(value.strip()) > 64 or not value.strip().isprintable():
        raise AuthError("The role must be text of at most 64 characters.")
    return value.strip()


class TokenGrant(BaseModel):
    """Who a token logs in as; the role comes from here, never from the client."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    user_id: str = Field(validation_alias=AliasChoices("userId", "user_id"))
    role: str = "user"


class AuthSettings(PluginSettings):
    """``[auth]``: open or token authentication."""

    mode: Literal["open", "token"] = "open"
    tokens: dict[str, TokenGrant] = Field(default_factory=dict)
    allow_open_public: bool = False
    #: Open mode: the roles a client may claim (None: any, as the earlier system allowed).
    open_roles: list[str] | None = None

    @field_validator("open_roles", mode="before")
    @classmethod
    def _roles_from_text(cls, value: Any) -> Any:
        return split_names(value)

    @field_validator("tokens", mode="before")
    @classmethod
    def _tokens_from_json(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return json.loads(value)
            except json.JSONDecodeError:
                raise ValueError('expected JSON like {"TOKEN": {"userId": "alice", "role": "developer"}}') from None
        return value


class Authenticator:
    """Registered as ``auth``; configured by the ``[auth]`` section."""

    name = "auth"
    settings_model = AuthSettings

    def __init__(self, settings: AuthSettings) -> None:
        if settings.mode == "token" and not settings.tokens:
            raise ConfigError(
                "token authentication is on but no tokens are configured, so nobody could ever join; set "
                'CHATBUS_AUTH__TOKENS=\'{"TOKEN": {"userId": "alice", "role": "developer"}}\' (or tokens in '
                "[auth] of chatbus.toml), or use CHATBUS_AUTH__MODE=open on a trusted network"
            )
        for grant in settings.tokens.values():
            if not valid_name(grant.user_id) or reserved_name(grant.user_id, ()) is not None:
                raise ConfigError(
                    f"a token in auth.tokens is for user id {grant.user_id!r}, which nobody can sign in as; give it "
                    "1-64 letters, digits, '_', '-' or '.', not system or team (nor a name that passes for them)"
                )
        self.settings = settings

    @hookimpl(trylast=True)
    def on_startup(self, hub: Hub) -> None:
        if self.settings.mode != "open":
            for grant in self.settings.tokens.values():
                if (agent := reserved_name(grant.user_id, hub.agents)) is not None:
                    log.warning("the token for %r cannot sign in while agent %s is hired", grant.user_id, agent)
            return
        workers = sorted(name for name, agent in hub.agents.items() if agent.command)
        if workers:
            log.warning(
                "open authentication: anyone who can reach this chat can give work to %s, whose worker commands "
                "run on this machine; use token auth (CHATBUS_AUTH__MODE=token with CHATBUS_AUTH__TOKENS) "
                "to choose who can",
                ", ".join(workers),
            )
        if self.settings.allow_open_public:
            return
        for transport in hub.transports.values():
            if isinstance(transport, Reachable) and transport.listens_publicly():
                raise ConfigError(
                    f"open authentication lets anyone join under any name, and transport "
                    f"{transport.name!r} listens on a non-loopback address; use token auth "
                    "(CHATBUS_AUTH__MODE=token) or pass --allow-open-auth if you really mean it"
                )

    @hookimpl(trylast=True)
    def on_auth(self, credentials: Credentials) -> Identity:
        user_id = credentials.user_id
        if credentials.extra.get("verified") is True:
            # A transport vouches for this person: its own qualified id (tg:12345) or a name.
            if not valid_user_id(user_id):
                raise AuthError(_BAD_USER_ID)
            display_name = credentials.extra.get("display_name")
            return Identity(user_id, _role(credentials.role), "human", display_name, credentials.transport or "?")
        if self.settings.mode == "token":
            grant = self.settings.tokens.get(credentials.token) if isinstance(credentials.token, str) else None
            if grant is None:
                raise AuthError("Wrong or missing token. Ask the chat's operator for your token.")
            if user_id not in (None, "", grant.user_id):
                raise AuthError("This token belongs to another user id; join with the id it was issued for.")
            return Identity(grant.user_id, grant.role, "human")
        if not valid_name(user_id):
            raise AuthError(_BAD_USER_ID)
        role = _role(credentials.role)
        allowed = self.settings.open_roles
        if allowed is not None and credentials.role not in (None, "") and role not in allowed:
            raise AuthError(f"The role {role!r} cannot be chosen here; choose one of {', '.join(allowed)}.")
        return Identity(user_id, role, "human")
