"""STT and TTS `openai` (POST /v1/audio/transcriptions, POST /v1/audio/speech) and
`openai_compatible` (the same wire format at any base URL: speaches, LocalAI, a whisper.cpp or
Kokoro server), through the official SDK.

Failures become ProviderError with the vendor's reason and a retry hint; base URLs are shown
without credentials. Narration text sent to a remote voice is redacted like chat text
(GTW_REDACT; a server on this machine or the LAN gets it unredacted unless GTW_REDACT_LOCAL).
"""

from __future__ import annotations

import openai

from gtw_site import redact
from gtw_site.providers import ProviderError, clip, error_detail, safe_url, status_error
from media.speech.audio import wav_duration
from media.speech.base import Speech, Transcript, Utterance, Voice
from media.speech.voices import OPENAI_VOICES

_CONTENT_TYPES = {"wav": "audio/wav", "mp3": "audio/mpeg", "opus": "audio/ogg", "flac": "audio/flac"}


class _OpenAIAudio:
    name = "openai"

    def __init__(
        self, *, model: str, api_key: str, base_url: str | None = None, timeout: float = 15.0, name: str = ""
    ) -> None:
        self.name = name or self.name
        self.model = model
        self.base_url = base_url or None
        self.timeout = timeout
        self._redaction = redact.configured()
        try:
            # max_retries=0: a push-to-talk player is waiting; the caller decides on a retry.
            self._client = openai.OpenAI(
                api_key=api_key or None, base_url=self.base_url, timeout=timeout, max_retries=0
            )
        except openai.OpenAIError as exc:
            raise ProviderError(
                f"no API key configured — {self._key_hint()}", retryable=False, provider=self.name
            ) from exc

    def _key_hint(self) -> str:
        return "check OPENAI_API_KEY"

    def _is_remote(self) -> bool:
        return True

    def _where(self) -> str:
        return safe_url(self.base_url) if self.base_url else "the OpenAI API"

    def _error(self, exc: openai.OpenAIError) -> ProviderError:
        if isinstance(exc, openai.APITimeoutError):
            return ProviderError(
                f"timed out after {float(self.timeout)}s", retryable=True, provider=self.name
            )
        if isinstance(exc, openai.APIConnectionError):
            return ProviderError(f"could not connect to {self._where()}", retryable=True, provider=self.name)
        if isinstance(exc, openai.APIStatusError):
            detail = redact.redact(error_detail(exc.body) or exc.message, self._redaction.kinds)
            return status_error(self.name, exc.status_code, detail, auth=self._key_hint(), model=self.model)
        return ProviderError(
            f"client error: {clip(redact.redact(str(exc), self._redaction.kinds))}",
            retryable=False,
            provider=self.name,
        )


class OpenAISpeechToText(_OpenAIAudio):
    def transcribe(self, utterance: Utterance) -> Transcript:
        try:
            result = self._client.audio.transcriptions.create(
                model=self.model,
                file=(utterance.filename, utterance.data, utterance.content_type.split(";")[0]),
                language="en",
                temperature=0.0,
                response_format="json",
            )
        except openai.OpenAIError as exc:
            raise self._error(exc) from exc
        text = result if isinstance(result, str) else getattr(result, "text", None)
        if not isinstance(text, str):
            raise ProviderError("the server sent no transcript", retryable=False, provider=self.name)
        return Transcript(" ".join(text.split()))


class OpenAITextToSpeech(_OpenAIAudio):
    response_format = "wav"  # decodable by every browser, no encoder delay on the server

    def synthesize(self, text: str, voice: Voice) -> Speech:
        kinds = self._redaction.for_destination(remote=self._is_remote())
        speed = min(4.0, max(0.25, 1.0 / (voice.length_scale or 1.0)))
        try:
            response = self._client.audio.speech.create(
                model=self.model,
                voice=OPENAI_VOICES.get(voice.key, voice.model or voice.key),
                input=redact.redact(text, kinds),
                response_format=self.response_format,
                speed=round(speed, 2),
            )
            audio = response.read()
        except openai.OpenAIError as exc:
            raise self._error(exc) from exc
        if not audio:
            raise ProviderError("the server sent no audio", retryable=True, provider=self.name)
        content_type = _CONTENT_TYPES[self.response_format]
        try:
            duration = wav_duration(audio) if self.response_format == "wav" else 0.0
        except Exception as exc:  # wave.Error, EOFError: not the WAV we asked for
            raise ProviderError(
                "the server's audio is not a WAV file", retryable=False, provider=self.name
            ) from exc
        return Speech(audio=audio, content_type=content_type, duration_s=duration)


class _Compatible:
    """The same wire format at any base URL (a local server needs no key)."""

    def __init__(
        self,
        *,
        model: str,
        base_url: str | None,
        api_key: str = "",
        timeout: float = 15.0,
        name: str = "openai_compatible",
    ) -> None:
        if not base_url:
            raise ProviderError(
                "no server address configured — set GTW_SPEECH_BASE_URL, e.g. http://localhost:8000/v1",
                retryable=False,
                provider=name,
            )
        super().__init__(
            model=model, api_key=api_key or "not-needed", base_url=base_url, timeout=timeout, name=name
        )

    def _is_remote(self) -> bool:
        return not redact.is_local_url(self.base_url)

    def _key_hint(self) -> str:
        return f"check GTW_SPEECH_API_KEY for {safe_url(self.base_url or '')}"

    def _where(self) -> str:
        return f"{safe_url(self.base_url or '')} — is the server running?"


class OpenAICompatibleSpeechToText(_Compatible, OpenAISpeechToText):
    name = "openai_compatible"


class OpenAICompatibleTextToSpeech(_Compatible, OpenAITextToSpeech):
    name = "openai_compatible"
