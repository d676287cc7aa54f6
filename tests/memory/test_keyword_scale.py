"""The keyword half of memory search at scale (issue 20): one campaign's matches come from the GIN
index of campaign-prefixed words (`memory_campaign_words`), in one statement; the same
list as the plain GIN query (rank desc, id desc, top n), and only what the viewer may see."""

from __future__ import annotations

import random

import pytest
from django.contrib.postgres.search import SearchRank
from django.db import connection
from django.db.models import F
from django.test.utils import CaptureQueriesContext

from campaigns import selectors
from campaigns import services as campaign_services
from memory import retrieval
from memory.models import Memory, campaign_namespace, player_namespace
from tests.conftest import _user

WORDS = [
    *("crate", "datachip", "ledger", "permit", "chart", "cutter", "ring"),
    *("bay", "chapel", "market", "credits", "Mira", "Ossian"),
]
QUERIES = [
    "where is the datachip",
    "who sold the crate in bay 7",
    "what do we know about Mira",
    "ledger credits permit chart",
    "nothing matches zzyzx",
]


@pytest.fixture
def seeded(campaign, gm, player, outsider):
    """300 memories of random words over the table, the player, another player and another campaign,
    many with equal ranks (so the id tie-break matters)."""
    other = _user("other")
    invite = campaign_services.invite_create(
        membership=selectors.membership_get(viewer=gm, campaign_id=campaign.pk)
    )
    campaign_services.invite_accept(code=invite.code, user=other)
    elsewhere = campaign_services.campaign_create(user=outsider, name="Elsewhere", pack_slug="starter")
    rng = random.Random(2020)
    plan = [
        (campaign, campaign_namespace(campaign.pk), 120),
        (campaign, player_namespace(player.pk), 60),
        (campaign, player_namespace(other.pk), 60),
        (elsewhere, campaign_namespace(elsewhere.pk), 60),
    ]
    rows = [
        Memory(campaign=camp, namespace=ns, text=" ".join(rng.choices(WORDS, k=rng.randint(2, 9))))
        for camp, ns, count in plan
        for _ in range(count)
    ]
    rng.shuffle(rows)
    Memory.objects.bulk_create(rows)
    with connection.cursor() as cur:
        cur.execute("ANALYZE memory_memory")
    return {"other": other, "elsewhere": elsewhere}


def _old(base, query, n):
    """The keyword query search_scoped ran before issue 20's keyword half: the GIN index's match list."""
    tsquery = retrieval.KeywordQuery(query)
    return list(
        base.filter(search=tsquery)
        .annotate(rank=SearchRank(F("search"), tsquery))
        .order_by("-rank", "-id")
        .values_list("id", flat=True)[:n]
    )


def _allowed(campaign, player):
    return Memory.objects.filter(
        retrieval.scope_filter(campaign_id=campaign.pk, user_id=player.pk, is_gm=False)
    )


@pytest.mark.parametrize("n", [5, 40])
def test_same_list_as_the_plain_gin_query(seeded, campaign, player, n):
    base = _allowed(campaign, player)
    assert retrieval._scope_campaign(base) == campaign.pk
    for query in QUERIES:
        expected = _old(base, query, n)
        if query != QUERIES[-1]:
            assert len(expected) == n  # the comparison compares something
        for scoped_index in (True, False):
            ids, info = retrieval.keyword_candidates(base, query, n, scoped_index=scoped_index)
            assert ids == expected, (query, scoped_index)
            assert set(info) == set(ids)
    # With types/tags filters on top, and the other scopes the narrator uses.
    scopes = [
        retrieval.table_scope(campaign_id=campaign.pk),
        retrieval.private_scope(campaign_id=campaign.pk, user_id=player.pk),
        retrieval.scope_filter(campaign_id=campaign.pk, user_id=0, is_gm=True, omniscient=True),
    ]
    for scope in scopes:
        for base in (
            Memory.objects.filter(scope),
            Memory.objects.filter(scope).filter(type__in=["episodic"]),
        ):
            assert retrieval._scope_campaign(base) == campaign.pk
            for query in QUERIES:
                assert retrieval.keyword_candidates(base, query, n)[0] == _old(base, query, n)


def _plan(qs) -> str:
    sql, params = qs if isinstance(qs, tuple) else qs.query.sql_with_params()
    with connection.cursor() as cur:
        # A test table is tiny: take the B-tree scope indexes away (rolled back with the test)
        # and the sequential and primary-key scans, so the plan shows which full-text index the
        # query can use.
        cur.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'memory_memory' "
            "AND indexdef LIKE '%%USING btree (campaign_id%%'"
        )
        for (name,) in cur.fetchall():
            cur.execute(f'DROP INDEX "{name}"')
        cur.execute("SET LOCAL enable_seqscan = off; SET LOCAL enable_indexscan = off")
        cur.execute("EXPLAIN (COSTS OFF) " + sql, params)
        return "\n".join(r[0] for r in cur.fetchall())


def test_the_campaign_folded_index_answers_it_in_one_statement(seeded, campaign, player):
    base = _allowed(campaign, player)
    with CaptureQueriesContext(connection) as captured:
        retrieval.keyword_candidates(base, "datachip crate", 40)
    assert len(captured.captured_queries) == 1
    # Issue 20 part 3: the statement search runs takes the campaign's words (migration 0004).
    assert "memory_campaign_words" in captured.captured_queries[0]["sql"]
    assert "memory_campaign_words" in _plan(retrieval.keyword_statement(base, "datachip crate", 40))
    plain = _plan(retrieval.keyword_statement(base, "datachip crate", 40, scoped_index=False))
    assert "memory_campaign_words" not in plain
    # Without one campaign in the scope (no such caller today): the plain query, still correct.
    anywhere = Memory.objects.filter(namespace=campaign_namespace(campaign.pk))
    assert retrieval._scope_campaign(anywhere) is None
    assert retrieval.keyword_candidates(anywhere, "datachip", 40)[0] == _old(anywhere, "datachip", 40)


def test_never_another_players_or_campaigns_memories(seeded, campaign, player):
    other, elsewhere = seeded["other"], seeded["elsewhere"]
    ids, _ = retrieval.keyword_candidates(_allowed(campaign, player), "crate datachip Mira", 50)
    namespaces = set(Memory.objects.filter(id__in=ids).values_list("namespace", flat=True))
    assert namespaces == {campaign_namespace(campaign.pk), player_namespace(player.pk)}
    omniscient = Memory.objects.filter(
        retrieval.scope_filter(campaign_id=campaign.pk, user_id=0, is_gm=True, omniscient=True)
    )
    ids, _ = retrieval.keyword_candidates(omniscient, "crate datachip Mira", 50)
    namespaces = set(Memory.objects.filter(id__in=ids).values_list("namespace", flat=True))
    assert player_namespace(other.pk) in namespaces
    assert campaign_namespace(elsewhere.pk) not in namespaces
    # The other campaign's memories hold the same words: its own scope finds them, ours never.
    theirs = Memory.objects.filter(retrieval.table_scope(campaign_id=elsewhere.pk))
    found, _ = retrieval.keyword_candidates(theirs, "crate datachip Mira", 50)
    assert found and not set(found) & set(ids)


ODD = [
    "state-of-the-art V4-2140 cutter",
    "code -12.5 at 3:45, e-mail mira@bay7.example",
    "Ossian's ledger (the 'forged' one) & market|chapel",
    "running-shoes café naïve ÜBER",
    "/~ossian/crates.txt http://bay7.example/x?y=1",
]


def test_the_campaigns_words_find_what_the_plain_query_finds(campaign, player):
    """Issue 20 part 3: the campaign's words are only a pre-filter; texts and questions with
    hyphens, numbers, addresses, quotes and accents give the plain GIN query's list."""
    rng = random.Random(7)
    pieces = [w for text in ODD for w in text.split()] + WORDS
    rows = [
        Memory(
            campaign=campaign,
            namespace=campaign_namespace(campaign.pk),
            text=" ".join(rng.choices(pieces, k=rng.randint(1, 8))),
        )
        for _ in range(200)
    ]
    Memory.objects.bulk_create(
        rows + [Memory(campaign=campaign, namespace=campaign_namespace(campaign.pk), text=t) for t in ODD]
    )
    base = _allowed(campaign, player)
    queries = [*ODD, *(w for text in ODD for w in text.split())]
    found = 0
    for query in queries:
        expected = _old(base, query, 50)
        assert retrieval.keyword_candidates(base, query, 50)[0] == expected, query
        found += bool(expected)
    assert found >= len(queries) * 3 // 4  # the comparison compares something
