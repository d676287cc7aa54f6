"""Narrator adapter for servers that speak OpenAI's Chat Completions dialect.

Ollama, vLLM, llama.cpp's server, xAI and Gemini's OpenAI endpoint all accept the same
requests as OpenAI, minus a few options; this adapter sends only the common subset.
"""

from __future__ import annotations

from gtw_site import redact
from gtw_site.providers import ProviderError, safe_url
from narrative.llm.openai import OpenAIChatProvider


class OpenAICompatibleProvider(OpenAIChatProvider):
    # Several servers answer 400 to `stream_options`; usage then stays 0 unless the server
    # volunteers it on its own.
    send_stream_options = False
    max_tokens_param = "max_tokens"

    def __init__(
        self,
        *,
        model: str,
        base_url: str,
        api_key: str = "",
        timeout: float = 30.0,
        name: str = "openai_compatible",
    ) -> None:
        if not base_url:
            raise ProviderError(
                "no server address configured — set the base URL, e.g. http://localhost:11434/v1",
                retryable=False,
                provider=name,
            )
        # Local servers need no key, but the SDK refuses to start without one.
        super().__init__(
            model=model, api_key=api_key or "not-needed", base_url=base_url, timeout=timeout, name=name
        )

    # Base URLs may carry credentials (http://user:pass@host, ?api_key=…): messages show
    # only scheme, host and path.
    def _is_remote(self) -> bool:
        # Ollama or vLLM on this machine or the LAN keeps text on site; xAI or Gemini does not.
        return not redact.is_local_url(self.base_url)

    def _key_hint(self) -> str:
        return f"check the API key configured for {safe_url(self.base_url or '')}"

    def _where(self) -> str:
        return f"{safe_url(self.base_url or '')} — is the server running?"
