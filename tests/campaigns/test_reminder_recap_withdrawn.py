"""A reminder's "Previously…" (issue 16) never quotes a narration the X-card withdrew (issue 18)."""

import pytest

from campaigns import events
from campaigns.scheduling.reminders import previously
from narrative import xcard

EARLIER = "The relay hums back to life; Ossian counts his crates twice."
LATER = "The airlock scene the table asked to leave behind."


def _narrate(session, text, key):
    events.append(
        session.pk,
        [events.NewEvent(type="Narration", payload={"action_seq": 0, "text": text})],
        idempotency_key=key,
    )


@pytest.mark.django_db(transaction=True)
def test_previously_skips_a_withdrawn_narration(campaign, session, player):
    _narrate(session, EARLIER, "n1")
    _narrate(session, LATER, "n2")
    assert previously(campaign.pk) == LATER

    xcard.xcard_tap(session_id=session.pk, user=player, idempotency_key="x1")

    assert previously(campaign.pk) == EARLIER  # the one before it is still the table's


@pytest.mark.django_db(transaction=True)
def test_previously_is_empty_when_the_only_narration_was_withdrawn(campaign, session, player):
    _narrate(session, LATER, "n1")
    xcard.xcard_tap(session_id=session.pk, user=player, idempotency_key="x1")
    assert previously(campaign.pk) == ""
