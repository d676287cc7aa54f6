"""A content pack's game files (campaigns.signals.pack_loaded): its missions and signed story
decks, installed by the apps that own them. campaigns loads the pack itself and never imports
these."""

from __future__ import annotations

from pathlib import Path

from campaigns.errors import Invalid
from campaigns.models import ContentPack
from missions.services import MissionInvalid, mission_install
from narrative.services import deck_install


def on_pack_loaded(sender, *, pack: ContentPack, folder: Path, **kwargs) -> list[str]:
    """The pack's missions (*.mission) and signed story decks (decks/*.json). A mission that
    doesn't compile or a deck that doesn't verify is reported and skipped, never installed."""
    changed = []
    for path in sorted(folder.glob("missions/*.mission")):
        try:
            mission, created = mission_install(
                source=path.read_text(encoding="utf-8"), filename=path.name, pack=pack
            )
        except (MissionInvalid, UnicodeDecodeError) as exc:
            changed.append(f"mission {path.name} NOT installed: {exc}")
            continue
        if created:
            changed.append(f"mission {mission.slug} {mission.content_hash[:12]}")
    for path in sorted(folder.glob("decks/*.json")):
        if path.name == "trusted_keys.json":
            continue
        try:
            deck, was_changed = deck_install(document=path.read_bytes(), pack=pack)
        except Invalid as exc:
            changed.append(f"deck {path.name} NOT installed: {exc}")
            continue
        if was_changed:
            changed.append(f"deck {deck.slug} {deck.version}")
    return changed
