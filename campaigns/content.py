"""Content packs on disk (content/packs/<slug>/pack.json) and GM personality presets."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from django.conf import settings
from django.db import transaction

from campaigns import signals
from campaigns.models import ContentPack, PersonalityPreset

REQUIRED_PACK_KEYS = ("slug", "name", "version", "world", "archetypes")


class PackError(ValueError):
    pass


def read_pack(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise PackError(f"{path}: {exc}") from exc
    missing = [k for k in REQUIRED_PACK_KEYS if k not in data]
    if missing:
        raise PackError(f"{path}: missing keys {', '.join(missing)}")
    loot_file = path.parent / "loot.json"
    if loot_file.exists():
        try:
            data["loot"] = json.loads(loot_file.read_text())
        except ValueError as exc:
            raise PackError(f"{loot_file}: {exc}") from exc
    return data


@transaction.atomic
def content_load(content_dir: Path | None = None) -> list[str]:
    """Install or update every pack and preset under content/. Idempotent; returns what changed."""
    root = Path(content_dir or settings.GTW_CONTENT_DIR)
    changed: list[str] = []
    for pack_file in sorted(root.glob("packs/*/pack.json")):
        data = read_pack(pack_file)
        raw = json.dumps(data, sort_keys=True).encode()
        digest = hashlib.sha256(raw).hexdigest()
        pack, created = ContentPack.objects.get_or_create(
            slug=data["slug"],
            defaults={"name": data["name"], "version": data["version"], "data": data, "sha256": digest},
        )
        if created or pack.sha256 != digest:
            pack.name, pack.version, pack.data, pack.sha256 = data["name"], data["version"], data, digest
            pack.save()
            changed.append(f"pack {pack.slug} {pack.version}")
        changed += _load_pack_game(pack, pack_file.parent)
    presets_file = root / "personality_presets.json"
    if presets_file.exists():
        for preset in json.loads(presets_file.read_text()):
            extra = {
                k: v
                for k, v in preset.items()
                if k not in {"slug", "name", "description", "system_prompt", "tone", "verbosity"}
            }
            values = {
                "name": preset["name"],
                "description": preset.get("description", ""),
                "system_prompt": preset["system_prompt"],
                "tone": preset.get("tone", "wry"),
                "verbosity": preset.get("verbosity", 2),
                "data": extra,
            }
            obj, created = PersonalityPreset.objects.get_or_create(slug=preset["slug"], defaults=values)
            if not created and any(getattr(obj, k) != v for k, v in values.items()):
                for k, v in values.items():
                    setattr(obj, k, v)
                obj.save()
                changed.append(f"preset {obj.slug}")
            elif created:
                changed.append(f"preset {obj.slug}")
    return changed


def _load_pack_game(pack: ContentPack, folder: Path) -> list[str]:
    """The pack's game files (missions, signed story decks) belong to the layers above: each
    installs its own through `signals.pack_loaded` and says what changed (or was refused)."""
    changed: list[str] = []
    for _receiver, lines in signals.pack_loaded.send(sender=ContentPack, pack=pack, folder=folder):
        changed += lines or []
    return changed
