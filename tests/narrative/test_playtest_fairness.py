"""Scripted playtests (issue 13, fair stakes): a seeded bot party of three plays each starter
mission to its end through the HTTP API and the real turn pipeline with the offline narrator —
the short version of `gtw bench playtest` (one seed per mission). No mission may be lost before
every player had had FAIR_ACTIONS actions of their own.

One test per mission, so that `-n 2` plays them on both workers at once."""

from __future__ import annotations

import pytest

from gtw_site.bench import playtest

pytestmark = pytest.mark.slow
STARTER_MISSIONS = 3


@pytest.fixture
def bots(content, settings, django_capture_on_commit_callbacks):
    """The bench's HTTP calls, with each request's commit callbacks run (the turn runs inline,
    as a real commit would start it); bots may act faster than the per-player limit allows."""
    settings.GTW_RATE_LIMITS = {**settings.GTW_RATE_LIMITS, "action": (100_000, 30, "actions")}

    def call(client, method, path, payload):
        with django_capture_on_commit_callbacks(execute=True):
            return playtest.http_call(client, method, path, payload)

    return call


@pytest.mark.parametrize("index", range(STARTER_MISSIONS))
def test_every_starter_mission_plays_to_an_end_and_is_never_lost_before_a_fair_chance(bots, index):
    slugs = playtest.starter_slugs()
    assert len(slugs) == STARTER_MISSIONS
    run = playtest.playtest(slug=slugs[index], seed=0, call=bots, client_for=playtest.logged_in)
    summary = playtest.summarise([run])
    print(summary)
    assert run.outcome in ("complete", "failed"), f"{run.mission} still running after {run.turns} turns"
    assert sum(run.own.values()) == run.turns
    if run.outcome == "failed":
        assert run.min_own >= playtest.FAIR_ACTIONS, (run.mission, run.own, run.ended_by)
    assert playtest.fair(summary), (run.mission, summary)
