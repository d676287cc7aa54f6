# ruff: noqa: E501 - template sentences read better whole than split
"""The `gtw bench recall` eval set: long generated campaigns and labelled questions — pure, no
Django, no network, no LLM.

`generate(campaigns=10)` builds, from templates and a fixed seed per campaign (campaign i is the
same whatever the count), campaigns of 16-18 weekly sessions, 400+ memories each, written the way
memory/policy.py writes them from play ("Kira acted: …", "Hale said: “…”", "Scene: …",
"Twist — …", "GM whispered: …" into one player's namespace). Every memory has its session
(number, seq), its real date (the evening the session was played: `created_at`) and its in-game
date (`metadata["game_date"]`, ISO, the campaign's calendar in the 2180s) — see
`memory_metadata`.

Questions (>= 150 a campaign) are labelled with the keys of their evidence memories, in five
categories: single, multihop, temporal, adversarial (no evidence: a detail never said) and privacy
(whispers to one player; asked by the owner, by a player with a look-alike whisper of their own,
and by one with none, whose only measure is the leak count). `match` says how a question's
evidence counts: "all" (every memory is needed: multi-hop) or "any" (any one answers it: "when
did we last see Hale?" is answered by any memory of the last session she was in).

VERSION changes whenever ids or labels change (docs/BENCHMARKS.md quotes it).
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

VERSION = 1
SEED = 20261207
WORDS = json.loads((Path(__file__).parent / "data" / "recall_words.json").read_text())
CATEGORIES = ("single", "multihop", "temporal", "adversarial", "privacy")
PLAYERS = 4
NUMBER_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]
ORDINALS = [
    "zeroth",
    "first",
    "second",
    "third",
    "fourth",
    "fifth",
    "sixth",
    "seventh",
    "eighth",
    "ninth",
    "tenth",
    "eleventh",
    "twelfth",
    "thirteenth",
    "fourteenth",
    "fifteenth",
    "sixteenth",
    "seventeenth",
    "eighteenth",
]
MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]


def memory_metadata(m: dict) -> dict:
    """What the bench stores in Memory.metadata: what the turn pipeline records (event_type), the
    in-game date, the speaker, and the eval's own key."""
    return {
        "event_type": m["event_type"],
        "game_date": m["game_date"],
        "speaker": m["speaker"],
        "recall_key": m["key"],
    }


@dataclass
class Npc:
    first: str
    last: str
    role: str
    station: str
    faction: str

    @property
    def name(self) -> str:
        return f"{self.first} {self.last}"


@dataclass
class Session:
    number: int
    real: datetime  # when it was played (UTC evening)
    days: list[date]  # the in-game days it covered


@dataclass
class Campaign:
    index: int
    rng: random.Random
    name: str
    pcs: list[str]
    npcs: list[Npc]
    sessions: list[Session]
    # session number -> planned memories (dicts without seq); laid out by `finish`
    planned: dict[int, list[dict]] = field(default_factory=dict)
    memories: list[dict] = field(default_factory=list)
    questions: list[dict] = field(default_factory=list)
    counter: int = 0
    cast: list[Npc] = field(default_factory=list)  # the NPCs the party keeps running into
    used: dict[str, list] = field(default_factory=dict)

    # ---- memories ------------------------------------------------------------------------------

    def add(
        self,
        session: int,
        text: str,
        *,
        event="Narration",
        speaker="GM",
        ns="campaign",
        day=None,
        importance=0.5,
        kind="fact",
    ) -> dict:
        s = self.sessions[session - 1]
        d = day if day is not None else self.rng.choice(s.days)
        assert d in s.days, (d, s.days)
        self.counter += 1
        m = {
            "key": f"c{self.index:02d}-m{self.counter:04d}",
            "session": session,
            "text": text,
            "event_type": event,
            "speaker": speaker,
            "ns": ns,
            "game_date": d.isoformat(),
            "importance": importance,
            "kind": kind,
        }
        self.planned.setdefault(session, []).append(m)
        return m

    def say(self, session: int, npc: Npc, line: str, **kw) -> dict:
        return self.add(
            session,
            f"{npc.name} said: \u201c{line}\u201d",
            event="NpcSpoke",
            speaker=npc.name,
            importance=0.6,
            **kw,
        )

    def act(self, session: int, pc: str, text: str, **kw) -> dict:
        return self.add(session, f"{pc} acted: {text}", event="Action", speaker=pc, importance=0.4, **kw)

    def ask(self, category: str, kind: str, q: str, evidence: list[dict], *, match="all", viewer=None):
        self.questions.append(
            {
                "id": f"c{self.index:02d}-q{len(self.questions):03d}",
                "campaign": self.index,
                "category": category,
                "kind": kind,
                "q": q,
                "evidence": [m["key"] for m in evidence],
                "match": match,
                "viewer": viewer if viewer is not None else f"p{self.rng.randrange(PLAYERS)}",
            }
        )

    def fresh(self, tag: str, options: list):
        """One of `options` not yet picked under `tag`, so that a question has one answer."""
        used = self.used.setdefault(tag, [])
        left = [o for o in options if o not in used] or options
        pick = self.rng.choice(left)
        used.append(pick)
        return pick

    # ---- words ---------------------------------------------------------------------------------

    def ref(self, npc: Npc) -> str:
        """How a player names an NPC: full name, first or last name, a small typo, or their role."""
        r = self.rng.random()
        if r < 0.35:
            return npc.name
        if r < 0.5:
            return npc.first
        if r < 0.7:
            return npc.last
        if r < 0.82:
            return typo(self.rng, npc.name)
        same_role = [n for n in self.npcs if n.role == npc.role]
        if len(same_role) == 1:
            return f"the {npc.role}"
        return f"the {npc.role} from {npc.station}"

    def session_ref(self, n: int) -> str:
        return self.rng.choice(
            [
                f"session {n}",
                f"session {NUMBER_WORDS[n] if n <= 10 else n}",
                f"our {ORDINALS[n]} session",
                f"the {ORDINALS[n]} session",
                f"game {n}",
            ]
        )


def typo(rng: random.Random, name: str) -> str:
    """One slip of the keyboard: two letters swapped, one doubled or one dropped (never the first)."""
    words = name.split()
    i = rng.randrange(len(words))
    w = words[i]
    if len(w) < 4:
        return name
    j = rng.randrange(1, len(w) - 2)
    how = rng.randrange(3)
    if how == 0:
        w = w[:j] + w[j + 1] + w[j] + w[j + 2 :]
    elif how == 1:
        w = w[: j + 1] + w[j] + w[j + 1 :]
    else:
        w = w[:j] + w[j + 1 :]
    words[i] = w
    return " ".join(words)


def date_text(rng: random.Random, d: date) -> str:
    day = d.day
    suffix = "th" if 10 <= day % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    month = MONTHS[d.month - 1]
    return rng.choice(
        [
            f"{day} {month}",
            f"{month} {day}",
            f"{month} {day}{suffix}",
            f"the {day}{suffix} of {month}",
            d.isoformat(),
            f"{day} {month} {d.year}",
        ]
    )


def _campaign(index: int, seed: int) -> Campaign:
    rng = random.Random(seed * 1000 + index)
    pcs = rng.sample(WORDS["pc_names"], PLAYERS)
    firsts = rng.sample(WORDS["first"], 16)
    lasts = rng.sample(WORDS["last"], 16)
    npcs = [
        Npc(
            first,
            last,
            rng.choice(WORDS["roles"]),
            rng.choice(WORDS["stations"]),
            rng.choice(WORDS["factions"]),
        )
        for first, last in zip(firsts, lasts, strict=True)
    ]
    # Two NPCs share a first name, two a last name: the partial-name questions must disambiguate.
    npcs[15].first = npcs[3].first
    npcs[14].last = npcs[5].last
    n_sessions = rng.randint(16, 18)
    real = datetime(2026, 1, 5, 19, 0, tzinfo=UTC) + timedelta(days=index)
    game = date(2186 + index % 3, 1 + rng.randrange(12), 1 + rng.randrange(28))
    sessions = []
    for n in range(1, n_sessions + 1):
        span = rng.choice([1, 2, 2, 3, 3])
        sessions.append(Session(n, real, [game + timedelta(days=i) for i in range(span)]))
        real += timedelta(days=7 if rng.random() < 0.8 else 14)  # a skipped week now and then
        game += timedelta(days=span + rng.choice([0, 1, 2, 4, 6]))
    return Campaign(index, rng, f"recall v{VERSION} #{index:02d}", pcs, npcs, sessions)


# ---- the facts ---------------------------------------------------------------------------------


def _single(c: Campaign) -> None:
    r = c.rng
    S = len(c.sessions)
    items = WORDS["items"]
    for i in range(44):
        kind = (
            "stash",
            "price",
            "dock",
            "debt",
            "password",
            "injury",
            "intro",
            "pocket",
            "cargo",
            "kin",
            "roll",
        )[i % 11]
        npc, other = r.sample(c.npcs, 2)
        s = r.randint(1, S)
        late = r.randint(min(S, s + 1), S)
        if kind == "stash":
            (item, item_q), spot, venue = (
                c.fresh("stash", items),
                r.choice(WORDS["spots"]),
                r.choice(WORDS["venues"]),
            )
            m = c.say(s, npc, f"The {item} is stashed {spot} in {venue}. Don't tell a soul.")
            # near misses: the same NPC, another stash; another NPC, the same item elsewhere
            (item2, _) = r.choice([x for x in items if x[0] != item])
            c.say(
                late,
                npc,
                f"The {item2} is stashed {r.choice(WORDS['spots'])} in {r.choice(WORDS['venues'])}.",
            )
            c.say(r.randint(1, S), other, f"Somebody stashed a {item} {r.choice(WORDS['spots'])}, I'd bet.")
            ref = c.ref(npc)
            q = r.choice(
                [
                    f"Where did {ref} say the {item_q} was stashed?",
                    f"where is the {item} hidden according to {ref}",
                    f"{ref} told us where the {item_q} is hidden. Where was it?",
                    f"Remind me where {ref} said the {item} is",
                ]
            )
            c.ask("single", kind, q, [m])
        elif kind == "price":
            (item, item_q), price = c.fresh("price", items), r.randint(3, 400) * 10
            m = c.say(s, npc, f"I'll part with the {item} for {price} credits, not a chit less.")
            c.say(
                late,
                npc,
                f"Prices went up. {r.randint(3, 400) * 10} for anything off the {r.choice(WORDS['ship_b'])} shelf.",
            )
            c.say(r.randint(1, S), other, f"I'll sell you a {item} for {r.randint(3, 400) * 10} credits.")
            ref = c.ref(npc)
            q = r.choice(
                [
                    f"How much did {ref} want for the {item_q}?",
                    f"what was {ref}'s price on the {item}",
                    f"{ref} quoted us a price for a {item_q}; how much?",
                ]
            )
            c.ask("single", kind, q, [m])
        elif kind == "dock":
            ship = f"{r.choice(WORDS['ship_a'])} {r.choice(WORDS['ship_b'])}"
            station, hour = (
                r.choice(WORDS["stations"]),
                r.choice(["0400", "0600", "1130", "1400", "1945", "2200"]),
            )
            m = c.say(s, npc, f"The {ship} leaves {station} at {hour} hours sharp.")
            c.say(late, other, f"The {ship} is a slow old tub, don't book passage on her.")
            ref = c.ref(npc)
            q = r.choice(
                [
                    f"What time does the {ship} depart from {station}?",
                    f"When did {ref} say the {ship} leaves?",
                    f"departure time of the {ship}?",
                ]
            )
            c.ask("single", kind, q, [m])
        elif kind == "debt":
            faction, amount = c.fresh("debt", WORDS["factions"]), r.randint(2, 90) * 100
            debtor = r.choice([n for n in c.npcs if n not in (npc,)])
            m = c.say(s, npc, f"{debtor.name} owes the {faction} {amount} credits and they want it back.")
            c.say(late, npc, f"{r.choice(c.npcs).name} paid off the {r.choice(WORDS['factions'])} last week.")
            q = r.choice(
                [
                    f"Who owes money to the {faction}?",
                    f"Which of our contacts is in debt to the {faction}, and for how much?",
                    f"how much does {c.ref(debtor)} owe and to whom",
                ]
            )
            c.ask("single", kind, q, [m])
        elif kind == "password":
            venue, phrase = c.fresh("password", WORDS["venues"]), r.choice(WORDS["phrases"])
            m = c.say(s, npc, f"Say '{phrase}' at the door of {venue} and they'll let you in.")
            c.say(
                late,
                other,
                f"The doorman at {r.choice([v for v in WORDS['venues'] if v != venue])} wants a password now.",
            )
            q = r.choice(
                [
                    f"What's the password to get into {venue}?",
                    f"What do we say at the door of {venue}?",
                    f"the passphrase for {venue}, what was it again",
                ]
            )
            c.ask("single", kind, q, [m])
        elif kind == "injury":
            npc = c.fresh("injury", [n for n in c.npcs if n is not other])
            (part, part_q), ship = (
                r.choice(WORDS["parts"]),
                f"{r.choice(WORDS['ship_a'])} {r.choice(WORDS['ship_b'])}",
            )
            m = c.add(
                s, f"{npc.name} lost {part} in the reactor fire aboard the {ship}; the scars still show."
            )
            c.add(late, f"{npc.name} still limps from an old duel on {r.choice(WORDS['stations'])}.")
            ref = c.ref(npc)
            q = r.choice(
                [
                    f"How did {ref} lose their {part_q}?",
                    f"What happened to {ref}'s {part_q}?",
                    f"{ref} got hurt in some fire — on which ship?",
                ]
            )
            c.ask("single", kind, q, [m])
        elif kind == "intro":
            npc = c.fresh("intro", [n for n in c.npcs if n is not other])
            m = c.add(
                s,
                f"{npc.name} is a {npc.role} who works out of {npc.station} for the {npc.faction}.",
                event="SceneChanged",
            )
            c.add(late, f"{npc.name} complained about the food on {r.choice(WORDS['stations'])}.")
            q = r.choice(
                [
                    f"What does {npc.name} do for a living?",
                    f"Who is {npc.first} {npc.last} again?",
                    f"remind me what {typo(r, npc.name)}'s job is",
                    f"Where does {npc.last} work out of?",
                ]
            )
            c.ask("single", kind, q, [m])
        elif kind == "pocket":
            (item, item_q), pc = c.fresh("pocket", items), r.choice(c.pcs)
            m = c.act(s, pc, f"I slip the {item} into my coat before anyone notices.")
            c.act(
                late,
                r.choice([p for p in c.pcs if p != pc]),
                f"I put the {item} back on the shelf where I found it.",
            )
            q = r.choice(
                [
                    f"Which of us pocketed the {item_q}?",
                    f"Who took the {item}?",
                    f"who has the {item_q} now, which of us grabbed it",
                ]
            )
            c.ask("single", kind, q, [m])
        elif kind == "cargo":
            ship = f"{r.choice(WORDS['ship_a'])} {r.choice(WORDS['ship_b'])}"
            (cargo, cargo_q), station, t = (
                r.choice(WORDS["cargo"]),
                r.choice(WORDS["stations"]),
                r.randint(3, 90),
            )
            m = c.add(s, f"The {ship}'s hold carries {t} tonnes of {cargo} bound for {station}.")
            c.add(late, f"We watched the {ship} take on fuel at {r.choice(WORDS['locs'])}.")
            q = r.choice(
                [
                    f"What is the {ship} hauling, and where to?",
                    f"Where is the {ship}'s {cargo_q} going?",
                    f"how much {cargo_q} is on the {ship}",
                ]
            )
            c.ask("single", kind, q, [m])
        elif kind == "kin":
            rel = r.choice(["estranged sister", "older brother", "adopted son", "former wife", "cousin"])
            m = c.add(s, f"{npc.name} is the {rel} of {other.name}; they have not spoken in years.")
            q = r.choice(
                [
                    f"How is {c.ref(npc)} related to {other.name}?",
                    f"What's the family tie between {npc.last} and {other.last}?",
                ]
            )
            c.ask("single", kind, q, [m])
        elif kind == "roll":
            pc, skill = r.choice(c.pcs), c.fresh("roll", WORDS["skills"])
            total, dc = r.randint(22, 30), r.randint(14, 20)
            m = c.add(
                s,
                f"{pc} got a critical success on a {skill} check (rolled {total} against DC {dc}).",
                event="DiceRolled",
                speaker=pc,
                importance=0.6,
            )
            c.add(
                late,
                f"{r.choice(c.pcs)} got a critical failure on a {skill} check (rolled 2 against DC {dc}).",
                event="DiceRolled",
                importance=0.6,
            )
            q = r.choice(
                [
                    f"Who rolled a critical success on {skill}?",
                    f"which of us nailed the {skill} check with a crit?",
                ]
            )
            c.ask("single", kind, q, [m])


def _multihop(c: Campaign) -> None:
    r = c.rng
    S = len(c.sessions)
    items = WORDS["items"]
    for i in range(30):
        kind = ("sale", "sister", "stowed", "giver", "debtor_home")[i % 5]
        a, b = sorted(r.sample(range(1, S + 1), 2))
        npc, other = r.sample(c.npcs, 2)
        if kind == "sale":
            (item, item_q), venue = c.fresh("sale", items), r.choice(WORDS["venues"])
            m1 = c.add(a, f"{npc.name} sold us a {item} at {venue} for {r.randint(2, 90) * 10} credits.")
            m2 = c.add(
                b, f"We learned the {item} was meant for {other.name} of the {other.faction} all along."
            )
            cheap = r.choice([x for x in items if x[0] != item])[0]
            c.add(r.randint(1, S), f"{npc.name} sold us a {cheap} cheap, no questions asked.")
            q = r.choice(
                [
                    f"Who sold us the {item_q}, and who was it for?",
                    f"the {item} we bought — who from, and who was it really meant for?",
                    f"Who was the {item_q} intended for, and who sold it to us?",
                ]
            )
            c.ask("multihop", kind, q, [m1, m2])
        elif kind == "sister":
            npc = c.fresh("sister", c.npcs)
            other = r.choice(
                [n for n in c.npcs if n is not npc and sum(x.first == n.first for x in c.npcs) == 1]
            )
            rel = r.choice(["sister", "brother", "partner", "old mentor"])
            venue, station = r.choice(WORDS["venues"]), r.choice(WORDS["stations"])
            m1 = c.say(a, npc, f"My {rel} {other.first} keeps the books for the {other.faction}.")
            m2 = c.add(b, f"{other.name} runs a table at {venue} on {station} most nights.")
            q = r.choice(
                [
                    f"Where can we find {c.ref(npc)}'s {rel}?",
                    f"{npc.first} mentioned a {rel} — where do they hang out?",
                    f"where does the {rel} of {npc.name} spend their nights",
                ]
            )
            c.ask("multihop", kind, q, [m1, m2])
        elif kind == "stowed":
            (item, item_q), pc = c.fresh("stowed", items), r.choice(c.pcs)
            ship = f"{r.choice(WORDS['ship_a'])} {r.choice(WORDS['ship_b'])}"
            station = r.choice(WORDS["stations"])
            m1 = c.act(a, pc, f"I stow the {item} in the cargo hold of the {ship} and seal the hatch.")
            m2 = c.add(b, f"The {ship} undocked overnight and set course for {station}.")
            q = r.choice(
                [
                    f"Where did the {item_q} we hid end up going?",
                    f"{pc.split()[0]} hid the {item} on a ship; where was that ship headed?",
                    f"which station is the {item_q} on its way to",
                ]
            )
            c.ask("multihop", kind, q, [m1, m2])
        elif kind == "giver":
            (item, item_q) = c.fresh("giver", items)
            m1 = c.add(
                a, f"{npc.name} pressed a {item} into {r.choice(c.pcs)}'s hand and walked off without a word."
            )
            m2 = c.add(
                b,
                f"{npc.name} keeps a bunk above {r.choice(WORDS['venues'])} on {npc.station}; that's where {npc.first} sleeps.",
            )
            q = r.choice(
                [
                    f"Who gave us the {item_q}, and where do they live?",
                    f"the person who handed us the {item} — where's their bunk?",
                ]
            )
            c.ask("multihop", kind, q, [m1, m2])
        else:
            faction, amount = c.fresh("debt", WORDS["factions"]), r.randint(2, 90) * 100
            m1 = c.say(a, npc, f"{other.first} is into the {faction} for {amount} credits.")
            m2 = c.add(
                b,
                f"{other.name} has been hiding out at {r.choice(WORDS['locs'])} on {r.choice(WORDS['stations'])}.",
            )
            q = r.choice(
                [
                    f"Where is the person who owes the {faction} {amount} credits hiding?",
                    f"{c.ref(npc)} told us someone owes the {faction}; where are they holed up?",
                ]
            )
            c.ask("multihop", kind, q, [m1, m2])


def _temporal(c: Campaign) -> None:
    r = c.rng
    S = len(c.sessions)
    days = [(s.number, d) for s in c.sessions for d in s.days]
    # A dated log of meetings: at most one a day.
    meets: dict[date, dict] = {}
    seen: dict[str, list[dict]] = {}
    cast = r.sample(c.npcs, 10)
    for number, d in days:
        if r.random() < 0.8:
            npc = r.choice(cast)
            line = r.choice(WORDS["moves"]).format(
                npc=npc.name, venue=r.choice(WORDS["venues"]), loc=r.choice(WORDS["locs"])
            )
            m = c.add(number, line, day=d, kind="meet")
            meets[d] = m
            seen.setdefault(npc.name, []).append(m)
    by_session: dict[int, list[dict]] = {}
    for m in meets.values():
        by_session.setdefault(m["session"], []).append(m)
    c.cast = cast
    # who did we meet on an in-game date / in session N / on the real evening we played
    for d in r.sample(sorted(meets), min(8, len(meets))):
        q = r.choice(
            [
                f"Who did we meet on {date_text(r, d)}?",
                f"who did we run into on {date_text(r, d)}",
                f"On {date_text(r, d)}, who did we see?",
            ]
        )
        c.ask("temporal", "game_date", q, [meets[d]])
    singles = [n for n, ms in by_session.items() if len(ms) == 1]
    for n in r.sample(singles, min(5, len(singles))):
        c.ask(
            "temporal",
            "session_n",
            r.choice([f"Who did we meet in {c.session_ref(n)}?", f"who showed up in {c.session_ref(n)}"]),
            by_session[n],
        )
    for n in r.sample(singles, min(3, len(singles))):
        when = c.sessions[n - 1].real
        q = r.choice(
            [
                f"Who did we meet in the game we played on {date_text(r, when.date())}?",
                f"In our session on {when.strftime('%A')} {date_text(r, when.date())}, who did we run into?",
            ]
        )
        c.ask("temporal", "real_date", q, by_session[n])
    # relative to a named event: "three days before the raid on X"
    for template in r.sample(WORDS["events"], 6):
        event = template.format(
            venue=r.choice(WORDS["venues"]), loc=r.choice(WORDS["locs"]), station=r.choice(WORDS["stations"])
        )
        options = [
            (n, d, k)
            for n, d in days
            for k in (-5, -4, -3, -2, -1, 1, 2, 3, 4)
            if d + timedelta(days=k) in meets
        ]
        n, d, k = r.choice(options)
        c.add(
            n,
            f"{event[0].upper()}{event[1:]} went loud: alarms, smoke and two of us bleeding.",
            day=d,
            importance=0.7,
            kind="event",
        )
        target = meets[d + timedelta(days=k)]
        if abs(k) == 1:
            rel = "the day before" if k < 0 else "the day after"
        else:
            rel = f"{r.choice([NUMBER_WORDS[abs(k)], str(abs(k))])} days {'before' if k < 0 else 'after'}"
        c.ask(
            "temporal",
            "relative",
            r.choice([f"Who did we meet {rel} {event}?", f"{rel} {event}, who did we run into?"]),
            [target],
        )
    # what we found at a place, per session
    for venue in r.sample(WORDS["venues"], 4):
        visits = sorted(r.sample(range(1, S + 1), 3))
        found = []
        for n in visits:
            (item, _) = r.choice(WORDS["items"])
            found.append(c.add(n, f"We searched {venue} top to bottom and turned up a {item}.", kind="find"))
        pick = r.randrange(3)
        q = r.choice(
            [
                f"What did we find at {venue} in {c.session_ref(visits[pick])}?",
                f"in {c.session_ref(visits[pick])}, what turned up when we searched {venue}",
            ]
        )
        c.ask("temporal", "session_n", q, [found[pick]])
        q = r.choice(
            [f"What did we find the last time we searched {venue}?", f"latest thing we dug up at {venue}?"]
        )
        c.ask("temporal", "latest", q, [found[-1]])
    # facts that changed: where a ship is now / first; who an NPC works for now
    for _ in range(5):
        ship = f"{r.choice(WORDS['ship_a'])} {r.choice(WORDS['ship_b'])}"
        a, b = sorted(r.sample(range(1, S + 1), 2))
        l1, l2 = r.sample(WORDS["locs"], 2)
        st = r.choice(WORDS["stations"])
        m1 = c.add(a, f"The {ship} is berthed at {l1} on {st}.")
        m2 = c.add(b, f"The {ship} has moved; she now sits at {l2}.")
        c.ask(
            "temporal",
            "latest",
            r.choice(
                [
                    f"Where is the {ship} berthed now?",
                    f"where's the {ship} docked these days",
                    f"current berth of the {ship}?",
                ]
            ),
            [m2],
        )
        c.ask(
            "temporal",
            "earliest",
            r.choice([f"Where was the {ship} berthed originally?", f"where did the {ship} first dock"]),
            [m1],
        )
    # before / after a twist
    twists = r.sample(WORDS["twists"], 2)
    tsess = sorted(r.sample(range(4, S - 3), 2))
    topics = r.sample(WORDS["topics"], 8)
    for j, ((title, short, text), t) in enumerate(zip(twists, tsess, strict=True)):
        villain = r.choice(c.npcs)
        body = text.format(
            npc=villain.name,
            faction=r.choice(WORDS["factions"]),
            station=r.choice(WORDS["stations"]),
            ship=f"{r.choice(WORDS['ship_a'])} {r.choice(WORDS['ship_b'])}",
        )
        c.add(
            t,
            f"Twist \u2014 {title}: {body[0].upper()}{body[1:]}",
            event="CardDrawn",
            importance=0.7,
            kind="twist",
        )
        for topic, topic_q in topics[4 * j : 4 * j + 4]:
            npc = r.choice(c.npcs)
            before = c.say(r.randint(1, t - 1), npc, f"About the {topic}: {r.choice(_OPINIONS)}")
            after = c.say(r.randint(t + 1, S), npc, f"About the {topic}: {r.choice(_OPINIONS)}")
            ref = c.ref(npc)
            if r.random() < 0.5:
                q = r.choice(
                    [
                        f"What did {ref} say about the {topic_q} before {short}?",
                        f"before {short}, what was {ref}'s take on the {topic}?",
                    ]
                )
                c.ask("temporal", "before", q, [before])
            else:
                q = r.choice(
                    [
                        f"What did {ref} say about the {topic} after {short}?",
                        f"After {short}, what did {ref} tell us about the {topic_q}?",
                    ]
                )
                c.ask("temporal", "after", q, [after])


_OPINIONS = [
    "it's rigged, and whoever runs it takes a cut of everything.",
    "nobody goes near it without paying the Guild first.",
    "I'd stay well clear for a few weeks.",
    "it's our best shot, if we move tonight.",
    "the Navy are watching it around the clock now.",
    "it's already lost; don't waste your fuel.",
    "my cousin swears it's haunted.",
    "the whole thing was a lie from the start.",
]


def _privacy(c: Campaign) -> None:
    r = c.rng
    S = len(c.sessions)
    players = [f"p{i}" for i in range(PLAYERS)]
    for _ in range(8):
        owner, twin, third = r.sample(players, 3)
        npc, (secret, topic) = c.fresh("whisper", [(n, tuple(x)) for n in c.npcs for x in WORDS["secrets"]])

        def fill(template: str) -> str:
            return template.format(
                code=r.randint(1000, 9999),
                npc2=r.choice(c.npcs).name,
                faction=r.choice(WORDS["factions"]),
                ship=f"{r.choice(WORDS['ship_a'])} {r.choice(WORDS['ship_b'])}",
                cargo=r.choice(WORDS["cargo"])[0],
                venue=r.choice(WORDS["venues"]),
                n=r.randint(5, 90) * 1000,
            )

        m = c.add(
            r.randint(1, S),
            f"GM whispered: {npc.name} slips you a note: {fill(secret)}.",
            event="Whisper",
            ns=owner,
            importance=0.8,
            kind="whisper",
        )
        has_twin = r.random() < 0.5
        if has_twin:
            m_twin = c.add(
                r.randint(1, S),
                f"GM whispered: {npc.name} slips you a note: {fill(secret)}.",
                event="Whisper",
                ns=twin,
                importance=0.8,
                kind="whisper",
            )
        ref = c.ref(npc)
        qs = [
            f"What was in the note {ref} slipped me?",
            f"what did {ref} whisper to me about the {topic}",
            f"{ref} passed me something in private — what did it say?",
            f"the secret {ref} told me: what was it?",
        ]
        c.ask("privacy", "owner", r.choice(qs), [m], viewer=owner)
        if has_twin:
            c.ask("privacy", "twin", r.choice(qs), [m_twin], viewer=twin)
        c.ask("privacy", "other", r.choice(qs), [], viewer=third)


def _adversarial(c: Campaign) -> None:
    r = c.rng
    for i in range(20):
        npc = r.choice(c.npcs)
        ref = c.ref(npc)
        thing, thing_q = r.choice(WORDS["adv_things"])
        if i % 2 == 0:  # words the campaign never used
            q = r.choice(
                [
                    f"What did {ref} say about the {thing}?",
                    f"Where did we hide the {thing_q}?",
                    f"When did we visit {r.choice(WORDS['adv_places'])}?",
                    f"Who is {r.choice(WORDS['adv_names'])}?",
                    f"How much did we pay for the {thing}?",
                    f"who sold us the {thing_q}",
                ]
            )
            c.ask("adversarial", "unseen", q, [])
        else:  # known words in a combination nobody said
            venue = r.choice(WORDS["venues"])
            station = r.choice(WORDS["stations"])
            q = r.choice(
                [
                    f"What did {ref} tell us about the {thing} at {venue}?",
                    f"When did {ref} fly the {thing_q} to {station}?",
                    f"Did {ref} ever mention the {thing} on {station}?",
                    f"What did {ref} bury under {venue}?",
                ]
            )
            c.ask("adversarial", "never_said", q, [])


def _chatter(c: Campaign, target: int) -> None:
    r = c.rng
    S = len(c.sessions)
    for s in c.sessions:
        venue = r.choice(WORDS["venues"])
        c.add(
            s.number,
            f"Scene: {venue}. {r.choice(WORDS['descs'])}",
            event="SessionOpened",
            day=s.days[0],
            importance=0.5,
            kind="scene",
        )
    introduced = {
        m["text"].split(" is a ")[0]
        for ms in c.planned.values()
        for m in ms
        if " who works out of " in m["text"]
    }
    for npc in c.npcs:
        if npc.name not in introduced:
            c.add(
                r.randint(1, max(1, S // 3)),
                f"{npc.name} is a {npc.role} who works out of {npc.station} for the {npc.faction}.",
                event="SceneChanged",
                kind="intro",
            )
    while c.counter < target:
        n = r.randint(1, S)
        k = r.randrange(6)
        if k == 0:
            c.act(n, r.choice(c.pcs), f"I {r.choice(WORDS['acts'])}.", kind="chatter")
        elif k == 1:
            c.add(n, r.choice(WORDS["narration"]), kind="chatter", importance=0.5)
        elif k == 2:
            c.say(n, r.choice(c.npcs), r.choice(WORDS["small"]), kind="chatter")
        elif k == 3:
            c.add(
                n,
                f"{r.choice(c.pcs)} got a critical failure on a {r.choice(WORDS['skills'])} check "
                f"(rolled {r.randint(1, 3)} against DC {r.randint(12, 20)}).",
                event="DiceRolled",
                kind="chatter",
            )
        elif k == 4:
            c.add(
                n,
                f"{r.choice(c.pcs)} received {r.choice(WORDS['items'])[0]} x1.",
                event="RewardGranted",
                kind="chatter",
            )
        else:
            npc, other = r.sample(c.npcs, 2)
            c.add(
                n,
                f"{npc.name} argued with {other.name} about fuel prices on {r.choice(WORDS['stations'])}.",
                kind="chatter",
            )


def _presence(c: Campaign) -> None:
    """ "When did we last see Hale?": answered by any memory of the last session where Hale was
    there (we met her, or she spoke), not by one that only mentions her."""
    r = c.rng
    for npc in c.cast:
        there = [
            m
            for s in sorted(c.planned)
            for m in c.planned[s]
            if m["ns"] == "campaign"
            and (m["speaker"] == npc.name or (m["kind"] == "meet" and npc.name in m["text"]))
        ]
        sessions = sorted({m["session"] for m in there})
        if len(sessions) < 2:
            continue
        last = [m for m in there if m["session"] == sessions[-1]]
        first = [m for m in there if m["session"] == sessions[0]]
        ref = c.ref(npc)
        q = r.choice(
            [
                f"When did we last see {ref}?",
                f"Where did we last run into {ref}?",
                f"last time we met {ref}, where was it?",
                f"most recent encounter with {ref}?",
            ]
        )
        c.ask("temporal", "last_seen", q, last, match="any")
        q = r.choice(
            [
                f"When did we first meet {ref}?",
                f"Where did we meet {ref} for the first time?",
                f"first encounter with {ref}",
            ]
        )
        c.ask("temporal", "first_seen", q, first, match="any")


def _finish(c: Campaign) -> None:
    """Lay out each session's memories in play order (the scene first, then by in-game day), with
    seqs and real timestamps."""
    r = c.rng
    for s in c.sessions:
        ms = c.planned.get(s.number, [])
        r.shuffle(ms)
        ms.sort(key=lambda m: (m["kind"] != "scene", m["game_date"]))
        for seq, m in enumerate(ms, start=1):
            m["seq"] = seq
            m["real"] = (s.real + timedelta(seconds=45 * seq)).isoformat()
            c.memories.append(m)


# ---- held-out phrasings ------------------------------------------------------------------------
# `--phrasing alt` asks every question in another wording (same id, same evidence): names said
# another way, other verbs, other date and session forms, chattier openings. Made with a random
# generator of its own, so the set itself never changes with these rules.

_SYNONYMS = [
    (r"\bWho did we meet\b", ["Who did we bump into", "Who did we cross paths with", "Which NPC did we see"]),
    (r"\bwho did we run into\b", ["who crossed our path", "who did we bump into"]),
    (r"\bWhen did we last see\b", ["What was the last time we saw", "When was the last time we ran into"]),
    (
        r"\bWhen did we first meet\b",
        ["When was our first encounter with", "When did we first run into"],
    ),
    (r"\bWhere did we last run into\b", ["Where was it we last saw"]),
    (r"\bWhat did we find\b", ["What did we turn up", "What did we dig up"]),
    (r"\bstashed\b", ["hidden", "squirrelled away"]),
    (r"\bWho sold us\b", ["Which trader sold us", "Who was it that sold us"]),
    (r"\bHow much did\b", ["What price did", "How many credits did"]),
    (r"\bpassword\b", ["passphrase", "door phrase"]),
    (r"\bWhat did (.+?) say about\b", [r"What was \1's word on", r"What did \1 tell us about"]),
    (r"\bwhisper to me about\b", ["tell me privately about", "let slip to me about"]),
    (r"\bbefore\b", ["prior to", "ahead of"]),
    (r"\bafter\b", ["following", "once we were past"]),
    (r"\bnow\b", ["at the moment", "these days"]),
    (r"\bwhere do they live\b", ["where do they sleep", "where's their place"]),
]
_OPENERS = ["", "", "", "Quick one: ", "GM, ", "Hey, ", "Remind me: ", "Wait, ", "Do we know "]
_ISO = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")
_DAY_MONTH = re.compile(
    r"\b(?:the )?(\d{1,2})(?:st|nd|rd|th)?(?: of)? (" + "|".join(MONTHS) + r")(?: (\d{4}))?\b"
    r"|\b(" + "|".join(MONTHS) + r") (\d{1,2})(?:st|nd|rd|th)?\b"
)
_SESSION = re.compile(r"\b(?:session (\d+|[a-z]+)|our (\w+) session|the (\w+) session|game (\d+))\b")


def _session_number(m: re.Match) -> int | None:
    word = next(g for g in m.groups() if g)
    if word.isdigit():
        return int(word)
    if word in NUMBER_WORDS:
        return NUMBER_WORDS.index(word)
    return ORDINALS.index(word) if word in ORDINALS else None


def alternate(q: dict, npcs: list[Npc], days: list[date], rng: random.Random) -> str:
    """The question in another wording: same meaning, same answer."""
    text = q["q"]
    # Names: a full name becomes a part of it, a typo or the role (and a part becomes the full name).
    for npc in sorted(npcs, key=lambda n: -len(n.name)):
        if npc.name in text:
            same_role = sum(n.role == npc.role for n in npcs) == 1
            forms = [npc.last, npc.first, typo(rng, npc.name)] + ([f"the {npc.role}"] if same_role else [])
            text = text.replace(npc.name, rng.choice(forms))
    for pattern, options in _SYNONYMS:
        if re.search(pattern, text) and rng.random() < 0.7:
            text = re.sub(pattern, rng.choice(options), text, count=1)
    # Dates: another way to write the same in-game day.
    found = _ISO.search(text) or _DAY_MONTH.search(text)
    if found:
        if found.re is _ISO:
            month, day = int(found[2]), int(found[3])
        elif found[2]:
            month, day = MONTHS.index(found[2]) + 1, int(found[1])
        else:
            month, day = MONTHS.index(found[4]) + 1, int(found[5])
        d = next((d for d in days if (d.month, d.day) == (month, day)), None)
        if d is not None:  # (a real date, not one of the campaign's days: left as it is)
            text = text[: found.start()] + date_text(rng, d) + text[found.end() :]
    found = _SESSION.search(text)
    if found and (n := _session_number(found)) is not None and 0 < n < len(ORDINALS):
        forms = [f"session #{n}", f"the {ORDINALS[n]} session", f"session {n}", f"game night {n}"]
        text = text[: found.start()] + rng.choice(forms) + text[found.end() :]
    opener = rng.choice(_OPENERS)
    if opener:
        text = opener + text[0].lower() + text[1:] if not text[:2].isupper() else opener + text
    if rng.random() < 0.3:
        text = text.rstrip("?").lower()
    return text


def campaign(index: int, seed: int = SEED) -> dict:
    c = _campaign(index, seed)
    _single(c)
    _multihop(c)
    _temporal(c)
    _privacy(c)
    _adversarial(c)
    _chatter(c, target=c.rng.randint(430, 470))
    _presence(c)
    _finish(c)
    alt = random.Random(f"alt-{seed}-{index}")
    days = [d for s in c.sessions for d in s.days]
    for q in c.questions:
        q["q_alt"] = alternate(q, c.npcs, days, alt)
    return {
        "index": index,
        "name": c.name,
        "pcs": c.pcs,
        "sessions": [
            {"number": s.number, "real": s.real.isoformat(), "days": [d.isoformat() for d in s.days]}
            for s in c.sessions
        ],
        "memories": c.memories,
        "questions": c.questions,
    }


def generate(campaigns: int = 10, seed: int = SEED, per_campaign: int | None = None) -> list[dict]:
    sets = [campaign(i, seed) for i in range(campaigns)]
    return [pad(s, per_campaign, seed) for s in sets] if per_campaign else sets


def pad(camp: dict, n: int, seed: int = SEED) -> dict:
    """The campaign with table chatter added until it has `n` memories (a longer campaign): the
    players' idle actions, the GM's scenery, failed checks and NPCs' arguments, spread over the
    sessions between the memories that were there (which keep their order; seqs and timestamps are
    laid out again). Nothing added answers a question: no meetings, no NPC lines, no successes,
    no items, so every label stays right. Its own random generator: the set itself is unchanged."""
    missing = n - len(camp["memories"])
    if missing <= 0:
        return camp
    r = random.Random(f"pad-{seed}-{camp['index']}-{n}")
    names = sorted({m["speaker"] for m in camp["memories"] if m["event_type"] == "NpcSpoke"})
    sessions = {s["number"]: s for s in camp["sessions"]}
    added: dict[int, list[dict]] = {}
    for j in range(missing):
        number = r.choice(list(sessions))
        k = r.randrange(4)
        pc = r.choice(camp["pcs"])
        if k == 0:
            text, event, speaker = f"{pc} acted: I {r.choice(WORDS['acts'])}.", "Action", pc
        elif k == 1:
            text, event, speaker = r.choice(WORDS["narration"]), "Narration", "GM"
        elif k == 2:
            text = (
                f"{pc} got a critical failure on a {r.choice(WORDS['skills'])} check "
                f"(rolled {r.randint(1, 3)} against DC {r.randint(12, 20)})."
            )
            event, speaker = "DiceRolled", pc
        else:
            a, b = r.sample(names, 2)
            text = f"{a} argued with {b} about fuel prices on {r.choice(WORDS['stations'])}."
            event, speaker = "Narration", "GM"
        added.setdefault(number, []).append({
            "key": f"c{camp['index']:02d}-f{j:05d}", "session": number, "text": text, "event_type": event,
            "speaker": speaker, "ns": "campaign", "game_date": r.choice(sessions[number]["days"]),
            "importance": 0.4 if event == "Action" else 0.5, "kind": "filler",
        })  # fmt: skip
    memories = []
    for number, s in sessions.items():
        ms = [m for m in camp["memories"] if m["session"] == number]
        for extra in added.get(number, []):
            ms.insert(r.randint(1, len(ms)), dict(extra))  # never before the session's opening scene
        real = datetime.fromisoformat(s["real"])
        ms.sort(key=lambda m: m["game_date"])  # stable: the played order within a day stays
        for seq, m in enumerate(ms, start=1):
            memories.append({**m, "seq": seq, "real": (real + timedelta(seconds=45 * seq)).isoformat()})
    return {**camp, "name": f"{camp['name'].split(' #')[0]} x{n} #{camp['index']:02d}", "memories": memories}


def select(sets: list[dict], *, questions: int | None = None, category: str | None = None) -> list[dict]:
    """The questions to ask: all of `category` (or every category), then, with `questions`, an
    even spread of that many over campaigns and categories (the same ones every run)."""
    qs = [q for s in sets for q in s["questions"] if category in (None, q["category"])]
    if questions is None or questions >= len(qs):
        return qs
    rng = random.Random(SEED)
    groups: dict[tuple, list[dict]] = {}
    for q in qs:
        groups.setdefault((q["category"], q["campaign"]), []).append(q)
    for g in groups.values():
        rng.shuffle(g)
    picked: list[dict] = []
    while len(picked) < questions:
        for key in sorted(groups):
            if groups[key] and len(picked) < questions:
                picked.append(groups[key].pop())
    return sorted(picked, key=lambda q: q["id"])
