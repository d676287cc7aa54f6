"""Which of the world's NPCs the running mission still needs, so the simulation never kills
them off-screen. Pure: a compiled mission AST and its runtime state (missions.runtime) in, ids
out.

The mission's NPCs are named people (`npc vex "Vex Morrow" {...}`); the simulated world's NPCs
are anonymous entries of `world["npcs"]`. A mission NPC *stands for* one world NPC, bound by a
hash: the first living entry at or after SHA-256 of `<mission slug>/<npc id>` modulo the world's
size (`bind`). Dead entries never revive, and a protected entry never dies, so the binding stays
the same for as long as the mission needs the NPC.

The mission still needs an NPC while it runs (status `active`) and the NPC can still matter: it
is present throughout (no `in scene`), stands in the current scene or in the scene of an
objective that is still open (active or hidden), or an open objective's text names it (its id,
its full name, or a word of its name of four letters or more). Needing too many is harmless (a
death is only ever held back); needing too few would let the world kill someone the story
still has a scene for.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

OPEN = ("active", "hidden")
NAME_WORD_MIN = 4


def needed_npcs(ast: Mapping[str, Any] | None, state: Mapping[str, Any] | None) -> tuple[str, ...]:
    """The keys (`<slug>/<npc id>`) of the NPCs the running mission still needs, sorted."""
    if not ast or not state or state.get("status") != "active":
        return ()
    objectives = state.get("objectives") or {}
    still_open = [o for o in ast.get("objectives") or () if objectives.get(o["id"], "hidden") in OPEN]
    scenes = {state.get("scene")} | {o.get("scene") for o in still_open}
    scenes.discard(None)
    text = " ".join(str(o.get("text") or "") for o in still_open).lower()
    keys = set()
    for npc in ast.get("npcs") or ():
        where = set(npc.get("scenes") or ())
        if not where or where & scenes or _named(npc, text):
            keys.add(f"{ast.get('slug', '')}/{npc['id']}")
    return tuple(sorted(keys))


def _named(npc: Mapping[str, Any], text: str) -> bool:
    if not text:
        return False
    name = str(npc.get("name") or "").lower()
    words = {str(npc["id"]).lower(), name} | {w for w in re.findall(r"\w+", name) if len(w) >= NAME_WORD_MIN}
    return any(re.search(rf"(?<!\w){re.escape(w)}(?!\w)", text) for w in words if w)


def bind(key: str, npcs: Sequence[Mapping[str, Any]]) -> int | None:
    """The world NPC `key` stands for: the first living one at or after its hash position
    (None in a world where nobody lives)."""
    n = len(npcs)
    if n == 0:
        return None
    start = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") % n
    for offset in range(n):
        index = (start + offset) % n
        if npcs[index].get("alive", True):
            return index
    return None


def protected_indices(keys: Iterable[str], npcs: Sequence[Mapping[str, Any]]) -> tuple[int, ...]:
    """The world NPC indices the mission's needed NPCs (`needed_npcs`) stand for, sorted."""
    return tuple(sorted({i for key in keys if (i := bind(key, npcs)) is not None}))
