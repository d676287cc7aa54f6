"""The offline narrator's stage mode: one summary for a whole beat window of batched actions.

Pure, like the narrator (no Django): the batch turn (narrative.turns.batch) builds a ChatRequest
whose context holds {"batch": {"window", "groups": [{"team", "fireteam_id", "actions": [...]}]}}
and the offline provider hands it here. Each action carries its own check result (the game rolled
it before the summary): {"seq", "actor", "name", "text", "check": {"skill", "outcome", …} | None}.
Output is a pure function of the request, like every offline reply.

Whether each action is risky (and which check it calls for) is a game rule, not this writer's:
narrative.intent.plan_check, which the batch turn runs whichever provider narrates.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Iterator, Sequence
from typing import Any

from gtw_site.providers import Usage
from narrative.intent import Intent, swap_pronouns
from narrative.llm import base
from narrative.llm.offline import phrases as P
from narrative.llm.offline.context import as_dict, as_int, as_list, clean, read_context, read_intent
from narrative.llm.offline.writer import Writer, fill_slots

SUCCESS = ("success", "critical_success")
MAX_NAMED_PER_TEAM = 4
ON_STAGE = "On stage"
_OUTCOME_CLAUSES = {
    "critical_success": ("and it goes perfectly", "flawlessly", "and makes it look easy"),
    "success": ("and pulls it off", "and it works", "and gets it done"),
    "failure": ("but it goes wrong", "but it doesn't hold", "and comes up short"),
    "critical_failure": ("and it goes badly wrong", "and it backfires", "with spectacularly bad luck"),
}
_MOVES = ("moves to", "tries to", "sets out to", "goes to")


def _actions(group: Any) -> list[dict[str, Any]]:
    return [a for a in map(as_dict, as_list(as_dict(group).get("actions"))) if clean(a.get("text"))]


def _outcome(action: dict[str, Any]) -> str | None:
    outcome = as_dict(action.get("check")).get("outcome")
    return outcome if outcome in P.OUTCOMES else None


def _first(action: dict[str, Any]) -> str:
    name = clean(action.get("name")) or clean(action.get("actor")) or "Someone"
    parts = name.split()
    if len(parts) > 1 and parts[0].lower().rstrip(".") in P.TITLES:
        return f"{parts[0]} {parts[-1]}"
    return parts[0]


def _clause(action: dict[str, Any], scene: Any, rng: random.Random) -> str:
    text = clean(action.get("text"))
    c = read_context({"action": {"text": text, "actor": clean(action.get("actor"))}, "scene": scene}, [])
    task = read_intent(c).task
    who = _first(action)
    if task:
        clause = f"{who} {rng.choice(_MOVES)} {task}"
    elif third := _third_person(text):
        clause = f"{who} {third}"
    else:
        short = text if len(text) <= 70 else text[:67].rsplit(" ", 1)[0] + "…"
        clause = f"{who} acts: “{short.rstrip('.!?')}”"
    outcome = _outcome(action)
    if outcome:
        clause += f" — {rng.choice(_OUTCOME_CLAUSES[outcome])}"
    return clause


_FIRST_PERSON = re.compile(
    r"^(?:i|we)\s+(?:(?:will|'ll|try to|carefully|quickly|quietly)\s+)?([a-z][a-z'-]*)\s*(.*)$", re.I
)
_IRREGULAR = {"be": "is", "am": "is", "are": "is", "have": "has", "do": "does", "go": "goes"}


def _third_person(text: str) -> str | None:
    """ "I keep watch on the corridor, quietly" -> "keeps watch on the corridor"; None otherwise."""
    first = re.split(r"[,;:.!?]| and then | then | but ", text.strip(), maxsplit=1)[0]
    m = _FIRST_PERSON.match(first)
    if not m or len(first.split()) > 14:
        return None
    verb, rest = m.group(1).lower(), m.group(2)
    if verb in _IRREGULAR:
        verb = _IRREGULAR[verb]
    elif re.search(r"[^aeiou]y$", verb):
        verb = verb[:-1] + "ies"
    elif re.search(r"(s|sh|ch|x|z|o)$", verb):
        verb += "es"
    else:
        verb += "s"
    return " ".join([verb, swap_pronouns(rest)]).strip(" \"'*")


def _team_line(group: dict[str, Any], scene: Any, rng: random.Random) -> str:
    actions = _actions(group)
    label = clean(group.get("team")) or ON_STAGE
    named = actions[:MAX_NAMED_PER_TEAM]
    line = f"{label}: " + "; ".join(_clause(a, scene, rng) for a in named) + "."
    rest = len(actions) - len(named)
    if rest > 0:
        line += f" {rest} more from {label if group.get('team') else 'the stage'} back them up."
    return line


def summarise(context: dict[str, Any], seed: int | None) -> str:
    """ONE narration for the whole window: an opener, a line per team (its actions and how the
    dice fell), the tally of risky moves, and a closer that fits how the beat went."""
    batch = as_dict(context.get("batch"))
    groups = [g for g in map(as_dict, as_list(batch.get("groups"))) if _actions(g)]
    window = as_int(batch.get("window"), 0)
    c = read_context({k: v for k, v in context.items() if k != "action"}, [])
    rng = random.Random(f"gtw-offline-batch:{seed}:{window}")
    slots = fill_slots(c, Intent("act"), rng)
    slots.update(name="", first="", first_pos="", task="")  # a crowd, not one hero: skip named templates
    w = Writer(rng, c, slots)
    if not groups:
        return f"{w.pick(P.OPENERS[c.tone])} Nobody moves this beat. {w.pick(P.CLOSERS[(c.tone, 'neutral')])}"
    scene = context.get("scene")
    lines = [w.pick(P.OPENERS[c.tone])]
    lines += [_team_line(g, scene, rng) for g in groups]
    outcomes = [o for g in groups for a in _actions(g) if (o := _outcome(a))]
    wins = sum(1 for o in outcomes if o in SUCCESS)
    losses = len(outcomes) - wins
    polarity = "good" if wins > losses else ("bad" if losses > wins else "neutral")
    ending = w.pick(P.CLOSERS[(c.tone, polarity)])
    if outcomes:
        moves = "risky move" if len(outcomes) == 1 else "risky moves"
        land, fall = ("lands" if wins == 1 else "land"), ("falls" if losses == 1 else "fall")
        ending = f"Of {len(outcomes)} {moves}, {wins} {land} and {losses} {fall} short. {ending}"
    lines.append(ending)
    return "\n".join(line.strip() for line in lines if line.strip())


def squad_summary(group: dict[str, Any], window: int) -> str:
    """The GM's short debrief for one fireteam, addressed to its members only."""
    actions = _actions(group)
    team = clean(group.get("team")) or "Squad"
    checked = [a for a in actions if _outcome(a)]
    wins = [a for a in checked if _outcome(a) in SUCCESS]
    losses = [a for a in checked if _outcome(a) not in SUCCESS]
    moves = f"{len(actions)} move{'s' if len(actions) != 1 else ''}"
    parts = [f"{team}, beat {window} debrief: {moves}"]
    parts[-1] += f", {len(wins)} of {len(checked)} checks went your way." if checked else ", no rolls needed."
    if wins:
        skill = clean(as_dict(wins[0].get("check")).get("skill"))
        parts.append(f"{_first(wins[0])} came through{f' on {skill}' if skill else ''}.")
    if losses:
        parts.append(f"{_first(losses[0])} will need cover next time.")
    parts.append(
        "Press the advantage next window."
        if len(wins) >= len(losses)
        else "Regroup on comms before the next window."
    )
    return " ".join(parts)


def stream_batch(request: base.ChatRequest, word_delay_s: float = 0.0) -> Iterator[base.StreamEvent]:
    """The provider side: stream `summarise` word by word, paced like the offline narrator."""
    context = as_dict(request.context)
    text = summarise(context, request.seed if isinstance(request.seed, int) else None)
    chunks = re.findall(r"\S+\s*", text)
    for i, chunk in enumerate(chunks):
        if i and word_delay_s > 0:
            time.sleep(word_delay_s)
        yield base.TextDelta(chunk)
    tokens_in = sum(len(clean(getattr(m, "content", "")).split()) for m in _messages(request))
    yield base.StreamEnd(stop_reason="stop", usage=Usage(tokens_in=tokens_in, tokens_out=len(chunks)))


def _messages(request: base.ChatRequest) -> Sequence[base.Message]:
    return list(request.messages or [])
