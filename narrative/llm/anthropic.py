"""Narrator adapter for Anthropic's Messages API, via the official `anthropic` SDK."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx2

from gtw_site import redact, telemetry
from gtw_site.providers import (
    CallDeadline,
    ProviderError,
    Usage,
    clip,
    safe_url,
    scrub,
    status_error,
    url_secrets,
)
from narrative.llm.base import (
    ChatRequest,
    Message,
    StreamEnd,
    StreamEvent,
    TextDelta,
    ToolCall,
    ToolCallEvent,
)

_STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "tool_use": "tool_calls",
    "max_tokens": "length",
}

# An `error` event inside a 200 stream carries only its type; these give it a status.
_ERROR_TYPE_STATUS = {
    "overloaded_error": 529,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
}


class AnthropicChatProvider:
    name = "anthropic"

    def __init__(
        self, *, model: str, api_key: str, base_url: str | None = None, timeout: float = 30.0
    ) -> None:
        self.model = model
        # Settings hand over "" for unset; the SDK would take that as the URL itself.
        self.base_url = base_url or None
        self.timeout = timeout
        self.last_usage = Usage()
        if not api_key:
            # The SDK would only notice on the first request, and then with a bare TypeError.
            raise ProviderError(
                "no API key configured — check ANTHROPIC_API_KEY", retryable=False, provider=self.name
            )
        # Blanked out of any text a server echoes back into an error message.
        self._secrets = url_secrets(self.base_url, api_key)
        # GTW_REDACT: PII blanked out of every message sent and out of every error message.
        # Anthropic's API is always remote (a gateway in front of it forwards what it gets).
        self._redaction = redact.configured()
        self._outbound = self._redaction.for_destination(remote=True)
        self._deadline = CallDeadline(timeout)
        # max_retries=0: the turn pipeline makes its own single retry. The SDK's timeout is per
        # socket read (a `ping` every few seconds would keep a call alive for ever); the hook
        # bounds the whole call.
        self._client = anthropic.Anthropic(
            api_key=api_key,
            base_url=self.base_url,
            timeout=timeout,
            max_retries=0,
            http_client=anthropic.DefaultHttpxClient(event_hooks={"response": [self._deadline.hook]}),
        )

    def stream(self, request: ChatRequest) -> Iterator[StreamEvent]:
        self._deadline.start()
        try:
            events = self._client.messages.create(**self._params(request), stream=True)
        except anthropic.AnthropicError as exc:
            raise self._error(exc) from exc
        except httpx2.HTTPError as exc:
            raise self._transport_error(exc) from exc

        tools: dict[int, dict[str, Any]] = {}
        tokens_in = tokens_out = 0
        stop: str | None = None
        finished = False
        try:
            for event in events:
                if event.type == "message_start":
                    tokens_in = _input_tokens(event.message.usage)
                    tokens_out = event.message.usage.output_tokens or 0
                elif event.type == "content_block_start":
                    block = event.content_block
                    if block.type == "tool_use":
                        tools[event.index] = {
                            "id": block.id,
                            "name": block.name,
                            "input": block.input,
                            "json": [],
                        }
                elif event.type == "content_block_delta":
                    delta = event.delta
                    if delta.type == "text_delta" and delta.text:
                        yield TextDelta(delta.text)
                    elif delta.type == "input_json_delta" and event.index in tools:
                        tools[event.index]["json"].append(delta.partial_json)
                elif event.type == "content_block_stop":
                    if event.index in tools:
                        yield ToolCallEvent(_tool_call(tools.pop(event.index)))
                elif event.type == "message_delta":
                    stop = event.delta.stop_reason or stop
                    # message_delta's counts are cumulative, so they replace message_start's.
                    tokens_out = event.usage.output_tokens or tokens_out
                    if event.usage.input_tokens is not None:
                        tokens_in = _input_tokens(event.usage)
                elif event.type == "message_stop":
                    finished = True
        except anthropic.AnthropicError as exc:
            raise self._error(exc, mid_stream=True) from exc
        except httpx2.HTTPError as exc:
            # Unlike openai's, this SDK lets transport errors during iteration escape raw.
            raise self._transport_error(exc, mid_stream=True) from exc
        except ValueError as exc:
            raise self._fail(f"the server sent a malformed stream ({exc})", retryable=True) from exc
        finally:
            events.close()

        if not finished:
            raise self._fail(
                "the response ended before the model finished — the connection was cut", retryable=True
            )
        yield StreamEnd(stop_reason=_STOP_REASONS.get(stop or "", "stop"), usage=Usage(tokens_in, tokens_out))

    def complete(self, request: ChatRequest) -> str:
        self.last_usage = Usage()
        self._deadline.start()
        try:
            message = self._client.messages.create(**self._params(request))
        except anthropic.AnthropicError as exc:
            raise self._error(exc) from exc
        except httpx2.HTTPError as exc:
            raise self._transport_error(exc) from exc
        if message.usage is not None:
            self.last_usage = Usage(_input_tokens(message.usage), message.usage.output_tokens or 0)
        return "".join(block.text for block in message.content if block.type == "text")

    def _params(self, request: ChatRequest) -> dict[str, Any]:
        # Redacted here, where messages are serialised: every caller is covered.
        # The campaign's own redaction switch, where the call serves one (issue 18).
        outbound = redact.outbound_for(self._outbound, telemetry.current_scope().get("campaign_id"))
        messages = [redact.redact_message(m, outbound) for m in request.messages]
        # No temperature or seed: this SDK's Messages API takes neither.
        params: dict[str, Any] = {
            "model": self.model,
            "max_tokens": request.max_tokens,
            "messages": _to_anthropic(messages),
        }
        system = "\n\n".join(m.content for m in messages if m.role == "system" and m.content)
        if system:
            params["system"] = system
        if request.tools:
            params["tools"] = [
                {"name": t.name, "description": t.description, "input_schema": t.parameters}
                for t in request.tools
            ]
        return params

    def _fail(self, message: str, *, retryable: bool, status: int | None = None) -> ProviderError:
        """Every error this adapter raises: players and telemetry see the text, keys never."""
        return ProviderError(
            redact.redact(scrub(message, self._secrets), self._redaction.kinds),
            retryable=retryable,
            provider=self.name,
            status=status,
        )

    def _error(self, exc: anthropic.AnthropicError, *, mid_stream: bool = False) -> ProviderError:
        if isinstance(exc, anthropic.APIConnectionError):
            return self._transport_error(exc, mid_stream=mid_stream)
        if isinstance(exc, anthropic.APIStatusError):
            error = exc.body.get("error") if isinstance(exc.body, dict) else None
            error = error if isinstance(error, dict) else {}
            detail = clip(str(error.get("message") or exc.message))
            if exc.status_code < 400:
                # An `error` event inside a 200 stream: the SDK raises it with the stream's status.
                return self._fail(
                    f"the server reported an error mid-response: {detail}",
                    retryable=True,
                    status=_ERROR_TYPE_STATUS.get(str(error.get("type"))),
                )
            return self._status_error(exc.status_code, detail)
        return self._fail(f"client error: {clip(str(exc))}", retryable=False)

    def _transport_error(self, exc: Exception, *, mid_stream: bool = False) -> ProviderError:
        if isinstance(exc, (httpx2.TimeoutException, anthropic.APITimeoutError)) or self._deadline.passed():
            return self._fail(f"timed out after {float(self.timeout)}s", retryable=True)
        where = safe_url(self.base_url) if self.base_url else "the Anthropic API"
        message = "the connection dropped mid-response" if mid_stream else f"could not connect to {where}"
        return self._fail(message, retryable=True)

    def _status_error(self, status: int, detail: str) -> ProviderError:
        error = status_error(
            self.name, status, scrub(detail, self._secrets), auth="check ANTHROPIC_API_KEY", model=self.model
        )
        return self._fail(error.message, retryable=error.retryable, status=error.status)


def _to_anthropic(messages: list[Message]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "system":
            continue
        if message.role == "tool":
            role = "user"
            blocks = [
                {"type": "tool_result", "tool_use_id": message.tool_call_id or "", "content": message.content}
            ]
        elif message.role == "assistant":
            role = "assistant"
            blocks = [{"type": "text", "text": message.content}] if message.content else []
            blocks += [
                {"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments}
                for c in message.tool_calls
            ]
        else:
            role = "user"
            blocks = [{"type": "text", "text": message.content}] if message.content else []
        if not blocks:
            # The API refuses empty messages.
            continue
        if out and out[-1]["role"] == role:
            # All results for one assistant turn must sit in a single user message, ahead of any text.
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": role, "content": blocks})
    return out


def _tool_call(slot: dict[str, Any]) -> ToolCall:
    raw = "".join(slot["json"])
    if not raw.strip():
        # A call with no input streams no deltas; the start block already holds the (empty) input.
        start = slot["input"] if isinstance(slot["input"], dict) else {}
        return ToolCall(
            id=slot["id"], name=slot["name"], arguments=dict(start), raw_arguments=json.dumps(start)
        )
    try:
        value = json.loads(raw)
    except ValueError:
        value = None
    return ToolCall(
        id=slot["id"],
        name=slot["name"],
        arguments=value if isinstance(value, dict) else {},
        raw_arguments=raw,
    )


def _input_tokens(usage: Any) -> int:
    # Cached prompt tokens are billed input too; the API reports them apart from input_tokens.
    return sum(
        getattr(usage, key, None) or 0
        for key in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
    )
