"""Narrator adapter for OpenAI's Chat Completions API, via the official `openai` SDK."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import openai

from gtw_site.providers import ProviderError, Usage, status_error
from gtw_site.providers import clip as _clip
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
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
}


class OpenAIChatProvider:
    # Whether to ask for a final usage chunk; many OpenAI-compatible servers reject the option.
    send_stream_options = True
    # OpenAI's reasoning models refuse `max_tokens`; compatible servers mostly only know it.
    max_tokens_param = "max_completion_tokens"

    def __init__(
        self,
        *,
        model: str,
        api_key: str,
        base_url: str | None = None,
        timeout: float = 30.0,
        name: str = "openai",
    ) -> None:
        self.name = name
        self.model = model
        # Settings hand over "" for unset; the SDK would take that as the URL itself.
        self.base_url = base_url or None
        self.timeout = timeout
        try:
            # max_retries=0: the turn pipeline makes its own single retry, and SDK retries
            # would multiply the wait a player sees before the error.
            self._client = openai.OpenAI(
                api_key=api_key, base_url=self.base_url, timeout=timeout, max_retries=0
            )
        except openai.OpenAIError as exc:
            raise ProviderError(
                f"no API key configured — {self._key_hint()}", retryable=False, provider=self.name
            ) from exc

    def stream(self, request: ChatRequest) -> Iterator[StreamEvent]:
        params = self._params(request)
        params["stream"] = True
        if self.send_stream_options:
            params["stream_options"] = {"include_usage": True}
        try:
            chunks = self._client.chat.completions.create(**params)
        except openai.OpenAIError as exc:
            raise self._error(exc) from exc

        calls: dict[int, dict[str, Any]] = {}
        finish: str | None = None
        usage = Usage()
        try:
            for chunk in chunks:
                if chunk.usage is not None:
                    usage = Usage(chunk.usage.prompt_tokens or 0, chunk.usage.completion_tokens or 0)
                for choice in chunk.choices:
                    delta = choice.delta
                    if delta is not None and delta.content:
                        yield TextDelta(delta.content)
                    for part in (delta.tool_calls if delta is not None else None) or ():
                        slot = calls.setdefault(part.index, {"id": "", "name": "", "args": []})
                        if part.id:
                            slot["id"] = part.id
                        if part.function is not None:
                            # Some servers repeat the name on every delta: keep the first, never concatenate.
                            if part.function.name and not slot["name"]:
                                slot["name"] = part.function.name
                            if part.function.arguments:
                                slot["args"].append(part.function.arguments)
                    if choice.finish_reason and finish is None:
                        finish = choice.finish_reason
                        for index in sorted(calls):
                            yield ToolCallEvent(_tool_call(calls[index], index))
        except openai.OpenAIError as exc:
            raise self._error(exc, mid_stream=True) from exc
        except ValueError as exc:
            raise ProviderError(
                f"the server sent a malformed stream ({exc})", retryable=True, provider=self.name
            ) from exc
        finally:
            chunks.close()

        if finish is None:
            # A clean EOF without a finish_reason is a cut-off response, not a short answer.
            raise ProviderError(
                "the response ended before the model finished — the connection was cut",
                retryable=True,
                provider=self.name,
            )
        # Older Ollama builds report "stop" even when the message carries tool calls.
        stop = "tool_calls" if calls else _STOP_REASONS.get(finish, "stop")
        yield StreamEnd(stop_reason=stop, usage=usage)

    def complete(self, request: ChatRequest) -> str:
        try:
            response = self._client.chat.completions.create(**self._params(request))
        except openai.OpenAIError as exc:
            raise self._error(exc) from exc
        if not response.choices:
            return ""
        return response.choices[0].message.content or ""

    def _params(self, request: ChatRequest) -> dict[str, Any]:
        params: dict[str, Any] = {
            "model": self.model,
            "messages": [_to_openai(message) for message in request.messages],
            self.max_tokens_param: request.max_tokens,
            "temperature": request.temperature,
        }
        if request.tools:
            params["tools"] = [
                {
                    "type": "function",
                    "function": {"name": t.name, "description": t.description, "parameters": t.parameters},
                }
                for t in request.tools
            ]
        if request.seed is not None:
            params["seed"] = request.seed
        return params

    def _key_hint(self) -> str:
        return "check OPENAI_API_KEY"

    def _where(self) -> str:
        return self.base_url or "the OpenAI API"

    def _error(self, exc: openai.OpenAIError, *, mid_stream: bool = False) -> ProviderError:
        if isinstance(exc, openai.APIConnectionError):
            return self._transport_error(exc, mid_stream=mid_stream)
        if isinstance(exc, openai.APIStatusError):
            if exc.status_code == 429 and exc.code == "insufficient_quota":
                # Same status as a rate limit, but waiting will not help.
                return ProviderError(
                    "out of credit (429) — check the account's billing",
                    retryable=False,
                    provider=self.name,
                    status=429,
                )
            detail = _detail(exc.body) or exc.message
            return self._status_error(exc.status_code, detail)
        if isinstance(exc, openai.APIError):
            # The SDK raises a bare APIError for an `{"error": …}` event inside a 200 stream.
            detail = _detail(exc.body) or exc.message
            return ProviderError(
                f"the server reported an error mid-response: {_clip(detail)}",
                retryable=True,
                provider=self.name,
            )
        return ProviderError(f"client error: {_clip(str(exc))}", retryable=False, provider=self.name)

    def _transport_error(self, exc: openai.APIConnectionError, *, mid_stream: bool = False) -> ProviderError:
        if isinstance(exc, openai.APITimeoutError):
            return ProviderError(
                f"timed out after {float(self.timeout)}s", retryable=True, provider=self.name
            )
        message = (
            "the connection dropped mid-response" if mid_stream else f"could not connect to {self._where()}"
        )
        return ProviderError(message, retryable=True, provider=self.name)

    def _status_error(self, status: int, detail: str) -> ProviderError:
        return status_error(self.name, status, detail, auth=self._key_hint(), model=self.model)


def _to_openai(message: Message) -> dict[str, Any]:
    if message.role == "tool":
        return {"role": "tool", "tool_call_id": message.tool_call_id or "", "content": message.content}
    if message.role == "assistant" and message.tool_calls:
        return {
            "role": "assistant",
            "content": message.content or None,
            "tool_calls": [
                {
                    "id": call.id,
                    "type": "function",
                    # Re-serialized rather than echoing raw text: servers such as vLLM parse
                    # past arguments and would reject the model's own malformed JSON.
                    "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
                }
                for call in message.tool_calls
            ],
        }
    return {"role": message.role, "content": message.content}


def _tool_call(slot: dict[str, Any], index: int) -> ToolCall:
    raw = "".join(slot["args"])
    return ToolCall(
        id=slot["id"] or f"call_{index}",
        name=slot["name"],
        arguments=_parse_arguments(raw),
        raw_arguments=raw,
    )


def _parse_arguments(raw: str) -> dict[str, Any]:
    """The call's arguments, or {} when the model's JSON is broken (raw_arguments keeps it)."""
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _detail(body: object) -> str:
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return error["message"]
    return body if isinstance(body, str) else ""
