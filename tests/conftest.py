"""Shared fixtures: the three personas (GM, player, outsider) and a campaign they live in."""

from __future__ import annotations

import itertools

import pytest
from django.test import Client

_ids = itertools.count(1)


@pytest.fixture(autouse=True)
def _fresh_limits(request):
    """Per-user rate-limit counters and waiting-task flags live in the shared Redis: a test that
    uses the database starts and ends without any, so one test's actions can't use up another's
    allowance (the product limits stay as they are)."""
    uses_db = {"db", "transactional_db"} & set(request.fixturenames)
    if not uses_db and request.node.get_closest_marker("django_db") is None:
        yield
        return
    from gtw_site.jobs import queued_reset
    from gtw_site.ratelimit import rate_reset

    rate_reset()
    queued_reset()
    yield
    rate_reset()
    queued_reset()


@pytest.fixture
def content(db):
    from campaigns.content import content_load

    content_load()


def _user(name: str):
    from allauth.account.models import EmailAddress
    from django.contrib.auth import get_user_model

    n = next(_ids)
    user = get_user_model().objects.create_user(
        username=f"{name}{n}", email=f"{name}{n}@example.com", password="correct horse battery"
    )
    EmailAddress.objects.create(user=user, email=user.email, primary=True, verified=True)
    return user


@pytest.fixture
def gm(db):
    return _user("gm")


@pytest.fixture
def player(db):
    return _user("player")


@pytest.fixture
def outsider(db):
    return _user("outsider")


@pytest.fixture
def campaign(content, gm, player):
    """A campaign run by `gm`, joined by `player` through a real invite."""
    from campaigns import selectors, services

    campaign = services.campaign_create(user=gm, name="Vesper Run", pack_slug="starter")
    gm_membership = selectors.membership_get(viewer=gm, campaign_id=campaign.pk)
    invite = services.invite_create(membership=gm_membership)
    services.invite_accept(code=invite.code, user=player)
    return campaign


@pytest.fixture
def characters(campaign, gm, player):
    from campaigns import selectors, services

    for user, name, arch in ((player, "Kira Vance", "netrunner"), (gm, "Ossian", "envoy")):
        membership = selectors.membership_get(viewer=user, campaign_id=campaign.pk)
        services.character_create(membership=membership, name=name, archetype=arch)


@pytest.fixture
def session(campaign, characters, gm):
    from campaigns import selectors, services

    return services.session_open(membership=selectors.membership_get(viewer=gm, campaign_id=campaign.pk))


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def gm_client(gm):
    return _client(gm)


@pytest.fixture
def player_client(player):
    return _client(player)


@pytest.fixture
def outsider_client(outsider):
    return _client(outsider)


def pytest_collection_modifyitems(config, items):
    """Tests marked `slow` run first. `-n 2 --dist loadgroup` hands out work in collection order,
    so a minutes-long test collected late (tests/realtime/test_fanout_scale.py) would start when
    the other worker is nearly done and keep the run waiting on it alone; started first, the long
    tests overlap and the short ones fill in around them. Grouped slow tests (pinned to one worker,
    the longest of all) go first of all. A stable sort: the rest keep their order."""
    items.sort(
        key=lambda item: (
            item.get_closest_marker("slow") is None,
            item.get_closest_marker("xdist_group") is None,
        )
    )
