"""The remote moderation adapters, through the official openai SDK:

- `OpenAIModeration`: POST /v1/moderations (OpenAI's wire format: `results[0].categories`,
  `category_scores`, keyed "violence/graphic", "self-harm/intent", …);
- `LlamaGuardModeration`: Llama Guard 3 behind an OpenAI-compatible /v1/chat/completions (vLLM,
  Ollama). It answers "safe", or "unsafe" and a line of hazard codes ("S1,S10").

Text is redacted (gtw_site.redact) before it leaves for a remote server: the campaign's kinds
when given, else GTW_REDACT; a server on this machine or the LAN gets the original text unless
GTW_REDACT_LOCAL. Failures are ProviderError(retryable=…), with secrets scrubbed. No Django of its own.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from campaigns.safety.categories import LLAMA_GUARD_MAP, LLAMA_GUARD_NAMES, OPENAI_MAP, Verdict
from campaigns.safety.classifiers.local import HIT, table_terms
from gtw_site import redact
from gtw_site.providers import ProviderError, safe_url
from gtw_site.providers.base import Usage, clip, error_detail
from gtw_site.providers.http import scrub, url_secrets

# Texts past this are cut before they are sent: a classifier of a sentence or an action has no
# use for a novel, and vendors refuse huge inputs.
MAX_CHARS = 8000


class _Remote:
    name = "remote"

    def __init__(
        self, *, model: str, api_key: str = "", base_url: str | None = None, timeout: float = 5.0
    ) -> None:
        import openai

        self.model = model
        self.base_url = base_url or None
        self.timeout = timeout
        self.last_usage = Usage()
        self._secrets = url_secrets(self.base_url, api_key)
        self._redaction = redact.configured()
        try:
            self._client = openai.OpenAI(
                api_key=api_key or "not-needed", base_url=self.base_url, timeout=timeout, max_retries=0
            )
        except openai.OpenAIError as exc:
            raise ProviderError("no API key configured", retryable=False, provider=self.name) from exc

    def _outbound(self, text: str, redact_kinds: Iterable[str] | None) -> str:
        remote = not redact.is_local_url(self.base_url)
        if redact_kinds is not None:
            kinds = frozenset(redact_kinds) if (remote or self._redaction.local) else frozenset()
        else:
            kinds = self._redaction.for_destination(remote=remote)
        return redact.redact(text[:MAX_CHARS], kinds)

    def _error(self, exc: Exception) -> ProviderError:
        import openai

        where = safe_url(self.base_url or "https://api.openai.com/v1")
        if isinstance(exc, openai.APIStatusError):
            status = exc.status_code
            detail = error_detail(exc.body) or exc.message
            message = f"HTTP {status} from {where}: {clip(detail, 200)}"
            retryable = status == 429 or status >= 500
        elif isinstance(exc, openai.APITimeoutError):
            message, retryable, status = f"timed out after {self.timeout:g} s ({where})", True, None
        elif isinstance(exc, openai.APIConnectionError):
            message, retryable, status = f"could not connect to {where} — is the server running?", True, None
        else:
            message, retryable, status = f"unexpected reply ({type(exc).__name__})", False, None
        message = redact.redact(scrub(message, self._secrets), self._redaction.kinds)
        return ProviderError(message, retryable=retryable, provider=self.name, status=status)

    def _finish(self, text: str, scores: dict[str, float], lines, veils) -> Verdict:
        table, evidence = table_terms(text, lines=lines, veils=veils)
        scores.update(table)
        return Verdict(scores=scores, evidence=evidence, provider=self.name)


class OpenAIModeration(_Remote):
    """OpenAI's moderation endpoint. A category counts when OpenAI flags it; its score is
    OpenAI's own category score (the GM sees it, players never do)."""

    name = "openai"

    def classify(
        self,
        text: str,
        *,
        lines: Iterable[str] = (),
        veils: Iterable[str] = (),
        role: str = "user",
        redact_kinds: Iterable[str] | None = None,
    ) -> Verdict:
        import openai

        if not text.strip():
            return Verdict(provider=self.name)
        try:
            reply = self._client.moderations.create(
                model=self.model, input=self._outbound(text, redact_kinds)
            )
        except openai.OpenAIError as exc:
            raise self._error(exc) from exc
        if not reply.results:
            raise ProviderError("the moderation reply held no result", retryable=True, provider=self.name)
        result = reply.results[0]
        flags = _as_dict(result.categories)
        values = _as_dict(result.category_scores)
        scores: dict[str, float] = {}
        for label, ours in OPENAI_MAP.items():
            if flags.get(label):
                score = max(float(values.get(label) or 0.0), HIT)
                scores[ours] = max(scores.get(ours, 0.0), min(score, 1.0))
        return self._finish(text, scores, lines, veils)


def _as_dict(obj: Any) -> dict[str, Any]:
    if obj is None:
        return {}
    if hasattr(obj, "model_dump"):
        data = obj.model_dump(by_alias=True)
        # Extra keys the SDK does not model arrive as-is; aliases cover "self-harm/intent" etc.
        extra = getattr(obj, "model_extra", None) or {}
        return {**data, **extra}
    return dict(obj)


_CODES = re.compile(r"\bS(1[0-4]|[1-9])\b")


def llama_guard_prompt(text: str, role: str = "User") -> str:
    """Llama Guard 3's own prompt (Meta's model card), for servers that do not apply the model's
    chat template themselves (GTW_MODERATION_PROMPT=full)."""
    categories = "\n".join(f"{code}: {name}" for code, name in LLAMA_GUARD_NAMES.items())
    return (
        "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n"
        f"Task: Check if there is unsafe content in '{role}' messages in conversations according to our "
        "safety policy with the below categories.\n\n"
        f"<BEGIN UNSAFE CONTENT CATEGORIES>\n{categories}\n<END UNSAFE CONTENT CATEGORIES>\n\n"
        f"<BEGIN CONVERSATION>\n\n{role}: {text}\n\n<END CONVERSATION>\n\n"
        f"Provide your safety assessment for ONLY THE LAST {role} message in the above conversation:\n"
        " - First line must read 'safe' or 'unsafe'.\n"
        " - If unsafe, a second line must include a comma-separated list of violated categories."
        "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
    )


def parse_llama_guard(reply: str) -> list[str]:
    """The hazard codes of a Llama Guard reply ("safe" → []; "unsafe\\nS1,S10" → ["S1", "S10"]).
    Raises ValueError for anything else."""
    lines = [line.strip() for line in (reply or "").strip().splitlines() if line.strip()]
    if not lines:
        raise ValueError("empty reply")
    verdict = lines[0].lower()
    if verdict == "safe":
        return []
    if not verdict.startswith("unsafe"):
        raise ValueError(f"expected 'safe' or 'unsafe', got {clip(lines[0], 40)!r}")
    rest = " ".join([lines[0][6:], *lines[1:]])
    codes = [f"S{n}" for n in _CODES.findall(rest)]
    return list(dict.fromkeys(codes)) or ["S1"]  # "unsafe" with no code: still unsafe


class LlamaGuardModeration(_Remote):
    """Llama Guard 3 through /v1/chat/completions. With `prompt="template"` (the default, what
    vLLM and Ollama do with the model's own chat template) the conversation is sent as messages;
    with `prompt="full"` the whole Llama Guard prompt goes as one message."""

    name = "openai_compatible"

    def __init__(self, *, prompt: str = "template", **kwargs: Any) -> None:
        if not kwargs.get("base_url"):
            raise ProviderError(
                "no server address configured — set GTW_MODERATION_BASE_URL, e.g. http://localhost:11434/v1",
                retryable=False,
                provider=self.name,
            )
        super().__init__(**kwargs)
        self.prompt = prompt

    def _messages(self, text: str, role: str) -> list[dict[str, str]]:
        if self.prompt == "full":
            who = "Agent" if role == "assistant" else "User"
            return [{"role": "user", "content": llama_guard_prompt(text, who)}]
        if role == "assistant":
            return [
                {"role": "user", "content": "Continue the story."},
                {"role": "assistant", "content": text},
            ]
        return [{"role": "user", "content": text}]

    def classify(
        self,
        text: str,
        *,
        lines: Iterable[str] = (),
        veils: Iterable[str] = (),
        role: str = "user",
        redact_kinds: Iterable[str] | None = None,
    ) -> Verdict:
        import openai

        if not text.strip():
            return Verdict(provider=self.name)
        try:
            reply = self._client.chat.completions.create(
                model=self.model,
                messages=self._messages(self._outbound(text, redact_kinds), role),
                max_tokens=20,
                temperature=0,
            )
        except openai.OpenAIError as exc:
            raise self._error(exc) from exc
        if reply.usage is not None:
            self.last_usage = Usage(reply.usage.prompt_tokens or 0, reply.usage.completion_tokens or 0)
        content = reply.choices[0].message.content if reply.choices else ""
        try:
            codes = parse_llama_guard(content or "")
        except ValueError as exc:
            raise ProviderError(
                f"unexpected Llama Guard reply: {exc}", retryable=False, provider=self.name
            ) from exc
        scores = {LLAMA_GUARD_MAP[c]: HIT for c in codes if c in LLAMA_GUARD_MAP}
        return self._finish(text, scores, lines, veils)
