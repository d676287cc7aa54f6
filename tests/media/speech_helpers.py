"""Recordings for the speech tests, made at test time by the bundled piper voice and encoded
the way a browser's MediaRecorder sends them (webm/opus), plus silence and noise."""

from __future__ import annotations

import dataclasses
import functools
import io

import av
import numpy as np

from media.speech import voices
from media.speech.audio import wav_bytes


@functools.cache
def _tts():
    from media.speech.tts_local import LocalTextToSpeech

    return LocalTextToSpeech()


@functools.cache
def spoken_wav(text: str, voice: str = "narrator") -> bytes:
    # Noise off: piper samples it at random, and a test must hear the same audio every run.
    quiet = dataclasses.replace(voices.CATALOGUE[voice], noise_scale=0.0, noise_w=0.0)
    return _tts().synthesize(text, quiet).audio


def encode(samples: np.ndarray, rate: int, container: str = "webm", codec: str = "libopus") -> bytes:
    """Mono float samples as a file, the way MediaRecorder would send them."""
    out = io.BytesIO()
    with av.open(out, mode="w", format=container) as box:
        stream = box.add_stream(codec, rate=48000 if codec == "libopus" else rate)
        stream.layout = "mono"
        resampler = av.AudioResampler(format=stream.format.name, layout="mono", rate=stream.rate)
        frame = av.AudioFrame.from_ndarray(
            (np.clip(samples, -1, 1) * 32767).astype(np.int16).reshape(1, -1), format="s16", layout="mono"
        )
        frame.sample_rate = rate
        for resampled in resampler.resample(frame):
            for packet in stream.encode(resampled):
                box.mux(packet)
        for packet in stream.encode(None):
            box.mux(packet)
    return out.getvalue()


def wav_samples(data: bytes) -> tuple[np.ndarray, int]:
    import wave

    with wave.open(io.BytesIO(data), "rb") as wav:
        rate = wav.getframerate()
        pcm = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    return pcm.astype(np.float32) / 32768.0, rate


def spoken_webm(text: str, voice: str = "narrator") -> bytes:
    samples, rate = wav_samples(spoken_wav(text, voice))
    return encode(samples, rate)


def silence_webm(seconds: float = 2.0, level: float = 0.0) -> bytes:
    rate = 48000
    rng = np.random.default_rng(7)
    samples = (rng.standard_normal(int(seconds * rate)) * level).astype(np.float32)
    return encode(samples, rate)


def silence_wav(seconds: float = 2.0) -> bytes:
    return wav_bytes(np.zeros(int(seconds * 16000), dtype=np.float32), 16000)
