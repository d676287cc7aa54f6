"""The turn's (and the action screen's) one safety read, `moderation.campaign_safety`: its SQL is
compiled once per process (`_safety_sql`), and what it returns is what the separate reads return,
for every source it merges: the pack's blocks, the GM's policy row, the members' lines."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from campaigns.models import Campaign
from campaigns.safety import services as safety
from narrative import moderation, tablesafety


def test_the_pack_the_gm_and_the_members_all_reach_the_one_read(campaign, gm):
    pack = campaign.pack
    pack.data = {
        **pack.data,
        "safety": {"actions": {"graphic_violence": "soften"}},
        "table_safety": {"lines": ["clowns"], "veils": ['a "quoted" fall']},
    }
    pack.save(update_fields=["data"])
    first = moderation.campaign_safety(campaign.pk)
    assert first.policy == safety.policy_get(Campaign.objects.get(pk=campaign.pk))
    assert first.table == tablesafety.campaign_lines(campaign.pk)
    assert first.table["veils"] == ['a "quoted" fall'] and first.table["lines"] == ["clowns"]

    safety.policy_set(
        campaign=campaign, user=gm, actions={"graphic_violence": "hold"}, redact_kinds=["email"]
    )
    membership = campaign.memberships.get(user=gm)
    tablesafety.table_line_add(membership=membership, kind="line", text="spiders")
    with CaptureQueriesContext(connection) as queries:
        again = moderation.campaign_safety(campaign.pk)
    assert len(queries.captured_queries) == 1  # still one statement, compiled before
    assert again.policy.action("graphic_violence") == "hold" and again.policy.redact == ("email",)
    assert again.policy == safety.policy_get(Campaign.objects.get(pk=campaign.pk))
    assert again.table == {"lines": ["clowns", "spiders"], "veils": ['a "quoted" fall']}


def test_another_campaign_reads_its_own_and_a_missing_one_raises(campaign, db):
    assert moderation.campaign_safety(campaign.pk).campaign_id == campaign.pk
    _sql, params, at, _names = moderation._safety_sql()
    assert params[at] == moderation._NO_CAMPAIGN  # the compiled statement keeps a placeholder
    with pytest.raises(Campaign.DoesNotExist):
        moderation.campaign_safety(campaign.pk + 10_000)
