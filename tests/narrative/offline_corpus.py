"""Turn contexts built from the starter missions, for the offline narrator's answer and grammar tests.

Pure: the missions are compiled from their files and described by the mission runtime, the way
narrative.turns.build_context hands them to the narrator (mission view, lore, world, memories),
with no database.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from missions import runtime
from missions.dsl import compile_source
from narrative.llm.base import ChatRequest, Message, TextDelta, ToolCallEvent
from narrative.llm.offline import OfflineNarrator

ROOT = Path(__file__).resolve().parents[2]
MISSIONS = ROOT / "content" / "packs" / "starter" / "missions"


@cache
def pack() -> dict:
    return json.loads((ROOT / "content" / "packs" / "starter" / "pack.json").read_text(encoding="utf-8"))


@cache
def mission(slug: str) -> dict:
    return compile_source((MISSIONS / f"{slug}.mission").read_text(encoding="utf-8"), f"{slug}.mission").ast


def slugs() -> list[str]:
    return sorted(p.stem for p in MISSIONS.glob("*.mission"))


def scenes() -> list[tuple[str, str]]:
    return [(slug, s["id"]) for slug in slugs() for s in mission(slug)["scenes"]]


def view_and_lore(slug: str, scene: str, *, clocks: dict | None = None) -> tuple[dict, dict]:
    ast = mission(slug)
    state = runtime.initial_state(ast, beat="inciting")
    state["scene"] = scene
    # Objectives in earlier scenes are done, those of this scene are open (as in play).
    order = [s["id"] for s in ast["scenes"]]
    for obj in ast["objectives"]:
        where = obj["scene"]
        if where is not None and order.index(where) < order.index(scene):
            state["objectives"][obj["id"]] = "complete"
    state["clocks"].update(clocks or {})
    view = runtime.describe(ast, state)
    for ob in view["objectives"]:
        ob["blocked_by"] = [r for r in ob["blocked_by"] if state["objectives"].get(r) != "complete"]
    present = {n["id"] for n in view["npcs"]}
    node = next(s for s in ast["scenes"] if s["id"] == scene)
    lore = {
        "details": list(node.get("details", [])),
        "npcs": [
            {"id": n["id"], "voice": n.get("voice"), "knows": list(n.get("knows", []))}
            for n in ast["npcs"]
            if n["id"] in present
        ],
    }
    return view, lore


def context(
    text: str,
    slug: str,
    scene: str,
    *,
    tone: str = "grim",
    verbosity: int = 2,
    name: str = "Kira Vance",
    memories: tuple[str, ...] = (),
    recent: tuple[tuple[str, str], ...] = (),
    turn: int = 3,
    clocks: dict | None = None,
) -> dict:
    view, lore = view_and_lore(slug, scene, clocks=clocks)
    return {
        "action": {
            "text": text,
            "actor": "alice",
            "character": {"name": name, "archetype": "Netrunner"},
        },
        "scene": {
            "slug": scene,
            "name": view["scene"]["title"],
            "biome": mission(slug)["biome"],
            "description": view["scene"]["description"],
        },
        "world": pack()["world"],
        "objective": next((o["text"] for o in view["objectives"] if o["status"] == "active"), None),
        "mission": view,
        "lore": lore,
        "memories": list(memories),
        "personality": {"id": "p", "name": "P", "tone": tone, "verbosity": verbosity},
        "recent": [{"type": kind, "text": t} for kind, t in recent],
        "turn": turn,
    }


def run(request: ChatRequest) -> tuple[str, list]:
    events = list(OfflineNarrator().stream(request))
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    return text, [e.call for e in events if isinstance(e, ToolCallEvent)]


def ask(text: str, slug: str, scene: str, *, tools=(), seed: int = 7, **kw) -> tuple[str, list]:
    request = ChatRequest(
        messages=[Message("user", text)],
        tools=list(tools),
        seed=seed,
        context=context(text, slug, scene, **kw),
    )
    return run(request)
