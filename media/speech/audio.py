"""Audio in and out, without Django: decode one utterance with PyAV (the decoder faster-whisper
itself uses) to 16 kHz mono, measure how loud it is, and write WAV files.

Decoding is also the check that the bytes are audio at all: a wrong container, a truncated file
or a text file is an `AudioRefused` with a message for the player, never a 500.
"""

from __future__ import annotations

import io
import wave

import numpy as np

from media.speech.base import SAMPLE_RATE_STT

# Below this the loudest 50 ms of a recording is room noise, not a voice: Whisper, given
# silence, writes a plausible sentence ("Thank you for watching"), so it never sees it.
SILENCE_DBFS = -45.0
_WINDOW_S = 0.05


class AudioRefused(Exception):
    """The recording cannot be transcribed; `code` for the API, `message` for the player."""

    def __init__(self, code: str, message: str, *, status: int = 422) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def decode(data: bytes, *, max_seconds: float) -> np.ndarray:
    """`data` (any container PyAV reads: webm/opus, ogg, mp4/aac, wav, mp3) as 16 kHz mono
    float32 in [-1, 1]. Refuses empty bytes, bytes that are not audio and recordings longer than
    `max_seconds` (decoding stops there: a long recording costs no more than the cap)."""
    if not data:
        raise AudioRefused("empty", "That recording is empty — hold the button while you speak.", status=400)
    import av  # PyAV: imported here so pure callers (the splitter, voices) never load FFmpeg

    limit = int((max_seconds + 0.25) * SAMPLE_RATE_STT)
    chunks: list[np.ndarray] = []
    total = 0
    try:
        container = av.open(io.BytesIO(data), mode="r", metadata_errors="ignore")
    except (av.FFmpegError, ValueError, OSError) as exc:
        raise _not_audio() from exc
    try:
        if not container.streams.audio:
            raise _not_audio()
        resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE_STT)
        try:
            for frame in container.decode(audio=0):
                for out in resampler.resample(frame):
                    chunk = out.to_ndarray().reshape(-1)
                    chunks.append(chunk)
                    total += chunk.size
                if total > limit:
                    raise AudioRefused(
                        "too_long",
                        f"That recording is longer than {max_seconds:g} seconds — say it in shorter pieces.",
                        status=413,
                    )
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1))
        except av.FFmpegError as exc:
            # A recording cut off mid-frame (the tab closed) still has its start: keep it.
            if not chunks:
                raise _not_audio() from exc
    finally:
        container.close()
    if not chunks:
        raise AudioRefused("empty", "That recording has no sound in it — hold the button while you speak.")
    samples = np.concatenate(chunks).astype(np.float32) / 32768.0
    if samples.size == 0:
        raise AudioRefused("empty", "That recording has no sound in it — hold the button while you speak.")
    return samples


def _not_audio() -> AudioRefused:
    return AudioRefused(
        "not_audio",
        "That is not a recording this server can read (send webm/opus, ogg, mp4/aac, mp3 or wav).",
        status=415,
    )


def loudness_dbfs(samples: np.ndarray, rate: int = SAMPLE_RATE_STT) -> float:
    """The loudness of the loudest 50 ms window, in dB below full scale (-inf for digital
    silence). The loudest window, not the mean: a short "go left" in a long press is speech."""
    if samples.size == 0:
        return float("-inf")
    window = max(1, int(rate * _WINDOW_S))
    usable = samples[: samples.size - samples.size % window] if samples.size >= window else samples
    frames = usable.reshape(-1, window) if usable.size >= window else usable.reshape(1, -1)
    rms = np.sqrt(np.mean(np.square(frames.astype(np.float64)), axis=1))
    peak = float(rms.max())
    return 20.0 * np.log10(peak) if peak > 0 else float("-inf")


def is_silent(samples: np.ndarray, rate: int = SAMPLE_RATE_STT) -> bool:
    return loudness_dbfs(samples, rate) < SILENCE_DBFS


def wav_bytes(samples: np.ndarray, rate: int) -> bytes:
    """Mono 16-bit PCM WAV: every browser's decodeAudioData reads it, no encoder needed."""
    pcm = np.clip(samples, -1.0, 1.0)
    pcm16 = (pcm * 32767.0).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm16.tobytes())
    return buffer.getvalue()


def wav_duration(data: bytes) -> float:
    with wave.open(io.BytesIO(data), "rb") as wav:
        return wav.getnframes() / float(wav.getframerate() or 1)


def shift_pitch(samples: np.ndarray, factor: float) -> np.ndarray:
    """Raise (factor > 1) or lower the pitch by resampling; the audio gets `factor` times
    shorter, so callers slow the voice by the same factor first (piper's length_scale)."""
    if abs(factor - 1.0) < 1e-3 or samples.size < 2:
        return samples
    length = max(2, round(samples.size / factor))
    positions = np.linspace(0, samples.size - 1, length)
    return np.interp(positions, np.arange(samples.size), samples).astype(np.float32)
