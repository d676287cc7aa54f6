"""Ending and resuming a session: ending twice appends one SessionEnded and the page shrugs, resuming
an active session adds nothing, and nobody whispers into an ended session."""

from __future__ import annotations

import pytest

from campaigns import selectors, services
from campaigns.errors import Conflict
from campaigns.models import Event


def test_ending_twice_appends_one_event_and_the_page_shrugs(session, gm, gm_client):
    seat = selectors.membership_get(viewer=gm, campaign_id=session.campaign_id)
    services.session_end(session=session, membership=seat)
    with pytest.raises(Conflict):
        services.session_end(session=session, membership=seat)
    assert gm_client.post(f"/sessions/{session.pk}/end").status_code == 302  # a double click
    assert Event.objects.filter(session=session, type="SessionEnded").count() == 1
    services.session_resume(session=session, membership=seat)
    services.session_resume(session=session, membership=seat)  # already active: nothing to add
    assert Event.objects.filter(session=session, type="SessionResumed").count() == 1


def test_no_whisper_into_an_ended_session(session, gm, player):
    seat = selectors.membership_get(viewer=gm, campaign_id=session.campaign_id)
    services.session_end(session=session, membership=seat)
    session.refresh_from_db()
    with pytest.raises(Conflict):
        services.session_whisper(session=session, membership=seat, to_user_id=player.pk, text="psst")
