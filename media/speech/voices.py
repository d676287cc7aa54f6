"""Which voice speaks. Pure: no Django.

Offline, the one bundled piper voice (en_US joe, medium) becomes seven audibly different voices
by pitch (resampled), speed (piper's length_scale) and expressiveness (noise scales). A GM
personality's `tts_profile` ({"voice": "low", "rate": 0.95}) picks the GM's; an NPC's DSL
`voice` line ("Soft and formal; …") picks one by its first descriptive word, and an NPC without
one gets a stable hash of its id — never the GM's voice, so the table can tell them apart. A
name that is not in the catalogue is a piper voice file in GTW_TTS_VOICES_DIR
(`<name>.onnx` + `<name>.onnx.json`); remote providers map each catalogue voice to one of theirs.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

from media.speech.base import Voice

GM_DEFAULT = "narrator"

CATALOGUE: dict[str, Voice] = {
    voice.key: voice
    for voice in (
        Voice("narrator"),
        Voice("low", pitch=0.84, length_scale=1.06, noise_scale=0.6),
        Voice("bright", pitch=1.17, length_scale=0.95, noise_scale=0.75),
        Voice("dry", pitch=0.95, length_scale=0.98, noise_scale=0.35, noise_w=0.5),
        Voice("quick", pitch=1.07, length_scale=0.8),
        Voice("gravel", pitch=0.76, length_scale=1.12, noise_w=1.0),
        Voice("soft", pitch=1.1, length_scale=1.14, volume=0.8),
    )
}

# What each catalogue voice is called by OpenAI-style speech APIs.
OPENAI_VOICES = {
    "narrator": "alloy",
    "low": "onyx",
    "bright": "nova",
    "dry": "echo",
    "quick": "shimmer",
    "gravel": "ash",
    "soft": "sage",
}

NPC_POOL = ("low", "bright", "quick", "gravel", "soft", "dry")

# The first of these words in an NPC's `voice` description picks the voice.
_WORDS = {
    "soft": "soft",
    "gentle": "soft",
    "quiet": "soft",
    "whisper": "soft",
    "formal": "soft",
    "gravel": "gravel",
    "rough": "gravel",
    "hoarse": "gravel",
    "growl": "gravel",
    "rasp": "gravel",
    "old": "gravel",
    "deep": "low",
    "low": "low",
    "slow": "low",
    "boom": "low",
    "drawl": "low",
    "quick": "quick",
    "fast": "quick",
    "clipped": "quick",
    "rapid": "quick",
    "nervous": "quick",
    "brisk": "quick",
    "bright": "bright",
    "young": "bright",
    "cheer": "bright",
    "high": "bright",
    "eager": "bright",
    "dry": "dry",
    "flat": "dry",
    "monotone": "dry",
    "wry": "dry",
}
_WORD_RE = re.compile(r"[a-z]+")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,80}$")


def named(name: str, *, rate: float = 1.0) -> Voice:
    """A voice by name: a catalogue voice, else a piper voice file of that name (the local
    adapter falls back to the bundled voice, and `gtw doctor` names the file, if it is missing)."""
    base = CATALOGUE.get(name)
    if base is None:
        base = Voice(name, model=name) if _NAME_RE.match(name or "") else CATALOGUE[GM_DEFAULT]
    return _with_rate(base, rate)


def gm_voice(profile: Mapping[str, Any] | None, override: str | None = None) -> Voice:
    """The GM's voice: a campaign's chosen voice (`override`), else the personality's
    tts_profile, else the narrator."""
    profile = profile or {}
    rate = _rate(profile.get("rate"))
    name = override or profile.get("voice") or GM_DEFAULT
    return named(str(name), rate=rate)


def npc_voice(npc_id: str, description: str | None = None, *, gm_key: str = GM_DEFAULT) -> Voice:
    """An NPC's voice: the catalogue name or descriptive word its `voice` line starts with, else
    a stable hash of its id. Never the GM's voice."""
    if description:
        text = description.strip()
        if text in CATALOGUE and text != gm_key:
            return CATALOGUE[text]
        for word in _WORD_RE.findall(text.lower()):
            for stem, key in _WORDS.items():
                if word.startswith(stem) and key != gm_key:
                    return CATALOGUE[key]
    pool = [key for key in NPC_POOL if key != gm_key]
    digest = hashlib.sha256(f"npc:{npc_id}".encode()).digest()
    return CATALOGUE[pool[int.from_bytes(digest[:4], "big") % len(pool)]]


def _rate(value: Any) -> float:
    try:
        rate = float(value)
    except (TypeError, ValueError):
        return 1.0
    return min(2.0, max(0.5, rate))


def _with_rate(voice: Voice, rate: float) -> Voice:
    if abs(rate - 1.0) < 1e-3:
        return voice
    return Voice(
        voice.key,
        model=voice.model,
        speaker=voice.speaker,
        length_scale=voice.length_scale / rate,
        pitch=voice.pitch,
        noise_scale=voice.noise_scale,
        noise_w=voice.noise_w,
        volume=voice.volume,
    )
