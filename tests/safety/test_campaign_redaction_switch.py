"""The per-campaign redaction switch (issue 18 part 5) reaches the remote adapters: a call made
for a campaign (the turn's telemetry scope) redacts the kinds that campaign chose; a call for no
campaign, or for a campaign without a choice, keeps the site's GTW_REDACT."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from campaigns.safety.models import SafetyPolicy
from gtw_site import telemetry
from narrative.llm.base import ChatRequest, Message
from narrative.llm.openai import OpenAIChatProvider
from tests.fakes.wire_server import Reply, WireServer

EMAIL, PHONE = "kira.vance@example.com", "+44 20 7946 0958"


@pytest.fixture
def wire() -> Iterator[WireServer]:
    with WireServer() as server:
        yield server


def _ask(wire, campaign_id=None) -> str:
    provider = OpenAIChatProvider(model="m", api_key="sk-test", base_url=wire.openai_base_url, timeout=2.0)
    wire.script(Reply(text=["ok"]))
    request = ChatRequest(messages=[Message("user", f"Mail {EMAIL} or call {PHONE}.")])
    with telemetry.scope(campaign_id=campaign_id):
        list(provider.stream(request))
    return json.dumps(wire.last_body, ensure_ascii=False)


@pytest.mark.django_db
def test_a_campaign_that_redacts_only_email_sends_the_phone(wire, campaign):
    SafetyPolicy.objects.create(campaign=campaign, redact=["email"])
    sent = _ask(wire, campaign.pk)
    assert EMAIL not in sent and "[email]" in sent
    assert PHONE in sent  # this table chose to keep phone numbers in the story


@pytest.mark.django_db
def test_a_campaign_that_redacts_more_than_the_site(wire, campaign, settings):
    settings.GTW_REDACT = ("email",)
    SafetyPolicy.objects.create(campaign=campaign, redact=["email", "phone"])
    sent = _ask(wire, campaign.pk)
    assert EMAIL not in sent and PHONE not in sent
    assert PHONE in _ask(wire)  # no campaign in scope: the site's kinds only


@pytest.mark.django_db
def test_without_a_campaign_choice_or_scope_the_site_policy_holds(wire, campaign):
    for sent in (_ask(wire, campaign.pk), _ask(wire), _ask(wire, 10**9)):  # 10**9: no such campaign
        assert EMAIL not in sent and PHONE not in sent
