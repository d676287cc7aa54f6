"""Replay equals live with research and the world simulation in the log: random sequences of
research starts, GM completions, beats (whose listener completes research and pays drips, and
before which the simulation runs its step window), GM step windows and stops leave a session
whose stored state and hash are exactly the fold of its log, whose research matches the
campaign-wide fold the services decide on, and whose simulation, re-run from its snapshots and
recorded windows alone, reproduces the live state hash."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from campaigns import state as reducer
from campaigns.errors import DomainError
from campaigns.events import to_record
from campaigns.models import Character, Event
from missions import simulation_services, techtree_services
from narrative import director, engine

PLAYER_NODES = ["relay-lore", "vacuum-drills", "street-cant", "field-medic", "signal-sifting", "ghost-keys"]
STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("start"), st.sampled_from(PLAYER_NODES)),
        st.tuples(st.just("complete"), st.sampled_from(PLAYER_NODES)),
        st.tuples(st.just("beat"), st.sampled_from(director.BEATS)),
        st.tuples(st.just("sim"), st.integers(1, 6)),
        st.tuples(st.just("simstop"), st.none()),
    ),
    min_size=1,
    max_size=8,
)


@pytest.mark.slow
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=STEPS)
def test_random_research_and_beats_replay_to_the_live_state_hash(
    steps, session, gm, player, characters, django_capture_on_commit_callbacks, settings
):
    Character.objects.filter(campaign=session.campaign).update(xp=5000)
    settings.GTW_SIMULATION = {**settings.GTW_SIMULATION, "budget": 3}
    session.refresh_from_db()
    if (session.state.get("simulation") or {}).get("status") != "running":
        simulation_services.simulation_start(viewer=gm, campaign_id=session.campaign_id, entities=60)
    for kind, arg in steps:
        before = Event.objects.filter(session=session).count()
        with django_capture_on_commit_callbacks(execute=True):
            try:
                if kind == "start":
                    techtree_services.research_start(
                        viewer=player, campaign_id=session.campaign_id, tree="crew-craft", node=arg
                    )
                elif kind == "sim":
                    simulation_services.simulation_step(
                        viewer=gm, campaign_id=session.campaign_id, budget=arg
                    )
                elif kind == "simstop":
                    simulation_services.simulation_stop(viewer=gm, campaign_id=session.campaign_id)
                elif kind == "complete":
                    techtree_services.research_complete(
                        viewer=gm,
                        campaign_id=session.campaign_id,
                        tree="crew-craft",
                        node=arg,
                        character_id=Character.objects.get(campaign=session.campaign, owner=player).pk,
                    )
                else:
                    session.refresh_from_db()
                    engine.beat_set(session=session, beat=arg, actor_id=gm.pk)
            except DomainError:
                assert Event.objects.filter(session=session).count() == before  # refused: nothing appended
        session.refresh_from_db()
        log = [to_record(e) for e in Event.objects.filter(session=session).order_by("seq")]
        replayed = reducer.replay(log)
        assert replayed == session.state
        assert reducer.state_hash(replayed) == session.state_hash
        # One session: its research is the campaign's research.
        campaign_view = techtree_services.research_progress(session.campaign_id)
        assert (session.state.get("research") or {}) == campaign_view
        # The simulation, re-run from the log's snapshots and windows, lands on the live hash.
        sim = session.state["simulation"]
        report = simulation_services.simulation_replay(session.pk)
        assert report["mismatches"] == [] and report["hash"] == sim["hash"]
        assert report["windows"] == sim["windows"] + sum(
            1 for e in log if e.type == "SimulationStepped" and e.seq < _last_start(log)
        )


def _last_start(log) -> int:
    starts = [e.seq for e in log if e.type == "SimulationStarted"]
    return starts[-1] if starts else 0
