"""Issue 17 part 4: A/B experiments assign campaigns (or sessions) to variants by a hash of the
experiment and the id, the same in every process; rows name the variant. Shadow providers get
the same request in the background: their output is stored and compared, never shown to
players nor written to memory or events (a canary string the shadow returns is absent from
every page, socket message, memory and event)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from django.test import Client

from campaigns.models import Event
from gtw_site.models import ProviderCall, ShadowOutput
from gtw_site.providers import Usage, selection, services
from gtw_site.providers.selection import ExperimentPlan, Selection
from gtw_site.telemetry import scope
from memory.models import Memory
from narrative import turns
from narrative.llm import registry as chat
from narrative.llm.base import ChatRequest, StreamEnd, TextDelta, ToolCall, ToolCallEvent
from realtime import broadcast

CANARY = "CANARY-SHADOW-7731"


class CanaryNarrator:
    """A shadow narrator: prose with a canary in it, one valid and one invalid tool call."""

    name = "canary"

    def __init__(self, *, model: str = "canary-1", **kwargs) -> None:
        self.model = model
        self.last_usage = Usage()

    def stream(self, request: ChatRequest) -> Iterator:
        yield TextDelta(f"The lights flicker. {CANARY} ")
        yield ToolCallEvent(
            ToolCall(id="s1", name="rng_roll", arguments={"expression": "2d6", "reason": "test"})
        )
        yield ToolCallEvent(ToolCall(id="s2", name="no_such_tool", arguments={}))
        yield StreamEnd(stop_reason="tool_calls", usage=Usage(40, 12))

    def complete(self, request: ChatRequest) -> str:
        return f"Summary {CANARY}"


@pytest.fixture(autouse=True)
def _setup(settings, monkeypatch):
    monkeypatch.setitem(chat.PROVIDERS, "canary", f"{__name__}:CanaryNarrator")
    settings.GTW_SHADOW_INLINE = True
    selection.forget()
    yield
    selection.forget()


@pytest.fixture
def staff_client(db):
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_user(username="ops", password="x", is_staff=True)
    client = Client()
    client.force_login(user)
    return client


def post(client, url, data):
    return client.post(url, json.dumps(data), content_type="application/json")


def test_assignment_is_deterministic_and_follows_the_weights():
    a = Selection(role="narrator", provider="offline", scope="experiment", variant="a")
    b = Selection(role="narrator", provider="canary", scope="experiment", variant="b")
    plan = ExperimentPlan(name="tone", role="narrator", unit="campaign", variants=(a, b), weights=(3, 1))
    picks = [plan.assign(i).variant for i in range(2000)]
    assert picks == [plan.assign(i).variant for i in range(2000)]  # same unit, same variant
    assert 0.68 < picks.count("a") / len(picks) < 0.82
    other = ExperimentPlan(name="pace", role="narrator", unit="campaign", variants=(a, b), weights=(3, 1))
    assert [other.assign(i).variant for i in range(200)] != picks[:200]  # another experiment reshuffles


@pytest.mark.django_db
def test_a_campaign_in_an_experiment_gets_its_variant_and_rows_name_it(staff_client):
    response = post(
        staff_client,
        "/api/providers/experiments",
        {
            "name": "canary-vs-offline",
            "variants": [{"name": "live", "provider": "offline"}, {"name": "bird", "provider": "canary"}],
        },
    )
    assert response.status_code == 200, response.content
    selection.sync()
    plan = selection._state.experiments["narrator"]
    campaign_ids = {plan.assign(cid).variant: cid for cid in range(1, 50)}
    for variant, provider in (("live", "offline"), ("bird", "canary")):
        with scope(campaign_id=campaign_ids[variant]):
            narrator = chat.get("narrator")
            assert narrator.name == provider
            list(
                narrator.stream(
                    ChatRequest(messages=[], context={"action": {"text": "I wait", "actor": "x"}})
                )
            )
    assert set(ProviderCall.objects.values_list("variant", "provider")) == {
        ("live", "offline"),
        ("bird", "canary"),
    }
    # A GM's own choice for their campaign beats the experiment.
    services.choice_set(role="narrator", provider="offline", campaign_id=campaign_ids["bird"])
    assert chat.CHAT.build("narrator", campaign_id=campaign_ids["bird"]).name == "offline"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("variants", "reason"),
    [
        ([{"name": "a", "provider": "offline"}], "at least two variants"),
        (
            [{"name": "a", "provider": "offline"}, {"name": "b", "provider": "nope"}],
            "unknown provider 'nope'",
        ),
        (
            [{"name": "a", "provider": "offline"}, {"name": "b", "provider": "openai_compatible"}],
            "cannot start",
        ),
        ([{"name": "a", "provider": "offline"}, {"name": "a", "provider": "canary"}], "distinct name"),
        ([{"name": "a", "provider": "offline", "weight": -2}, {"name": "b", "provider": "canary"}], "weight"),
    ],
)
def test_a_bad_experiment_is_a_422(staff_client, variants, reason):
    response = post(staff_client, "/api/providers/experiments", {"name": "x", "variants": variants})
    assert response.status_code == 422 and reason in response.json()["detail"]


@pytest.mark.django_db
def test_experiments_are_staff_only_and_shadows_are_the_gms_for_their_campaign(
    campaign, gm_client, player_client, outsider_client
):
    body = {
        "name": "x",
        "variants": [{"name": "a", "provider": "offline"}, {"name": "b", "provider": "canary"}],
    }
    assert post(gm_client, "/api/providers/experiments", body).status_code == 403
    shadow = {"name": "bird", "provider": "canary", "campaign": campaign.pk}
    assert post(gm_client, "/api/providers/shadows", shadow).status_code == 200
    assert post(player_client, "/api/providers/shadows", shadow).status_code == 403
    assert post(outsider_client, "/api/providers/shadows", shadow).status_code == 404
    assert gm_client.get(f"/api/providers/compare?campaign={campaign.pk}").status_code == 200
    assert player_client.get(f"/api/providers/compare?campaign={campaign.pk}").status_code == 403
    assert outsider_client.get(f"/providers/compare/?campaign={campaign.pk}").status_code == 404


@pytest.mark.django_db
def test_a_shadows_output_is_stored_and_compared_but_reaches_no_player(
    session, gm, player, gm_client, player_client, monkeypatch, django_capture_on_commit_callbacks
):
    services.shadow_set(role="narrator", name="bird", provider="canary", campaign_id=session.campaign_id)
    sent: list[dict] = []
    monkeypatch.setattr(broadcast, "_send", lambda group, message: sent.append(message))
    with django_capture_on_commit_callbacks(execute=True):
        turns.submit_action(
            session_id=session.pk, user=player, text="I hack the airlock panel", idempotency_key="s1"
        )
    with django_capture_on_commit_callbacks(execute=True):
        turns.submit_action(
            session_id=session.pk, user=player, text="I look around the bay", idempotency_key="s2"
        )

    # Stored and compared…
    outputs = ShadowOutput.objects.filter(session_id=session.pk)
    assert outputs.exists() and all(CANARY in o.text for o in outputs)
    assert {(o.tool_calls, o.valid_tool_calls) for o in outputs} == {(2, 1)}
    shadow_rows = ProviderCall.objects.filter(shadow=True)
    assert shadow_rows.exists() and set(shadow_rows.values_list("provider", flat=True)) == {"canary"}
    compare = gm_client.get(f"/api/providers/compare?campaign={session.campaign_id}").json()
    bird = next(s for s in compare["shadows"] if s["shadow_name"] == "bird")
    assert bird["runs"] == outputs.count() and bird["valid_tool_calls"] == outputs.count()
    assert bird["invalid_tool_calls"] == outputs.count() and bird["mean_words"] > 0

    # …never shown: no event, memory, socket message or page carries it, and the live turn ran.
    assert Event.objects.filter(session=session, type="Narration").count() == 2
    for payload in Event.objects.filter(session=session).values_list("payload", flat=True):
        assert CANARY not in json.dumps(payload)
    assert not Memory.objects.filter(text__contains=CANARY).exists()
    assert sent and CANARY not in json.dumps(sent)
    pages = [
        player_client.get(f"/sessions/{session.pk}/play/"),
        gm_client.get(f"/sessions/{session.pk}/play/"),
        gm_client.get(f"/sessions/{session.pk}/costs/"),
        gm_client.get(f"/providers/compare/?campaign={session.campaign_id}"),
        gm_client.get(f"/api/providers/calls?session={session.pk}"),
    ]
    for page in pages:
        assert page.status_code == 200 and CANARY not in page.content.decode()


@pytest.mark.django_db
def test_a_shadow_that_fails_is_recorded_and_the_live_call_is_untouched(settings):
    settings.GTW_LLM = {
        **settings.GTW_LLM,
        "openai_compatible": {**settings.GTW_LLM["openai_compatible"], "base_url": "http://127.0.0.1:9/v1"},
    }
    services.shadow_set(role="narrator", name="dead", provider="openai_compatible", options={"model": "m"})
    narrator = chat.get("narrator")
    events = list(
        narrator.stream(ChatRequest(messages=[], context={"action": {"text": "I wait", "actor": "x"}}))
    )
    assert isinstance(events[-1], StreamEnd) and narrator.name == "offline"
    output = ShadowOutput.objects.get()
    assert output.ok is False and output.error
    assert ProviderCall.objects.filter(shadow=False, provider="offline", ok=True).count() == 1
