"""A procedural narrator that needs no network and no model weights.

It implements the ChatProvider protocol so a campaign can run end to end offline (and so
tests have a deterministic narrator). It writes from `request.context`, which the turn
pipeline fills with the action, scene, world, objective and personality; every key may be
missing. Output is a pure function of the request: the RNG is seeded from
`request.seed` and the turn number, so replaying a turn replays its prose byte for byte.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import time
from collections.abc import Iterator, Sequence
from typing import Any

from gtw_site.providers import Usage
from narrative.intent import Intent, check_arguments, fit
from narrative.llm import base
from narrative.llm.offline import answers
from narrative.llm.offline import phrases as P
from narrative.llm.offline.context import (
    Context,
    as_dict,
    as_list,
    clean,
    possessive,
    read_context,
    read_intent,
)
from narrative.llm.offline.writer import (
    Writer,
    fill_slots,
    narrate_loot,
    narrate_outcome,
    narrate_plain,
)

CHECK_TOOL = "rules_skill_check"
ROLL_TOOL = "rng_roll"
_TOKEN = re.compile(r"[A-Za-z][A-Za-z'-]*")


def _tool_result(messages: Sequence[base.Message]) -> tuple[str, dict[str, Any]] | None:
    last_user = max((i for i, m in enumerate(messages) if getattr(m, "role", "") == "user"), default=-1)
    results = [m for m in messages[last_user + 1 :] if getattr(m, "role", "") == "tool"]
    if not results:
        return None
    try:
        data = json.loads(results[-1].content)
    except (TypeError, ValueError):
        data = None
    return (results[-1].name or "", data if isinstance(data, dict) else {"error": "unreadable tool result"})


def _outcome(data: dict[str, Any]) -> tuple[str | None, int | None]:
    outcome = data.get("outcome")
    total, dc = data.get("total"), data.get("dc")
    margin = total - dc if isinstance(total, int) and isinstance(dc, int) else None
    if outcome not in P.OUTCOMES and margin is not None and "error" not in data:
        outcome = "success" if margin >= 0 else "failure"
    return (outcome if outcome in P.OUTCOMES and "error" not in data else None), margin


def _choose_tool(intent: Intent, tools: dict[str, base.ToolSpec], rng: random.Random) -> str | None:
    if intent.kind == "loot" and ROLL_TOOL in tools:
        # Scavenging is a search roll: the game draws what turns up and hands it over (a check
        # would grant nothing, and its narration could only hint at a find).
        return ROLL_TOOL
    return CHECK_TOOL if intent.kind in ("check", "loot") and CHECK_TOOL in tools else None


ADVANCE_TOOL = "mission_advance"
NPC_TOOL = "npc_speak"
DRAW_TOOL = "deck_draw"
COMBAT_TOOL = "combat_start"
STATUS_TOOL = "status_apply"
_ATTACK = re.compile(r"\b(attack|shoot|fire at|open fire|fight|charge at|strike|stab|punch|ambush)\b", re.I)
_STOP = frozenset(
    ("with", "from", "that", "this", "into", "onto", "what", "their", "there", "about", "through")
)


def _stems(text: str) -> set[str]:
    return {w[:5] for w in _TOKEN.findall(text.lower()) if len(w) > 3 and w not in _STOP}


def _matching_objective(c: Context) -> tuple[str, str] | None:
    """An open objective the action is plainly about (shares a content word with it)."""
    words = _stems(c.action)
    return next(((oid, text) for oid, text in c.objectives if words & _stems(text)), None)


def _still_open(data: dict[str, Any], objective: str) -> bool:
    """Whether `objective` is still open after the roll whose result is `data`: the game settles
    the mission on the check itself, and says so in the result's `consequences` (an objective
    completed or failed, the mission over). Asking to advance it again would only be refused."""
    for effect in map(as_dict, as_list(data.get("consequences"))):
        kind = effect.get("type")
        if kind in ("MissionCompleted", "MissionFailed"):
            return False
        if kind in ("ObjectiveCompleted", "ObjectiveFailed") and effect.get("objective") == objective:
            return False
    return True


def _called(messages: Sequence[base.Message], name: str) -> bool:
    last_user = max((i for i, m in enumerate(messages) if getattr(m, "role", "") == "user"), default=-1)
    return any(
        getattr(call, "name", "") == name
        for m in messages[last_user + 1 :]
        for call in (getattr(m, "tool_calls", ()) or ())
    )


def _first_call(c: Context, intent: Intent, tools: dict[str, base.ToolSpec], rng: random.Random):
    """The game tool an action calls for before any dice: a present NPC speaks, a fight starts,
    or a twist-beat look around turns up a card. (name, arguments, lead-in) or None."""
    # A risky social move ("Ossian, open that crate or else") is rolled for, not answered.
    speaker = answers.addressed(c, intent) if intent.kind not in ("check", "loot") else None
    if speaker is not None and speaker.id and NPC_TOOL in tools:
        # The NPC answers what was asked, in character (answers.npc_line), from what they know.
        return NPC_TOOL, {"npc": speaker.id, "line": answers.npc_line(c, speaker, rng)}, ""
    asking = answers.asks(c, intent)
    if _ATTACK.search(c.action) and not asking and not c.in_combat and COMBAT_TOOL in tools:
        foe = (
            intent.target if intent.target and intent.target not in P.FALLBACK_TARGET.values() else "hostiles"
        )
        return COMBAT_TOOL, {"foes": [{"name": foe[:40]}]}, ""
    if (
        intent.kind == "observe"
        and not asking
        and c.beat in ("Twist", "Climax")
        and DRAW_TOOL in tools
        and rng.random() < 0.5
    ):
        return DRAW_TOOL, {"kind": "complication", "reason": f"{c.name} looks around"}, ""
    return None


def _yielded(c: Context, intent: Intent, tools, messages, rng: random.Random) -> dict[str, str] | None:
    """npc_speak arguments when a social check on an NPC present succeeded and they know
    something, kept until pressed, that bears on the action; else None."""
    if intent.category != "social" or NPC_TOOL not in tools or _called(messages, NPC_TOOL):
        return None
    person = answers.named(c, intent)
    if person is None or not person.present or not person.id:
        return None
    line = answers.yielded_line(c, person, rng)
    return {"npc": person.id, "line": line} if line else None


def _spoken(c: Context, messages: Sequence[base.Message]) -> str:
    """The name of the NPC this turn's npc_speak call gave a line to ("" if none is known)."""
    last_user = max((i for i, m in enumerate(messages) if getattr(m, "role", "") == "user"), default=-1)
    for m in reversed(messages[last_user + 1 :]):
        for call in getattr(m, "tool_calls", ()) or ():
            if getattr(call, "name", "") == NPC_TOOL:
                npc_id = as_dict(getattr(call, "arguments", None)).get("npc")
                return next((p.name for p in c.people.values() if p.id and p.id == npc_id), "")
    return ""


def _narrate_card(w: Writer, c: Context, data: dict[str, Any]) -> str:
    title, text = clean(data.get("title")), clean(data.get("text"))
    if not text or "error" in data:
        return narrate_plain(w, c, Intent("observe"), "observe")
    return f"{w.pick(P.OPENERS[c.tone])} {title}: {text}".strip()


def _aside_item(text: str, max_words: int = 30) -> str:
    """One piece of private knowledge as a sentence: whitespace tidied, at most `max_words`."""
    words = clean(text).split()
    clipped = " ".join(words[:max_words]) + ("…" if len(words) > max_words else "")
    return clipped if clipped[-1:] in ".!?…\"'”" else clipped + "."


def write_aside(raw: Any, rng: random.Random, tone: str = "heroic") -> str:
    """A private aside from `context["aside"]["items"]` (what only the actor knows, most
    relevant first): "Only you recall: …", a second item if there is one, and a closing line
    in the GM's tone. "" when there is nothing to tell."""
    items = [t for t in (clean(x) for x in as_list(as_dict(as_dict(raw).get("aside")).get("items"))) if t]
    if not items:
        return ""
    parts = [f"{P.ASIDE_LEAD} {_aside_item(items[0])}"]
    if len(items) > 1:
        parts.append(f"{P.ASIDE_ALSO} {_aside_item(items[1], 20)}")
    parts.append(rng.choice(P.ASIDE_CLOSERS.get(tone) or P.ASIDE_CLOSERS["heroic"]))
    return " ".join(parts)


class OfflineNarrator:
    """Procedural, deterministic sci-fi narration; calls `rules_skill_check` when an action is risky."""

    name = "offline"

    def __init__(self, *, model: str = "procedural-v1", word_delay_s: float = 0.0):
        self.model = model
        self.word_delay_s = word_delay_s

    def _rng(self, request: base.ChatRequest, c: Context) -> random.Random:
        seed = request.seed
        if not isinstance(seed, int):
            seed = int.from_bytes(hashlib.sha256(c.action.encode()).digest()[:8], "big")
        # String seeds hash through SHA-512, so this is stable across processes and Python runs.
        return random.Random(f"gtw-offline:{seed}:{c.turn}")

    def stream(self, request: base.ChatRequest) -> Iterator[base.StreamEvent]:
        if isinstance(request.context, dict) and "batch" in request.context:
            from narrative.llm.offline import batch  # stage mode: one summary for a beat window

            yield from batch.stream_batch(request, self.word_delay_s)
            return
        if isinstance(request.context, dict) and "aside" in request.context:
            yield from self._stream_aside(request)  # a private aside (narrative.asides)
            return
        messages = list(request.messages or [])
        c = read_context(request.context, messages)
        rng = self._rng(request, c)
        intent = read_intent(c)
        w = Writer(rng, c, fill_slots(c, intent, rng))
        tools = {t.name: t for t in (request.tools or []) if getattr(t, "name", None)}
        result = _tool_result(messages)
        # A risky action narrated without a roll stays unresolved rather than inventing an outcome.
        fallback_kind = "attempt" if intent.kind in ("check", "loot") else intent.kind
        call: base.ToolCall | None = None
        first = _first_call(c, intent, tools, rng) if result is None else None
        if result is not None:
            tool_name, data = result
            outcome, margin = _outcome(data)
            if tool_name == ADVANCE_TOOL:
                # The roll was narrated last round; say only whether the job is done.
                done = "error" not in data
                text = w.pick(P.ADVANCE_LINES["done" if done else "not_yet"])
            elif tool_name == DRAW_TOOL:
                text = _narrate_card(w, c, data)
            elif tool_name == STATUS_TOOL:
                text = (
                    ""
                    if "error" in data
                    else w.pick(P.STATUS_LINES).format(label=clean(data.get("label")).lower())
                )
            elif tool_name == NPC_TOOL and "error" not in data and (speaker := _spoken(c, messages)):
                # The NPC's line is its own log entry; the narration adds no second quote.
                text = answers.narrate_after_npc(w, c, speaker)
            elif tool_name in (NPC_TOOL, COMBAT_TOOL):
                text = narrate_plain(w, c, intent, "talk" if tool_name == NPC_TOOL else fallback_kind)
                if tool_name == COMBAT_TOOL and "error" not in data:
                    text = f"{w.pick(P.COMBAT_LINES)} {text}"
            elif (tool_name == ROLL_TOOL or "expression" in data) and "error" not in data:
                text = narrate_loot(w, c, data)
            elif outcome:
                text = narrate_outcome(w, c, intent, outcome, margin)
                target = _matching_objective(c)
                if (
                    outcome == "critical_failure"
                    and STATUS_TOOL in tools
                    and not _called(messages, STATUS_TOOL)
                ):
                    # A natural 1 leaves a mark the rules can carry into the next checks.
                    args = {"character": c.name, "effect": "shaken", "reason": f"{c.name} fumbles"}
                    n = 1 + sum(len(getattr(m, "tool_calls", ()) or ()) for m in messages)
                    call = base.ToolCall(
                        id=f"call_{n}", name=STATUS_TOOL, arguments=args, raw_arguments=json.dumps(args)
                    )
                succeeded = outcome in ("success", "critical_success")
                if (
                    succeeded
                    and target
                    and _still_open(data, target[0])
                    and ADVANCE_TOOL in tools
                    and not _called(messages, ADVANCE_TOOL)
                ):
                    args = {"objective": target[0], "reason": f"{c.name}: {c.action[:150]}"}
                    n = 1 + sum(len(getattr(m, "tool_calls", ()) or ()) for m in messages)
                    call = base.ToolCall(
                        id=f"call_{n}", name=ADVANCE_TOOL, arguments=args, raw_arguments=json.dumps(args)
                    )
                yielded = _yielded(c, intent, tools, messages, rng) if succeeded and call is None else None
                if yielded is not None:
                    # Won over (or cowed): the NPC tells what they were keeping until pressed.
                    n = 1 + sum(len(getattr(m, "tool_calls", ()) or ()) for m in messages)
                    call = base.ToolCall(
                        id=f"call_{n}", name=NPC_TOOL, arguments=yielded, raw_arguments=json.dumps(yielded)
                    )
            else:
                text = narrate_plain(w, c, intent, fallback_kind)
        elif first is not None:
            tool, args, text = first
            key = "social" if tool == NPC_TOOL else ("combat" if tool == COMBAT_TOOL else intent.category)
            listener = next((p.name for p in c.people.values() if p.id and p.id == args.get("npc")), "")
            if tool == NPC_TOOL and listener:
                listener = answers.mid(listener)
                leads = answers.A.ASK_LEADS if answers.asks(c, intent) else answers.A.TALK_LEADS
                text = answers.say(w, leads, listener=listener, listener_pos=possessive(listener))
            text = text or w.pick(P.LEAD_INS.get(key) or P.LEAD_INS["wits"])
            n = 1 + sum(len(getattr(m, "tool_calls", ()) or ()) for m in messages)
            call = base.ToolCall(id=f"call_{n}", name=tool, arguments=args, raw_arguments=json.dumps(args))
        elif intent.kind not in ("check", "loot") and answers.asks(c, intent):
            # A question gets an answer from the game, never a roll and never just scenery.
            speaker = answers.addressed(c, intent)
            if speaker is None and intent.npc and intent.kind == "talk" and not answers.mission_running(c):
                speaker = c.people.get(intent.npc[0])  # a world NPC, when no mission runs
            if speaker is not None:
                reply = answers.npc_line(c, speaker, rng)
                text = narrate_plain(w, c, intent, "talk", reply=reply)
            else:
                text = answers.narrate_answer(w, c, intent)
        elif tool := _choose_tool(intent, tools, rng):
            lead = w.pick(P.LEAD_INS["loot" if tool == ROLL_TOOL else intent.category])
            tension = w.pick(P.TENSION[c.tone]) if c.verbosity > 1 and rng.random() < 0.6 else ""
            text = f"{lead} {tension}".strip()
            schema = as_dict(tools[tool].parameters)
            if tool == ROLL_TOOL:
                # "loot": the game draws the finds from the pack's tables and hands them to the
                # searcher; the narration then names exactly those (writer.narrate_loot).
                args = fit(
                    {"expression": "2d6", "reason": f"{c.name} scavenges in {c.place}", "loot": "any"}, schema
                )
            else:
                args = check_arguments(
                    action=c.action, name=c.name, scene=c.scene_text, intent=intent, rng=rng, schema=schema
                )
            n = 1 + sum(len(getattr(m, "tool_calls", ()) or ()) for m in messages)
            call = base.ToolCall(id=f"call_{n}", name=tool, arguments=args, raw_arguments=json.dumps(args))
        else:
            text = narrate_plain(w, c, intent, fallback_kind)
        chunks = re.findall(r"\S+\s*", text)
        for i, chunk in enumerate(chunks):
            if i and self.word_delay_s > 0:
                time.sleep(self.word_delay_s)
            yield base.TextDelta(chunk)
        if call is not None:
            yield base.ToolCallEvent(call)
        tokens_in = sum(len(clean(getattr(m, "content", "")).split()) for m in messages) + len(
            c.action.split()
        )
        usage = Usage(tokens_in=tokens_in, tokens_out=len(chunks) + (10 if call else 0))
        yield base.StreamEnd(stop_reason="tool_calls" if call else "stop", usage=usage)

    def _stream_aside(self, request: base.ChatRequest) -> Iterator[base.StreamEvent]:
        c = read_context(request.context, [])
        text = write_aside(request.context, self._rng(request, c), c.tone)
        for chunk in re.findall(r"\S+\s*", text):
            yield base.TextDelta(chunk)
        yield base.StreamEnd(stop_reason="stop", usage=Usage(tokens_out=len(text.split())))

    def complete(self, request: base.ChatRequest) -> str:
        """A condensing summary of the last user message (narrative.llm.offline.summary)."""
        from narrative.llm.offline.summary import summarize

        return summarize(request)
