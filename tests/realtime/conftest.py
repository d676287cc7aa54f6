"""Shared by the realtime tests: a fresh channel layer per test and a spectator of the campaign."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def fresh_channel_layer():
    """channels-redis binds receive locks to the loop that made the layer; one layer per test."""
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


@pytest.fixture
def spectator(campaign):
    from campaigns.models import Membership
    from tests.conftest import _user

    user = _user("spectator")
    Membership.objects.create(campaign=campaign, user=user, role=Membership.Role.SPECTATOR)
    return user
