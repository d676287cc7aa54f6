"""Stage fixtures shared by the campaigns tests: a spectator, a second player, an open stage
session with both seated, and `commit`, which runs a call's on_commit callbacks."""

from __future__ import annotations

import pytest

from campaigns.stage import services as stage_services
from tests.campaigns.stage_helpers import _join, _m
from tests.conftest import _user


@pytest.fixture
def spectator(db):
    return _user("spectator")


@pytest.fixture
def player2(db):
    return _user("rook")


@pytest.fixture
def stage(campaign, characters, gm, spectator, player2):
    from campaigns import services

    _join(campaign, gm, spectator, role="spectator")
    membership = _join(campaign, gm, player2)
    services.character_create(membership=membership, name="Rook Adair", archetype="netrunner")
    return stage_services.stage_open(membership=_m(gm, campaign), title="Town hall")


@pytest.fixture
def commit(django_capture_on_commit_callbacks):
    """Run a call's on_commit callbacks (broadcasts, the inline batch turn) as a commit would."""

    def run(fn, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return fn(**kwargs)

    return run
