"""What an action and a turn read before the table hears anything (the sixth session's first-delta
regression): the campaign's safety inputs (policy, lines and veils) in one query, the two
idempotency keys in one, and the provider choices' revision at most once per action and per
turn — each read fresh for every action and turn, so a change between two turns holds in the
next one."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from campaigns import selectors
from campaigns.models import Event
from campaigns.safety import services as safety
from gtw_site.models import ProviderChoice
from gtw_site.providers import selection
from narrative import moderation, tablesafety, turns
from tests.fakes.wire_server import Reply, WireServer


@pytest.fixture(autouse=True)
def _fresh_choices():
    selection.forget()
    yield
    selection.forget()


def _member(user, campaign):
    return selectors.membership_get(viewer=user, campaign_id=campaign.pk)


def _revision_reads(queries) -> int:
    """Statements that read the revision row on their own (not inside another query)."""
    return sum(1 for q in queries if q["sql"].lstrip().startswith('SELECT "gtw_site_providerrevision"'))


def _key_lookups(queries) -> int:
    return sum(
        1
        for q in queries
        if q["sql"].lstrip().startswith("SELECT")
        and 'FROM "campaigns_event"' in q["sql"]
        and '"idempotency_key"' in q["sql"].split("WHERE", 1)[-1]
    )


def test_one_query_reads_what_the_separate_reads_did(campaign, gm, player):
    assert moderation.campaign_safety(campaign.pk).policy == safety.policy_get(campaign)  # no GM row yet
    safety.policy_set(
        campaign=campaign, user=gm, actions={"graphic_violence": "hold"}, redact_kinds=["email"]
    )
    tablesafety.table_line_add(
        membership=_member(player, campaign), kind="line", text="spiders", private=True
    )
    tablesafety.table_line_add(membership=_member(gm, campaign), kind="veil", text="torture")
    tablesafety.table_line_add(membership=_member(gm, campaign), kind="line", text="  SPIDERS ")  # a repeat

    found = moderation.campaign_safety(campaign.pk)
    assert found.policy == safety.policy_get(campaign)
    assert found.policy.action("graphic_violence") == "hold" and found.policy.redact == ("email",)
    assert (
        found.table == tablesafety.campaign_lines(campaign.pk) == {"lines": ["spiders"], "veils": ["torture"]}
    )


def test_an_action_looks_its_keys_up_once_and_reads_no_revision_of_its_own(session, player):
    with CaptureQueriesContext(connection) as queries:
        turns.submit_action(session_id=session.pk, user=player, text="I look around", idempotency_key="r1")
    # The key and its held twin before the screen, and the key again under the session's lock.
    assert _key_lookups(queries.captured_queries) == 2
    assert _revision_reads(queries.captured_queries) == 0  # it rides in the safety query
    # A retry is still the same action, and a held retry still gets its notice (tests/safety).
    again = turns.submit_action(
        session_id=session.pk, user=player, text="I look around", idempotency_key="r1"
    )
    assert again.replayed and Event.objects.filter(session=session, type="Action").count() == 1


def test_a_blocked_action_is_still_refused(session, campaign, gm, player):
    from campaigns.errors import Invalid

    tablesafety.table_line_add(membership=_member(player, campaign), kind="line", text="spiders")
    safety.policy_set(campaign=campaign, user=gm, actions={"lines": "block"})
    with pytest.raises(Invalid):
        turns.submit_action(
            session_id=session.pk, user=player, text="I feed the spiders", idempotency_key="b1"
        )
    assert not Event.objects.filter(session=session, type="Action").exists()


@pytest.fixture
def wire(settings):
    with WireServer() as server:
        conf = {k: dict(v) for k, v in settings.GTW_LLM.items()}
        conf["narrator"] = {"provider": "openai", "timeout": 2.0}
        conf["openai"] = {"api_key": "sk-test", "base_url": server.openai_base_url, "model": "m"}
        settings.GTW_LLM = conf
        yield server


def _turn(session, player, key: str, text: str = "I look around"):
    turns.submit_action(session_id=session.pk, user=player, text=text, idempotency_key=key)
    with CaptureQueriesContext(connection) as queries:
        turns.run_pending_turns(session.pk)
    return queries.captured_queries


def test_a_turn_reads_the_revision_at_most_once_however_many_sentences_are_moderated(wire, session, player):
    """A remote narrator's reply is moderated a sentence at a time; each check used to build the
    classifier, and each build read the revision: one query per sentence, on the stream."""
    wire.script(Reply(text=["The hatch opens. ", "Alarms wail. ", "Lights flicker. ", "Dust settles."]))
    queries = _turn(session, player, "m1")
    narration = Event.objects.get(session=session, type="Narration")
    assert narration.payload["text"] == "The hatch opens. Alarms wail. Lights flicker. Dust settles."
    assert _revision_reads(queries) == 0  # the turn's safety query carried it


def test_a_choice_changed_between_turns_applies_to_the_next_turn(wire, session, player):
    wire.script(Reply(text=["The hatch opens."]))
    _turn(session, player, "c1")
    assert Event.objects.get(session=session, type="Narration").payload["provider"] == "openai"
    # Another process picks the offline narrator for the campaign and bumps the revision.
    ProviderChoice.objects.create(role="narrator", provider="offline", campaign_id=session.campaign_id)
    selection.bump()
    _turn(session, player, "c2")
    second = Event.objects.filter(session=session, type="Narration").order_by("-seq").first()
    assert second.payload["provider"] == "offline"


def test_within_a_block_the_revision_is_read_once_and_the_next_block_reads_it_again(db):
    selection.bump()  # the row exists: a bump is then one UPDATE
    with CaptureQueriesContext(connection) as queries, selection.checked_once():
        selection.sync()
        ProviderChoice.objects.create(role="narrator", provider="openai_compatible", options={"model": "x"})
        selection.bump()
        selection.sync()  # the same turn: still the choices it started with
        assert selection.current("narrator", None, refresh=False) is None
    assert _revision_reads(queries.captured_queries) == 1
    with selection.checked_once():
        assert selection.current("narrator", None).provider == "openai_compatible"


def test_a_line_added_between_turns_holds_in_the_next_turn(wire, session, campaign, player):
    wire.script(Reply(text=["A spider skitters by. The lights flicker."]))
    _turn(session, player, "l1")
    first = Event.objects.get(session=session, type="Narration").payload["text"]
    assert "spider" in first
    tablesafety.table_line_add(membership=_member(player, campaign), kind="line", text="spiders")
    wire.script(Reply(text=["A spider skitters by. The lights flicker."]))
    _turn(session, player, "l2")
    second = Event.objects.filter(session=session, type="Narration").order_by("-seq").first()
    assert "spider" not in second.payload["text"] and "The lights flicker." in second.payload["text"]
    # The narrator was told as well: the line is in the second turn's system prompt.
    assert "spiders" in str(wire.requests[-1].body["messages"][0])
