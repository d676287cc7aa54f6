"""Hybrid recall: HNSW vector search + PostgreSQL full-text search, fused by reciprocal rank
fusion (memory/ranking.py), boosted by recency and importance.

Every query is scoped in SQL to what the viewer may see: the campaign namespace plus the
viewer's own `player:<id>` namespace. The GM sees campaign memory, and players' private
memories only when GTW_GM_OMNISCIENT is on. The narrator never mixes the two: the narration
the table reads recalls the campaign namespace only, a player's private aside their own
namespace only (`recall_for_player`). A scope of up to EXACT_SCAN_MAX memories is searched
exactly, from the covering index `memory_scope_vectors` (issue 20: one campaign's scope among a
million memories); above that, pgvector ≥ 0.8's iterative index scans keep a filtered HNSW query
returning k rows even when most of the index belongs to other scopes.
"""

from __future__ import annotations

import logging
import weakref
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from django.conf import settings
from django.contrib.postgres.search import SearchQuery
from django.db import connection
from django.db.models import F, Q, Value
from django.db.models.lookups import Exact
from django.utils import timezone
from pgvector import Vector
from pgvector.django import CosineDistance

from campaigns.errors import Invalid
from campaigns.models import Character, Membership
from campaigns.selectors import membership_get
from gtw_site import telemetry
from gtw_site.providers import ProviderError
from gtw_site.text import check_storable
from memory import ranking
from memory.models import Memory, campaign_namespace, player_namespace

logger = logging.getLogger(__name__)

MAX_K = 50
CANDIDATES = 4  # candidates fetched per list = k times this (min 40)


@dataclass
class Recalled:
    memory: Memory
    score: float
    vector: float
    keyword: float
    recency: float
    importance: float
    distance: float | None
    # Issue 21: how surely this memory answers the query, 0..1 (memory/recall/rerank.py). The
    # narrator treats a best hit under GTW_RECALL_CONFIDENCE as nothing remembered.
    confidence: float = 1.0
    via: str = "search"  # "search" | "second round" (memory/recall/search.py)
    # The turns just before and after it (scoped like the hit), as context; never a result too.
    neighbours: list[Memory] = field(default_factory=list)


def recall_confident(hits: list[Recalled]) -> bool:
    """Whether the best hit clears the confidence threshold (otherwise: "you don't recall that")."""
    return bool(hits) and hits[0].confidence >= settings.GTW_MEMORY.get("recall_confidence", 0.0)


def scope_filter(*, campaign_id: int, user_id: int, is_gm: bool, omniscient: bool | None = None) -> Q:
    """The WHERE clause of privacy."""
    omniscient = settings.GTW_MEMORY["gm_omniscient"] if omniscient is None else omniscient
    q = Q(campaign_id=campaign_id) & (
        Q(namespace=campaign_namespace(campaign_id)) | Q(namespace=player_namespace(user_id))
    )
    if is_gm and omniscient:
        q = Q(campaign_id=campaign_id) & (
            Q(namespace=campaign_namespace(campaign_id)) | Q(namespace__startswith="player:")
        )
    return q


def memory_search(
    *, viewer, campaign_id: int, query: str, k: int = 10, types=None, tags=None
) -> list[Recalled]:
    membership = membership_get(viewer=viewer, campaign_id=campaign_id)
    return search_scoped(
        scope=scope_filter(
            campaign_id=campaign_id, user_id=viewer.pk, is_gm=membership.role == Membership.Role.GM
        ),
        query=query,
        k=k,
        types=types,
        tags=tags,
        names=campaign_names(campaign_id),
    )


def campaign_names(campaign_id: int) -> list[str]:
    """The names the game state knows in a campaign, for the entity stage (issue 21): its
    characters and what they carry. (The running mission's NPCs, factions and places are
    narrative's to pass: memory does not read missions.)"""
    names: list[str] = []
    for name, inventory in Character.objects.filter(campaign_id=campaign_id).values_list("name", "inventory"):
        names.append(name)
        names += [
            i["item"] for i in inventory or () if isinstance(i, dict) and isinstance(i.get("item"), str)
        ]
    return list(dict.fromkeys(n for n in names if n.strip()))


def recall_for_player(
    *,
    campaign_id: int,
    user_id: int,
    query: str,
    k: int = 6,
    vector: list[float] | None = None,
    private: bool = False,
    names=None,
) -> list[Recalled]:
    """What the narrator may use when answering this player, never another player's secrets,
    whatever the GM-omniscience setting. Two scopes, never mixed in one prompt:

    - `private=False` (the narration the whole table reads): the campaign namespace only, what
      everyone present may know;
    - `private=True` (an aside addressed to this player alone): this player's own namespace only
      (their private notes, the whispers they received).

    `vector` is the query's embedding if the caller already has it (the turn runner computes it
    while it loads the rest of the context). `names`: the game's names for the entity stage
    (default: the campaign's characters and their items). The caller marks what it used with
    `mark_recalled` once the turn is out of its hot path."""
    return search_scoped(
        scope=private_scope(campaign_id=campaign_id, user_id=user_id)
        if private
        else table_scope(campaign_id=campaign_id),
        query=query,
        k=k,
        vector=vector,
        names=campaign_names(campaign_id) if names is None else names,
    )


def table_scope(*, campaign_id: int) -> Q:
    """What everyone at the table may know: the campaign namespace."""
    return Q(campaign_id=campaign_id, namespace=campaign_namespace(campaign_id))


def private_scope(*, campaign_id: int, user_id: int) -> Q:
    """What only this member knows: their own `player:<id>` namespace in this campaign."""
    return Q(campaign_id=campaign_id, namespace=player_namespace(user_id))


def has_private(*, campaign_id: int, user_id: int) -> bool:
    """Whether the member has any private memory here (one indexed EXISTS), so a turn skips the
    private search entirely for the many players who have none."""
    return Memory.objects.filter(private_scope(campaign_id=campaign_id, user_id=user_id)).exists()


def embed_query(query: str) -> list[float] | None:
    """The query's embedding, or None if the embedder fails (recall then uses keywords only)."""
    from memory.embeddings import registry

    try:
        return registry.get().embed([query])[0]
    except ProviderError:
        logger.warning("query embedding failed; keyword recall only", exc_info=True)
        return None


def embed_query_async(query: str) -> Future:
    """`embed_query` in a thread; the future's result goes to `recall_for_player(vector=…)`.
    The embedder's telemetry row is recorded by whoever takes the result, on their connection."""
    return telemetry.in_thread(_embed_pool, embed_query, query)


def mark_recalled(memory_ids: list[int]) -> None:
    if memory_ids:
        Memory.objects.filter(id__in=memory_ids).update(last_recalled_at=timezone.now())


def _validate(query, k, types, tags):
    if not isinstance(query, str) or not query.strip():
        raise Invalid("The query is empty.")
    if len(query) > 2000:
        raise Invalid("Queries are at most 2,000 characters.")
    if not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise Invalid(f"k must be between 1 and {MAX_K}.")
    if types and not set(types) <= set(Memory.Type.values):
        raise Invalid(f"types must be among {', '.join(Memory.Type.values)}.")
    if tags and (not isinstance(tags, list) or not all(isinstance(t, str) for t in tags)):
        raise Invalid("tags must be a list of strings.")
    # PostgreSQL cannot take NUL (or an unpaired surrogate) even as a query parameter.
    check_storable(query, what="The query")
    for tag in tags or []:
        check_storable(tag, what="A tag")


def search_scoped(
    *,
    scope: Q,
    query: str,
    k: int = 10,
    types=None,
    tags=None,
    mode: str = "hybrid",
    vector: list[float] | None = None,
    options=None,
    names=(),
) -> list[Recalled]:
    """`mode` is "hybrid", "vector" or "keyword" (the latter two exist for the recall benchmark).
    `options` (memory.recall.search.RecallOptions; default: the GTW_RECALL_FEATURES setting)
    turns on the stages above the hybrid search: time, entities, rerank, multihop, neighbours.
    `names`: the game's names (characters, NPCs, factions, places, items) the caller knows."""
    from memory.recall.search import RecallOptions

    _validate(query, k, types, tags)
    options = RecallOptions.from_settings() if options is None else options
    base = Memory.objects.filter(scope)
    if types:
        base = base.filter(type__in=types)
    if tags:
        base = base.filter(tags__contains=[t.lower() for t in tags])
    n = max(40, k * CANDIDATES)
    vector_ids: list[int] = []
    distances: dict[int, float] = {}
    # (created_at, importance) per candidate, for the recency/importance tie-breakers; read with
    # the candidates themselves rather than in another round trip.
    info: dict[int, tuple] = {}
    embedding = None
    if mode in ("hybrid", "vector") and vector is None:
        # The query's embedding (ONNX releases the GIL) while the keyword search runs.
        embedding = telemetry.in_thread(_embed_pool, embed_query, query)
    if mode == "hybrid" and options.any:
        return _recall_staged(base, query, k, options, names, embedding, vector)
    keyword_ids: list[int] = []
    if mode == "hybrid" and _at_hand(embedding, vector):
        query_vector = _vector(embedding, vector)
        keyword_ids, vector_ids, distances, info = hybrid_candidates(base, query, query_vector, n)
    elif mode == "hybrid":
        keyword_ids, info, small = keyword_and_size(base, query, n)
        vector_ids, distances, vector_info = vector_candidates(
            base, _vector(embedding, vector), n, small=small
        )
        info.update(vector_info)
    elif mode == "keyword":
        keyword_ids, info = keyword_candidates(base, query, n)
    else:
        vector_ids, distances, info = vector_candidates(base, _vector(embedding, vector), n)
    ranked = ranking.rank(ranking.merge(vector_ids, keyword_ids, info, distances), now=timezone.now())[:k]
    by_id = memories_in_scope(base, [s.id for s in ranked])
    confidence = _confidences(query, [by_id[s.id] for s in ranked], distances)
    return [
        Recalled(
            by_id[s.id], s.score, s.vector, s.keyword, s.recency, s.importance, distances.get(s.id),
            confidence.get(s.id, 0.0),
        )
        for s in ranked
    ]  # fmt: skip


def _confidences(query: str, memories: list[Memory], distances: dict[int, float]) -> dict[int, float]:
    from memory.recall import rerank

    items = [rerank.Item(m.id, m.text, m.created_at, 1.0, distances.get(m.id)) for m in memories]
    return {r.id: r.confidence for r in rerank.rerank(query, items)}


def _at_hand(embedding: Future | None, vector: list[float] | None) -> bool:
    """Whether the query's vector is known before its keyword half is sent (the caller passed it,
    or its embedding is done): then both halves go in one statement."""
    return (
        (embedding.done() and embedding.exception() is None) if embedding is not None else vector is not None
    )


def _vector(embedding: Future | None, vector: list[float] | None) -> list[float] | None:
    return embedding.result() if embedding is not None else vector


def _recall_staged(base, query, k, options, names, embedding, vector) -> list[Recalled]:
    """The issue-21 stages (memory/recall/search.py) over the same first stage as below."""
    from memory.recall import search as staged

    def first_stage(n: int):
        if _at_hand(embedding, vector):
            keyword_ids, vector_ids, found, _info = hybrid_candidates(
                base, query, _vector(embedding, vector), n
            )
        else:
            keyword_ids, _info, small = keyword_and_size(base, query, n)
            vector_ids, found, _info = vector_candidates(base, _vector(embedding, vector), n, small=small)
        distances.update(found)
        return vector_ids, keyword_ids, distances

    distances: dict[int, float] = {}  # the vector list's, and the second round's

    hits = staged.recall(
        base=base,
        query=query,
        k=k,
        options=options,
        first_stage=first_stage,
        keyword_query=KeywordQuery,
        names=list(names or ()),
        now=timezone.now(),
        vector=embedding.result() if embedding is not None else vector,
    )
    wanted = [h.id for h in hits] + [n for h in hits for n in h.neighbours]
    by_id = memories_in_scope(base, wanted)
    return [
        Recalled(
            by_id[h.id], h.score, h.features.get("similarity", 0.0), h.features.get("terms", 0.0),
            0.0, by_id[h.id].importance, distances.get(h.id), h.confidence, h.via,
            [by_id[n] for n in h.neighbours if n in by_id],
        )
        for h in hits
        if h.id in by_id
    ]  # fmt: skip


DEFAULT_EF_SEARCH = 40  # pgvector's default hnsw.ef_search
_embed_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="gtw-embed")
# The hnsw.ef_search each database connection has at session level (iterative scans on too).
_scan_set: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _session_scan_set(ef_search: int = DEFAULT_EF_SEARCH) -> bool:
    """Turn on iterative HNSW scans, with this ef_search, once per database connection (outside
    transactions: a session SET inside one would be undone by its rollback), so the common recall
    needs no BEGIN / SET LOCAL / COMMIT round trips around its query. Only the vector candidate
    query orders by the HNSW index, so the session's setting is ours."""
    connection.ensure_connection()
    raw = connection.connection
    if _scan_set.get(raw) == ef_search:
        return True
    with connection.cursor() as cursor:
        cursor.execute(f"SET hnsw.iterative_scan = relaxed_order; SET hnsw.ef_search = {int(ef_search)}")
    _scan_set[raw] = ef_search
    return True


class KeywordQuery(SearchQuery):
    """Any of the question's words, not all of them: a question rarely repeats the memory's
    wording ("which ship was given code V4-2140?"), and websearch syntax turned every word into
    a requirement (and "-12.5" into NOT 12.5). PostgreSQL's own parser makes the lexemes (so
    "-12.5" matches "-12.5" in the text), then AND becomes OR; "simple" so they are stemmed once.
    One SQL expression inside the search, no extra round trip:
    to_tsquery('simple', replace(plainto_tsquery('english', text)::text, ' & ', ' | '))."""

    def __init__(self, text: str):
        super().__init__(text, search_type="raw", config="simple")
        self.text = text

    def as_sql(self, compiler, connection, **extra):
        sql = "replace(plainto_tsquery('english'::regconfig, %s)::text, ' & ', ' | ')"
        return f"to_tsquery('simple'::regconfig, {sql})", [self.text]


# The scope, compiled once per search (issue 20 part 3). Building and compiling a Django queryset
# cost ~1 ms of Python per statement, as much as PostgreSQL spends on the keyword half of a
# 100k-memory search; the keyword, vector and fetch statements of one search all select from the
# same subquery: the caller's viewer-scoped queryset, compiled by Django once, every value in it a
# bound parameter. A plain subquery (no ORDER BY, no LIMIT): PostgreSQL pulls it up into each
# statement, so they plan as if written against the table (the columns a statement does not
# use are never read, and the indexes' expressions still match).
_compiled: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
# What a search hands back of each memory: every column but the vector and the tsvector (parsing
# 384 floats per row would be most of the fetch).
SHOWN = tuple(f.attname for f in Memory._meta.concrete_fields if f.name not in ("embedding", "search"))


def scope_sql(base) -> tuple[str, tuple]:
    """(sql, params): `base` (a scoped queryset of memories) as a SELECT of every column, compiled
    once per queryset object (the candidate statements and the fetch of one search share it)."""
    found = _compiled.get(base)
    if found is None:
        columns = (*SHOWN, "embedding", "search")
        found = _compiled[base] = base.order_by().values_list(*columns).query.sql_with_params()
    return found


def memories_in_scope(base, ids) -> dict[int, Memory]:
    """{id: Memory} of those `ids` that `base` holds (its WHERE clause again, in SQL), without the
    vector and the tsvector (deferred: read on access). One statement, no queryset to compile, the
    rows turned into models as the ORM does (its converters, `Model.from_db`)."""
    if not ids:
        return {}
    sql, params = scope_sql(base)
    columns = ", ".join(f"m.{name}" for name in SHOWN)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {columns} FROM ({sql}) m WHERE m.id = ANY(%s)", [*params, list(ids)])  # noqa: S608
        rows = cursor.fetchall()
    converters = _shown_converters()
    found = {}
    for row in rows:
        values = list(row)
        for i, expression, functions in converters:
            for convert in functions:
                values[i] = convert(values[i], expression, connection)
        memory = Memory.from_db(connection.alias, SHOWN, values)
        found[memory.id] = memory
    return found


_converters: dict[str, list] = {}


def _shown_converters() -> list:
    """[(column index, column expression, [converter])] for SHOWN, as the ORM's compiler applies
    them to a row it reads (e.g. JSONField's decoding), found once per database vendor."""
    found = _converters.get(connection.vendor)
    if found is None:
        found = []
        for i, name in enumerate(SHOWN):
            column = Memory._meta.get_field(name).get_col(Memory._meta.db_table)
            functions = connection.ops.get_db_converters(column) + column.get_db_converters(connection)
            if functions:
                found.append((i, column, functions))
        _converters[connection.vendor] = found
    return found


# Scopes of up to this many memories are searched exactly (issue 20): every vector in the scope,
# read from the covering index `memory_scope_vectors` (the scope's vectors side by side, not one
# heap page per memory), the nearest n by a top-N sort. Cost grows with the scope, not the table:
# ~6,000 vectors are ~1,200 index pages and 6,000 distances. Bigger scopes (a GM's omniscient view
# of a huge campaign) go to the HNSW index, which at 1M memories would have to walk ~100 index
# tuples per row that passes a one-campaign filter.
EXACT_SCAN_MAX = 20_000


def scope_is_small(base, limit: int = EXACT_SCAN_MAX) -> bool:
    """Whether `base` (a scoped queryset) holds at most `limit` memories: a count that stops at
    limit + 1, over the small `memory_scope` index."""
    return base.order_by()[: limit + 1].count() <= limit


def vector_query(base, vector, n: int, *, exact: bool):
    """The candidate query: (id, distance, created_at, importance) of the n nearest to `vector`
    (a list of floats, or an SQL expression of the vector).
    `exact` orders by `distance + 0`, an expression no index can order by, so PostgreSQL reads
    the scope (from the covering index) and sorts it; otherwise it orders by the bare distance,
    which the HNSW index answers."""
    distance = CosineDistance("embedding", vector)
    order = F("distance") + Value(0.0) if exact else F("distance")
    return (
        base.filter(embedding__isnull=False)
        .annotate(distance=distance)
        .order_by(order)
        .values_list("id", "distance", "created_at", "importance")[:n]
    )


def vector_statement(
    base, vector: list[float], n: int, *, exact_max: int = EXACT_SCAN_MAX, small: bool | None = None
):
    """(sql, params) of the candidate query as `vector_candidates` runs it, in one statement: the
    scope's size (a count that stops at exact_max + 1, over the small `memory_scope` index) gates
    two arms, each a one-time filter on that count, so only one of them ever runs: the exact
    search of a small scope or the filtered HNSW walk of a big one (what `vector_query` asks, with
    `exact` True and False). Rows: (id, distance, created_at, importance, exact?); `exact_max` 0:
    the HNSW arm alone; `small` (the scope's size already counted, `keyword_and_size`): the arm it
    picks, alone. The scope is compiled once, and the query vector sent, parsed and bound once
    (`query_vector`; the HNSW index orders by it: an InitPlan value is a constant to it)."""
    # `base` (the viewer's scope, as the caller built it) compiled by Django once (`scope_sql`);
    # every value in it, and the vector, stays a bound parameter.
    scope, scope_params = scope_sql(base)
    head = "WITH query_vector AS (SELECT %s::vector AS v)"
    pick = (
        "SELECT m.id, m.embedding <=> (SELECT v FROM query_vector) AS distance, m.created_at, m.importance "  # noqa: S608
        f"FROM ({scope}) m WHERE m.embedding IS NOT NULL"
    )
    # The HNSW index answers ORDER BY the bare distance; the exact arm sorts the distances it
    # computed once per row, behind OFFSET 0 (which keeps the index from ordering them).
    hnsw = f"{pick} ORDER BY m.embedding <=> (SELECT v FROM query_vector) LIMIT %s"  # noqa: S608
    exact = f"SELECT * FROM ({pick} OFFSET 0) d ORDER BY d.distance LIMIT %s"  # noqa: S608
    params, n = [Vector(vector).to_text()], int(n)
    if small is True and exact_max > 0:
        return f"{head} SELECT e.*, true FROM ({exact}) e", [*params, *scope_params, n]  # noqa: S608
    if exact_max <= 0 or small is False:
        return f"{head} SELECT h.*, false FROM ({hnsw}) h", [*params, *scope_params, n]  # noqa: S608
    gate = f", {_size_gate(scope)} "
    sql = (
        f"{head}{gate}(SELECT e.*, true FROM ({exact}) e WHERE (SELECT small FROM scope)) UNION ALL "  # noqa: S608
        f"(SELECT h.*, false FROM ({hnsw}) h WHERE NOT (SELECT small FROM scope))"
    )
    params += [int(exact_max), *scope_params, int(exact_max) + 1, *scope_params, n, *scope_params, n]
    return sql, params


def _size_gate(scope: str) -> str:
    """The CTE `scope` (small: whether the scope holds at most exact_max memories), a count that
    stops at exact_max + 1 over the small `memory_scope` index; params: exact_max, the scope's,
    exact_max + 1."""
    size = f"SELECT 1 FROM ({scope}) m LIMIT %s"  # noqa: S608
    return f"scope AS MATERIALIZED (SELECT count(*) <= %s AS small FROM ({size}) c)"  # noqa: S608


def vector_candidates(
    base, vector: list[float] | None, n: int, *, exact_max: int | None = None, small: bool | None = None
) -> tuple[list[int], dict[int, float], dict]:
    """The `n` memories of `base` (an already scoped queryset) nearest to `vector`: their ids nearest
    first, {id: cosine distance}, and {id: (created_at, importance)}. Exact for scopes of up to
    `exact_max` memories (default EXACT_SCAN_MAX; 0 = always HNSW, as the benchmarks use it to
    measure the index), HNSW above; one statement and one round trip either way
    (`vector_statement`; `small`: the size `keyword_and_size` counted, so the statement skips the
    count). Public for the memory benchmarks, which compare it with an exact search."""
    if vector is None:
        return [], {}, {}
    exact_max = EXACT_SCAN_MAX if exact_max is None else exact_max
    sql, params = vector_statement(base, vector, n, exact_max=exact_max, small=small)
    return _vector_lists(_run_with_scan(sql, params, n))


def _run_with_scan(sql: str, params: list, n: int) -> list[tuple]:
    """Run a statement holding the vector candidate query, its HNSW arm set to scan iteratively
    with an ef_search of at least n."""
    ef_search = max(DEFAULT_EF_SEARCH, int(n))
    with connection.cursor() as cursor:
        if connection.in_atomic_block:
            # Filtered HNSW keeps scanning the index until n rows pass the scope filter; inside the
            # caller's transaction the settings last until it ends (ef_search is our own integer).
            cursor.execute(
                f"SET LOCAL hnsw.iterative_scan = relaxed_order; SET LOCAL hnsw.ef_search = {ef_search}"
            )
        else:
            _session_scan_set(ef_search)
        cursor.execute(sql, params)
        return cursor.fetchall()


def _vector_lists(rows: list[tuple]) -> tuple[list[int], dict[int, float], dict]:
    # relaxed_order may return rows slightly out of order; the exact distances fix that (a stable
    # sort: the exact arm's order stays as it is).
    rows.sort(key=lambda r: r[1])
    return [r[0] for r in rows], {r[0]: r[1] for r in rows}, {r[0]: (r[2], r[3]) for r in rows}


def hybrid_candidates(
    base, query: str, vector: list[float] | None, n: int
) -> tuple[list[int], list[int], dict[int, float], dict]:
    """Both candidate lists of `base` in one statement and one round trip (issue 20 part 3), for
    when the query's vector is at hand before the keyword half is sent (the turn runner embeds it
    while it loads the rest of the context): the keyword rows appended to the vector statement's.
    (keyword ids best first, vector ids nearest first, {id: distance}, {id: (created_at,
    importance)}): the same lists as `keyword_candidates` and `vector_candidates`."""
    if vector is None:
        keyword_ids, info = keyword_candidates(base, query, n)
        return keyword_ids, [], {}, info
    vector_sql, vector_params = vector_statement(base, vector, n)
    keyword_sql, keyword_params = keyword_statement(base, query, n)
    sql = (
        f"{vector_sql} UNION ALL (SELECT k.id, k.rank::float8, k.created_at, k.importance, NULL::boolean "  # noqa: S608
        f"FROM ({keyword_sql}) k)"
    )
    rows = _run_with_scan(sql, [*vector_params, *keyword_params], n)
    # Vector rows carry their arm (exact or not), keyword rows NULL; each half in its own order
    # (the keyword statement's: rank desc, id desc), whatever order the UNION hands them back in.
    keyword_rows = sorted((r for r in rows if r[4] is None), key=lambda r: (-r[1], -r[0]))
    vector_ids, distances, info = _vector_lists([r for r in rows if r[4] is not None])
    info.update({r[0]: (r[2], r[3]) for r in keyword_rows})
    return [r[0] for r in keyword_rows], vector_ids, distances, info


# The keyword half at scale (issue 20). The full-text GIN index `memory_search_gin` holds every
# campaign's lexemes: a common word (a crew member's name, "crate") matches a quarter of a million
# memories at 1M, and building that match list to AND it with one scope's few thousand rows cost
# more than the whole search should (btree_gin, to put the campaign in the text index, is not in
# the embedded server). So a second GIN index, `memory_scope_search` (migration 0003), indexes each
# memory's lexemes plus one more, `~c<campaign id>`, and the query asks for "any of the words AND
# ~c<campaign>": GIN's fast scan then walks the campaign's short posting list and skips through the
# long ones, and the heap is read only for the campaign's matches. Same rows, same ts_rank (on
# `search` itself), same order as the plain query, which stays for a scope without one campaign.
# Issue 20 part 3: with campaigns' memories interleaved, that skipping still decoded most of each
# word's posting list (16 ms of the keyword half at 1M); search now asks a third GIN index,
# `memory_campaign_words` (migration 0004), whose entries are the words of one campaign (`59.crate`),
# so the posting lists it reads hold only that campaign's memories (`keyword_statement`); the
# 0003 index is no longer read by search.


def _scope_campaign(base) -> int | None:
    """The campaign `base` is restricted to (a top-level `campaign_id = X` of its WHERE), if any."""
    where = base.query.where
    if where.connector != "AND" or where.negated:
        return None
    for child in where.children:
        lhs = getattr(child, "lhs", None)
        if (
            isinstance(child, Exact)
            and getattr(lhs, "target", None) is Memory._meta.get_field("campaign")
            and isinstance(child.rhs, int)
        ):
            return child.rhs
    return None


# The SQL `KeywordQuery` compiles to, the query text its one parameter.
_TSQUERY = (
    "to_tsquery('simple'::regconfig, replace(plainto_tsquery('english'::regconfig, %s)::text, ' & ', ' | '))"
)
# The campaign's words of the query (migration 0004 `memory_campaign_words`: one GIN entry per
# campaign and word, `59.crate`): a pre-filter that walks only the campaign's posting lists. Its
# words are the query's lexemes (to_tsvector: the same parser and dictionaries as the tsquery's
# plainto_tsquery), so every memory the tsquery matches has one of them: the tsquery stays the
# filter, and the rows are the same as the plain query's.
_WORDS = (
    "memory_campaign_words(m.campaign_id, m.search) && "
    "memory_campaign_words(%s::bigint, to_tsvector('english'::regconfig, %s))"
)


def keyword_statement(base, query: str, n: int, *, scoped_index: bool = True) -> tuple[str, list]:
    """(sql, params) of the keyword candidates as `keyword_candidates` runs them, written against
    the scope compiled once (`scope_sql`): the same rows, ts_rank on `search` and order (rank
    desc, id desc) as the plain GIN query. A scope of one campaign takes its matches from the
    campaign's words (`_WORDS`, issue 20 part 3); `scoped_index=False`: the plain GIN query."""
    scope, scope_params = scope_sql(base)
    campaign_id = _scope_campaign(base) if scoped_index else None
    if campaign_id is None:
        match, match_params = f"m.search @@ {_TSQUERY}", [query]
    else:
        match, match_params = f"{_WORDS} AND m.search @@ {_TSQUERY}", [int(campaign_id), query, query]
    sql = (
        f"SELECT m.id, m.created_at, m.importance, ts_rank(m.search, {_TSQUERY}) AS rank "  # noqa: S608
        f"FROM ({scope}) m WHERE {match} ORDER BY rank DESC, m.id DESC LIMIT %s"
    )
    return sql, [query, *scope_params, *match_params, int(n)]


def keyword_candidates(base, query: str, n: int, *, scoped_index: bool = True) -> tuple[list[int], dict]:
    """The `n` best keyword matches of `base`: their ids best first and {id: (created_at, importance)}.
    Public for the memory benchmarks (scoped_index=False is the plain GIN query)."""
    sql, params = keyword_statement(base, query, n, scoped_index=scoped_index)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return [r[0] for r in rows], {r[0]: (r[1], r[2]) for r in rows}


def keyword_and_size(base, query: str, n: int) -> tuple[list[int], dict, bool]:
    """`keyword_candidates` and, in the same statement, whether the scope is small enough for the
    exact vector search (`scope_is_small`): the count runs while the query is being embedded, not
    after it, in the vector statement that waits for the embedding (`vector_candidates(small=…)`).
    A scope without a keyword match still says its size (one row of NULLs)."""
    sql, params = keyword_statement(base, query, n)
    scope, scope_params = scope_sql(base)
    sql = (
        f"WITH {_size_gate(scope)} SELECT k.id, k.created_at, k.importance, s.small "  # noqa: S608
        f"FROM scope s LEFT JOIN LATERAL ({sql}) k ON true ORDER BY k.rank DESC, k.id DESC"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [EXACT_SCAN_MAX, *scope_params, EXACT_SCAN_MAX + 1, *params])
        rows = [r for r in cursor.fetchall()]
    small = bool(rows[0][3])
    rows = [r for r in rows if r[0] is not None]
    return [r[0] for r in rows], {r[0]: (r[1], r[2]) for r in rows}, small
