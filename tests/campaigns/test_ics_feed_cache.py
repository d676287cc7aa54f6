"""The served-feed cache (for `gtw bench calendar`'s p95 target): an unchanged feed is served as
built, and every change a calendar must see — a moved session, a renamed campaign, a new
schedule, an archived or left campaign — reaches the very next fetch."""

from __future__ import annotations

import pytest
from django.test import Client

from campaigns import selectors as campaign_selectors
from campaigns.models import Campaign, Membership
from campaigns.scheduling import services

pytestmark = pytest.mark.django_db


def _gm(campaign, gm):
    return campaign_selectors.membership_get(viewer=gm, campaign_id=campaign.pk)


@pytest.fixture
def schedule(campaign, gm):
    return services.schedule_create(
        membership=_gm(campaign, gm),
        start="2027-01-07T19:30",
        time_zone="Europe/Berlin",
        duration_minutes=180,
        rrule="FREQ=WEEKLY",
    )


def test_every_change_reaches_the_next_fetch(schedule, campaign, gm, player):
    _feed, token = services.feed_create(user=player)
    client = Client()
    url = f"/calendar/{token}.ics"
    first = client.get(url)
    assert first.content == client.get(url).content  # unchanged: the same bytes, the same ETag

    services.occurrence_move(
        membership=_gm(campaign, gm), schedule=schedule, original="2027-01-14T19:30", start="2027-01-15T20:00"
    )
    moved = client.get(url)
    assert moved["ETag"] != first["ETag"]
    assert b"RECURRENCE-ID;TZID=Europe/Berlin:20270114T193000" in moved.content

    Campaign.objects.filter(pk=campaign.pk).update(name="Vesper Run Redux")
    assert b"Vesper Run Redux" in client.get(url).content

    services.schedule_create(
        membership=_gm(campaign, gm),
        title="Side quest",
        start="2027-02-01T18:00",
        time_zone="Asia/Tokyo",
        duration_minutes=60,
    )
    both = client.get(url).content
    assert both.count(b"BEGIN:VEVENT") == 3 and b"TZID:Asia/Tokyo" in both

    Membership.objects.filter(campaign=campaign, user=player).delete()
    assert b"BEGIN:VEVENT" not in client.get(url).content
