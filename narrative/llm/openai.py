"""Narrator adapter for OpenAI's Chat Completions API, via the official `openai` SDK."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import openai

from gtw_site import redact, telemetry
from gtw_site.providers import (
    CallDeadline,
    ProviderError,
    Usage,
    clip,
    error_detail,
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
        self.last_usage = Usage()
        # Blanked out of any text a server echoes back into an error message.
        self._secrets = url_secrets(self.base_url, api_key)
        # GTW_REDACT: PII blanked out of every message sent (a local server gets the original
        # text unless GTW_REDACT_LOCAL) and out of every error message.
        self._redaction = redact.configured()
        self._outbound = self._redaction.for_destination(remote=self._is_remote())
        self._deadline = CallDeadline(timeout)
        # The SDK's timeout is per socket read; this hook bounds the whole call.
        http_client = openai.DefaultHttpxClient(event_hooks={"response": [self._deadline.hook]})
        try:
            # max_retries=0: the turn pipeline makes its own single retry, and SDK retries
            # would multiply the wait a player sees before the error.
            self._client = openai.OpenAI(
                api_key=api_key,
                base_url=self.base_url,
                timeout=timeout,
                max_retries=0,
                http_client=http_client,
            )
        except openai.OpenAIError as exc:
            http_client.close()
            raise self._fail(f"no API key configured — {self._key_hint()}", retryable=False) from exc

    def stream(self, request: ChatRequest) -> Iterator[StreamEvent]:
        params = self._params(request)
        params["stream"] = True
        if self.send_stream_options:
            params["stream_options"] = {"include_usage": True}
        self._deadline.start()
        try:
            chunks = self._client.chat.completions.create(**params)
        except openai.OpenAIError as exc:
            raise self._error(exc) from exc

        calls = _CallAssembler()
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
                        calls.add(part)
                    if choice.finish_reason and finish is None:
                        finish = choice.finish_reason
                        for call in calls.done():
                            yield ToolCallEvent(call)
        except openai.OpenAIError as exc:
            raise self._error(exc, mid_stream=True) from exc
        except ValueError as exc:
            raise self._fail(f"the server sent a malformed stream ({exc})", retryable=True) from exc
        finally:
            chunks.close()

        if finish is None:
            # A clean EOF without a finish_reason is a cut-off response, not a short answer.
            raise self._fail(
                "the response ended before the model finished — the connection was cut", retryable=True
            )
        # Older Ollama builds report "stop" even when the message carries tool calls.
        stop = "tool_calls" if calls.slots else _STOP_REASONS.get(finish, "stop")
        yield StreamEnd(stop_reason=stop, usage=usage)

    def complete(self, request: ChatRequest) -> str:
        self.last_usage = Usage()
        self._deadline.start()
        try:
            response = self._client.chat.completions.create(**self._params(request))
        except openai.OpenAIError as exc:
            raise self._error(exc) from exc
        if response.usage is not None:
            self.last_usage = Usage(response.usage.prompt_tokens or 0, response.usage.completion_tokens or 0)
        if not response.choices:
            return ""
        return response.choices[0].message.content or ""

    def _params(self, request: ChatRequest) -> dict[str, Any]:
        # The campaign's own redaction switch, where the call serves one (issue 18).
        outbound = redact.outbound_for(self._outbound, telemetry.current_scope().get("campaign_id"))
        params: dict[str, Any] = {
            "model": self.model,
            # Redacted here, where messages are serialised: every caller is covered.
            "messages": [
                _to_openai(redact.redact_message(message, outbound)) for message in request.messages
            ],
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

    def _is_remote(self) -> bool:
        # The vendor's own API — or a gateway in front of it, which forwards what it gets.
        return True

    def _where(self) -> str:
        return safe_url(self.base_url) if self.base_url else "the OpenAI API"

    def _fail(self, message: str, *, retryable: bool, status: int | None = None) -> ProviderError:
        """Every error this adapter raises: players and telemetry see the text, keys never."""
        return ProviderError(
            redact.redact(scrub(message, self._secrets), self._redaction.kinds),
            retryable=retryable,
            provider=self.name,
            status=status,
        )

    def _error(self, exc: openai.OpenAIError, *, mid_stream: bool = False) -> ProviderError:
        if isinstance(exc, openai.APIConnectionError):
            return self._transport_error(exc, mid_stream=mid_stream)
        if isinstance(exc, openai.APIStatusError):
            if exc.status_code == 429 and exc.code == "insufficient_quota":
                # Same status as a rate limit, but waiting will not help.
                return self._fail(
                    "out of credit (429) — check the account's billing", retryable=False, status=429
                )
            detail = error_detail(exc.body) or exc.message
            return self._status_error(exc.status_code, detail)
        if isinstance(exc, openai.APIError):
            # The SDK raises a bare APIError for an `{"error": …}` event inside a 200 stream.
            detail = error_detail(exc.body) or exc.message
            return self._fail(f"the server reported an error mid-response: {clip(detail)}", retryable=True)
        return self._fail(f"client error: {clip(str(exc))}", retryable=False)

    def _transport_error(self, exc: openai.APIConnectionError, *, mid_stream: bool = False) -> ProviderError:
        if isinstance(exc, openai.APITimeoutError) or self._deadline.passed():
            return self._fail(f"timed out after {float(self.timeout)}s", retryable=True)
        message = (
            "the connection dropped mid-response" if mid_stream else f"could not connect to {self._where()}"
        )
        return self._fail(message, retryable=True)

    def _status_error(self, status: int, detail: str) -> ProviderError:
        error = status_error(
            self.name, status, scrub(detail, self._secrets), auth=self._key_hint(), model=self.model
        )
        return self._fail(error.message, retryable=error.retryable, status=error.status)


class _CallAssembler:
    """Tool calls put back together from streamed deltas.

    OpenAI numbers each call (`index`) and sends its id only on the first delta. Ollama
    sends every call whole with index 0, and Gemini's endpoint sends no index at all: there a
    delta belongs to the current call unless it brings a new id with a name (or, without an
    id, a different name, or a name plus arguments after the current call's JSON is complete).
    """

    def __init__(self) -> None:
        self.slots: list[dict[str, Any]] = []
        self._by_index: dict[int, dict[str, Any]] = {}
        self._current: dict[str, Any] | None = None

    def add(self, part: Any) -> None:
        index = getattr(part, "index", None)
        function = part.function
        call_id = part.id or ""
        name = (function.name if function is not None else None) or ""
        arguments = (function.arguments if function is not None else None) or ""
        slot = self._current if index is None else self._by_index.get(index)
        if slot is not None and _starts_new_call(slot, call_id, name, arguments):
            slot = None
        if slot is None:
            slot = {"id": "", "name": "", "args": []}
            self.slots.append(slot)
        if index is not None:
            self._by_index[index] = slot
        self._current = slot
        if call_id and not slot["id"]:
            slot["id"] = call_id
        # Some servers repeat the name on every delta: keep the first, never concatenate.
        if name and not slot["name"]:
            slot["name"] = name
        if arguments:
            slot["args"].append(arguments)

    def done(self) -> list[ToolCall]:
        return [_tool_call(slot, position) for position, slot in enumerate(self.slots)]


def _starts_new_call(slot: dict[str, Any], call_id: str, name: str, arguments: str) -> bool:
    if not (slot["name"] or slot["args"]):
        return False
    if call_id:
        # A new call always names its function; a new id alone is a server that renumbers
        # every delta of one call (seen in the wild).
        return call_id != slot["id"] and bool(name)
    # Without ids: a different function, or the same one again after a finished JSON object.
    if name and slot["name"] and name != slot["name"]:
        return True
    return bool(name and arguments and slot["args"] and _is_json_object("".join(slot["args"])))


def _is_json_object(raw: str) -> bool:
    try:
        return isinstance(json.loads(raw), dict)
    except ValueError:
        return False


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
