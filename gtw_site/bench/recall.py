"""`gtw bench recall [--campaigns 10] [--questions N] [--category C] [--mode hybrid|vector|keyword|all]
[--phrasing set|alt] [--per-campaign N]`: evidence recall over long campaigns, asked the way a player
asks. `--phrasing alt`: the same questions in held-out wordings; `--per-campaign N`: each campaign
padded with table chatter to N memories (labels unchanged; loaded beside the plain set).

The set (tests/bench/recall_set.py: generated, fixed seed, no network, no LLM) is loaded into a
database of its own, `gtw_bench_recall`, in the benchmark data folder (var/bench, or
$GTW_BENCH_RECALL_DIR), never your game; later runs reuse it while the set and the embedder are the
same (--rebuild to load it again). Memories are embedded by the configured embedder once, cached on
disk by model and text hash. Each campaign has a GM and four players, real PlaySession rows
(number, the evening it was played), memories with their session, seq, `created_at` = when it was
said, and `metadata.game_date` = the in-game date.

Each question is asked as its player through the product's own entry point: hybrid mode is
`memory.retrieval.memory_search` (what /api/memory/query runs: the campaign namespace plus the
viewer's own), vector / keyword are `search_scoped(mode=…)` under the same `scope_filter`; k = 10.
Printed: recall@5, recall@10, MRR and all@10 per category, p50/p95/p99 query ms, leaks (results
from another player's namespace: must be 0), the adversarial separation, then one JSON line.
Then the privacy questions through the narrator's two scopes (`recall_for_player`): leaks there
count too. Per-question results go to recall_last*.jsonl in the data folder (what ranked where).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from gtw_site.bench.common import (
    BASE_DIR,
    DATA_DIR,
    DOC,
    json_ms,
    machine_text,
    percentile,
    setup_database,
    update_section,
)

DB_NAME = "gtw_bench_recall"
SECTION = "## gtw bench recall"
K = 10
WARMUP = 20
MODES = ("hybrid", "vector", "keyword")
DEFAULT_CAMPAIGNS = 10
# The tags and memory type memory/policy.py gives each event type.
EVENT_TAGS = {
    "Narration": ("episodic", ["narration"]),
    "Action": ("episodic", ["action"]),
    "NpcSpoke": ("episodic", ["npc", "dialogue"]),
    "CardDrawn": ("episodic", ["twist", "card"]),
    "Whisper": ("episodic", ["whisper"]),
    "SessionOpened": ("semantic", ["scene", "location"]),
    "SceneChanged": ("episodic", ["scene", "location"]),
    "DiceRolled": ("episodic", ["dice"]),
    "RewardGranted": ("episodic", ["reward", "loot"]),
}


def data_dir() -> Path:
    return Path(os.environ.get("GTW_BENCH_RECALL_DIR") or DATA_DIR).resolve()


def recall_set():
    """tests/bench/recall_set.py (the repository's tests folder, wherever gtw was started)."""
    if str(BASE_DIR) not in sys.path:
        sys.path.insert(0, str(BASE_DIR))
    from tests.bench import recall_set as rs

    return rs


# ---- metrics: pure ----------------------------------------------------------------------------


@dataclass
class Asked:
    """One question's answer: the ranked memory ids (best first), their namespaces, and the top
    result's signals (`score`: the ranking's; `similarity`: 1 - cosine distance; `confidence`:
    whatever the retrieval reports as such, if it does)."""

    question: dict
    ranked: list[int]
    namespaces: list[str]
    ms: float
    evidence: set[int] = field(default_factory=set)
    allowed: frozenset[str] = frozenset()  # the namespaces this viewer may see
    top: dict[str, float] = field(default_factory=dict)
    via_fact: int = 0  # evidence found through a fact read in it (counted at the fact's rank)


def question_scores(ranked: Sequence[int], evidence: set[int], match: str = "all") -> dict[str, float]:
    """recall@5 / recall@10 (the share of the evidence in the top k; with match "any", 1 if any of it
    is), rr (1 / rank of the first evidence memory in the top 10, else 0) and all@10 (1 if every
    evidence memory, or with "any" one of them, is in the top 10)."""
    if not evidence:
        raise ValueError("a question without evidence has no recall")
    out: dict[str, float] = {}
    for k in (5, K):
        found = len(evidence & set(ranked[:k]))
        out[f"recall@{k}"] = float(found > 0) if match == "any" else found / len(evidence)
    out["rr"] = next((1 / (i + 1) for i, mid in enumerate(ranked[:K]) if mid in evidence), 0.0)
    out["all@10"] = float(out[f"recall@{K}"] == 1.0)
    return out


def leaks(namespaces: Sequence[str], allowed: frozenset[str] | set[str]) -> int:
    """Results from a namespace the viewer may not see (another player's)."""
    return sum(ns not in allowed for ns in namespaces)


def separation(answerable: Sequence[float], adversarial: Sequence[float]) -> dict:
    """The threshold on the top result's signal that best tells answerable questions (top >= t)
    from adversarial ones (top < t): the one with the highest balanced accuracy, i.e. the mean of
    the two fractions (the lowest such threshold on ties)."""
    if not answerable or not adversarial:
        return {"threshold": None, "adversarial_below": None, "answerable_above": None, "balanced": None}
    best = None
    for t in sorted({*answerable, *adversarial, math.inf}):
        below = sum(s < t for s in adversarial) / len(adversarial)
        above = sum(s >= t for s in answerable) / len(answerable)
        if best is None or (below + above) / 2 > best[0]:
            best = ((below + above) / 2, t, below, above)
    balanced, t, below, above = best
    return {
        "threshold": None if math.isinf(t) else round(t, 6),
        "adversarial_below": round(below, 3),
        "answerable_above": round(above, 3),
        "balanced": round(balanced, 3),
    }


def summarize(asked: Sequence[Asked]) -> dict:
    """Per category, per kind and overall: recall@5, recall@10, MRR, all@10 over the questions with
    evidence; query-time percentiles and leaks over all of them; the adversarial separation."""

    def block(items: list[Asked]) -> dict:
        scored = [question_scores(a.ranked, a.evidence, a.question["match"]) for a in items if a.evidence]
        ms = [a.ms for a in items]
        out = {"questions": len(items), "scored": len(scored)}
        for key, name in (
            ("recall@5", "recall@5"),
            ("recall@10", "recall@10"),
            ("rr", "mrr"),
            ("all@10", "all@10"),
        ):
            out[name] = round(sum(s[key] for s in scored) / len(scored), 3) if scored else None
        out.update({f"p{q}_ms": json_ms(percentile(ms, q)) for q in (50, 95, 99)})
        out["leaks"] = sum(leaks(a.namespaces, a.allowed) for a in items)
        out["via_fact"] = sum(a.via_fact for a in items)
        return out

    categories = {}
    for cat in dict.fromkeys(a.question["category"] for a in asked):
        categories[cat] = block([a for a in asked if a.question["category"] == cat])
    kinds = {}
    for key in sorted({(a.question["category"], a.question["kind"]) for a in asked}):
        b = block([a for a in asked if (a.question["category"], a.question["kind"]) == key])
        kinds[f"{key[0]}/{key[1]}"] = {k: b[k] for k in ("scored", "recall@10", "mrr")}
    answerable = [a for a in asked if a.evidence]
    adversarial = [a for a in asked if a.question["category"] == "adversarial"]
    signals = sorted({s for a in asked for s in a.top})
    sep = {
        s: separation(
            [a.top[s] for a in answerable if s in a.top], [a.top[s] for a in adversarial if s in a.top]
        )
        for s in signals
    }
    return {"overall": block(list(asked)), "categories": categories, "kinds": kinds, "adversarial": sep}


FACT_TAG = "fact"  # memory/recall/store.py's tag for the summariser's facts


def credited(hits: Sequence, evidence: set[int]) -> tuple[list[int], int]:
    """The ranked ids, where a fact (a memory tagged `fact`, its `sources` the memories it was read
    in) that is not evidence itself stands for the first evidence memory it was read in and not
    yet ranked: "Vell Tarro sold us a sealed crate" answers what its source answers. Returns the
    ids and how many facts stood in."""
    ranked: list[int] = []
    via_fact = 0
    for h in hits:
        mid = h.memory.id
        if mid not in evidence and FACT_TAG in (getattr(h.memory, "tags", None) or ()):
            read_in = [
                s for s in getattr(h.memory, "sources", None) or () if s in evidence and s not in ranked
            ]
            if read_in:
                mid = read_in[0]
                via_fact += 1
        ranked.append(mid)
    return ranked, via_fact


def ask_all(
    questions: Sequence[dict], search: Callable[[dict], tuple[list, float]], ctx: dict, progress: str = ""
) -> list[Asked]:
    """Ask each question with `search(question) -> (hits, ms)`, hits best first with `.memory`
    (id, namespace), `.score`, `.distance` and perhaps `.confidence`. `ctx` maps a campaign index
    to {"ids": {key: id}, "allowed": {viewer: namespaces}}. With `progress`, a line every 250."""
    out = []
    for i, q in enumerate(questions):
        if progress and i and i % 250 == 0:
            print(f"  {progress}: {i} of {len(questions)} asked", flush=True)
        c = ctx[q["campaign"]]
        hits, ms = search(q)
        top: dict[str, float] = {}
        if hits:
            h = hits[0]
            top["score"] = float(h.score)
            if getattr(h, "distance", None) is not None:
                top["similarity"] = 1.0 - float(h.distance)
            if getattr(h, "confidence", None) is not None:
                top["confidence"] = float(h.confidence)
        else:  # nothing at all: as unsure as it gets
            top = {"score": 0.0, "similarity": 0.0}
        evidence = {c["ids"][k] for k in q["evidence"]}
        ranked, via_fact = credited(hits, evidence)
        out.append(
            Asked(
                question=q,
                ranked=ranked,
                namespaces=[h.memory.namespace for h in hits],
                ms=ms,
                evidence=evidence,
                allowed=frozenset(c["allowed"][q["viewer"]]),
                top=top,
                via_fact=via_fact,
            )
        )
    return out


# ---- the database -------------------------------------------------------------------------------


def setup() -> None:
    """Django on the bench data folder's embedded PostgreSQL, database gtw_bench_recall (created and
    migrated here). Never a DATABASE_URL from the user's shell."""
    setup_database(data_dir(), DB_NAME)
    # New campaigns queue their pictures' jobs (nobody runs them here): not worth a line each.
    logging.getLogger("django-q").setLevel(logging.WARNING)


def embed_cached(texts: Sequence[str], embedder, folder: Path) -> list:
    """The embedder's vectors for `texts`, from a cache on disk (one .npz per model, keyed by the
    SHA-256 of the text); the missing ones are embedded and added."""
    import numpy as np

    model = f"{embedder.name}:{embedder.model}"
    path = folder / "recall_embeddings" / (re.sub(r"[^A-Za-z0-9_.-]", "_", model) + ".npz")
    cache: dict[str, np.ndarray] = {}
    if path.exists():
        with np.load(path) as data:
            cache = dict(zip(data["keys"].tolist(), data["vectors"], strict=True))
    keys = [hashlib.sha256(t.encode()).hexdigest()[:24] for t in texts]
    missing = list(dict.fromkeys(k_t for k_t in zip(keys, texts, strict=True) if k_t[0] not in cache))
    if missing:
        print(f"  embedding {len(missing)} texts with {model} (cached in {path.name})…", flush=True)
        for i in range(0, len(missing), 256):
            chunk = missing[i : i + 256]
            for (k, _), v in zip(chunk, embedder.embed([t for _, t in chunk]), strict=True):
                cache[k] = np.asarray(v, dtype=np.float32)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, keys=np.array(list(cache)), vectors=np.stack(list(cache.values())))
        tmp.replace(path)
    return [cache[k] for k in keys]


def _fingerprint(camp: dict, model: str) -> str:
    body = json.dumps([model, camp["sessions"], camp["memories"]], sort_keys=True)
    return hashlib.sha256(body.encode()).hexdigest()[:10]


def load_campaign(
    camp: dict, embedder, *, rebuild: bool = False, folder: Path | None = None, facts: bool = False
) -> dict:
    """One generated campaign in the current database (reused if already there, same set, same
    embedder): {"campaign", "users": {gm, p0…}, "ids": {key: memory id}, "allowed": {viewer: …},
    "reused"}. With `facts`, the summariser's fact extraction (memory/recall/store.py) runs over
    each session once loaded, and the facts are embedded too."""
    from django.db import connection, transaction

    from campaigns.models import Campaign, Character, Membership, PlaySession
    from gtw_site.bench import memory as bm
    from memory.models import DIMENSIONS, Memory, campaign_namespace, player_namespace

    model = f"{embedder.name}:{embedder.model}"
    name = f"{camp['name']} {_fingerprint(camp, model)}"
    prefix = f"recall-c{camp['index']:02d}"
    gm = bm.user(f"{prefix}-gm")
    players = {f"p{i}": bm.user(f"{prefix}-p{i}") for i in range(len(camp["pcs"]))}
    campaign = Campaign.objects.filter(name=name).first()
    reused = (
        campaign is not None
        and not rebuild
        and Memory.objects.filter(
            campaign=campaign, embedding__isnull=False, metadata__has_key="recall_key"
        ).count()
        == len(camp["memories"])
        and not Memory.objects.filter(campaign=campaign, embedding__isnull=True).exists()
    )
    if not reused:
        # An earlier load of this campaign (another embedder, an older generator) goes; other
        # variants (padded, another set version) stay.
        Campaign.objects.filter(name__startswith=f"{camp['name']} ").delete()
        vectors = embed_cached([m["text"] for m in camp["memories"]], embedder, folder or data_dir())
        with transaction.atomic():
            campaign = bm.new_campaign(name, gm)
            Membership.objects.bulk_create(
                Membership(campaign=campaign, user=u, role="player") for u in players.values()
            )
            sessions = {}
            for s in camp["sessions"]:
                ps = PlaySession.objects.create(
                    campaign=campaign, number=s["number"], opened_by=gm, status=PlaySession.Status.ENDED,
                    title=f"Session {s['number']}",
                )  # fmt: skip
                PlaySession.objects.filter(pk=ps.pk).update(created_at=datetime.fromisoformat(s["real"]))
                sessions[s["number"]] = ps.pk
            ns = {"campaign": campaign_namespace(campaign.id)}
            ns.update({p: player_namespace(u.id) for p, u in players.items()})
            vec_fmt = "[" + ",".join(["%.7g"] * DIMENSIONS) + "]"
            cols = (
                "campaign_id, namespace, type, text, embedding, embedding_model, tags, metadata, importance, "
                "sources, created_at, source_session_id, source_seq"
            )
            rs = recall_set()
            with (
                connection.cursor() as cur,
                cur.cursor.copy(f"COPY memory_memory ({cols}) FROM STDIN") as copy,
            ):
                for m, v in zip(camp["memories"], vectors, strict=True):
                    type_, tags = EVENT_TAGS[m["event_type"]]
                    tags = "{" + ",".join(tags) + "}"
                    meta = json.dumps(rs.memory_metadata(m))
                    copy.write_row((
                        campaign.id, ns[m["ns"]], type_, m["text"], vec_fmt % tuple(v.tolist()), model, tags,
                        meta, m["importance"], "{}", m["real"], sessions[m["session"]], m["seq"],
                    ))  # fmt: skip
        if facts:
            _store_facts(campaign, embedder, folder or data_dir())
        with connection.cursor() as cur:
            cur.execute("ANALYZE memory_memory")
    # The players' characters, as the game has them (a recall stage may read names from there).
    for u, pc in zip(players.values(), camp["pcs"], strict=True):
        Character.objects.get_or_create(
            campaign=campaign, owner=u, defaults={"name": pc, "archetype": "operative"}
        )
    ids = dict(Memory.objects.filter(campaign=campaign).values_list("metadata__recall_key", "id"))
    table = campaign_namespace(campaign.id)
    allowed = {p: {table, player_namespace(u.id)} for p, u in players.items()}
    return {"campaign": campaign.id, "users": players, "ids": ids, "allowed": allowed, "reused": reused}


def _store_facts(campaign, embedder, folder: Path) -> None:
    """What the summariser's job writes beside each session summary: facts over the session's
    memories (one summary span per session here), then their vectors (from the disk cache)."""
    from django.db.models import Max

    from campaigns.models import PlaySession
    from memory.models import Memory
    from memory.recall.store import facts_store

    for session in PlaySession.objects.filter(campaign=campaign).order_by("number"):
        last = Memory.objects.filter(source_session=session).aggregate(m=Max("source_seq"))["m"] or 0
        facts_store(session=session, after_seq=0, last_seq=last)
    pending = list(Memory.objects.filter(campaign=campaign, embedding__isnull=True).only("id", "text"))
    model = f"{embedder.name}:{embedder.model}"
    for memory, vector in zip(
        pending, embed_cached([m.text for m in pending], embedder, folder), strict=True
    ):
        memory.embedding, memory.embedding_model = vector.tolist(), model
    Memory.objects.bulk_update(pending, ["embedding", "embedding_model"], batch_size=500)


def _warm_vocabulary(campaign_id: int, user) -> None:
    """Build the paraphrase stage's vocabulary of the viewer's scope now (memory_search's scope
    and names), so each question is asked as it would be once the builder has run."""
    from campaigns.models import Membership
    from campaigns.selectors import membership_get
    from memory import retrieval
    from memory.models import Memory
    from memory.recall import vocabulary

    is_gm = membership_get(viewer=user, campaign_id=campaign_id).role == Membership.Role.GM
    scope = retrieval.scope_filter(campaign_id=campaign_id, user_id=user.pk, is_gm=is_gm)
    vocabulary.warm(Memory.objects.filter(scope), known=retrieval.campaign_names(campaign_id))


def searcher(mode: str, ctx: dict, phrasing: str = "q") -> Callable[[dict], tuple[list, float]]:
    """`search(question) -> (hits, ms)` as the product answers that player; `phrasing` "q_alt"
    asks the held-out wording instead."""
    from memory import retrieval

    warmed: set[tuple[int, int]] = set()  # (campaign, viewer) scopes whose vocabulary is built
    paraphrasing = mode == "hybrid" and "paraphrase" in features()

    def search(q: dict) -> tuple[list, float]:
        c = ctx[q["campaign"]]
        user = c["users"][q["viewer"]]
        if paraphrasing and (c["campaign"], user.id) not in warmed:
            _warm_vocabulary(c["campaign"], user)  # the product builds it in the background
            warmed.add((c["campaign"], user.id))
        t = time.perf_counter()
        if mode == "hybrid":  # exactly /api/memory/query's path
            hits = retrieval.memory_search(viewer=user, campaign_id=c["campaign"], query=q[phrasing], k=K)
        else:
            scope = retrieval.scope_filter(campaign_id=c["campaign"], user_id=user.id, is_gm=False)
            hits = retrieval.search_scoped(scope=scope, query=q[phrasing], k=K, mode=mode)
        return hits, (time.perf_counter() - t) * 1000

    return search


def narrator_leaks(questions: Sequence[dict], ctx: dict, phrasing: str = "q") -> dict:
    """The narrator's two scopes (`recall_for_player`) asked the privacy questions: the table's
    narration may hold campaign memories only, a private aside the asking player's own only. Any
    other namespace returned is a leak (whatever the recall stages add: neighbours, facts, …)."""
    from memory import retrieval

    out = {"asked": 0, "table_leaks": 0, "aside_leaks": 0}
    for q in questions:
        if q["category"] != "privacy":
            continue
        c = ctx[q["campaign"]]
        user = c["users"][q["viewer"]]
        table, own = sorted(c["allowed"][q["viewer"]], key=lambda ns: not ns.startswith("campaign:"))
        for private, allowed, key in ((False, {table}, "table_leaks"), (True, {own}, "aside_leaks")):
            hits = retrieval.recall_for_player(
                campaign_id=c["campaign"], user_id=user.id, query=q[phrasing], private=private
            )
            out[key] += leaks([h.memory.namespace for h in hits], allowed)
        out["asked"] += 1
    return out


# ---- reporting ----------------------------------------------------------------------------------

TABLE_HEADER = (
    "| mode | set | category | scored / asked | recall@5 | recall@10 | MRR | all@10 | p50 / p95 / p99 (ms) "
    "| leaks | embedder | machine | date |\n"
    "|---|---|---|---:|---:|---:|---:|---:|---|---:|---|---|---|"
)
HOW_MEASURED = """\
How measured: `gtw bench recall` generates (tests/bench/recall_set.py, fixed seed, no network, no
LLM) 10 campaigns of 16-18 weekly sessions, 430-470 memories each, written as memory/policy.py
writes play (actions, NPC lines, narration, scenes, twists, dice, rewards, whispers into one
player's namespace), each with its session and seq, its real date (`created_at`) and its in-game
date (`metadata.game_date`); near-duplicates everywhere (the same NPC's other stash, the same
venue searched in three sessions, a ship's old and new berth, an NPC's view before and after a
twist, a look-alike whisper to another player). 1,815 questions labelled with their evidence
memories: **single** (one fact; names in full, in part, misspelt, or by role), **multihop** (two
memories: "who sold us the crate, and who was it for?"), **temporal** (last / first time we saw
someone, in session N, on an in-game date, on the evening we played, N days before / after an
event, before / after a twist, where something is now / was first), **adversarial** (never said:
no evidence; measured by the separation printed after the table: the best threshold on the top
result's confidence, the shares of adversarial tops below it and answerable tops at or above it),
**privacy**
(a whisper asked about by its owner, by a player with a look-alike of their own, and by one with
none: leaks must be 0). Loaded into the database `gtw_bench_recall` (var/bench), asked as the
question's player with k = 10: hybrid through `memory_search` (/api/memory/query's path), vector /
keyword through `search_scoped(mode=…)`. recall@k: share of the evidence in the top k ("any"
questions: 1 if one of it is), averaged; MRR: 1 / rank of the first evidence memory; all@10: every
evidence memory in the top 10. Times include the query's embedding; the machine is shared, so
they move with the load shown. `--phrasing alt` asks the same questions in held-out wordings;
`--per-campaign N` pads each campaign with table chatter to N memories (no label changes);
`--facts` writes the summariser's facts for each session first (a fact counts for the evidence
it was read in). Hybrid rows name the recall stages that were on (`GTW_RECALL_FEATURES`)."""


def features() -> list[str]:
    """The recall stages above the hybrid search that are on (GTW_RECALL_FEATURES), if this
    version of memory/ has them."""
    try:
        from memory.recall.search import FEATURES, RecallOptions
    except ImportError:
        return []
    options = RecallOptions.from_settings()
    return [f for f in FEATURES if getattr(options, f, False)]


def _load() -> float:
    return os.getloadavg()[0]


def report(mode: str, summary: dict, label: str, embedder_name: str, load: float) -> list[str]:
    rows = []
    cats = {"all answerable": summary["overall"], **summary["categories"]}
    for cat, b in cats.items():
        if not b["scored"] and cat != "adversarial":
            continue
        cells = [
            mode, label, cat, f"{b['scored']} / {b['questions']}",
            *(("—" if b[k] is None else f"{b[k]:.3f}") for k in ("recall@5", "recall@10", "mrr", "all@10")),
            f"{b['p50_ms']} / {b['p95_ms']} / {b['p99_ms']}", b["leaks"], embedder_name, machine_text(load),
            datetime.now(UTC).date(),
        ]  # fmt: skip
        rows.append("| " + " | ".join(map(str, cells)) + " |")
    return rows


def main(args) -> int:
    campaigns = args.campaigns if args.campaigns is not None else DEFAULT_CAMPAIGNS
    mode_arg = getattr(args, "mode", "hybrid") or "hybrid"
    phrasing = getattr(args, "phrasing", "set") or "set"
    modes = MODES if mode_arg == "all" else (mode_arg,)
    if campaigns < 1:
        sys.stderr.write("gtw bench recall: need --campaigns ≥ 1\n")
        return 2
    load = _load()
    started = time.perf_counter()
    rs = recall_set()
    per_campaign = getattr(args, "per_campaign", None)
    sets = rs.generate(campaigns, per_campaign=per_campaign)
    with_facts = bool(getattr(args, "facts", False))
    if with_facts:  # loaded beside the plain set, never into it
        sets = [{**s, "name": s["name"].replace(" #", " facts #")} for s in sets]
    questions = rs.select(
        sets, questions=getattr(args, "questions", None), category=getattr(args, "category", None)
    )
    n_mem = sum(len(s["memories"]) for s in sets)
    folder = data_dir()
    setup()
    from memory.embeddings import registry

    embedder = registry.get()
    embedder_name = f"{embedder.name}:{embedder.model}"
    stages = features()
    print(
        f"gtw bench recall v{rs.VERSION}: {campaigns} campaigns, {n_mem} memories, "
        f"{len(questions)} questions; database {DB_NAME} in {folder}; embedder {embedder_name}; "
        f"stages {'+'.join(stages) or 'none'}; load {load:.2f}",
        flush=True,
    )
    variant = (f"-x{per_campaign}" if per_campaign else "") + ("-facts" if with_facts else "")
    (folder / f"recall_set{variant}.json").write_text(json.dumps({"version": rs.VERSION, "campaigns": sets}))
    t = time.perf_counter()
    ctx = {
        s["index"]: load_campaign(s, embedder, rebuild=args.rebuild, folder=folder, facts=with_facts)
        for s in sets
    }
    reused = sum(c["reused"] for c in ctx.values())
    print(
        f"  loaded in {time.perf_counter() - t:.1f} s ({reused} of {len(ctx)} campaigns reused)", flush=True
    )
    label = f"v{rs.VERSION}{f' x{per_campaign}' if per_campaign else ''}{' alt' if phrasing == 'alt' else ''}"
    label += " facts" if with_facts else ""
    label += f" {campaigns}x{len(questions)}" + (
        f" {args.category}" if getattr(args, "category", None) else ""
    )
    text_of = {ctx[c["index"]]["ids"][m["key"]]: m["text"] for c in sets for m in c["memories"]}
    results = {}
    all_rows = []
    dump = folder / f"recall_last{variant}{'-alt' if phrasing == 'alt' else ''}.jsonl"
    with dump.open("w") as out:
        for mode in modes:
            search = searcher(mode, ctx, "q_alt" if phrasing == "alt" else "q")
            for q in questions[:WARMUP]:
                search(q)
            asked = ask_all(questions, search, ctx, progress=mode)
            summary = summarize(asked)
            results[mode] = summary
            shown = f"{mode} ({'+'.join(stages) or 'plain'})" if mode == "hybrid" else mode
            all_rows += report(shown, summary, label, embedder_name, load)
            for a in asked:
                rank = next((i + 1 for i, mid in enumerate(a.ranked) if mid in a.evidence), None)
                out.write(json.dumps({
                    "mode": mode, "id": a.question["id"], "category": a.question["category"],
                    "kind": a.question["kind"], "viewer": a.question["viewer"],
                    "q": a.question["q_alt" if phrasing == "alt" else "q"],
                    "evidence": sorted(a.evidence), "ranked": a.ranked, "first_hit": rank,
                    "top": a.top, "ms": round(a.ms, 2), "leaks": leaks(a.namespaces, a.allowed),
                    "evidence_texts": [text_of[i] for i in sorted(a.evidence)],
                    "top3_texts": [text_of.get(i, "?") for i in a.ranked[:3]],
                }) + "\n")  # fmt: skip
    print(f"\n{TABLE_HEADER}\n" + "\n".join(all_rows))
    for mode, summary in results.items():
        print(f"\n{mode}: recall@10 by kind")
        for kind, b in summary["kinds"].items():
            if b["scored"]:
                print(f"  {kind:<28} {b['recall@10']:.3f}  (MRR {b['mrr']:.3f}, {b['scored']} questions)")
        print(f"{mode}: adversarial separation (top result below the threshold / answerable at or above it)")
        for signal, s in summary["adversarial"].items():
            print(
                f"  {signal:<11} threshold {s['threshold']}: adversarial below {s['adversarial_below']}, "
                f"answerable above {s['answerable_above']} (balanced {s['balanced']})"
            )
    narrator = narrator_leaks(questions, ctx, "q_alt" if phrasing == "alt" else "q")
    total_leaks = sum(r["overall"]["leaks"] for r in results.values())
    print(f"\nother players' private memories returned: {total_leaks}")
    print(
        f"narrator scopes (recall_for_player) on {narrator['asked']} privacy questions: "
        f"{narrator['table_leaks']} private memories in the table's narration, "
        f"{narrator['aside_leaks']} foreign memories in a private aside"
    )
    total_leaks += narrator["table_leaks"] + narrator["aside_leaks"]
    print(f"per-question results: {dump}")
    if not args.no_write and getattr(args, "questions", None) is None:
        text = DOC.read_text() if DOC.exists() else ""
        for row in all_rows:
            text = update_section(text, SECTION, HOW_MEASURED, TABLE_HEADER, row, key_cols=3)
        DOC.write_text(text)
        print(f"updated {DOC.relative_to(BASE_DIR)}")
    print(f"run time {time.perf_counter() - started:.0f} s")
    print(json.dumps({
        "bench": "recall", "version": rs.VERSION, "campaigns": campaigns, "memories": n_mem,
        "questions": len(questions), "category": getattr(args, "category", None), "phrasing": phrasing,
        "per_campaign": per_campaign, "facts": with_facts, "embedder": embedder_name,
        "stages": stages, "load": round(load, 2), "leaks": total_leaks, "narrator": narrator,
        "results": results,
    }))  # fmt: skip
    return 0 if total_leaks == 0 else 1
