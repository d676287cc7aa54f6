"""Shared by the GM admin tests: a private mission's source, and one that does not compile."""

from __future__ import annotations

from pathlib import Path

STARTER = Path(__file__).resolve().parents[2] / "content" / "packs" / "starter"
VESPER = (STARTER / "missions" / "vesper-relay.mission").read_text()
# The compiler says: mission.mission:3:1: expected 'summary', found 'scene'.
BROKEN = 'mission broken-op "Broken"\nbiome nowhere\nscene a "A" {\n  description 12\n}\n'


def private_mission_source(slug: str, title: str) -> str:
    """The starter pack's Vesper Relay as another mission (its own id and title)."""
    source = VESPER.replace("mission vesper-relay ", f"mission {slug} ", 1)
    return source.replace('"The Silence at Vesper Relay"', f'"{title}"', 1)
