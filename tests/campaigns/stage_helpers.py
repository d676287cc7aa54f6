"""Helpers for the stage tests: a membership, a speaker, an action, the event types, a team."""

from __future__ import annotations

import json

from campaigns import selectors, teams
from campaigns.models import Event, Fireteam, Membership
from campaigns.stage import services as stage_services
from narrative import turns


def post(client, url, data=None):
    return client.post(url, json.dumps(data or {}), content_type="application/json")


def _join(campaign, gm, user, role="player"):
    from campaigns import services

    invite = services.invite_create(membership=_m(gm, campaign), role=role)
    return services.invite_accept(code=invite.code, user=user)


def _m(user, campaign) -> Membership:
    return selectors.membership_get(viewer=user, campaign_id=campaign.pk)


def _speaker(stage, gm, user):
    stage_services.hand_raise(session=stage, membership=_m(user, stage.campaign))
    stage_services.hand_approve(
        session=stage, membership=_m(gm, stage.campaign), target=_m(user, stage.campaign)
    )


def _act(stage, user, text, key):
    return turns.submit_action(session_id=stage.pk, user=user, text=text, idempotency_key=key)


def _types(stage) -> list[str]:
    return list(Event.objects.filter(session=stage).order_by("seq").values_list("type", flat=True))


def _team(campaign, name, *members):
    team = Fireteam.objects.filter(campaign=campaign, name=name).first()
    if team is None:
        gm = Membership.objects.get(campaign=campaign, role="gm")
        team = teams.fireteam_create(membership=gm, name=name)
    for user in members:
        teams.fireteam_member_add(
            membership=Membership.objects.get(campaign=campaign, role="gm"),
            fireteam=team,
            target=_m(user, campaign),
        )
    return team
