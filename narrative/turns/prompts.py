"""The narrator's prompts for a turn, built from its context (context.py, batch.py).

Everything players or content authors wrote (memories, actions, names, mission and world text)
goes in as a fenced data block (narrative/prompts); the templates are the .txt files there.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from narrative import prompts, tablesafety
from narrative.llm.base import Message
from narrative.llm.offline import batch as offline_batch

PROMPTS = Path(prompts.__file__).resolve().parent


@functools.cache
def prompt_template(name: str) -> str:
    return (PROMPTS / name).read_text()


def build_messages(context: dict[str, Any]) -> list[Message]:
    """The narrator's prompt. Everything players or content authors wrote (memories, actions,
    names, mission and world text) goes in as a fenced data block (narrative/prompts)."""
    memories = "\n".join(f"- {m}" for m in context.get("memories") or [])
    system = prompt_template("narrator_system.txt").format(
        personality=(context.get("personality") or {}).get(
            "system_prompt", "You are a fair, vivid game master."
        ),
        data_rule=prompts.DATA_RULE,
        game=prompts.data_block("game", game_text(context)),
        beat=context.get("beat") or "Inciting",
        # Nothing recalled, or nothing sure enough (memory.retrieval.recall_confident).
        memories=prompts.data_block("memories", memories)
        if memories
        else "(nothing that matches: if the action asks about the past, the characters don't recall it)",
        word_limit=context.get("word_limit") or 180,
        intensity=context.get("intensity") or 1.0,
    )
    # The table's lines and veils, and the X-card's steer-away note (issue 18).
    system += tablesafety.prompt_text(context.get("table_safety"))
    if context.get("safety"):  # the campaign's soften categories (narrative/moderation.py)
        system += "\n\n" + context["safety"]
    messages = [Message(role="system", content=system)]
    for item in context.get("recent", []):
        if item["type"] == "Narration":
            messages.append(Message(role="assistant", content=item["text"]))
        else:
            text = f"{item.get('actor') or 'player'}: {item['text']}"
            messages.append(Message(role="user", content=prompts.data_block("earlier action", text)))
    action = action_prompt(context["action"])
    messages.append(Message(role="user", content=f"The acting player's character and action:\n{action}"))
    return messages


def action_prompt(action: dict[str, Any]) -> str:
    """The acting character and what they do, as one data block."""
    who = action["character"]["name"] if action.get("character") else action["actor"]
    sheet = json.dumps(action.get("character"), ensure_ascii=False)
    text = f"Character: {who}\nSheet: {sheet}\nAction: {action['text']}"
    return prompts.data_block("action", text)


def game_text(context: dict[str, Any], *, full: bool = True) -> str:
    """World, mission, scene and objectives as the prompt shows them (content authors' text);
    `full` adds clocks and the NPCs present (party turns)."""
    mission = mission_prompt(context.get("mission"))
    lines = [
        f"World: {json.dumps(context.get('world', {}), ensure_ascii=False)[:4000]}",
        f"Mission: {mission['mission']}",
        f"Current scene: {json.dumps(context.get('scene'), ensure_ascii=False)}",
        f"Objectives: {mission['objectives']}",
    ]
    if full:
        lines += [f"Clocks: {mission['clocks']}", f"NPCs present: {mission['npcs']}"]
        lines += lore_lines(context.get("lore"), context.get("mission"))
    return "\n".join(lines)


def lore_lines(lore: Any, view: dict | None) -> list[str]:
    """The scene's details and what the NPCs present know (mission `detail` / `knows` / `voice`
    lines): what a question is answered from. An NPC tells a `when pressed` fact only when
    pushed; the prompt says so."""
    if not isinstance(lore, dict):
        return []
    names = {n["id"]: n["name"] for n in (view or {}).get("npcs", []) if isinstance(n, dict) and "id" in n}
    lines = []
    details = [d for d in lore.get("details") or [] if isinstance(d, str)]
    if details:
        lines.append("Scene details (tell them when a player looks or asks): " + " | ".join(details)[:2000])
    for npc in lore.get("npcs") or []:
        if not isinstance(npc, dict):
            continue
        name = names.get(npc.get("id"), npc.get("id"))
        facts = [
            k["text"] + (" (only when pressed)" if k.get("pressed") else "")
            for k in npc.get("knows") or []
            if isinstance(k, dict) and isinstance(k.get("text"), str)
        ]
        voice = f" Voice: {npc['voice']}." if isinstance(npc.get("voice"), str) else ""
        if facts or voice:
            lines.append(f"{name} knows: " + " | ".join(facts)[:1500] + voice)
    return lines


def mission_prompt(view: dict | None) -> dict[str, str]:
    if not view:
        none = "none"
        return {"mission": "no mission is running", "objectives": none, "clocks": none, "npcs": none}
    return {
        "mission": f"{view['mission']['title']} ({view['status']}): {view['mission']['summary']}"[:600],
        "objectives": "; ".join(f"{o['id']} [{o['status']}]: {o['text']}" for o in view["objectives"])
        or "none",
        "clocks": "; ".join(f"{c['id']} {c['label']} {c['value']}/{c['size']}" for c in view["clocks"])
        or "none",
        "npcs": "; ".join(
            f"{n['id']} = {n['name']} ({n['role']}), wants: {n['agenda']}" for n in view["npcs"]
        )
        or "nobody",
    }


def batch_messages(context: dict[str, Any]) -> list[Message]:
    """The batch prompt. Everyone watching reads the summary, so it holds only public material:
    the window's actions (no audience), the world and the mission; players' words and content
    authors' text go in as fenced data blocks (narrative/prompts)."""
    system = prompt_template("stage_batch.txt").format(
        personality=(context.get("personality") or {}).get(
            "system_prompt", "You are a fair, vivid game master."
        ),
        data_rule=prompts.DATA_RULE,
        game=prompts.data_block("game", game_text(context, full=False)),
        beat=context.get("beat") or "Inciting",
        intensity=context.get("intensity") or 1.0,
        word_limit=context.get("word_limit") or 300,
    )
    system += tablesafety.prompt_text(context.get("table_safety"))  # lines, veils, X-card (issue 18)
    batch = context["batch"]
    lines = []
    for group in batch["groups"]:
        lines.append(f"{group['team'] or offline_batch.ON_STAGE}:")
        for action in group["actions"]:
            check = action.get("check")
            result = ""
            if check:
                roll = f"{check['total']} vs DC {check['dc']}"
                result = f" → {check['skill']} ({check['attribute']}) {roll}: {check['outcome']}"
            lines.append(f"- {action['name']} ({action['actor']}): {action['text']}{result}")
    header = f"Beat window {batch['window']}: {batch['count']} action(s)."
    user = header + "\n" + prompts.data_block("actions", "\n".join(lines))
    return [Message(role="system", content=system), Message(role="user", content=user)]
