"""The review queue and the content settings (issue 18 parts 1 and 3): the GM sees and decides
every held item; a stage moderator sees only their stage's; players and spectators are refused
(403), outsiders can't tell the campaign exists (404). Bad input is a clear 4xx and changes
nothing."""

from __future__ import annotations

import pytest

from campaigns import selectors
from campaigns import services as campaign_services
from campaigns.safety import services
from campaigns.safety.models import ReviewItem, SafetyPolicy
from campaigns.stage import services as stage_services
from tests.safety.conftest import client_for, post_json

HARASSMENT = "kys loser, nobody likes you"


def held_item(commit, session, player, text=HARASSMENT, key="k1") -> ReviewItem:
    r = post_json(
        commit,
        client_for(player),
        f"/api/sessions/{session.pk}/actions",
        {"text": text, "idempotency_key": key},
    )
    assert r.status_code == 202, r.content
    return ReviewItem.objects.filter(campaign_id=session.campaign_id).latest("pk")


def test_the_queue_page_gm_player_outsider(session, gm, player, outsider, commit):
    item = held_item(commit, session, player)
    url = f"/campaigns/{session.campaign_id}/safety/"
    page = client_for(gm).get(url)
    assert page.status_code == 200
    html = page.content.decode()
    assert HARASSMENT in html and "harassment" in html  # the GM sees why
    assert f"review-{item.pk}" in html and "Content settings" in html
    assert client_for(player).get(url).status_code == 403
    assert client_for(outsider).get(url).status_code == 404
    decide = f"/campaigns/{session.campaign_id}/safety/items/{item.pk}"
    assert client_for(player).post(decide, {"verdict": "approve"}).status_code == 403
    assert client_for(outsider).post(decide, {"verdict": "approve"}).status_code == 404
    item.refresh_from_db()
    assert item.status == "pending"


def test_the_queue_api_gm_player_outsider(session, gm, player, outsider, commit):
    item = held_item(commit, session, player)
    url = f"/api/campaigns/{session.campaign_id}/safety/queue"
    body = client_for(gm).get(url).json()
    assert [i["id"] for i in body] == [item.pk]
    assert body[0]["categories"] == ["harassment"] and body[0]["author"] == player.username
    assert client_for(player).get(url).status_code == 403
    assert client_for(outsider).get(url).status_code == 404
    decide = f"/api/campaigns/{session.campaign_id}/safety/items/{item.pk}"
    assert post_json(commit, client_for(player), decide, {"verdict": "reject"}).status_code == 403
    assert post_json(commit, client_for(outsider), decide, {"verdict": "reject"}).status_code == 404
    r = post_json(commit, client_for(gm), decide, {"verdict": "reject"})
    assert r.status_code == 200 and r.json()["status"] == "rejected"


def test_policy_api_gm_player_outsider_and_defaults(campaign, gm, player, outsider, commit):
    url = f"/api/campaigns/{campaign.pk}/safety"
    body = client_for(gm).get(url).json()
    assert body["actions"]["violence"] == "allow" and body["actions"]["minors"] == "block"
    assert body["redact"] == list(__import__("django.conf").conf.settings.GTW_REDACT)
    assert client_for(player).get(url).status_code == 403
    assert client_for(outsider).get(url).status_code == 404
    assert (
        post_json(commit, client_for(player), url, {"actions": {"violence": "block"}}, "put").status_code
        == 403
    )
    assert (
        post_json(commit, client_for(outsider), url, {"actions": {"violence": "block"}}, "put").status_code
        == 404
    )
    r = post_json(
        commit, client_for(gm), url, {"actions": {"violence": "soften"}, "redact": ["email"]}, "put"
    )
    assert r.status_code == 200, r.content
    assert r.json()["actions"]["violence"] == "soften" and r.json()["redact"] == ["email"]
    assert services.policy_get(campaign).redact == ("email",)
    assert services.campaign_redact_kinds(campaign.pk) == ("email",)
    r = post_json(commit, client_for(gm), url, {"redact": "default"}, "put")
    assert r.json()["redact"] == list(__import__("django.conf").conf.settings.GTW_REDACT)


@pytest.mark.parametrize(
    "data",
    [
        {"actions": {"gore": "hold"}},
        {"actions": {"violence": "shrug"}},
        {"actions": {"violence": 3}},
        {"redact": ["fingerprints"]},
        {"redact": 7},
        {"actions": "violence=block"},
    ],
)
def test_bad_policy_input_is_a_clear_4xx_and_changes_nothing(campaign, gm, commit, data):
    r = post_json(commit, client_for(gm), f"/api/campaigns/{campaign.pk}/safety", data, "put")
    assert 400 <= r.status_code < 500
    assert r.json()["detail"]
    assert not SafetyPolicy.objects.filter(campaign=campaign).exists()


def test_bad_decisions_are_a_clear_4xx(session, gm, player, commit):
    item = held_item(commit, session, player)
    url = f"/api/campaigns/{session.campaign_id}/safety/items/{item.pk}"
    for data in (
        {"verdict": "maybe"},
        {"verdict": "edit"},
        {"verdict": "edit", "text": "   "},
        {"verdict": "edit", "text": "x" * 5000},
        {"verdict": "edit", "text": "nul \x00 byte"},
    ):
        r = post_json(commit, client_for(gm), url, data)
        assert r.status_code == 422, (data, r.content)
    missing = f"/api/campaigns/{session.campaign_id}/safety/items/999999"
    assert post_json(commit, client_for(gm), missing, {"verdict": "approve"}).status_code == 404
    assert client_for(gm).post(url, "not json", content_type="application/json").status_code == 400
    item.refresh_from_db()
    assert item.status == "pending"


def test_a_huge_action_is_refused_before_any_classifier(session, player, commit, settings):
    r = post_json(
        commit,
        client_for(player),
        f"/api/sessions/{session.pk}/actions",
        {"text": "kys " * (settings.GTW_ACTION_MAX_CHARS // 4 + 10), "idempotency_key": "huge"},
    )
    assert r.status_code == 422
    assert not ReviewItem.objects.exists()


def test_the_gm_policy_form_saves_and_refuses_unknown_values(campaign, gm, player):
    url = f"/campaigns/{campaign.pk}/safety/policy"
    r = client_for(gm).post(url, {"cat-sexual": "block", "redact-form": "1", "redact": ["email", "phone"]})
    assert r.status_code == 302
    policy = services.policy_get(campaign)
    assert policy.action("sexual") == "block" and policy.redact == ("email", "phone")
    client_for(gm).post(url, {"cat-sexual": "explode"}, follow=True)
    assert services.policy_get(campaign).action("sexual") == "block"
    assert client_for(player).post(url, {"cat-sexual": "allow"}).status_code == 403
    assert services.policy_get(campaign).action("sexual") == "block"


def test_pack_safety_block_sets_the_campaigns_defaults(campaign, gm):
    pack = campaign.pack
    pack.data = {**pack.data, "safety": {"categories": {"violence": "soften"}, "redact": ["email"]}}
    pack.save()
    campaign.refresh_from_db()
    policy = services.policy_get(campaign)
    assert policy.action("violence") == "soften" and policy.redact == ("email",)
    services.policy_set(campaign=campaign, user=gm, actions={"violence": "allow"})
    assert services.policy_get(campaign).action("violence") == "allow"  # the GM's word is last


def test_a_stage_moderator_sees_only_their_stages_queue(campaign, gm, player, commit):
    from tests.conftest import _user

    mod = _user("mod")
    invite = campaign_services.invite_create(
        membership=selectors.membership_get(viewer=gm, campaign_id=campaign.pk)
    )
    campaign_services.invite_accept(code=invite.code, user=mod)
    gm_m = selectors.membership_get(viewer=gm, campaign_id=campaign.pk)
    stage = stage_services.stage_open(membership=gm_m, title="Town hall")
    other = stage_services.stage_open(membership=gm_m, title="Other hall")
    mod_m = selectors.membership_get(viewer=mod, campaign_id=campaign.pk)
    stage_services.moderator_set(session=stage, membership=gm_m, target=mod_m)
    decision = services.moderate(campaign=campaign, text=HARASSMENT, source="batch")
    mine, _ = services.hold(
        campaign=campaign, session=stage, source="batch", text=HARASSMENT, decision=decision, key="a"
    )
    theirs, _ = services.hold(
        campaign=campaign, session=other, source="batch", text="kys", decision=decision, key="b"
    )

    body = client_for(mod).get(f"/api/campaigns/{campaign.pk}/safety/queue").json()
    assert [i["id"] for i in body] == [mine.pk]
    html = client_for(mod).get(f"/campaigns/{campaign.pk}/safety/").content.decode()
    assert f"review-{mine.pk}" in html and f"review-{theirs.pk}" not in html
    assert "Content settings" not in html  # moderators review; the GM sets the policy
    r = post_json(
        commit,
        client_for(mod),
        f"/api/campaigns/{campaign.pk}/safety/items/{theirs.pk}",
        {"verdict": "reject"},
    )
    assert r.status_code == 404
    r = post_json(
        commit, client_for(mod), f"/api/campaigns/{campaign.pk}/safety/items/{mine.pk}", {"verdict": "reject"}
    )
    assert r.status_code == 200
    assert client_for(mod).get(f"/api/campaigns/{campaign.pk}/safety").status_code == 403
    assert client_for(player).get(f"/campaigns/{campaign.pk}/safety/").status_code == 403


def test_notes_are_checked_where_they_are_saved(campaign, gm, player, commit):
    url = f"/api/campaigns/{campaign.pk}/memories"
    services.policy_set(campaign=campaign, user=gm, actions={"harassment": "block"})
    r = post_json(commit, client_for(player), url, {"text": "Note: kys, Dave", "visibility": "campaign"})
    assert r.status_code == 422 and "content settings" in r.json()["detail"]
    services.policy_set(campaign=campaign, user=gm, actions={"harassment": "hold"})
    r = post_json(commit, client_for(player), url, {"text": "Note: kys, Dave", "visibility": "campaign"})
    assert r.status_code == 201
    item = ReviewItem.objects.get(campaign=campaign, source="note")
    assert item.status == "pending" and item.author == player
    r = post_json(
        commit, client_for(player), url, {"text": "The relay code is 7-7-3.", "visibility": "campaign"}
    )
    assert r.status_code == 201
    assert ReviewItem.objects.filter(campaign=campaign).count() == 1


def test_check_text_for_image_prompts(campaign, gm):
    """Other features (image prompts, shared docs) call services.check_text."""
    with pytest.raises(services.Invalid):
        services.check_text(campaign=campaign, text="a naked 12 year old", source="image_prompt")
    decision = services.check_text(
        campaign=campaign, text="a nebula over a derelict freighter", source="image_prompt"
    )
    assert decision.allowed


@pytest.mark.parametrize(
    "defaults, fail",
    [({"gore": "hold"}, "local"), ({"violence": "maybe"}, "local"), ({}, "shrug")],
)
def test_bad_site_settings_fail_at_start_with_the_reason(settings, defaults, fail):
    from django.apps import apps
    from django.core.exceptions import ImproperlyConfigured

    settings.GTW_SAFETY_DEFAULTS = defaults
    settings.GTW_MODERATION = {
        **settings.GTW_MODERATION,
        "moderation": {**settings.GTW_MODERATION["moderation"], "fail": fail},
    }
    with pytest.raises(ImproperlyConfigured, match=r"GTW_SAFETY_DEFAULTS|GTW_MODERATION_FAIL"):
        apps.get_app_config("safety").ready()


def test_a_failed_remote_classifier_falls_back_or_holds(campaign, settings):
    conf = {k: dict(v) for k, v in settings.GTW_MODERATION.items()}
    conf["moderation"]["provider"] = "openai_compatible"
    conf["openai_compatible"]["base_url"] = "http://127.0.0.1:9/v1"  # nothing listens there
    conf["moderation"]["timeout"] = 1.0
    settings.GTW_MODERATION = conf
    from campaigns.safety import registry

    registry.MODERATION.reset()
    decision = services.moderate(campaign=campaign, text="kys loser", source="action")
    assert decision.action == "hold" and decision.verdict.provider == "local"  # the lexicon stood in
    conf["moderation"]["fail"] = "hold"
    decision = services.moderate(campaign=campaign, text="I check the manifest.", source="action")
    assert decision.action == "hold" and decision.categories == ("unchecked",)
    registry.MODERATION.reset()
