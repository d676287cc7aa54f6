"""What the living world leaves in memory: research the table completed and the world's moves
(WorldChanged) become table memories through the memory listener (events -> memory.policy ->
rows); the simulation's engine room (Simulation*: snapshot ids, hashes, budgets, drift reasons)
never reaches any player's memory."""

from __future__ import annotations

import pytest

from campaigns.models import Character, Event
from memory import policy
from memory.models import Memory
from missions import simulation_services as sim
from missions import techtree_services
from narrative import engine

pytestmark = pytest.mark.django_db(transaction=False)

ENGINE_ROOM = ("snapshot", "hash", "Simulation", "budget", "quarantin", "step")


def _view(seq, type, payload, audience=None):
    return policy.EventView(seq=seq, type=type, actor_id=None, payload=payload, audience=audience)


def test_the_policy_remembers_research_and_world_news_for_the_table_only():
    drafts = policy.decide(
        7,
        [
            _view(
                1, "ResearchCompleted", {"owner_label": "Kira", "name": "Relay Lore", "tree": "crew-craft"}
            ),
            _view(
                2,
                "WorldChanged",
                {"lines": ["The Wardens gain ground across the Reach.", "A hazard flares."]},
            ),
            _view(3, "SimulationStepped", {"snapshot": 4, "hash": "ab" * 32}, audience=()),
            _view(4, "SimulationDrifted", {"quarantined": ["hash mismatch"]}, audience=()),
            _view(5, "WorldNotice", {"text": "The wider galaxy stirs."}),
        ],
        {},
    )
    assert [(d.namespace, d.source_seq, d.text) for d in drafts] == [
        ("campaign:7", 1, "Kira completed research: Relay Lore."),
        (
            "campaign:7",
            2,
            "News from the wider galaxy: The Wardens gain ground across the Reach. A hazard flares.",
        ),
    ]
    assert policy.decide(7, [_view(1, "WorldChanged", {"lines": "not a list"})], {}) == []


def test_the_listener_writes_the_worlds_news_and_research_as_table_memories(
    session, gm, player, settings, django_capture_on_commit_callbacks
):
    settings.GTW_SIMULATION = {**settings.GTW_SIMULATION, "budget": 40}
    Character.objects.filter(campaign=session.campaign).update(xp=1000)
    kira = Character.objects.get(campaign=session.campaign, owner=player)
    with django_capture_on_commit_callbacks(execute=True):
        sim.simulation_start(viewer=gm, campaign_id=session.campaign_id, entities=300)
        for beat in ("rising", "twist"):
            session.refresh_from_db()
            engine.beat_set(session=session, beat=beat, actor_id=gm.pk)
        techtree_services.research_start(
            viewer=player, campaign_id=session.campaign_id, tree="crew-craft", node="relay-lore"
        )
        techtree_services.research_complete(
            viewer=gm,
            campaign_id=session.campaign_id,
            tree="crew-craft",
            node="relay-lore",
            character_id=kira.pk,
        )

    news = Event.objects.filter(session=session, type="WorldChanged").order_by("seq")
    assert news.exists()  # 80 steps of a 300-NPC world: the table hears something
    memories = Memory.objects.filter(campaign=session.campaign)
    world = memories.filter(metadata__event_type="WorldChanged")
    assert world.count() == news.count()
    assert set(world.values_list("namespace", flat=True)) == {f"campaign:{session.campaign_id}"}
    assert news[0].payload["lines"][0] in world.get(source_seq=news[0].seq).text
    research = memories.get(metadata__event_type="ResearchCompleted")
    assert research.namespace == f"campaign:{session.campaign_id}" and "Relay" in research.text
    # Nothing of the engine room, in anyone's memory.
    engine_seqs = set(
        Event.objects.filter(session=session, type__startswith="Simulation").values_list("seq", flat=True)
    )
    assert engine_seqs and not memories.filter(source_seq__in=engine_seqs).exists()
    for text in memories.filter(metadata__event_type__in=["WorldChanged", "ResearchCompleted"]).values_list(
        "text", flat=True
    ):
        assert not any(word in text for word in ENGINE_ROOM), text
    assert not memories.filter(namespace__startswith="player:", metadata__event_type="WorldChanged").exists()
