"""Hybrid recall: HNSW vector search + PostgreSQL full-text search, fused by reciprocal rank
fusion (memory/ranking.py), boosted by recency and importance.

Every query is scoped in SQL to what the viewer may see: the campaign namespace plus the
viewer's own `player:<id>` namespace. The GM sees campaign memory, and players' private
memories only when GTW_GM_OMNISCIENT is on. The narrator never mixes the two: the narration
the table reads recalls the campaign namespace only, a player's private aside their own
namespace only (`recall_for_player`). pgvector ≥ 0.8's iterative index scans keep a
filtered HNSW query returning k rows even when most of the index belongs to other scopes.
"""

from __future__ import annotations

import logging
import weakref
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from django.conf import settings
from django.contrib.postgres.search import SearchQuery, SearchRank
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone
from pgvector.django import CosineDistance

from campaigns.errors import Invalid
from campaigns.models import Membership
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
    )


def recall_for_player(
    *,
    campaign_id: int,
    user_id: int,
    query: str,
    k: int = 6,
    vector: list[float] | None = None,
    private: bool = False,
) -> list[Recalled]:
    """What the narrator may use when answering this player, never another player's secrets,
    whatever the GM-omniscience setting. Two scopes, never mixed in one prompt:

    - `private=False` (the narration the whole table reads): the campaign namespace only, what
      everyone present may know;
    - `private=True` (an aside addressed to this player alone): this player's own namespace only
      (their private notes, the whispers they received).

    `vector` is the query's embedding if the caller already has it (the turn runner computes it
    while it loads the rest of the context). The caller marks what it used with `mark_recalled`
    once the turn is out of its hot path."""
    return search_scoped(
        scope=private_scope(campaign_id=campaign_id, user_id=user_id)
        if private
        else table_scope(campaign_id=campaign_id),
        query=query,
        k=k,
        vector=vector,
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
) -> list[Recalled]:
    """`mode` is "hybrid", "vector" or "keyword" (the latter two exist for the recall benchmark)."""
    _validate(query, k, types, tags)
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
    keyword_ids: list[int] = []
    if mode in ("hybrid", "keyword"):
        tsquery = KeywordQuery(query)
        rows = (
            base.filter(search=tsquery)
            .annotate(rank=SearchRank(F("search"), tsquery))
            .order_by("-rank", "-id")
            .values_list("id", "created_at", "importance")[:n]
        )
        for memory_id, created_at, importance in rows:
            keyword_ids.append(memory_id)
            info[memory_id] = (created_at, importance)
    if mode in ("hybrid", "vector"):
        vector_ids, distances, vector_info = vector_candidates(
            base, embedding.result() if embedding is not None else vector, n
        )
        info.update(vector_info)
    ranked = ranking.rank(ranking.merge(vector_ids, keyword_ids, info, distances), now=timezone.now())[:k]
    # Not the vector and tsvector columns: parsing 384 floats per row is most of this query.
    by_id = Memory.objects.defer("embedding", "search").in_bulk([s.id for s in ranked])
    return [
        Recalled(by_id[s.id], s.score, s.vector, s.keyword, s.recency, s.importance, distances.get(s.id))
        for s in ranked
    ]


DEFAULT_EF_SEARCH = 40  # pgvector's default hnsw.ef_search
_embed_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="gtw-embed")
_scan_set: weakref.WeakSet = weakref.WeakSet()


def _session_scan_set() -> bool:
    """Turn on iterative HNSW scans once per database connection (outside transactions), so
    the common recall needs no BEGIN / SET LOCAL / COMMIT round trips around its query."""
    connection.ensure_connection()
    raw = connection.connection
    if raw in _scan_set:
        return True
    with connection.cursor() as cursor:
        cursor.execute("SET hnsw.iterative_scan = relaxed_order")
    _scan_set.add(raw)
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


def vector_candidates(base, vector: list[float] | None, n: int) -> tuple[list[int], dict[int, float], dict]:
    """The `n` memories of `base` (an already scoped queryset) nearest to `vector`: their ids nearest
    first, {id: cosine distance}, and {id: (created_at, importance)}. Public for the memory
    benchmarks, which compare it with an exact search."""
    if vector is None:
        return [], {}, {}
    query = (
        base.filter(embedding__isnull=False)
        .annotate(distance=CosineDistance("embedding", vector))
        .order_by("distance")
        .values_list("id", "distance", "created_at", "importance")[:n]
    )
    # Filtered HNSW: keep scanning the index until n rows pass the scope filter.
    if n <= DEFAULT_EF_SEARCH and not connection.in_atomic_block and _session_scan_set():
        rows = list(query)  # the connection already scans iteratively; ef_search's default fits
    else:
        with transaction.atomic(), connection.cursor() as cursor:
            # One round trip for both settings (ef_search is our own integer, not user input).
            cursor.execute(
                f"SET LOCAL hnsw.iterative_scan = relaxed_order; SET LOCAL hnsw.ef_search = {max(40, int(n))}"
            )
            rows = list(query)
    # relaxed_order may return rows slightly out of order; the exact distances fix that.
    rows.sort(key=lambda r: r[1])
    return [r[0] for r in rows], {r[0]: r[1] for r in rows}, {r[0]: (r[2], r[3]) for r in rows}
