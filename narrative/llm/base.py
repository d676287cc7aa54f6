"""The one interface every narrator/summarizer model adapter implements.

Pure Python: no Django. Adapters stream `StreamEvent`s — text deltas, complete tool calls
(arguments already assembled from the vendor's partial deltas) and one final `StreamEnd`.
Failures are raised as `gtw_site.providers.ProviderError` with `retryable` set; the HTTP
helpers the vendor adapters share (safe_url, url_secrets, scrub, CallDeadline) live in
gtw_site.providers, for every provider kind.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from gtw_site.providers import Usage

Role = Literal["system", "user", "assistant", "tool"]


@dataclass(frozen=True)
class ToolSpec:
    """A tool the model may call; `parameters` is a JSON schema (type: object)."""

    name: str
    description: str
    parameters: dict[str, Any]


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: dict[str, Any]
    # The raw argument text as the model produced it; kept so a malformed call can be
    # refused with the model's own words quoted back.
    raw_arguments: str = ""


@dataclass(frozen=True)
class Message:
    role: Role
    content: str = ""
    # assistant messages: the tool calls the model made in that message
    tool_calls: tuple[ToolCall, ...] = ()
    # tool messages: which call this is the result of
    tool_call_id: str | None = None
    name: str | None = None


@dataclass
class ChatRequest:
    messages: list[Message]
    tools: list[ToolSpec] = field(default_factory=list)
    max_tokens: int = 800
    temperature: float = 0.8
    seed: int | None = None
    # Structured hints (scene, character, action, tool results…) built by the turn
    # pipeline. Remote adapters ignore it — everything they need is in `messages`; the
    # offline narrator writes from it.
    context: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class ToolCallEvent:
    call: ToolCall


@dataclass(frozen=True)
class StreamEnd:
    stop_reason: str = "stop"  # "stop" | "tool_calls" | "length"
    usage: Usage = Usage()  # noqa: RUF009 - Usage is frozen, sharing the default is safe


StreamEvent = TextDelta | ToolCallEvent | StreamEnd


class ChatProvider(Protocol):
    """What a narrator/summarizer adapter looks like."""

    name: str  # "offline", "openai", "anthropic", "openai_compatible"
    model: str

    def stream(self, request: ChatRequest) -> Iterator[StreamEvent]:
        """Yield deltas and tool calls as they arrive; the last event is a StreamEnd."""
        ...

    def complete(self, request: ChatRequest) -> str:
        """A plain, non-streamed completion (summaries, recaps).

        Adapters that learn the call's token counts leave them in `last_usage` (a `Usage`).
        """
        ...
