"""The X-card on a stage (issue 18): speakers, fireteams and the GM may tap it, the audience and
spectators may not; a withdrawn beat summary shows as withdrawn on the stage page and in the
stage's cached live entries, never its text."""

from __future__ import annotations

import pytest
from django.test import Client

from campaigns.errors import Forbidden
from campaigns.models import Event
from campaigns.stage import windows as stage_windows
from narrative import xcard
from tests.campaigns.conftest import commit, player2, spectator, stage  # noqa: F401 - fixtures
from tests.campaigns.stage_helpers import _act, _m, _speaker


def _summarised(stage, gm, player, commit):  # noqa: F811 - the fixture, passed in
    stage_windows.window_open(session=stage, membership=_m(gm, stage.campaign))
    _act(stage, player, "I cover the hatch", "s1")
    commit(stage_windows.window_close, session=stage, membership=_m(gm, stage.campaign))
    return Event.objects.get(session=stage, type="Narration")


def test_who_may_tap_on_a_stage(stage, gm, player, player2, spectator):  # noqa: F811
    with pytest.raises(Forbidden):  # in the audience, hand down
        xcard.xcard_tap(session_id=stage.pk, user=player2, idempotency_key="a")
    with pytest.raises(Forbidden):
        xcard.xcard_tap(session_id=stage.pk, user=spectator, idempotency_key="b")
    _speaker(stage, gm, player)
    assert xcard.may_tap(stage, _m(player, stage.campaign))
    assert not xcard.may_tap(stage, _m(player2, stage.campaign))
    assert (
        xcard.xcard_tap(session_id=stage.pk, user=player, idempotency_key="c").events[0].type == "XCardTapped"
    )
    assert xcard.xcard_tap(session_id=stage.pk, user=gm, idempotency_key="d").events


def test_a_withdrawn_beat_summary_never_shows_again(stage, gm, player, player2, commit):  # noqa: F811
    from realtime import broadcast
    from realtime import stage as stage_render

    _speaker(stage, gm, player)
    summary = _summarised(stage, gm, player, commit)
    text = summary.payload["text"]
    stage.refresh_from_db()
    # A live entry rendered (and cached) before the tap…
    before = broadcast.event_json(summary)
    assert text[:30] in stage_render.entry_oob_html(stage.pk, before)
    tap = xcard.xcard_tap(session_id=stage.pk, user=player, idempotency_key="t")
    assert tap.events[0].payload["narration_seq"] == summary.seq
    stage.refresh_from_db()
    # …is not what a catch-up gets after it.
    message = broadcast.event_messages([summary], stage.state)[0]
    assert message["event"]["payload"]["withdrawn"] is True
    assert text[:30] not in stage_render.entry_oob_html(stage.pk, message["event"])
    for user in (gm, player, player2):
        client = Client()
        client.force_login(user)
        html = client.get(_stage_url(stage)).content.decode()
        assert text[:30] not in html
        assert "This summary was withdrawn with the X-card" in html


def _stage_url(session) -> str:
    from django.urls import reverse

    return reverse("stage", args=[session.pk])
