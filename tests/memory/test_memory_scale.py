"""Memory search at scale (issue 20): a scope up to `EXACT_SCAN_MAX` memories is searched exactly
(from the covering index `memory_scope_vectors`), a bigger one through HNSW; either way only what
the viewer may see, and the exact path returns exactly the nearest."""

from __future__ import annotations

import numpy as np
import pytest
from django.db import connection

from campaigns import selectors
from campaigns import services as campaign_services
from memory import retrieval
from memory.models import DIMENSIONS, Memory, campaign_namespace, player_namespace
from tests.conftest import _user


def _unit(rng, n):
    v = rng.standard_normal((n, DIMENSIONS)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


@pytest.fixture
def world(campaign, gm, player, outsider):
    """60 table memories, 30 private to `player`, 30 private to another player of the same
    campaign, 30 table memories of another campaign (the outsider's): vectors drawn near a few
    shared centres, so every scope has close neighbours in the others."""
    other = _user("other")
    invite = campaign_services.invite_create(
        membership=selectors.membership_get(viewer=gm, campaign_id=campaign.pk)
    )
    campaign_services.invite_accept(code=invite.code, user=other)
    elsewhere = campaign_services.campaign_create(user=outsider, name="Elsewhere", pack_slug="starter")
    rng = np.random.default_rng(20)
    centres = _unit(rng, 4)
    plan = [
        (campaign, campaign_namespace(campaign.pk), 60),
        (campaign, player_namespace(player.pk), 30),
        (campaign, player_namespace(other.pk), 30),
        (elsewhere, campaign_namespace(elsewhere.pk), 30),
    ]
    rows = []
    for camp, namespace, count in plan:
        noise = _unit(rng, count) * 0.7
        vectors = centres[rng.integers(0, len(centres), count)] + noise
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        rows += [
            Memory(campaign=camp, namespace=namespace, text=f"{namespace} memory {i}", embedding=v.tolist())
            for i, v in enumerate(vectors)
        ]
    Memory.objects.bulk_create(rows)
    with connection.cursor() as cur:
        cur.execute("ANALYZE memory_memory")
    return {"other": other, "elsewhere": elsewhere, "centres": centres, "rng": rng}


def _allowed(campaign, player):
    return Memory.objects.filter(
        retrieval.scope_filter(campaign_id=campaign.pk, user_id=player.pk, is_gm=False)
    )


def _brute_force(base, vector, n):
    ids, vectors = zip(*base.values_list("id", "embedding"), strict=True)
    matrix = np.asarray(vectors, dtype=np.float64)
    q = np.asarray(vector, dtype=np.float64)
    distance = 1 - matrix @ q / (np.linalg.norm(matrix, axis=1) * np.linalg.norm(q))
    return [ids[i] for i in np.argsort(distance, kind="stable")[:n]]


def test_the_covering_scope_index_exists_with_the_vectors(db):
    with connection.cursor() as cur:
        cur.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'memory_scope_vectors'")
        (definition,) = cur.fetchone()
        cur.execute("SELECT 1 FROM pg_statistic_ext WHERE stxname = 'memory_scope_stats'")
        assert cur.fetchone()
    assert "(campaign_id, namespace) INCLUDE (id, created_at, importance, embedding)" in definition


def test_exact_path_returns_exactly_the_nearest_in_scope(world, campaign, player):
    base = _allowed(campaign, player)
    assert base.count() == 90
    assert retrieval.scope_is_small(base)
    scope_ids = set(base.values_list("id", flat=True))
    for centre in world["centres"]:
        query = (centre + 0.3 * _unit(world["rng"], 1)[0]).tolist()
        ids, distances, info = retrieval.vector_candidates(base, query, 40)
        assert ids == _brute_force(base, query, 40)
        assert set(ids) <= scope_ids
        assert [distances[i] for i in ids] == sorted(distances.values())
        assert set(info) == set(ids)


def test_hnsw_path_stays_in_scope(world, campaign, player):
    """exact_max=0 sends the same scope to the HNSW index: approximate, never another's memory."""
    base = _allowed(campaign, player)
    scope_ids = set(base.values_list("id", flat=True))
    forbidden = set(Memory.objects.exclude(id__in=scope_ids).values_list("id", flat=True))
    assert len(forbidden) == 60
    found = 0
    for centre in world["centres"]:
        query = (centre + 0.3 * _unit(world["rng"], 1)[0]).tolist()
        ids, _, _ = retrieval.vector_candidates(base, query, 10, exact_max=0)
        assert ids and not set(ids) & forbidden
        found += len(set(ids) & set(_brute_force(base, query, 10)))
    assert found >= 0.8 * 10 * len(world["centres"])


def test_the_size_threshold_picks_the_path(world, campaign, player):
    """One statement: the scope's size is counted inside it and gates the arm that runs."""
    from django.test.utils import CaptureQueriesContext

    base = _allowed(campaign, player)
    assert retrieval.scope_is_small(base, 90) and not retrieval.scope_is_small(base, 89)
    query = world["centres"][0].tolist()
    for exact_max, exact in ((90, True), (89, False), (0, False)):
        with CaptureQueriesContext(connection) as captured:
            ids, _, _ = retrieval.vector_candidates(base, query, 10, exact_max=exact_max)
        reads = [q["sql"] for q in captured.captured_queries if "memory_memory" in q["sql"]]
        assert len(reads) == 1 and len(ids) == 10
        sql, params = retrieval.vector_statement(base, query, 10, exact_max=exact_max)
        with connection.cursor() as cur:
            cur.execute(sql, params)
            rows = cur.fetchall()
        assert {row[4] for row in rows} == {exact}  # the exact arm's rows say so
        assert sorted(row[0] for row in rows) == sorted(ids)


def test_the_arm_not_taken_never_runs(world, campaign, player):
    """The gate is a one-time filter: a small scope never starts the HNSW walk, a big one never
    reads the whole scope for the exact sort."""
    base = _allowed(campaign, player)
    query = world["centres"][0].tolist()
    with connection.cursor() as cur:
        for exact_max, exact in ((90, True), (89, False)):
            sql, params = retrieval.vector_statement(base, query, 10, exact_max=exact_max)
            cur.execute("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) " + sql, params)
            plan = "\n".join(r[0] for r in cur.fetchall())
            # The two arms, in order: exact, then HNSW; each under its one-time filter.
            _, exact_arm, hnsw_arm = plan.split("One-Time Filter")
            assert ("never executed" in exact_arm) is not exact, plan
            assert ("never executed" in hnsw_arm) is exact, plan


def test_another_campaigns_and_players_memories_never_come_back(world, campaign, player):
    """The GM's omniscient scope takes the other player's private memories, never the other
    campaign's; the player's own scope takes neither."""
    other = world["other"]
    query = world["centres"][1].tolist()
    mine, _, _ = retrieval.vector_candidates(_allowed(campaign, player), query, 50)
    namespaces = set(Memory.objects.filter(id__in=mine).values_list("namespace", flat=True))
    assert namespaces == {campaign_namespace(campaign.pk), player_namespace(player.pk)}
    omniscient = Memory.objects.filter(
        retrieval.scope_filter(campaign_id=campaign.pk, user_id=0, is_gm=True, omniscient=True)
    )
    theirs, _, _ = retrieval.vector_candidates(omniscient, query, 50)
    namespaces = set(Memory.objects.filter(id__in=theirs).values_list("namespace", flat=True))
    assert player_namespace(other.pk) in namespaces
    assert campaign_namespace(world["elsewhere"].pk) not in namespaces


# Issue 20 part 3: the scope compiled once, both halves in one statement when the query's vector
# is at hand, the scope's size counted with the keyword half, the fetch through the scope.


def test_one_statement_for_both_halves_gives_the_same_lists(world, campaign, player):
    from django.test.utils import CaptureQueriesContext

    base = _allowed(campaign, player)
    for i, centre in enumerate(world["centres"]):
        query, text = centre.tolist(), f"memory {i}"
        with CaptureQueriesContext(connection) as captured:
            keyword_ids, vector_ids, distances, info = retrieval.hybrid_candidates(base, text, query, 40)
        assert len([q for q in captured.captured_queries if "memory_memory" in q["sql"]]) == 1
        alone_keyword, keyword_info = retrieval.keyword_candidates(base, text, 40)
        alone_vector, alone_distances, vector_info = retrieval.vector_candidates(base, query, 40)
        assert keyword_ids == alone_keyword and keyword_ids
        assert vector_ids == alone_vector and distances == alone_distances
        assert info == {**vector_info, **keyword_info}
    # No vector (the embedder failed): the keyword half alone.
    assert retrieval.hybrid_candidates(base, "memory", None, 40)[:3] == (
        retrieval.keyword_candidates(base, "memory", 40)[0],
        [],
        {},
    )


def test_the_keyword_half_counts_the_scope_for_the_vector_half(world, campaign, player, monkeypatch):
    base = _allowed(campaign, player)
    ids, info, small = retrieval.keyword_and_size(base, "memory 7", 40)
    assert (ids, info) == retrieval.keyword_candidates(base, "memory 7", 40) and small
    assert retrieval.keyword_and_size(base, "zeppelin", 40) == ([], {}, True)  # no match: still a size
    monkeypatch.setattr(retrieval, "EXACT_SCAN_MAX", 89)  # the scope holds 90
    assert retrieval.keyword_and_size(base, "memory 7", 40)[2] is False
    assert retrieval.keyword_and_size(base, "zeppelin", 40)[2] is False


def test_a_counted_scope_runs_one_arm_without_the_count(world, campaign, player):
    base = _allowed(campaign, player)
    query = world["centres"][2].tolist()
    for small, exact in ((True, True), (False, False)):
        sql, params = retrieval.vector_statement(base, query, 10, small=small)
        assert "count(*)" not in sql and "UNION" not in sql
        with connection.cursor() as cur:
            cur.execute(sql, params)
            assert {row[4] for row in cur.fetchall()} == {exact}
    assert retrieval.vector_candidates(base, query, 40, small=True)[0] == _brute_force(base, query, 40)
    ids, _, _ = retrieval.vector_candidates(base, query, 10, small=False)
    assert ids and set(ids) <= set(base.values_list("id", flat=True))


def test_the_fetch_goes_through_the_scope(world, campaign, player):
    """`memories_in_scope` returns only what the scope holds, whatever ids it is asked for; the
    vector and the tsvector stay unread (deferred)."""
    base = _allowed(campaign, player)
    mine = list(base.values_list("id", flat=True)[:5])
    others = list(Memory.objects.exclude(id__in=base.values("id")).values_list("id", flat=True))
    assert len(others) == 60  # the other player's and the other campaign's
    found = retrieval.memories_in_scope(base, mine + others)
    assert set(found) == set(mine)
    Memory.objects.filter(id=mine[0]).update(metadata={"seen": [1, "two"]}, tags=["crate"], importance=0.7)
    memory, orm = retrieval.memories_in_scope(base, mine)[mine[0]], Memory.objects.get(id=mine[0])
    assert [getattr(memory, name) for name in retrieval.SHOWN] == [
        getattr(orm, name) for name in retrieval.SHOWN
    ]
    assert memory.metadata == {"seen": [1, "two"]} and memory.tags == ["crate"]
    assert memory.get_deferred_fields() == {"embedding", "search"}
    assert retrieval.memories_in_scope(base, []) == {}
