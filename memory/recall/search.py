"""Recall that remembers like a GM (issue 21): the stages above the hybrid first stage.

`memory.retrieval.search_scoped(…, options=RecallOptions(…))` runs these; each stage is a
setting (`GTW_RECALL_FEATURES`), measured on and off by `gtw bench recall` (docs/BENCHMARKS.md):

- **time** — the question's time words (memory/recall/temporal.py): a date window adds a list of
  keyword matches inside it and sinks memories outside it; "before the twist" finds the twist's
  own memory first and uses its date; "last time"/"first time" favour the newest/oldest memory
  *about* the question;
- **entities** — the question's names (game-state names the caller passes, and proper nouns)
  fetch a list of the memories that name them (full-text phrase match);
- **rerank** — the learned-free feature re-ranker over the fused pool (memory/recall/rerank.py);
  it also gives every hit its `confidence`;
- **multihop** — for questions that ask for a link ("who sold us the crate, and who was it
  for?") or name someone by the role a top hit gives them ("the arms dealer"), the names and
  things the top hits mention that the question did not ("Vex sold us the crate") each fetch
  the few memories naming them ("…the crate was for Orla"), ranked by what is left of the
  question once the first memory has answered its part; the best take the last places of the k;
- **paraphrase** — a phrase of the question no memory of the scope uses ("the sidearm") is
  matched by embedding nearness to the things the scope's memories name ("plasma pistol";
  memory/recall/paraphrase.py, vocabulary.py: read through `base`, embedded once per process),
  and the question is asked in those words: its keyword and vector lists stand for the first
  stage's, and the later stages read the rewritten question;
- **neighbours** — the turns just before and after a top hit (same session, adjacent event seq;
  or adjacent in time) come with it as context (`Recalled.neighbours`), never twice. Measured
  as places in the ranked list they cost recall@10 (they push answers out), so they ride along.

Privacy: every query here starts from `base`, the caller's scoped queryset (`scope_filter`,
`table_scope`, `private_scope`: a WHERE clause), so a neighbour, a second-round hit or a fact is
only ever something the viewer may see. A fact is a memory in its sources' namespace.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields, replace
from datetime import date, datetime, timedelta
from itertools import zip_longest

from django.conf import settings
from django.contrib.postgres.search import SearchQuery, SearchRank
from django.db.models import F, FloatField, Q, Subquery, Value
from django.db.models.fields.json import KT
from pgvector.django import CosineDistance

from memory.recall import entities, rerank, temporal, vocabulary

FEATURES = ("time", "entities", "rerank", "multihop", "neighbours", "paraphrase")
# "replace": a rewritten question's lists stand for the first stage's; "add": they run beside them.
PARAPHRASE_MODE = "replace"
RRF_K = 60
HOP_FROM = 3  # the second round reads names from this many top hits
HOP_NAMES = 6  # names (and things) the second round follows, the top hit's first in turns
HOP_PER_NAME = 8  # memories per name it reads
HOP_ALPHA = 0.3  # how much nearness to the memory that named the link counts against a candidate
HOP_LINK = 0.03  # the later a name in the turns, the less likely the link (distance added per place)
HOP_LEX = 0.15  # sharing the rest of the question's words (distance taken off, at all of them)
HOP_SLOTS = 4  # places of the k kept for the second round's best
NEIGHBOURS_OF = 3  # neighbours of this many top hits
MAX_NAMES = 6


@dataclass(frozen=True)
class RecallOptions:
    time: bool = False
    entities: bool = False
    rerank: bool = False
    multihop: bool = False
    neighbours: bool = False
    paraphrase: bool = False
    pool: int = 50  # candidates per list the re-ranker sees

    @classmethod
    def from_settings(cls) -> RecallOptions:
        on = settings.GTW_MEMORY.get("recall_features", ())
        return cls(**{f: f in on for f in FEATURES})

    @classmethod
    def all(cls) -> RecallOptions:
        return cls(**dict.fromkeys(FEATURES, True))

    @property
    def any(self) -> bool:
        return any(getattr(self, f.name) for f in fields(self) if f.name in FEATURES)


@dataclass(frozen=True)
class Hit:
    id: int
    score: float
    confidence: float
    via: str  # "search" | "second round"
    features: dict
    neighbours: tuple[int, ...] = ()  # ids of the turns around it, as context


def _phrases(names: Sequence[str]) -> SearchQuery | None:
    """Any of the names as a phrase (English config, as the tsvector column is built)."""
    query = None
    for name in names[:MAX_NAMES]:
        q = SearchQuery(name, search_type="phrase", config="english")
        query = q if query is None else query | q
    return query


def _ranked_ids(qs, tsquery, n: int, order: str | None = None) -> list[int]:
    if order == temporal.LATEST:
        qs = qs.filter(search=tsquery).order_by("-created_at", "-id")
    elif order == temporal.EARLIEST:
        qs = qs.filter(search=tsquery).order_by("created_at", "id")
    else:
        qs = (
            qs.filter(search=tsquery).annotate(rank=SearchRank(F("search"), tsquery)).order_by("-rank", "-id")
        )
    return list(qs.values_list("id", flat=True)[:n])


def fuse(lists: dict[str, list[int]], weights: dict[str, float]) -> dict[int, float]:
    """Reciprocal rank fusion of any number of ranked id lists."""
    out: dict[int, float] = {}
    for name, ids in lists.items():
        w = weights.get(name, 1.0)
        for rank, mid in enumerate(ids, start=1):
            out[mid] = out.get(mid, 0.0) + w / (RRF_K + rank)
    return out


LIST_WEIGHTS = {"vector": 1.0, "keyword": 1.0, "names": 1.0, "window": 1.0, "hop": 0.6}


def recall(
    *,
    base,
    query: str,
    k: int,
    options: RecallOptions,
    first_stage: Callable[[int], tuple[list[int], list[int], dict[int, float]]],
    keyword_query: Callable[[str], SearchQuery],
    names: Sequence[str] = (),
    now: datetime,
    vector: list[float] | None = None,
) -> list[Hit]:
    """The top `k` of `base` (already scoped) for `query`. `first_stage(n)` runs today's hybrid
    lists (vector ids, keyword ids, distances); `vector` is the query's embedding (None: keyword
    only), for the second round."""
    pool = max(options.pool, k * 4)
    vector_ids, keyword_ids, distances = first_stage(pool)
    lists: dict[str, list[int]] = {"vector": vector_ids, "keyword": keyword_ids}
    # Time words are read as asked: a rewrite is about things, never about when.
    hint = temporal.parse(query, now=now) if options.time else None
    if options.paraphrase:
        query, vector = _paraphrase(base, query, names, vector, lists, distances, pool)
    found = entities.find(query, names) if options.entities or options.rerank else []
    kwq = keyword_query(query)
    if options.entities and found:
        lists["names"] = _ranked_ids(base, _phrases(found), pool, hint.order if hint else None)
    if hint is not None and hint.anchor:
        hint = _anchor_window(base, hint, keyword_query)
    if hint is not None and hint.window:
        lists["window"] = _window_ids(base, hint, kwq, pool)
    texts: dict[int, tuple] = {}  # id -> (text, created_at, game date, session number, namespace)
    hits = _score(base, query, lists, distances, hint, found, options, texts)
    link = hits and (entities.asks_for_link(query) or entities.names_by_role(query, texts[hits[0].id][0]))
    if options.multihop and link and not (hint and hint.temporal):
        hop = _second_round(base, hits, query, kwq, texts, vector, distances)
        if hop:
            lists["hop"] = hop
            hits = _score(base, query, lists, distances, hint, found, options, texts, hop_ids=set(hop))
            hits = _keep_links(hits, hop, k)
    hits = hits[:k]
    if options.neighbours and hits:
        hits = _with_neighbours(base, hits)
    return hits


def _paraphrase(base, query, names, vector, lists, distances, pool) -> tuple[str, list[float] | None]:
    """The question in the memories' own words (memory/recall/vocabulary.py): "the sidearm"
    asked of memories that only say "plasma pistol". Its keyword and vector lists (through
    `base`, the scope's WHERE clause) stand for the first stage's, or run beside them."""
    found = vocabulary.paraphrased(base, query, names)
    if found is None:
        return query, vector
    from memory.retrieval import embed_query, keyword_candidates, vector_candidates

    asked, _matches = found
    if vector is not None:
        vector = embed_query(asked) or vector
    keyword_ids = keyword_candidates(base, asked, pool)[0]
    vector_ids, found_distances, _info = vector_candidates(base, vector, pool)
    if PARAPHRASE_MODE == "replace":
        lists["keyword"], lists["vector"] = keyword_ids, vector_ids
        distances.clear()
    else:
        lists["paraphrase keyword"], lists["paraphrase vector"] = keyword_ids, vector_ids
    distances.update(found_distances)
    return asked, vector


def _score(base, query, lists, distances, hint, found, options, texts, hop_ids=frozenset()) -> list[Hit]:
    fused = fuse(lists, LIST_WEIGHTS)
    missing = [mid for mid in fused if mid not in texts]
    if missing:  # through `base`: the scope's WHERE clause again
        rows = base.filter(id__in=missing).values_list(
            "id", "text", "created_at", KT("metadata__game_date"), "source_session__number", "namespace"
        )
        for mid, *row in rows:
            texts[mid] = tuple(row)
    items = [
        rerank.Item(
            mid,
            *texts[mid][:2],
            score,
            distances.get(mid),
            *texts[mid][2:4],
            texts[mid][4].startswith("player:"),
        )
        for mid, score in fused.items()
        if mid in texts
    ]
    ranked = rerank.rerank(query, items, hint=hint, names=found)
    if not options.rerank:  # keep the fusion's order, with the features for confidence
        by_id = {r.id: r for r in ranked}
        ranked = [
            rerank.Ranked(mid, score, by_id[mid].confidence, by_id[mid].features)
            for mid, score in sorted(fused.items(), key=lambda kv: (-kv[1], -kv[0]))
            if mid in by_id
        ]
    first = set(lists.get("vector", ())) | set(lists.get("keyword", ())) | set(lists.get("names", ()))
    return [
        Hit(
            r.id,
            r.score,
            r.confidence,
            "second round" if r.id in hop_ids and r.id not in first else "search",
            r.features,
        )
        for r in ranked
    ]


def _window_ids(base, hint: temporal.TimeHint, kwq, pool: int) -> list[int]:
    """The memories inside the hint's window: by keyword rank, then the rest of a small window
    (a day, a session) by time; an open window ("after 2 November") only by keyword."""
    qs = base
    if hint.start:
        qs = qs.filter(created_at__gte=hint.start)
    if hint.end:
        qs = qs.filter(created_at__lt=hint.end)
    if hint.session is not None:
        qs = qs.filter(source_session__number=hint.session)
    if hint.day is not None:
        month, day = hint.day
        game = Q(game_date__endswith=f"-{month:02d}-{day:02d}")
        real = Q(created_at__month=month, created_at__day=day)
        if hint.year is not None:
            game &= Q(game_date__startswith=f"{hint.year:04d}-")
            real &= Q(created_at__year=hint.year)
        qs = qs.annotate(game_date=KT("metadata__game_date")).filter(
            {"game": game, "real": real}.get(hint.calendar or "", game | real)
        )
    if hint.day is None and hint.session is None:
        return _ranked_ids(qs, kwq, pool, hint.order)
    return list(
        qs.annotate(rank=SearchRank(F("search"), kwq))
        .order_by("-rank", "created_at", "id")
        .values_list("id", flat=True)[:pool]
    )


def _anchor_window(base, hint: temporal.TimeHint, keyword_query) -> temporal.TimeHint:
    """The anchor of "before the twist" / "three days after the raid": the event's own memory
    (the best keyword match for the anchor); its date is the window's edge, or the day counted
    from it (on the in-game calendar where the memory has an in-game date). No match: no window."""
    keep = {"order": hint.order, "asks_when": hint.asks_when, "relation": hint.relation}
    anchor = (
        base.filter(search=keyword_query(hint.anchor))
        .annotate(rank=SearchRank(F("search"), keyword_query(hint.anchor)))
        .order_by("-rank", "-id")
        .values_list("created_at", KT("metadata__game_date"))
        .first()
    )
    if anchor is None:
        return temporal.TimeHint(order=hint.order, asks_when=hint.asks_when)
    when, game_date = anchor
    if hint.offset_days is not None:
        keep.pop("order")
        try:
            day, calendar = date.fromisoformat((game_date or "")[:10]), "game"
        except ValueError:
            day, calendar = when.date(), "real"
        target = day + timedelta(days=hint.offset_days)
        return temporal.TimeHint(**keep, day=(target.month, target.day), year=target.year, calendar=calendar)
    return temporal.TimeHint(**keep, **({"end": when} if hint.relation == "before" else {"start": when}))


def _second_round(base, hits, query, kwq, texts, vector, distances) -> list[int]:
    """The second memories of links, best first: the names and things the top hits mention
    that the question did not (`entities.link_names`; the top hit's first, in turns), each with
    the few memories that name them. The second memory of a link shares a name with the first,
    not words with the question, so they are ranked by what is left of the question once the
    first memory has answered its part (`entities.rest_of`: "…owes the Cartel; where are they
    holed up?" wants where Marek is, not more of his debts): nearness to that rest (its own
    embedding), less HOP_ALPHA times nearness to the memory that named the link, plus the
    rest's words they share. One round trip; offline, no LLM. Every list is read through
    `base`, the caller's scoped queryset: the scope's WHERE clause holds here too."""
    asked = entities.words(query)
    per_hit = [
        [(n, h.id) for n in entities.link_names(texts[h.id][0]) if not entities.said_in(n, asked)]
        for h in hits[:HOP_FROM]
    ]
    new: dict[str, int] = {}  # name -> the hit that named it
    # In turns, the top hit's first: the memory that carries the link is not always the top one.
    for name, carrier in (pair for turn in zip_longest(*per_hit) for pair in turn if pair):
        if name.lower() not in {n.lower() for n in new}:
            new[name] = carrier
    new = dict(list(new.items())[:HOP_NAMES])
    if not new:
        return []
    rest = entities.rest_of(query, texts[hits[0].id][0])
    if vector is not None:
        from memory.retrieval import embed_query  # the caller's module: at call time

        vector = embed_query(rest) or vector
    seen = [h.id for h in hits[:HOP_FROM]]
    parts = []
    for i, (name, carrier) in enumerate(new.items()):
        named = base.filter(search=_phrases([name])).exclude(id__in=seen).annotate(link=Value(i))
        if vector is None:  # keywords only: by the question's keyword rank
            parts.append(
                named.annotate(distance=Value(None, output_field=FloatField()))
                .annotate(far=-SearchRank(F("search"), kwq))
                .order_by("far", "-id")
                .values_list("link", "id", "distance", "text", "far")[:HOP_PER_NAME]
            )
            continue
        # "+ 0": expressions the HNSW index cannot serve, so each is an exact scan of the few
        # memories that name the link rather than a walk of the whole index.
        own = Subquery(base.filter(id=carrier).values("embedding")[:1])
        parts.append(
            named.filter(embedding__isnull=False)
            .annotate(
                distance=CosineDistance("embedding", vector) + 0,
                far=CosineDistance("embedding", vector) - HOP_ALPHA * CosineDistance("embedding", own),
            )
            .order_by("far", "-id")
            .values_list("link", "id", "distance", "text", "far")[:HOP_PER_NAME]
        )
    first, *more = parts
    rest_terms = set(entities.content_terms(rest))

    def far(row) -> float:
        link, _mid, _distance, text, distance_left = row
        bag = entities.stems(text)
        shared = len(rest_terms & bag) / len(rest_terms) if rest_terms else 0.0
        return distance_left + HOP_LINK * link - HOP_LEX * shared

    said = [set(entities.words(texts[mid][0])) for mid in seen]
    out: list[int] = []
    for _link, mid, distance, text, _far in sorted(first.union(*more, all=True) if more else first, key=far):
        if distance is not None:
            distances.setdefault(mid, distance)
        bag = set(entities.words(text))
        if mid in out or any(len(bag & s) > 0.5 * len(bag | s) for s in said):
            continue  # the first round's memory again in other words: no new link
        out.append(mid)
    return out


def _keep_links(hits: list[Hit], hop: list[int], k: int) -> list[Hit]:
    """Keep the last HOP_SLOTS places of the k (at most half) for the second round's best (`_second_round`'s
    order) that the first k - HOP_SLOTS do not hold already. The link a question needs is rarely
    worded like the question, so it seldom outranks the first round's near-misses on its own."""
    slots = min(HOP_SLOTS, (k + 1) // 2)  # a short list (the narrator's six) keeps half for the first
    by_id = {h.id: h for h in hits}
    head = {h.id for h in hits[: k - slots]}
    extra = [mid for mid in hop if mid in by_id and mid not in head][:slots]
    if not extra:
        return hits
    rest = [h for h in hits if h.id not in extra]
    return (
        rest[: k - len(extra)]
        + [replace(by_id[mid], via="second round") for mid in extra]
        + rest[k - len(extra) :]
    )


def _with_neighbours(base, hits: list[Hit]) -> list[Hit]:
    """The top hits with their neighbouring turns as context (`Hit.neighbours`): the event just
    before and after in the same session, or the memories just before and after in time. Scoped
    by `base`; a memory already in the results, or another hit's neighbour, is not repeated."""
    top = hits[:NEIGHBOURS_OF]
    rows = {
        mid: (session, seq, created)
        for mid, session, seq, created in base.filter(id__in=[h.id for h in top]).values_list(
            "id", "source_session_id", "source_seq", "created_at"
        )
    }
    parts = []
    for hit in top:
        session, seq, created = rows[hit.id]
        if session is not None and seq is not None:
            parts.append(
                base.filter(source_session_id=session, source_seq__in=[seq - 1, seq + 1])
                .exclude(id=hit.id)
                .values_list("id", "created_at")[:4]
            )
            continue
        before = Q(created_at__lt=created) | Q(created_at=created, id__lt=hit.id)
        after = Q(created_at__gt=created) | Q(created_at=created, id__gt=hit.id)
        parts.append(base.filter(before).order_by("-created_at", "-id").values_list("id", "created_at")[:1])
        parts.append(base.filter(after).order_by("created_at", "id").values_list("id", "created_at")[:1])
    first, *rest = parts
    found = sorted(first.union(*rest, all=True) if rest else first, key=lambda r: (r[1], r[0]))
    seen = {h.id for h in hits}
    near: dict[int, list[int]] = {h.id: [] for h in top}
    for mid, created in found:
        if mid in seen:
            continue
        seen.add(mid)
        owner = min(top, key=lambda h: abs((rows[h.id][2] - created).total_seconds()))
        near[owner.id].append(mid)
    return [replace(h, neighbours=tuple(near.get(h.id, ()))) for h in hits]
