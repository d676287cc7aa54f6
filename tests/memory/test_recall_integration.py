"""Issue 21's recall stages on the embedded Postgres: through /api/memory/query and
search_scoped, and the privacy of every new path (neighbours, the second round, facts)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from campaigns import selectors
from campaigns import services as campaign_services
from memory import retrieval, services
from memory.models import Memory, campaign_namespace, player_namespace
from memory.recall.search import RecallOptions
from memory.recall.store import FACT_TAG, facts_store
from tests.conftest import _user


@pytest.fixture
def bea(campaign, gm):
    """A second player in the campaign."""
    user = _user("bea")
    invite = campaign_services.invite_create(
        membership=selectors.membership_get(viewer=gm, campaign_id=campaign.pk)
    )
    campaign_services.invite_accept(code=invite.code, user=user)
    return user


def remember(campaign, texts, *, namespace=None, session=None, start_seq=1, days_ago=None):
    """Memories written the way play writes them (no author), embedded at once."""
    now = timezone.now()
    rows = Memory.objects.bulk_create(
        Memory(
            campaign=campaign,
            namespace=namespace or campaign_namespace(campaign.pk),
            type="episodic",
            text=text,
            source_session=session,
            source_seq=start_seq + i if session else None,
        )
        for i, text in enumerate(texts)
    )
    for i, m in enumerate(rows):  # auto_now_add: dates are set afterwards
        ago = days_ago[i] if days_ago else len(rows) - i
        Memory.objects.filter(pk=m.pk).update(created_at=now - timedelta(days=ago))
    services.embed_pending()
    return [m.pk for m in rows]


def query(user, campaign, q, k=10):
    client = Client()
    client.force_login(user)
    r = client.post(
        "/api/memory/query",
        json.dumps({"campaign": campaign.pk, "query": q, "k": k}),
        content_type="application/json",
    )
    assert r.status_code == 200, r.content
    return r.json()["results"]


def scope_of(campaign, user):
    return retrieval.scope_filter(campaign_id=campaign.pk, user_id=user.pk, is_gm=False)


FILLER = [
    "The reactor hums through the night.",
    "Kira Vance acted: I check the airlock seals.",
    "Rain of dust falls on the hull.",
    "The bar at the Pit is loud tonight.",
    "Ossian acted: I count our credits twice.",
    "A patrol drone drifts past the viewport.",
]


def test_last_time_means_the_newest_memory_about_it(campaign, player):
    ids = remember(
        campaign,
        [
            "We met Hale at the Pit.",
            "We met Hale at the Glass Chapel.",
            "We met Hale at the old foundry.",
            *FILLER,
        ],
        days_ago=[40, 20, 30, 1, 2, 3, 4, 5, 6],
    )
    assert query(player, campaign, "When did we last see Hale?")[0]["id"] == ids[1]
    assert query(player, campaign, "When did we first meet Hale?")[0]["id"] == ids[0]


def test_a_session_number_finds_what_happened_in_it(campaign, session, player, gm):
    later = campaign_services.session_open(
        membership=selectors.membership_get(viewer=gm, campaign_id=campaign.pk)
    )
    [first] = remember(campaign, ["We searched the Salt Chapel and turned up a drive coil."], session=session)
    [second] = remember(campaign, ["We searched the Salt Chapel and turned up a jewel case."], session=later)
    assert later.number == session.number + 1
    got = query(player, campaign, f"What did we find at the Salt Chapel in session {later.number}?")
    assert got[0]["id"] == second
    got = query(player, campaign, f"What did we find at the Salt Chapel in session {session.number}?")
    assert got[0]["id"] == first


def test_the_second_round_follows_a_name_the_first_found(campaign, player):
    remember(campaign, FILLER * 3)
    remember(  # look-alikes of the answer: other people's evenings
        campaign,
        [
            "Mara Quill spends her evenings at the Rusted Halo.",
            "Dov Strand drinks at the Pit most evenings.",
            "Sef Amari spends her nights at the Glass Chapel.",
            "Vash Marrow plays cards at the Last Orbit every evening.",
        ],
    )
    link, answer = remember(
        campaign,
        [
            "Hale said: “My sister Ulla keeps the books for the Wardens.”",
            "Ulla Tarro runs a card table at the Drowned Saint most nights.",
        ],
    )
    ask = "Where does the sister of Hale spend her evenings?"
    hits = retrieval.search_scoped(
        scope=scope_of(campaign, player), query=ask, k=3, options=RecallOptions.all()
    )
    assert {link, answer} <= {h.memory.pk for h in hits}
    # Without the second round the answer is not in the top 3: nothing in it says "sister" or "Hale".
    no_hop = RecallOptions(**{**RecallOptions.all().__dict__, "multihop": False})
    hits = retrieval.search_scoped(scope=scope_of(campaign, player), query=ask, k=3, options=no_hop)
    assert answer not in {h.memory.pk for h in hits}


def test_the_second_round_ranks_a_names_memories_by_what_the_question_still_asks(campaign, player):
    """The link's second memory shares only a name with the first ("Marek"), and the name's
    other memories share more with the question ("owes … credits"): the second round ranks them
    by the rest of the question ("where are they holed up?"), less what the first already said."""
    remember(campaign, FILLER * 3)
    remember(
        campaign,
        [
            "Dov Strand said: \u201cMarek Kovacs owes the Warden Corps 4600 credits.\u201d",
            "Marek Kovacs sold us a coolant valve cheap, no questions asked.",
            "Marek Kovacs said: \u201cThe forged permit is stashed under the galley floor plates.\u201d",
            "Marek Kovacs argued with Hollis Quill about fuel prices on Port Ilium.",
            "Marek Kovacs told us someone owes the Gray Tithe a fortune.",
            "Marek Kovacs said: \u201cThe Tallow Cartel never forgets who owes them.\u201d",
            "Brix Szabo has been hiding out at berth 4 on Tessaly Yard.",
        ],
    )
    link, answer = remember(
        campaign,
        [
            "Brix Szabo said: \u201cMarek is into the Tallow Cartel for 6200 credits.\u201d",
            "Marek Kovacs has been hiding out at berth 12 on Orison Platform.",
        ],
    )
    ask = "Brix Szabo told us someone owes the Tallow Cartel; where are they holed up?"
    hits = retrieval.search_scoped(
        scope=scope_of(campaign, player), query=ask, k=5, options=RecallOptions.all()
    )
    assert {link, answer} <= {h.memory.pk for h in hits}
    assert next(h.via for h in hits if h.memory.pk == answer) == "second round"


def test_the_second_round_never_reads_another_players_private_memory(campaign, player, bea):
    remember(campaign, ["Hale said: “My sister Ulla keeps the books for the Wardens.”", *FILLER])
    [secret] = remember(
        campaign,
        ["Ulla Tarro runs a card table at the Drowned Saint most nights."],
        namespace=player_namespace(bea.pk),
    )
    hits = retrieval.search_scoped(
        scope=scope_of(campaign, player),
        query="Where does the sister of Hale spend her nights?",
        k=10,
        options=RecallOptions.all(),
    )
    assert secret not in {h.memory.pk for h in hits}
    assert secret not in {n.pk for h in hits for n in h.neighbours}
    assert secret in {h["id"] for h in query(bea, campaign, "Where does Ulla Tarro spend her nights?")}


def test_neighbours_come_as_context_and_only_from_the_viewers_scope(campaign, session, player, bea, settings):
    settings.GTW_MEMORY = {
        **settings.GTW_MEMORY,
        "recall_features": ["time", "rerank", "multihop", "neighbours"],
    }
    before, hit = remember(
        campaign,
        ["The docking clamps release with a shudder.", "Hale hid the relay key in the coolant tanks."],
        session=session,
    )
    [secret] = remember(
        campaign,
        ["GM whispered: the key is a fake."],
        namespace=player_namespace(bea.pk),
        session=session,
        start_seq=3,
    )
    [after] = remember(campaign, ["The lights flicker on deck 3."], session=session, start_seq=4)
    results = query(player, campaign, "Where did Hale hide the relay key?", k=1)
    assert [r["id"] for r in results] == [hit]
    assert {n["id"] for n in results[0]["neighbours"]} == {before}  # seq 1; seq 3 is Bea's
    # Bea's own whisper is her neighbour; the table memory two turns on is nobody's.
    results = query(bea, campaign, "Where did Hale hide the relay key?", k=1)
    assert {n["id"] for n in results[0]["neighbours"]} == {before, secret}
    assert after not in {n["id"] for n in results[0]["neighbours"]}


def test_facts_keep_the_namespace_of_what_they_were_read_in(campaign, session, player, bea, gm):
    remember(campaign, ["Hale commands the Warden cutter Aster."], session=session)
    remember(
        campaign,
        ["GM whispered: Orla owes the Tallow Cartel 300 credits."],
        namespace=player_namespace(bea.pk),
        session=session,
        start_seq=2,
    )
    made = facts_store(session=session, after_seq=0, last_seq=5)
    assert {(m.namespace, m.text) for m in made} == {
        (campaign_namespace(campaign.pk), "Hale commands the Warden cutter Aster."),
        (player_namespace(bea.pk), "Orla owes the Tallow Cartel 300 credits."),
    }
    assert facts_store(session=session, after_seq=0, last_seq=5) == []  # not twice
    services.embed_pending()
    [fact] = [m for m in made if m.namespace == player_namespace(bea.pk)]
    assert fact.type == "semantic" and FACT_TAG in fact.tags and len(fact.sources) == 1
    assert fact.pk in {h["id"] for h in query(bea, campaign, "Who owes the Tallow Cartel?")}
    for other in (player, gm):
        assert fact.pk not in {h["id"] for h in query(other, campaign, "Who owes the Tallow Cartel?")}


def test_forgetting_a_withdrawn_turn_forgets_its_facts(campaign, session):
    [source] = remember(campaign, ["Hale commands the Warden cutter Aster."], session=session, start_seq=7)
    [fact] = facts_store(session=session, after_seq=0, last_seq=7)
    assert fact.sources == [source]
    services.forget_withdrawn(session, {7})
    assert not Memory.objects.filter(pk__in=[source, fact.pk]).exists()


def test_confidence_is_the_gms_and_says_when_nothing_matches(campaign, gm, player, settings):
    remember(campaign, ["Hale hid the relay key behind the coolant tanks.", *FILLER])
    gm_top = query(gm, campaign, "Where did Hale hide the relay key?")[0]
    assert gm_top["confidence"] is not None and gm_top["via"] == "search"
    player_top = query(player, campaign, "Where did Hale hide the relay key?")[0]
    assert player_top["confidence"] is None and player_top["via"] is None
    scope = scope_of(campaign, player)
    sure = retrieval.search_scoped(scope=scope, query="Where did Hale hide the relay key?")
    never = retrieval.search_scoped(scope=scope, query="What did the abbess say about the golden harpoon?")
    assert retrieval.recall_confident(sure) and not retrieval.recall_confident(never)
    assert sure[0].confidence > never[0].confidence


def test_the_stages_can_be_turned_off(campaign, player, settings):
    ids = remember(
        campaign, ["We met Hale at the Pit.", "We met Hale at the Glass Chapel."], days_ago=[40, 20]
    )
    settings.GTW_MEMORY = {**settings.GTW_MEMORY, "recall_features": []}
    hits = retrieval.search_scoped(scope=scope_of(campaign, player), query="When did we last see Hale?")
    assert {h.memory.pk for h in hits} == set(ids)
    assert all(h.via == "search" and h.neighbours == [] for h in hits)


def test_the_narrator_recalls_nothing_for_a_detail_never_said(campaign, player):
    """The turn's recall (narrative.turns.context._recall): asked about the past with nothing
    sure enough, the prompt gets no near-miss; a plain action keeps its loose matches."""
    from types import SimpleNamespace

    from narrative.turns import context, prompts

    [key] = remember(campaign, ["Hale hid the relay key behind the coolant tanks.", *FILLER])[:1]
    action = SimpleNamespace(actor_id=player.pk, seq=999)
    assert key in [m.pk for m in context._recall(campaign.pk, action, "Where did Hale hide the relay key?")]
    assert context._recall(campaign.pk, action, "What did the abbess say about the golden harpoon?") == []
    assert context._recall(campaign.pk, action, "I hum a tune about the golden harpoon") != []
    text = prompts.build_messages({"memories": [], "action": {"actor": "Kira", "text": "?"}})[0].content
    assert "don't recall it" in text
