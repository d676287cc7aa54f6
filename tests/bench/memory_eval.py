"""Memory recall evaluation: `python -m tests.bench.memory_eval [--no-write]`.

Generates a long synthetic campaign from templates with a fixed seed (no network, no LLM), loads
it into a fresh campaign in the benchmark database (gtw_site.bench.memory.setup(): var/bench, never
your game), embeds it with the configured embedder, and asks every question through
`memory.retrieval.search_scoped` as player A, k=10, in "keyword", "vector" and "hybrid" mode:
recall@5, recall@10 and MRR per mode and per question style, then what-ifs (the same candidates
re-ranked under other fusion settings; memory/ranking.py and retrieval.py are not changed).
Updates "## Memory recall" in docs/BENCHMARKS.md unless --no-write (see there for the design).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

SEED = 1977
DAYS = 120
K = 10
GENERATED = Path(__file__).resolve().parents[2] / "var" / "bench" / "memory_eval.json"  # to read
SECTION = "## Memory recall"


WORDS = json.loads((Path(__file__).resolve().parent / "data" / "memory_eval_words.json").read_text())
FIRST, LAST, SHIP_A, SHIP_B = WORDS["first"], WORDS["last"], WORDS["ship_a"], WORDS["ship_b"]
STATIONS, ROLES, SPOTS, LOCS, VENUES = (WORDS[k] for k in ("stations", "roles", "spots", "locs", "venues"))
FACTIONS, REGIONS, PHRASES, CHATTER = (WORDS[k] for k in ("factions", "regions", "phrases", "chatter"))
# (what the memory says, what the question says)
ITEMS, CARGO, PARTS = ([tuple(p) for p in WORDS[k]] for k in ("items", "cargo", "parts"))


@dataclass
class Npc:
    name: str
    role: str
    station: str


@dataclass
class EvalSet:
    rng: random.Random
    memories: list[dict] = field(default_factory=list)
    questions: list[dict] = field(default_factory=list)
    seen: set = field(default_factory=set)
    npcs: list = field(default_factory=list)
    ships: list = field(default_factory=list)

    def add(self, text: str, day: int, ns: str = "campaign") -> str:
        if text in self.seen:  # a look-alike that came out word for word: one copy is enough
            return ""
        self.seen.add(text)
        key = f"m{len(self.memories):04d}"
        importance = round(self.rng.uniform(0.3, 0.7), 2)
        self.memories.append({"key": key, "text": text, "day": day, "ns": ns, "importance": importance})
        return key

    def ask(self, text: str, keys: list[str], style: str) -> None:
        assert all(keys), f"an answer to {text!r} was dropped as a duplicate"
        self.questions.append({"q": text, "relevant": keys, "style": style})

    def npc(self) -> Npc:
        while (name := f"{self.rng.choice(FIRST)} {self.rng.choice(LAST)}") in self.seen:
            pass
        self.seen.add(name)
        self.npcs.append(Npc(name, self.rng.choice(ROLES), self.rng.choice(STATIONS)))
        return self.npcs[-1]

    def known(self) -> Npc:
        """Someone we have met already: names recur across a campaign."""
        return self.rng.choice(self.npcs)

    def ship(self) -> str:
        while (name := f"{self.rng.choice(SHIP_A)} {self.rng.choice(SHIP_B)}") in self.seen:
            pass
        self.seen.add(name)
        self.ships.append(name)
        return name


def fact(e: EvalSet, kind: str, asked: bool) -> None:
    """One fact of `kind`; if asked: early, with its question (and a near-miss about the same
    subject). Otherwise a look-alike fact at any time (a distractor)."""
    r = e.rng
    day = r.randint(1, 40) if asked else r.randint(1, DAYS)
    who, other = e.npc(), e.known()
    by_role = r.random() < 0.35
    ref = f"the {who.role} from {who.station}" if by_role else who.name
    a_role = f"{'an' if who.role[0] in 'aeiou' else 'a'} {who.role}"
    appos = f", {a_role} out of {who.station}," if by_role else ""
    style = "role" if by_role else "name"

    def late() -> int:  # near-misses come after the fact, so recency favours them
        return r.randint(41, DAYS)

    if kind == "stash":
        (item, item_q), spot, loc = r.choice(ITEMS), r.choice(SPOTS), r.choice(LOCS)
        verb = r.choice(["stashed", "tucked away", "concealed", "hid"])
        key = e.add(f"{who.name}{appos} {verb} the {item} {spot} in {loc}.", day)
        if asked:
            e.add(f"{who.name} sold a {r.choice(ITEMS)[0]} to a stranger in {r.choice(LOCS)}.", late())
            e.add(f"{other.name} hid a {item} {r.choice(SPOTS)} in {loc}.", late())
            if r.random() < 0.25:  # moved later: only the new place answers "now"
                moved = e.add(f"After the raid {who.name} moved the {item} to {r.choice(LOCS)}.", 95)
                e.ask(f"Where is the {item_q} that {ref} hid kept now?", [moved], "update")
            else:
                hide = r.choice(["hide", "put", "squirrel away"])
                e.ask(f"Where did {ref} {hide} the {item_q}?", [key], style)
    elif kind == "dock":
        ship, station = e.ship(), r.choice(STATIONS)
        code = f"{r.choice('KLMNRTVX')}{r.randint(1, 9)}-{r.randint(1000, 9999)}"
        text = f"Harbourmaster {who.name} cleared the {ship} for berth {r.randint(2, 40)} at {station}"
        key = e.add(f"{text}; docking code {code}.", day)
        if asked:
            e.add(f"The {ship} took on water and ration packs at {r.choice(STATIONS)}.", late())
            if r.random() < 0.3:  # the code changed later: only the new one answers "current"
                new = f"{r.choice('KLMNRTVX')}{r.randint(1, 9)}-{r.randint(1000, 9999)}"
                upd = e.add(f"After the breach, {station} control reissued the {ship}'s code as {new}.", 100)
                e.ask(f"What is the {ship}'s current clearance to dock at {station}?", [upd], "update")
            elif r.random() < 0.6:
                e.ask(f"Which ship was given clearance code {code}?", [key], "exact")
            else:
                e.ask(f"What code lets the {ship} into {station}?", [key], "name")
    elif kind == "beacon":
        ship, region = e.ship(), r.choice(REGIONS)
        x, y = round(r.uniform(-90, 90), 1), round(r.uniform(-180, 180), 1)
        key = e.add(f"The {ship}'s distress beacon was traced to coordinates {x}, {y} in the {region}.", day)
        if asked:
            e.add(f"The {ship} was last seen refuelling at {r.choice(STATIONS)}.", late())
            if r.random() < 0.5:
                e.ask(f"Which ship's SOS came from {x}, {y}?", [key], "exact")
            else:
                e.ask(f"Where was the {ship} sending its SOS from?", [key], "name")
    elif kind == "debt":
        amount, creditor = r.randint(2, 90) * 100, e.npc()
        key = e.add(
            f"{who.name}{appos} owes {creditor.name} {amount:,} credits after a rigged card game.", day
        )
        if asked:
            keys = [key]
            if r.random() < 0.7:
                keys.append(e.add(f"{who.name} paid back {amount // 2:,} credits to {creditor.name}.", 90))
            q = "What does {} still owe, and to whom?" if len(keys) > 1 else "How much money is {} in debt?"
            e.ask(q.format(ref), keys, "multi" if len(keys) > 1 else style)
            e.add(f"{creditor.name} lent a shuttle to {other.name} for a week.", late())
    elif kind == "loyalty":
        faction = r.choice(FACTIONS)
        ns = "a" if asked else r.choice(["a", "b", "campaign"])
        key = e.add(f"I saw {who.name} pass a coded message to an agent of the {faction}.", day, ns)
        if asked:
            e.add(f"I saw {other.name} pass a coded message to an agent of the {faction}.", day + 2, "b")
            e.ask(f"Who is {who.name} secretly reporting to?", [key], "private")
    elif kind == "password":
        while (venue := r.choice(VENUES), station := r.choice(STATIONS)) in e.seen:
            pass  # one password per door, or the question has two answers
        e.seen.add((venue, station))
        phrase = r.choice(PHRASES)
        key = e.add(f"The door password at {venue} on {station} is '{phrase}'.", day)
        if asked:
            e.ask(f"What do we have to say to get inside {venue} on {station}?", [key], "name")
    elif kind == "injury":
        part, part_q = r.choice(PARTS)
        ship = e.ship()
        key = e.add(f"{who.name}{appos} lost {part} in the reactor fire aboard the {ship}.", day)
        if asked:
            e.add(f"{who.name} still limps from an old duel on {r.choice(STATIONS)}.", late())
            e.ask(
                f"How did {ref} get hurt?" if by_role else f"What happened to {ref}'s {part_q}?", [key], style
            )
    elif kind == "kin":
        rel = r.choice(["estranged sister", "older brother", "adopted son", "former wife"])
        key = e.add(f"{who.name} is the {rel} of {other.name}; they have not spoken in years.", day)
        if asked:
            e.ask(f"How is {who.name} related to {other.name}?", [key], "name")
    elif kind == "meeting":
        venue, station, hour = r.choice(VENUES), r.choice(STATIONS), r.choice(["0600", "1400", "2200"])
        key = e.add(f"We agreed to meet {who.name}{appos} at {venue} on {station} at {hour} hours.", day)
        if asked:
            e.ask(f"When and where is our rendezvous with {ref}?", [key], style)
    elif kind == "cargo":
        ship, (cargo, cargo_q), station = e.ship(), r.choice(CARGO), r.choice(STATIONS)
        tonnes = r.randint(3, 90)
        key = e.add(f"The {ship}'s hold carries {tonnes} tonnes of {cargo} bound for {station}.", day)
        if asked:
            q = r.choice(
                [f"What is the {ship} hauling, and where to?", f"Where is the {ship}'s {cargo_q} going?"]
            )
            e.ask(q, [key], "name")
    elif kind == "price":
        (item, item_q), price = r.choice(ITEMS), r.randint(3, 400) * 10
        key = e.add(f"{who.name}{appos} sells a {item} for {price} credits in {r.choice(LOCS)}.", day)
        if asked:
            if r.random() < 0.4:
                e.ask(f"Who sells a {item_q} for {price} credits?", [key], "exact")
            else:
                e.ask(f"How much does {ref} charge for a {item_q}?", [key], style)
    elif kind == "intro":
        key = e.add(f"{who.name} is {a_role} who works out of {who.station}.", day)
        if asked:
            e.add(f"{who.name} complained about the food on {r.choice(STATIONS)}.", late())
            e.ask(f"What does {who.name} do for a living?", [key], "name")


KINDS = ("stash", "dock", "beacon", "debt", "loyalty", "password", "injury", "kin", "meeting", "cargo")
KINDS += ("price", "intro")


def generate(seed: int = SEED, asked: int = 180, distractors: int = 520, chatter: int = 560) -> EvalSet:
    e = EvalSet(random.Random(seed))
    for i in range(asked):
        fact(e, KINDS[i % len(KINDS)], asked=True)
    for _ in range(distractors):
        fact(e, e.rng.choice(KINDS), asked=False)
    r = e.rng
    for _ in range(chatter):
        text = r.choice(CHATTER).format(
            n=e.known().name, m=e.known().name, v=r.choice(VENUES), s=r.choice(STATIONS),
            ship=r.choice(e.ships), r=r.choice(REGIONS), f=r.choice(FACTIONS),
        )  # fmt: skip
        e.add(text, r.randint(1, DAYS), r.choice(["campaign"] * 4 + ["a", "b"]))
    return e


# ---- load, ask, score ---------------------------------------------------------------------------


def load(e: EvalSet) -> dict:
    """A fresh campaign (the previous evaluation's is deleted) with GM + players A and B."""
    import numpy as np

    from campaigns.models import Campaign, Membership
    from gtw_site.bench import memory as bm
    from memory.embeddings import registry
    from memory.models import Memory, campaign_namespace, player_namespace

    gm, a, b = (bm.user(f"memeval-{x}") for x in ("gm", "a", "b"))
    Campaign.objects.filter(name__startswith="memeval ").delete()
    campaign = bm.new_campaign(f"memeval {SEED}", gm)
    Membership.objects.bulk_create(Membership(campaign=campaign, user=u, role="player") for u in (a, b))
    ns = {
        "campaign": campaign_namespace(campaign.id),
        "a": player_namespace(a.id),
        "b": player_namespace(b.id),
    }
    embedder = registry.get()
    t = time.perf_counter()
    vectors = embedder.embed([m["text"] for m in e.memories])
    embed_s = time.perf_counter() - t
    now = datetime.now(UTC)
    bm.copy_memories(
        (campaign.id, ns[m["ns"]], "episodic", m["text"], np.asarray(v), m["importance"],
         now - timedelta(days=DAYS - m["day"], minutes=i % 600), {"key": m["key"]})
        for i, (m, v) in enumerate(zip(e.memories, vectors, strict=True))
    )  # fmt: skip
    ids = dict(Memory.objects.filter(campaign=campaign).values_list("metadata__key", "id"))
    return dict(campaign=campaign.id, a=a.id, b_ns=ns["b"], ids=ids, embed_s=embed_s, embedder=embedder)


def score(ranked: list[list[int]], relevant: list[set[int]]) -> dict:
    r5 = r10 = mrr = 0.0
    for got, want in zip(ranked, relevant, strict=True):
        r5 += len(want & set(got[:5])) / len(want)
        r10 += len(want & set(got[:K])) / len(want)
        mrr += next((1 / (i + 1) for i, mid in enumerate(got[:K]) if mid in want), 0.0)
    n = len(ranked)
    return {"recall@5": round(r5 / n, 3), "recall@10": round(r10 / n, 3), "mrr": round(mrr / n, 3)}


def ask_all(e: EvalSet, ctx: dict) -> dict:
    from memory.models import Memory
    from memory.retrieval import scope_filter, search_scoped

    scope = scope_filter(campaign_id=ctx["campaign"], user_id=ctx["a"], is_gm=False)
    private_b = set(Memory.objects.filter(namespace=ctx["b_ns"]).values_list("id", flat=True))
    out = {}
    for mode in ("keyword", "vector", "hybrid"):
        t = time.perf_counter()
        ranked = [[r.memory.id for r in search_scoped(scope=scope, query=q["q"], k=K, mode=mode)]
                  for q in e.questions]  # fmt: skip
        ms = (time.perf_counter() - t) * 1000 / len(e.questions)
        out[mode] = {"ranked": ranked, "ms": ms, "leaks": sum(len(private_b & set(got)) for got in ranked)}
    return out


def what_ifs(e: EvalSet, ctx: dict, relevant: list[set[int]]) -> list[tuple[str, dict]]:
    """Re-rank the candidate lists search_scoped builds under other settings, to see which part of
    the fusion costs recall. Mirrors retrieval.search_scoped step by step ('as shipped' reproduces
    the hybrid row; the '(before)' rows reproduce the code up to 2026-11-25)."""
    from django.contrib.postgres.search import SearchQuery, SearchRank
    from django.db.models import F
    from django.utils import timezone

    from memory import ranking, retrieval
    from memory.models import Memory

    base = Memory.objects.filter(
        retrieval.scope_filter(campaign_id=ctx["campaign"], user_id=ctx["a"], is_gm=False)
    )
    info = {i: (c, imp) for i, c, imp in base.values_list("id", "created_at", "importance")}

    def keyword(ts, n: int) -> list[int]:
        if ts is None:
            return []
        return list(base.filter(search=ts).annotate(rank=SearchRank(F("search"), ts))
                    .order_by("-rank", "-id").values_list("id", flat=True)[:n])  # fmt: skip

    lists = []
    for q in e.questions:
        vec, dist, _ = retrieval.vector_candidates(base, retrieval.embed_query(q["q"]), 100)
        every_word = SearchQuery(q["q"], search_type="websearch", config="english")  # up to 2026-11-25
        lists.append((vec, dist, keyword(retrieval.KeywordQuery(q["q"]), 100), keyword(every_word, 100)))
    now = timezone.now()
    W = ranking.Weights
    w, old = W(), W(recency=0.3, importance=0.3)
    # label: (candidates a list, keyword list: shipped / every word / none, weights, RRF k, vector list?)
    variants = {
        "as shipped": (40, "shipped", w, 60, True),
        "100 candidates a list": (100, "shipped", w, 60, True),
        "vector list only": (40, "none", w, 60, True),
        "keyword list only": (40, "shipped", w, 60, False),
        "no recency/importance boost": (40, "shipped", W(recency=0, importance=0), 60, True),
        "boosts 0.05 / 0.05": (40, "shipped", W(recency=0.05, importance=0.05), 60, True),
        "boosts 0.3 / 0.3 (before 2026-11-25)": (40, "shipped", old, 60, True),
        "RRF k = 20": (40, "shipped", w, 20, True),
        "keyword weight 0.5": (40, "shipped", W(keyword=0.5), 60, True),
        "every word required, boosts 0.3 / 0.3 (before)": (40, "every", old, 60, True),
        "every word required, shipped boosts": (40, "every", w, 60, True),
    }
    out = []
    for label, (n, kw_kind, weights, rrf_k, use_vec) in variants.items():
        ranked = []
        for vec, dist, kw_shipped, kw_every in lists:
            kw = {"shipped": kw_shipped, "every": kw_every, "none": []}[kw_kind][:n]
            cands = ranking.merge(vec[:n] if use_vec else [], kw, info, dist)
            if rrf_k != ranking.RRF_K:  # ranking.rank has RRF k fixed: shift the ranks to match
                cands = [replace(c, vector_rank=c.vector_rank and c.vector_rank + rrf_k - ranking.RRF_K,
                                 keyword_rank=c.keyword_rank and c.keyword_rank + rrf_k - ranking.RRF_K)
                         for c in cands]  # fmt: skip
            ranked.append([s.id for s in ranking.rank(cands, now=now, weights=weights)[:K]])
        out.append(
            (label, {**score(ranked, relevant), "styles": _style_recall(ranked, relevant, e.questions)})
        )
    return out


# ---- report -------------------------------------------------------------------------------------

STYLES = ("name", "role", "exact", "update", "multi", "private")
TABLE_HEADER = (
    "| mode | questions | memories | recall@5 | recall@10 | MRR "
    f"| recall@10 by style ({' / '.join(STYLES)}) | ms / query | embedder | date | command |\n"
    "|---|---:|---:|---:|---:|---:|---|---:|---|---|---|"
)
HOW_MEASURED = """\
How measured: `python -m tests.bench.memory_eval` generates a 120-day campaign from templates with
a fixed seed (words in `tests/bench/data/memory_eval_words.json`; the generated set is written to
`var/bench/memory_eval.json` for reading; no network, no LLM):
facts established on days 1-40, each asked about once on day 120, among near-misses (the same
NPC's other business, the same item hidden by someone else), look-alike facts about other NPCs
and ships, and chatter reusing the same names. Questions paraphrase, never copy, and come in
styles: by **name**, by **role** ("the smuggler from Vashti Ring" for a memory that says "a
smuggler out of Vashti Ring"), by **exact** token (docking code, coordinates, price), about a fact
**update**d later (only the new memory counts), **multi**-memory answers (a debt and its
repayment), and player A's **private** notes (look-alikes sit in player B's namespace; leaks are
counted). Loaded into a fresh campaign of `gtw_bench_memory` in `var/bench`, embedded with the
configured embedder, asked through `search_scoped` as player A with k=10 in each mode. recall@k:
share of a question's answering memories in the top k, averaged; MRR: 1/rank of the first one."""


def _style_recall(ranked, relevant, questions) -> str:
    cells = []
    for style in STYLES:
        pick = [i for i, q in enumerate(questions) if q["style"] == style]
        cells.append(f"{score([ranked[i] for i in pick], [relevant[i] for i in pick])['recall@10']:.2f}")
    return " / ".join(cells)


def main(argv: list[str] | None = None) -> int:

    parser = argparse.ArgumentParser(prog="python -m tests.bench.memory_eval", description=__doc__)
    parser.add_argument("--no-write", action="store_true", help="don't update docs/BENCHMARKS.md")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    from gtw_site.bench import memory as bm
    from gtw_site.bench.common import BASE_DIR, DOC, update_section

    e = generate()
    GENERATED.parent.mkdir(exist_ok=True)
    GENERATED.write_text(
        json.dumps({"seed": SEED, "memories": e.memories, "questions": e.questions}, indent=0)
    )
    counts = {s: sum(q["style"] == s for q in e.questions) for s in STYLES}
    print(f"memory eval: {len(e.memories)} memories, {len(e.questions)} questions {counts}", flush=True)
    bm.setup()
    ctx = load(e)
    embedder = ctx["embedder"]
    print(f"  loaded; embedded {len(e.memories)} texts in {ctx['embed_s']:.1f} s", flush=True)
    relevant = [{ctx["ids"][k] for k in q["relevant"]} for q in e.questions]
    results = ask_all(e, ctx)
    scores = {mode: score(r["ranked"], relevant) for mode, r in results.items()}
    command = "python -m tests.bench.memory_eval"
    rows = []
    for mode, r in results.items():
        cells = [mode, len(e.questions), len(e.memories), *scores[mode].values()]
        cells += [_style_recall(r["ranked"], relevant, e.questions), f"{r['ms']:.1f}"]
        cells += [f"{embedder.name}:{embedder.model}", datetime.now(UTC).date(), f"`{command}`"]
        rows.append("| " + " | ".join(map(str, cells)) + " |")
    print(f"\n{TABLE_HEADER}\n" + "\n".join(rows))
    leaks = sum(r["leaks"] for r in results.values())
    print(f"other player's private memories returned: {leaks}")
    hits = sum(bool(got) for got in results["keyword"]["ranked"])
    print(f"keyword mode found anything for {hits} of {len(e.questions)} questions")
    hybrid = scores["hybrid"]
    beats = all(hybrid[m] > scores[o][m] for o in ("keyword", "vector") for m in hybrid)
    print(f"hybrid beats keyword and vector on recall@5, recall@10 and MRR: {'yes' if beats else 'NO'}")
    print("\nwhat-ifs (the same candidates re-ranked; recall@5 / recall@10 / MRR   recall@10 by style):")
    for label, s in what_ifs(e, ctx, relevant):
        print(f"  {label:<48} {s['recall@5']:.3f} / {s['recall@10']:.3f} / {s['mrr']:.3f}   {s['styles']}")
    if not args.no_write:
        text = DOC.read_text() if DOC.exists() else ""
        for row in rows:
            text = update_section(text, SECTION, HOW_MEASURED, TABLE_HEADER, row, key_cols=1)
        DOC.write_text(text)
        print(f"updated {DOC.relative_to(BASE_DIR)}")
    print(f"run time {time.perf_counter() - started:.0f} s")
    summary = {"memories": len(e.memories), "questions": len(e.questions), **scores}
    print(json.dumps({**summary, "private_leaks": leaks, "hybrid_beats_both": beats}))
    return 0 if leaks == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
