"""The `stt` and `tts` provider kinds, each one declaration on the generic registry.

Domain code asks for the role ("stt", "tts"), never a vendor (GTW_STT_PROVIDER /
GTW_TTS_PROVIDER: local | openai | openai_compatible). Local models load once per process per
model folder (`cache_key`); every transcribe/synthesize call leaves a telemetry row.
Adding a provider = one adapter class + one line in `providers` + its contract test.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from gtw_site.providers.registry import CALL, Choice, Registry


def _vendor(choice: Choice) -> dict[str, Any]:
    return choice.conf[choice.provider] if choice.provider in ("openai", "openai_compatible") else {}


def _stt_arguments(choice: Choice) -> dict[str, Any]:
    if choice.provider == "local":
        return {"model_dir": choice.conf["stt_model_dir"], "threads": 1}
    vendor = _vendor(choice)
    return {
        "model": vendor["stt_model"],
        "api_key": vendor["api_key"],
        "base_url": vendor["base_url"],
        "timeout": choice.timeout,
    }


def _tts_arguments(choice: Choice) -> dict[str, Any]:
    if choice.provider == "local":
        return {"voices_dir": choice.conf["voices_dir"], "threads": 1}
    vendor = _vendor(choice)
    return {
        "model": vendor["tts_model"],
        "api_key": vendor["api_key"],
        "base_url": vendor["base_url"],
        "timeout": choice.timeout,
    }


def _cache_key(choice: Choice) -> tuple:
    vendor = _vendor(choice)
    return (
        choice.role,
        choice.conf["stt_model_dir"],
        choice.conf["voices_dir"],
        choice.timeout,
        tuple(sorted((k, str(v)) for k, v in vendor.items())),
    )


STT = Registry(
    "stt",
    roles=("stt",),
    providers={
        "local": "media.speech.stt_local:LocalSpeechToText",
        "openai": "media.speech.remote:OpenAISpeechToText",
        "openai_compatible": "media.speech.remote:OpenAICompatibleSpeechToText",
    },
    settings=lambda: settings.GTW_SPEECH,
    choose=lambda role, conf: conf["stt"]["provider"],
    timeout=lambda role, conf: conf["stt"]["timeout"],
    arguments=_stt_arguments,
    cache_key=_cache_key,
    calls={"transcribe": CALL},
)

TTS = Registry(
    "tts",
    roles=("tts",),
    providers={
        "local": "media.speech.tts_local:LocalTextToSpeech",
        "openai": "media.speech.remote:OpenAITextToSpeech",
        "openai_compatible": "media.speech.remote:OpenAICompatibleTextToSpeech",
    },
    settings=lambda: settings.GTW_SPEECH,
    choose=lambda role, conf: conf["tts"]["provider"],
    timeout=lambda role, conf: conf["tts"]["timeout"],
    arguments=_tts_arguments,
    cache_key=_cache_key,
    calls={"synthesize": CALL},
)


def stt():
    return STT.get("stt")


def tts():
    return TTS.get("tts")


def reset() -> None:
    STT.reset()
    TTS.reset()
