"""What `gtw doctor` says about voice: the stt and tts roles build (models load, keys are set),
and every piper voice a personality or campaign names is in the voices folder — by file name."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings

from gtw_site.providers import ProviderError
from media.speech import voices


def named_voices() -> dict[str, list[str]]:
    """Voice names that are not catalogue voices (so: piper voice files) → who uses them."""
    from campaigns.models import Campaign, PersonalityPreset

    used: dict[str, list[str]] = {}
    for slug, data in PersonalityPreset.objects.values_list("slug", "data"):
        name = ((data or {}).get("tts_profile") or {}).get("voice")
        if isinstance(name, str) and name and name not in voices.CATALOGUE:
            used.setdefault(name, []).append(f"personality '{slug}'")
    for pk, campaign_settings in Campaign.objects.values_list("pk", "settings"):
        name = ((campaign_settings or {}).get("voice") or {}).get("gm")
        if isinstance(name, str) and name and name not in voices.CATALOGUE:
            used.setdefault(name, []).append(f"campaign {pk}")
    return used


def checks() -> list[tuple[bool, str, str]]:
    """(ok, label, detail) lines."""
    from media.speech import registry

    conf = settings.GTW_SPEECH
    lines: list[tuple[bool, str, str]] = []
    for label, kind in (("stt", registry.STT), ("tts", registry.TTS)):
        name = kind.provider_name(label)
        try:
            adapter = kind.build(label)
        except ProviderError as exc:
            lines.append((False, label, str(exc)))
            continue
        except Exception as exc:  # noqa: BLE001 - a model that fails to load, an SDK that fails to import
            lines.append((False, label, f"{name}: {type(exc).__name__}: {exc}"))
            continue
        lines.append((True, label, f"{name} ({adapter.model})"))
    if conf["tts"]["provider"] != "local":
        return lines
    folder = conf["voices_dir"]
    try:
        used = named_voices()
    except Exception as exc:  # noqa: BLE001 - the database check above says why
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        lines.append((False, "voices", f"could not read the personalities (migrated?): {first}"))
        return lines
    missing = []
    for name, users in sorted(used.items()):
        for kind in (".onnx", ".onnx.json"):
            path = Path(folder) / f"{name}{kind}" if folder else None
            if path is None or not path.is_file():
                where = str(path) if path else f"{name}{kind} (GTW_TTS_VOICES_DIR is not set)"
                missing.append(f"{where} — used by {', '.join(users)}")
    if folder and not Path(folder).is_dir():
        lines.append((False, "voices", f"GTW_TTS_VOICES_DIR {folder} is not a folder"))
    elif missing:
        lines.append(
            (
                False,
                "voices",
                "missing voice file " + "; missing ".join(missing) + " (the bundled voice speaks instead)",
            )
        )
    else:
        extra = sorted(p.name[: -len(".onnx")] for p in Path(folder).glob("*.onnx")) if folder else []
        detail = f"{len(voices.CATALOGUE)} offline variations of the bundled voice"
        lines.append((True, "voices", detail + (f" + {', '.join(extra)}" if extra else "")))
    return lines
