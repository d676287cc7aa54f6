"""Replay equals live with research in the log: random sequences of research starts, GM
completions and beats (whose listener completes research and pays drips) leave a session whose
stored state and hash are exactly the fold of its log, and whose research matches the
campaign-wide fold the services decide on."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from campaigns import state as reducer
from campaigns.errors import DomainError
from campaigns.events import to_record
from campaigns.models import Character, Event
from missions import techtree_services
from narrative import director, engine

PLAYER_NODES = ["relay-lore", "vacuum-drills", "street-cant", "field-medic", "signal-sifting", "ghost-keys"]
STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("start"), st.sampled_from(PLAYER_NODES)),
        st.tuples(st.just("complete"), st.sampled_from(PLAYER_NODES)),
        st.tuples(st.just("beat"), st.sampled_from(director.BEATS)),
    ),
    min_size=1,
    max_size=8,
)


@pytest.mark.slow
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=STEPS)
def test_random_research_and_beats_replay_to_the_live_state_hash(
    steps, session, gm, player, characters, django_capture_on_commit_callbacks
):
    Character.objects.filter(campaign=session.campaign).update(xp=5000)
    for kind, arg in steps:
        before = Event.objects.filter(session=session).count()
        with django_capture_on_commit_callbacks(execute=True):
            try:
                if kind == "start":
                    techtree_services.research_start(
                        viewer=player, campaign_id=session.campaign_id, tree="crew-craft", node=arg
                    )
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
