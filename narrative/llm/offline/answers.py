"""The offline GM answers questions, and NPCs answer in character, from what the game knows.

An action that asks something ("what made these marks, and how fresh are they?", "Ameline, who
are you?") is answered, not rolled for and not met with scenery. The answer comes from the turn's
context only (narrative.llm.offline.context): the scene's description and `detail` lines, the
visible objectives, the clocks, who is present, the mission summary, recalled table memories, and
for an NPC their role, faction, agenda and `knows` lines (missions DSL). Nothing is invented.

- The GM (`narrate_answer`) tells what anyone at the table could find out: never an NPC's
  `knows` (those are the NPC's to tell), only a pointer to who might know.
- An NPC (`npc_line`, said through the npc_speak tool) answers each question asked, in the first
  person: who they are, what they want, what they know. A fact they keep `when pressed` stays
  behind an in-character refusal until the player presses: insists, demands the truth, asks
  again about the same thing, or wins a social check against them (`yielded_line`).

Relevance (answers_text) is word overlap on crude stems plus a few concept groups: cheap,
deterministic, no model to load (recalled memories arrive already ranked by the hybrid recall).
Every choice of wording comes from the narrator's seeded RNG. Pure: no Django.
"""

from __future__ import annotations

import re

from narrative.intent import Intent
from narrative.llm.offline import answers_phrases as A
from narrative.llm.offline import phrases as P
from narrative.llm.offline.answers_text import (
    CLOCKS,
    GENERAL,
    GOALS,
    HERE,
    PAST,
    SELF,
    THRESHOLD,
    VERBISH,
    WANT,
    YOU,
    Ask,
    Clause,
    Fact,
    rank,
    read_ask,
    sentence,
    sentences,
    stems,
)
from narrative.llm.offline.context import Context, Person, article, clean
from narrative.llm.offline.writer import short_name

MAX_LINE = 300  # npc_speak's limit on a line


def asks(c: Context, intent: Intent) -> bool:
    """Whether the action asks something the game should answer rather than roll for."""
    return bool(intent.question or read_ask(c.action).questions)


def _public_facts(c: Context) -> list[Fact]:
    facts = [Fact(sentence(d), "detail", 1.3) for d in c.details]
    facts += [Fact(s, "scene", 1.0) for s in sentences(c.desc)]
    facts += [Fact(sentence(m), "memory", 0.9) for m in c.memories[:5]]
    if c.summary:
        facts += [Fact(s, "summary", 0.6) for s in sentences(c.summary)]
    for person in c.people.values():
        if person.present:
            facts.append(Fact(sentence(who(person)), "person", 0.8, person))
    return [f for f in facts if f.text]


def _known_facts(c: Context) -> list[Fact]:
    return [
        Fact(sentence(text), "knows", 1.0, person, pressed)
        for person in c.people.values()
        if person.present
        for text, pressed in person.knows
    ]


# ---- people --------------------------------------------------------------------------------------


def mid(text: str) -> str:
    return re.sub(r"^The\b", "the", text)


def faction_phrase(faction: str) -> str:
    """ "of the Quiet Choir", "of the Helix Syndicate", "of Red Dawn"."""
    if not faction:
        return ""
    bare = re.sub(r"^the\s+", "", faction, flags=re.I)
    the = bare != faction or bare.split()[-1].lower() in P.ORG_WORDS
    return f"of {'the ' if the else ''}{bare}"


def who(person: Person) -> str:
    """ "Sister Ameline, a choir cantor of the Quiet Choir"."""
    parts = [person.name]
    role = person.role.rstrip(".")
    faction = faction_phrase(person.faction)
    if role:
        role = role if role.split()[0].lower() in ("the", "a", "an") else article(role[:1].lower() + role[1:])
        parts.append(f"{role} {faction}".strip())
    elif faction:
        parts.append(f"one {faction}")
    return ", ".join(parts)


def agenda_phrase(agenda: str, *, spoken: bool = False) -> str:
    """An agenda as a verb phrase ("keep the relay's last song playing"), or "" when it isn't one.
    `spoken`: as the NPC says it ("... to his buyer" -> "... to my buyer")."""
    text = clean(agenda).rstrip(".!")
    head = text.split()[0].lower() if text else ""
    if not (head in VERBISH or head in P.OBJECTIVE_HEADS or head in P.VERB_BASE):
        return ""
    text = text[:1].lower() + text[1:]
    if spoken:
        text = re.sub(r"\b(?:himself|herself|themselves|themself)\b", "myself", text)
        text = re.sub(r"\b(?:his|their)\b", "my", text)
    return text


def _names_of(person: Person) -> list[str]:
    """The ways an action may name someone: "Captain Idris Hale", "Captain Hale", "Idris", "Hale"."""
    parts = person.name.split()
    names = [person.name, short_name(person.name)]
    names += [p for p in parts if p.lower().rstrip(".") not in P.TITLES and len(p) > 2]
    return list(dict.fromkeys(names))


def named(c: Context, intent: Intent) -> Person | None:
    """The NPC the action names: the intent's, else one whose name (or surname) it contains."""
    if intent.npc and intent.npc[0] in c.people:
        return c.people[intent.npc[0]]
    for person in sorted(c.people.values(), key=lambda p: not p.present):
        if any(re.search(rf"\b{re.escape(n)}\b", c.action, re.I) for n in _names_of(person)):
            return person
    return None


def mission_running(c: Context) -> bool:
    """Whether a mission is running: then only the NPCs present in the scene can answer."""
    return bool(c.goals or c.clocks or any(p.present for p in c.people.values()))


def _speaks_to(c: Context, person: Person) -> bool:
    """Whether the action is said to `person` (says "you", or starts with their name)."""
    if YOU.search(c.action):
        return True
    lead = c.action.lstrip("\"'“*").lower()
    return any(lead.startswith(n.lower()) for n in _names_of(person))


def addressed(c: Context, intent: Intent) -> Person | None:
    """The NPC present in the scene that the action speaks to, if any: talk naming them, or a
    line that names them and says "you" (or starts with their name)."""
    person = named(c, intent)
    if person is None or not person.present:
        return None
    return person if intent.kind == "talk" or _speaks_to(c, person) else None


def _name_stems(person: Person) -> set[str]:
    return stems(" ".join(_names_of(person)))


def _pressed(c: Context, ask: Ask, person: Person, fact: Fact) -> bool:
    """Pressed for this fact: pushed in the words, or asked about it before (a recent action
    that names the NPC and shares the fact's words)."""
    if ask.pressed:
        return True
    fact_stems = stems(fact.text) - _name_stems(person)
    for old in c.asked:
        names_them = any(re.search(rf"\b{re.escape(n)}\b", old, re.I) for n in _names_of(person))
        if names_them and old != c.action and stems(old) & fact_stems:
            return True
    return False


# ---- the NPC's line ------------------------------------------------------------------------------


def _tone(table: dict[str, tuple[str, ...]], tone: str) -> tuple[str, ...]:
    return table.get(tone) or table["heroic"]


def npc_line(c: Context, person: Person, rng) -> str:
    """What `person` says to the action: an answer to each question (at most two), in the first
    person, from who they are, what they want and what they know. At most MAX_LINE characters."""
    ask = read_ask(c.action, _name_stems(person))
    agenda = agenda_phrase(person.agenda, spoken=True)
    if not ask.questions:
        if agenda:
            return _fit([rng.choice(A.GREET).format(agenda=agenda)])
        return _fit([rng.choice(A.GREET_PLAIN)])
    lines: list[str] = []
    used: set[str] = set()
    others = [p for p in c.people.values() if p.present and p is not person]
    for clause in ask.questions[:2]:
        if SELF.search(clause.text):
            line = rng.choice(_tone(A.SELF, c.tone)).format(who=who(person))
            if agenda and not any(WANT.search(q.text) for q in ask.questions):
                line += " " + rng.choice(A.WANT).format(agenda=agenda)
        elif WANT.search(clause.text):
            line = rng.choice(A.WANT).format(agenda=agenda) if agenda else rng.choice(A.WANT_UNKNOWN)
        else:
            facts = [Fact(sentence(t), "knows", 1.0, person, p) for t, p in person.knows]
            best = rank(clause, ask.topic, facts)
            if best and best[0][0] >= THRESHOLD and best[0][2].text in used:
                continue  # the answer to the last question answers this one too
            if best and best[0][0] >= THRESHOLD:
                fact = best[0][2]
                used.add(fact.text)
                if fact.pressed and not _pressed(c, ask, person, fact):
                    pool = _tone(A.REFUSE, c.tone)
                    if person.faction and rng.random() < 0.4:
                        pool = A.REFUSE_FACTION
                    line = rng.choice(pool).format(faction=mid(person.faction))
                else:
                    line = rng.choice(_tone(A.TELL, c.tone)).format(fact=fact.text)
            else:
                line = rng.choice(_tone(A.DONT_KNOW, c.tone))
                other = _who_knows(clause, ask.topic, others)
                if other is not None:
                    line += " " + rng.choice(A.ASK_OTHER).format(npc_short=short_name(other.name))
        if line not in lines:
            lines.append(line)
    return _fit(lines)


def yielded_line(c: Context, person: Person, rng) -> str:
    """What `person` gives up after a social check went the player's way: the fact they kept
    until pressed that bears most on the action ("" when none does)."""
    ask = read_ask(c.action, _name_stems(person))
    clause = Clause(c.action, ask.topic, True)
    kept = [Fact(sentence(t), "knows", 1.0, person, True) for t, pressed in person.knows if pressed]
    best = rank(clause, ask.topic, kept)
    if not best or best[0][0] < THRESHOLD:
        return ""
    return _fit([rng.choice(A.YIELD).format(fact=best[0][2].text)])


def _who_knows(clause: Clause, topic: set[str], people: list[Person]) -> Person | None:
    facts = [Fact(sentence(t), "knows", 1.0, p, pressed) for p in people for t, pressed in p.knows]
    best = rank(clause, topic, facts)
    return best[0][2].person if best and best[0][0] >= THRESHOLD else None


def _fit(lines: list[str]) -> str:
    text = " ".join(lines)
    while len(text) > MAX_LINE and len(lines) > 1:
        lines = lines[:-1]
        text = " ".join(lines)
    if len(text) > MAX_LINE:
        cut = text[: MAX_LINE - 1]
        stop = max(cut.rfind(". "), cut.rfind("? "), cut.rfind("! "))
        text = cut[: stop + 1] if stop > 40 else cut.rsplit(" ", 1)[0] + "…"
    return text


# ---- the GM's answer -----------------------------------------------------------------------------


def _goal_text(text: str) -> str:
    """An objective mid-sentence: "restore power to the relay core" (its first word lowered
    unless it is a name or an acronym: "Ossian must ...", "EVA to the hull")."""
    text = clean(text).rstrip(".")
    head = text.split()[0] if text else ""
    verb = head.lower() in P.OBJECTIVE_HEADS or head.lower() in VERBISH
    plain = head.isalpha() and head[1:].islower() and head.lower() not in _NAME_WORDS
    return text[:1].lower() + text[1:] if verb or plain else text


_NAME_WORDS = frozenset(t.rstrip(".") for t in P.TITLES)


def _goals_answer(w, c: Context) -> list[str]:
    active = [g for g in c.goals if g.status == "active"]
    ready = [g for g in active if not g.blocked_by] or active
    later = [g for g in active if g not in ready]
    if not active:
        return [say(w, A.GOALS_NONE)]
    out = []
    if len(ready) == 1:
        out.append(w.rng.choice(A.GOALS_ONE).format(goal=_goal_text(ready[0].text)))
    else:
        template = w.rng.choice(A.GOALS_MANY)
        out.append(template.format(goal=_goal_text(ready[0].text), goal2=_goal_text(ready[1].text)))
        later = ready[2:] + later
    if later:
        out.append(w.rng.choice(A.GOALS_WAITING).format(later=_goal_text(later[0].text)))
    return out + _clock_lines(c, only_running=True)[:1]


def _clock_lines(c: Context, only_running: bool = False) -> list[str]:
    out = []
    for label, value, size in c.clocks:
        if only_running and value <= 0:
            continue
        template = A.CLOCK_NEAR if value == size - 1 else A.CLOCK_LINE[0]
        out.append(template.format(label=label[:1].upper() + label[1:], value=value, size=size))
    return out


def _people_answer(w, c: Context) -> list[str]:
    present = [p for p in c.people.values() if p.present]
    if not present:
        return [say(w, A.HERE_NONE)]
    names = [who(p) for p in present]
    listed = names[0] if len(names) == 1 else "; ".join(names[:-1]) + "; and " + names[-1]
    return [say(w, A.HERE_SOME, people=listed)]


def _about(w, c: Context, person: Person) -> list[str]:
    out = [say(w, A.ABOUT_NPC, who=who(person))]
    agenda = agenda_phrase(person.agenda)
    if agenda:
        out.append(w.rng.choice(A.ABOUT_AGENDA).format(agenda=agenda))
    if not person.present:
        out.append(f"{short_name(person.name)} isn't here, though.")
    return out


def narrate_answer(w, c: Context, intent: Intent) -> str:
    """The GM's narration for an action that asks something: a lead-in, then the answer to each
    question (at most two), from what the whole table may know. When nothing answers it, it
    says so, and points at an NPC present who knows (without saying what they know)."""
    ask = read_ask(c.action)
    questions = ask.questions or [Clause(c.action, stems(c.action), True)]
    public = _public_facts(c)
    lines: list[str] = []
    used: set[str] = set()
    lead = ""
    pointer = ""
    person = named(c, intent)
    if person is not None and not person.present and mission_running(c) and _speaks_to(c, person):
        # A mission's NPC who is elsewhere cannot answer; say so rather than voice them.
        return say(w, A.ABSENT, npc=mid(person.name))
    for clause in questions[:2]:
        text = clause.text
        if GOALS.search(text):
            lead = lead or say(w, A.THINK_LEADS)
            answer = _goals_answer(w, c)
        elif HERE.search(text):
            answer = _people_answer(w, c)
        elif CLOCKS.search(text) and c.clocks:
            lead = lead or say(w, A.THINK_LEADS)
            answer = _clock_lines(c) or []
        elif person is not None and (re.search(r"\bwho\b", text, re.I) or SELF.search(text)):
            answer = _about(w, c, person)
        else:
            # What the table has just read is no answer: skip facts a recent narration told.
            pool = [f for f in public if f.text not in used and not any(f.text in old for old in c.recent)]
            if PAST.search(text) and c.memories:
                pool = [f for f in pool if f.source == "memory"] or pool
            best = [t for t in rank(clause, ask.topic, pool) if t[0] >= THRESHOLD]
            if not best and GENERAL.search(text):
                # "What happened here?": the scene's most telling detail not yet told.
                general = [f for f in pool if f.source in ("detail", "scene")]
                best = [(THRESHOLD, 0, general[0])] if general else []
            known = [t for t in rank(clause, ask.topic, _known_facts(c)) if t[0] >= THRESHOLD]
            if known and (not best or known[0][0] > best[0][0] * 1.5):
                pointer = pointer or say(w, A.ASK_NPC, npc=mid(known[0][2].person.name))
            answer = []
            for score, _i, fact in best[:2]:
                if answer and (score < best[0][0] * 0.75 or len(questions) > 1):
                    break
                if fact.source == "memory":
                    lead = lead or say(w, A.MEMORY_LEADS)
                answer.append(fact.text)
                used.add(fact.text)
            if answer:
                lead = lead or say(w, A.LOOK_LEADS.get(c.tone) or A.LOOK_LEADS["heroic"])
        for line in answer:
            if line not in lines:
                lines.append(line)
    if not lines:
        lines.append(say(w, A.UNKNOWN))
        if not pointer:
            pointer = say(w, A.TRY_NEXT)
    out = [lead] if lead else []
    out += [line[:1].upper() + line[1:] for line in lines]
    if pointer:
        out.append(pointer)
    if c.verbosity >= 3:
        out.append(w.pick(P.PROMPTS))
    return " ".join(x for x in out if x)


def narrate_after_npc(w, c: Context, person_name: str) -> str:
    """After an NPC has spoken (npc_speak ran): the table's view of the moment, no second quote."""
    return say(w, A.AFTER_NPC, npc=mid(person_name))


def say(w, templates, **values: str) -> str:
    """One of `templates`, chosen by the turn's RNG, filled from the writer's slots and `values`,
    its first letter capitalised."""
    text = w.rng.choice(templates).format(**{**w.slots, **values})
    return text[:1].upper() + text[1:]


__all__ = [
    "addressed",
    "asks",
    "mission_running",
    "narrate_after_npc",
    "narrate_answer",
    "npc_line",
    "read_ask",
    "short_name",
    "yielded_line",
]
