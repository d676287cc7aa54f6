"""Issue 17 part 3: a telemetry row for every call (role, kind, provider, model, tokens, cached
tokens, audio seconds, images, time to first token, latency, cost, error, session, turn), even
when a stream stops early or fails; cost from the offline price table with operator overrides
(never negative) and 0 for local models; session and campaign cost views whose sums equal their
rows; OTel GenAI names in the JSON export."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from django.test import Client
from genai_prices import Usage as PriceUsage
from genai_prices import calc_price

from gtw_site import costs, telemetry
from gtw_site.models import PriceOverride, ProviderCall
from gtw_site.providers import ProviderError, Usage, pricing, selection, services
from narrative import turns
from narrative.llm.base import StreamEnd, TextDelta
from narrative.llm.registry import Recorded
from tests.fakes.wire_server import Reply
from tests.narrative.llm.adapters import ask, openai_like
from tests.narrative.llm.conftest import wire  # noqa: F401 - the fake vendor server fixture


@pytest.fixture(autouse=True)
def _fresh():
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


def table_cost(model, tokens_in, tokens_out):
    price = calc_price(
        PriceUsage(input_tokens=tokens_in, output_tokens=tokens_out), model_ref=model, provider_id="openai"
    )
    return Decimal(price.total_price).quantize(Decimal("0.000001"))


@pytest.mark.django_db
def test_a_streamed_call_leaves_a_full_row_priced_from_the_table(wire):  # noqa: F811
    wire.script(Reply(text=["The ", "door ", "opens."], usage=(12000, 800)))
    inner = openai_like("openai", wire.openai_base_url)
    inner.model = "gpt-4o-mini"
    with telemetry.scope(
        campaign_id=3, session_id=11, turn_seq=42, variant="b", prompt_version="narrator-v2"
    ):
        events = list(Recorded("narrator", inner).stream(ask()))
    assert isinstance(events[-1], StreamEnd)

    row = ProviderCall.objects.get()
    assert (row.role, row.kind, row.provider, row.model) == ("narrator", "chat", "openai", "gpt-4o-mini")
    assert (row.tokens_in, row.tokens_out, row.ok, row.error) == (12000, 800, True, "")
    assert (row.campaign_id, row.session_id, row.turn_seq, row.variant, row.prompt_version) == (
        3,
        11,
        42,
        "b",
        "narrator-v2",
    )
    assert row.ttft_ms is not None and 0 <= row.ttft_ms <= row.latency_ms
    assert row.cost_usd == table_cost("gpt-4o-mini", 12000, 800) > 0


@pytest.mark.django_db
def test_a_stream_that_fails_or_is_dropped_still_leaves_its_row_in_scope(wire):  # noqa: F811
    wire.script(Reply(text=["a ", "b ", "c"]), Reply(status=500, error_message="kaput"))
    with telemetry.scope(session_id=5, turn_seq=9):
        events = Recorded("narrator", openai_like("openai", wire.openai_base_url)).stream(ask())
        next(events)
        events.close()
        with pytest.raises(ProviderError):
            list(Recorded("narrator", openai_like("openai", wire.openai_base_url, timeout=1.0)).stream(ask()))
    rows = list(ProviderCall.objects.order_by("id").values_list("ok", "session_id", "turn_seq"))
    assert rows == [(False, 5, 9), (False, 5, 9)]
    assert "stopped" in ProviderCall.objects.order_by("id").first().error


class Speaker:
    """A speech adapter of another kind: audio seconds, no tokens."""

    name = "cloud-tts"
    model = "voice-1"
    last_usage = Usage()

    def speak(self, text):
        self.last_usage = Usage(audio_seconds=2.5)
        return b"RIFF"


@pytest.mark.django_db
def test_rows_for_other_kinds_carry_audio_seconds_and_images_and_price_them_by_override():
    from gtw_site.providers.registry import CALL
    from gtw_site.providers.registry import Recorded as Generic

    services.price_set(model="voice-1", per_audio_second="0.01")
    services.price_set(model="painter-1", per_image="0.04")

    Generic("tts", Speaker(), calls={"speak": CALL}, kind="tts").speak("hello")

    class Painter:
        name = "cloud-image"
        model = "painter-1"
        last_usage = Usage()

        def paint(self, prompt):
            self.last_usage = Usage(images=3)
            return b"png"

    Generic("image", Painter(), calls={"paint": CALL}, kind="image").paint("a ship")
    tts, image = ProviderCall.objects.order_by("id")
    assert (tts.kind, tts.audio_seconds, tts.cost_usd) == ("tts", 2.5, Decimal("0.025000"))
    assert (image.kind, image.images, image.cost_usd) == ("image", 3, Decimal("0.120000"))


@pytest.mark.django_db
def test_an_override_beats_the_table_and_cached_tokens_use_their_price():
    row = {
        "provider": "openai",
        "model": "gpt-4o-mini",
        "tokens_in": 1_000_000,
        "tokens_out": 1_000_000,
        "tokens_cached": 500_000,
    }
    table = pricing.cost_of(row)
    assert table == Decimal("0.712500")  # 0.5M x 0.15 + 0.5M x 0.075 + 1M x 0.60

    services.price_set(
        provider="openai",
        model="gpt-4o-mini",
        input_per_mtok="1",
        output_per_mtok="2",
        cached_input_per_mtok="0.5",
    )
    assert pricing.cost_of(row) == Decimal("2.750000")
    services.price_clear(provider="openai", model="gpt-4o-mini")
    assert pricing.cost_of(row) == table


@pytest.mark.django_db
def test_local_models_and_unknown_models_cost_nothing():
    for provider, model in (
        ("offline", "procedural-v1"),
        ("local", "minilm"),
        ("local_llm", "gpt-4o"),
        ("openai_compatible", "llama3.1"),
    ):
        assert (
            pricing.cost_of({"provider": provider, "model": model, "tokens_in": 5000, "tokens_out": 5000})
            == 0
        )


@pytest.mark.django_db
@pytest.mark.parametrize(
    "field", ["input_per_mtok", "output_per_mtok", "cached_input_per_mtok", "per_audio_second", "per_image"]
)
def test_a_negative_price_is_refused(staff_client, field):
    response = staff_client.post(
        "/api/providers/prices", json.dumps({"model": "m", field: -1}), content_type="application/json"
    )
    assert response.status_code == 422 and "cannot be negative" in response.json()["detail"]
    assert not PriceOverride.objects.exists()
    with pytest.raises(IntegrityError), transaction.atomic():
        PriceOverride.objects.create(model="m", **{field: Decimal("-1")})


@pytest.mark.django_db
@pytest.mark.parametrize("value", ["abc", "NaN", "Infinity", "1e9"])
def test_a_price_that_is_not_a_sane_number_is_refused(staff_client, value):
    response = staff_client.post(
        "/api/providers/prices",
        json.dumps({"model": "m", "input_per_mtok": value}),
        content_type="application/json",
    )
    assert response.status_code == 422
    assert not PriceOverride.objects.exists()


@pytest.mark.django_db
def test_prices_are_for_staff_only(gm_client, player_client, outsider_client):
    for client in (gm_client, player_client, outsider_client):
        response = client.post(
            "/api/providers/prices",
            json.dumps({"model": "m", "input_per_mtok": 1}),
            content_type="application/json",
        )
        assert response.status_code == 403
    assert not PriceOverride.objects.exists()


@pytest.mark.django_db
def test_telemetry_off_writes_nothing(settings):
    settings.GTW_TELEMETRY = False
    Recorded("narrator", _Offline()).complete(ask())
    assert not ProviderCall.objects.exists()


class _Offline:
    name = "offline"
    model = "procedural-v1"

    def complete(self, request):
        return "ok"

    def stream(self, request):
        yield TextDelta("ok")
        yield StreamEnd()


# ---- a real turn, and the cost views ----------------------------------------------------------


@pytest.fixture
def played(session, player, django_capture_on_commit_callbacks):
    for n, text in enumerate(["I hack the airlock panel", "I look around the bay"]):
        with django_capture_on_commit_callbacks(execute=True):
            turns.submit_action(session_id=session.pk, user=player, text=text, idempotency_key=f"c{n}")
    return session


@pytest.mark.django_db
def test_a_turns_rows_name_its_campaign_session_and_action(played):
    rows = ProviderCall.objects.filter(role="narrator")
    assert rows.count() >= 2
    assert set(rows.values_list("session_id", flat=True)) == {played.pk}
    assert set(rows.values_list("campaign_id", flat=True)) == {played.campaign_id}
    from campaigns.models import Event

    actions = set(Event.objects.filter(session=played, type="Action").values_list("seq", flat=True))
    assert actions <= set(rows.values_list("turn_seq", flat=True))


@pytest.mark.django_db
def test_cost_sums_per_session_equal_the_sum_of_its_rows(played):
    # Priced rows of a remote model besides the offline ones, in two turns.
    for seq, (tin, tout) in ((2, (1000, 100)), (3, (3000, 500))):
        with telemetry.scope(campaign_id=played.campaign_id, session_id=played.pk, turn_seq=seq):
            telemetry.record_call(
                role="summarizer",
                provider="openai",
                model="gpt-4o-mini",
                latency_ms=5,
                usage=Usage(tin, tout),
            )
    data = costs.session_costs(session_id=played.pk)
    rows = ProviderCall.objects.filter(session_id=played.pk)
    total = sum(rows.values_list("cost_usd", flat=True), Decimal(0))
    assert Decimal(data["total"]["cost_usd"]) == total > 0
    assert sum(Decimal(t["cost_usd"]) for t in data["turns"]) == total
    assert sum(Decimal(m["cost_usd"]) for m in data["provider_mix"]) == total
    assert data["total"]["calls"] == rows.count()
    campaign = costs.campaign_costs(campaign_id=played.campaign_id)
    assert Decimal(campaign["total"]["cost_usd"]) == total
    assert [s["session_id"] for s in campaign["sessions"]] == [played.pk]


@pytest.mark.django_db
def test_shadow_rows_are_counted_apart():
    with telemetry.scope(session_id=77, turn_seq=1):
        telemetry.record_call(
            role="narrator", provider="openai", model="gpt-4o-mini", latency_ms=1, usage=Usage(1000, 100)
        )
        with telemetry.scope(shadow=True):
            telemetry.record_call(
                role="narrator", provider="openai", model="gpt-4o", latency_ms=1, usage=Usage(1000, 100)
            )
    data = costs.session_costs(session_id=77)
    assert data["total"]["calls"] == 1 and Decimal(data["total"]["shadow_usd"]) > 0
    assert [m["model"] for m in data["provider_mix"]] == ["gpt-4o-mini"]


@pytest.mark.django_db
def test_cost_pages_for_the_gm_and_refused_to_players_and_outsiders(
    played, gm_client, player_client, outsider_client
):
    page = gm_client.get(f"/sessions/{played.pk}/costs/")
    assert page.status_code == 200 and b'id="cost-total"' in page.content and b"offline" in page.content
    assert gm_client.get(f"/campaigns/{played.campaign_id}/costs/").status_code == 200
    assert gm_client.get(f"/api/providers/sessions/{played.pk}/costs").json()["session"] == played.pk
    for client, status in ((player_client, 403), (outsider_client, 404)):
        assert client.get(f"/sessions/{played.pk}/costs/").status_code == status
        assert client.get(f"/campaigns/{played.campaign_id}/costs/").status_code == status
        assert client.get(f"/api/providers/sessions/{played.pk}/costs").status_code == status
        assert client.get(f"/api/providers/calls?session={played.pk}").status_code == status


@pytest.mark.django_db
def test_the_export_uses_opentelemetry_genai_names(played, gm_client):
    rows = gm_client.get(f"/api/providers/calls?session={played.pk}").json()
    assert rows
    first = rows[0]
    assert {
        "gen_ai.provider.name",
        "gen_ai.request.model",
        "gen_ai.usage.input_tokens",
        "gen_ai.usage.output_tokens",
        "gen_ai.conversation.id",
    } <= set(first)
    assert first["gen_ai.conversation.id"] == played.pk
