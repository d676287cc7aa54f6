"""What the speech adapters take and return. Pure: no Django, no vendor SDK."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

SAMPLE_RATE_STT = 16_000  # what Whisper listens at


@dataclass(frozen=True)
class Utterance:
    """One push of the talk button: the bytes as recorded and the same audio decoded to 16 kHz
    mono float32 (decoding checks the bytes are audio and measures them before any model runs)."""

    data: bytes
    content_type: str
    samples: np.ndarray
    duration_s: float
    level_dbfs: float  # loudness of the loudest stretch (see audio.loudness_dbfs)

    @property
    def filename(self) -> str:
        """A name whose extension tells a remote API the container."""
        return "speech." + container_extension(self.content_type)


@dataclass(frozen=True)
class Transcript:
    text: str  # "" when nothing was heard (never a made-up sentence)
    language: str = "en"


@dataclass(frozen=True)
class Voice:
    """A provider voice: which model/name speaks, and how (piper variations; OpenAI speed)."""

    key: str  # the catalogue name ("gm", "low", "bright", a voices-folder file, an OpenAI name)
    model: str = ""  # piper: the voice file stem ("" = the bundled voice); OpenAI: its voice name
    speaker: int | None = None
    length_scale: float = 1.0  # > 1 speaks slower
    pitch: float = 1.0  # > 1 higher (resampled, with the length scaled back)
    noise_scale: float | None = None
    noise_w: float | None = None
    volume: float = 1.0
    extra: dict = field(default_factory=dict, compare=False)

    def fingerprint(self) -> str:
        """Everything that changes the sound, for content addressing."""
        return (
            f"{self.model}|{self.speaker}|{self.length_scale:.3f}|{self.pitch:.3f}|"
            f"{self.noise_scale}|{self.noise_w}|{self.volume:.2f}"
        )


@dataclass(frozen=True)
class Speech:
    """Synthesised audio: a complete file a browser can decode."""

    audio: bytes
    content_type: str  # "audio/wav", "audio/mpeg", …
    duration_s: float

    @property
    def extension(self) -> str:
        return container_extension(self.content_type)


class SpeechToText(Protocol):
    name: str
    model: str

    def transcribe(self, utterance: Utterance) -> Transcript: ...


class TextToSpeech(Protocol):
    name: str
    model: str

    def voice_for(self, voice: Voice) -> Voice: ...

    def synthesize(self, text: str, voice: Voice) -> Speech: ...


_EXTENSIONS = {
    "audio/webm": "webm",
    "video/webm": "webm",
    "audio/ogg": "ogg",
    "audio/mp4": "mp4",
    "video/mp4": "mp4",
    "audio/x-m4a": "m4a",
    "audio/aac": "aac",
    "audio/mpeg": "mp3",
    "audio/wav": "wav",
    "audio/x-wav": "wav",
    "audio/wave": "wav",
    "audio/flac": "flac",
}


def container_extension(content_type: str) -> str:
    return _EXTENSIONS.get(content_type.split(";")[0].strip().lower(), "webm")
