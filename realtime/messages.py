"""Client → server websocket frames, validated with pydantic before anything else runs."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter


class _Frame(BaseModel):
    # htmx's ws-send adds a HEADERS object to every frame; we ignore it (and nothing else).
    model_config = ConfigDict(extra="forbid")
    HEADERS: dict | None = None


class Hello(_Frame):
    """Sent on (re)connect: the last seq the client has; the server sends what came after."""

    type: Literal["hello"]
    last_seq: int = Field(ge=0)


class ActionFrame(_Frame):
    type: Literal["action"]
    text: str = Field(max_length=20_000)
    idempotency_key: str = Field(min_length=1, max_length=80)


class RetryFrame(_Frame):
    type: Literal["retry"]
    action_seq: int = Field(ge=1)


class WhisperFrame(_Frame):
    type: Literal["whisper"]
    to: int = Field(ge=1)
    text: str = Field(max_length=20_000)


class Ping(_Frame):
    type: Literal["ping"]


ClientFrame = Annotated[Hello | ActionFrame | RetryFrame | WhisperFrame | Ping, Field(discriminator="type")]
client_frame = TypeAdapter(ClientFrame)
KNOWN_TYPES = {"hello", "action", "retry", "whisper", "ping"}
