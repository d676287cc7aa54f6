from datetime import datetime
from typing import Any

from ninja import Schema
from pydantic import Field


class CampaignIn(Schema):
    name: str = Field(max_length=500)
    pack: str = Field(max_length=100)
    personality: str | None = None


class IdOut(Schema):
    id: int


class CampaignOut(Schema):
    id: int
    name: str
    pack: str
    role: str
    personality: str | None
    archived: bool = False


class InviteIn(Schema):
    role: str = "player"


class InviteOut(Schema):
    code: str
    url: str
    expires_at: datetime


class AcceptOut(Schema):
    campaign: int
    role: str


class CharacterIn(Schema):
    name: str = Field(max_length=500)
    archetype: str = Field(max_length=100)
    attributes: dict[str, int] | None = None


class SessionOut(Schema):
    id: int
    number: int
    status: str
    version: int


class SessionListOut(Schema):
    id: int
    number: int
    title: str
    status: str
    kind: str
    version: int
    state_hash: str
    created_at: datetime


class ActionIn(Schema):
    text: str = Field(max_length=100_000)
    idempotency_key: str = Field(max_length=200)


class ActionOut(Schema):
    seq: int
    replayed: bool


class EventOut(Schema):
    seq: int
    type: str
    actor: str | None
    payload: dict[str, Any]
    seed: int | None
    created_at: datetime


class EventsOut(Schema):
    events: list[EventOut]
    version: int


class WhisperIn(Schema):
    to: int
    text: str = Field(max_length=100_000)


class TokenIn(Schema):
    name: str = Field(max_length=80, default="script")


class TokenOut(Schema):
    id: int
    name: str
    token: str


class BranchIn(Schema):
    at_seq: int
    name: str = Field(default="", max_length=500)


class BranchOut(Schema):
    campaign: int
    session: int
