"""Embedder adapter for OpenAI's Embeddings API (and servers that copy it), via the official SDK."""

from __future__ import annotations

from collections.abc import Sequence

import openai

from gtw_site import redact, telemetry
from gtw_site.providers import ProviderError, Usage, clip, error_detail, safe_url, status_error
from memory.embeddings.base import normalise


class OpenAIEmbedder:
    # text-embedding-3-* shorten their vectors server-side when asked; ada-002 and most
    # OpenAI-compatible servers reject or ignore the option, so a subclass can turn it off.
    send_dimensions = True

    def __init__(
        self,
        *,
        model: str = "text-embedding-3-small",
        api_key: str,
        base_url: str | None = None,
        dimensions: int = 384,
        timeout: float = 30.0,
        batch_size: int = 128,
        name: str = "openai",
    ) -> None:
        self.name = name
        self.model = model
        self.dimensions = dimensions
        # Settings hand over "" for unset; the SDK would take that as the URL itself.
        self.base_url = base_url or None
        self.timeout = timeout
        # OpenAI takes up to 2,048 inputs per request; smaller batches keep one failure cheap.
        self.batch_size = max(1, batch_size)
        self.last_usage = Usage()
        # GTW_REDACT: PII blanked out of every text sent (the vendor's API is remote; a server
        # on this machine or the LAN gets the original text unless GTW_REDACT_LOCAL).
        self._redaction = redact.configured()
        self._outbound = self._redaction.for_destination(remote=self._is_remote())
        try:
            # max_retries=0: the caller decides on a retry from ProviderError.retryable; SDK
            # retries underneath would multiply the wait before the error surfaces.
            # An unset key arrives as "": let the SDK refuse it now rather than a 401 later.
            self._client = openai.OpenAI(
                api_key=api_key or None, base_url=self.base_url, timeout=timeout, max_retries=0
            )
        except openai.OpenAIError as exc:
            raise ProviderError(
                f"no API key configured — {self._key_hint()}", retryable=False, provider=self.name
            ) from exc

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if isinstance(texts, str):
            raise TypeError("embed() takes a sequence of texts, not a single string")
        vectors: list[list[float]] = [[0.0] * self.dimensions for _ in texts]
        # The API refuses an empty string outright (400 for the whole batch); a blank text
        # has no meaning to place, so it keeps the zero vector and is never sent.
        wanted = [i for i, text in enumerate(texts) if text.strip()]
        tokens = 0
        for start in range(0, len(wanted), self.batch_size):
            indices = wanted[start : start + self.batch_size]
            batch, used = self._request([texts[i] for i in indices])
            tokens += used
            for index, vector in zip(indices, batch, strict=True):
                vectors[index] = vector
        self.last_usage = Usage(tokens_in=tokens)
        return vectors

    def _request(self, batch: list[str]) -> tuple[list[list[float]], int]:
        # The campaign's own redaction switch, where the call serves one (issue 18).
        outbound = redact.outbound_for(self._outbound, telemetry.current_scope().get("campaign_id"))
        params: dict = {"model": self.model, "input": [redact.redact(text, outbound) for text in batch]}
        if self.send_dimensions:
            params["dimensions"] = self.dimensions
        # encoding_format is left to the SDK: it asks for base64 (a third of the bytes of
        # JSON floats) and decodes it, and passes floats through from servers that ignore it.
        try:
            response = self._client.embeddings.create(**params)
        except openai.OpenAIError as exc:
            raise self._error(exc) from exc
        except ValueError as exc:
            # The SDK's own parser raises this for a 200 without any `data`.
            raise ProviderError(
                f"the server sent no embeddings ({exc})", retryable=False, provider=self.name
            ) from exc
        data = sorted(response.data or (), key=lambda item: item.index)
        if [item.index for item in data] != list(range(len(batch))):
            raise ProviderError(
                f"the server returned {len(data)} embeddings for {len(batch)} inputs",
                retryable=False,
                provider=self.name,
            )
        widths = {len(item.embedding) for item in data}
        if widths != {self.dimensions}:
            got = ", ".join(str(width) for width in sorted(widths))
            raise ProviderError(
                f"the model '{self.model}' returned {got}-dimensional vectors, but {self.dimensions} "
                "are configured — pick a model that supports that size (text-embedding-3-*), or "
                "set the embedding dimensions to match; stored memories must all share one size",
                retryable=False,
                provider=self.name,
            )
        usage = response.usage
        return normalise(item.embedding for item in data), (usage.prompt_tokens or 0) if usage else 0

    def _key_hint(self) -> str:
        return "check OPENAI_API_KEY"

    def _is_remote(self) -> bool:
        # OpenAI's API, or a gateway in front of it: text leaves the site.
        return True

    def _where(self) -> str:
        return safe_url(self.base_url) if self.base_url else "the OpenAI API"  # no credentials

    def _error(self, exc: openai.OpenAIError) -> ProviderError:
        if isinstance(exc, openai.APITimeoutError):
            return ProviderError(
                f"timed out after {float(self.timeout)}s", retryable=True, provider=self.name
            )
        if isinstance(exc, openai.APIConnectionError):
            return ProviderError(f"could not connect to {self._where()}", retryable=True, provider=self.name)
        if isinstance(exc, openai.APIStatusError):
            status = exc.status_code
            if status == 429 and exc.code == "insufficient_quota":
                # Same status as a rate limit, but waiting will not help.
                return ProviderError(
                    "out of credit (429) — check the account's billing",
                    retryable=False,
                    provider=self.name,
                    status=429,
                )
            detail = redact.redact(error_detail(exc.body) or exc.message, self._redaction.kinds)
            return status_error(self.name, status, detail, auth=self._key_hint(), model=self.model)
        return ProviderError(
            f"client error: {clip(redact.redact(str(exc), self._redaction.kinds))}",
            retryable=False,
            provider=self.name,
        )
