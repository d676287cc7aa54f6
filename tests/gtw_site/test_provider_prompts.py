"""Issue 17 part 6, "the prompts sent (GM only)": every narrator and summarizer call keeps the
prompt it sent — messages and the offered tools' names, redacted as outbound text is, cut to a
bound with a marker, deleted after the retention — linked to its ProviderCall, session and turn,
shown on the replay timeline to the GM and staff only, never on a player's page or socket. The
rows and prompts are written after the turn's stream, never before its first delta.

Also part 1's reach: the summarizer job uses the campaign's runtime choice, and a pool job
(the turn's query embedding) builds from the choices its submitter checked, in its scope,
without a revision read of its own."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from campaigns.models import Event
from gtw_site import prompt_store, telemetry
from gtw_site.models import ProviderCall, ProviderPrompt
from gtw_site.providers import Usage, selection, services
from narrative import summaries, turns
from narrative.llm import registry as chat
from narrative.llm.base import ChatRequest, Message, StreamEnd, TextDelta, ToolCall
from realtime import broadcast

SYSTEM_LINE = "The game's code owns the mechanics"  # from narrative/prompts/narrator_system.txt
SUMMARY = "SUMMARY-FROM-THE-CAMPAIGNS-CHOICE"


class SpyNarrator:
    """Streams two deltas; notes which queries had run when the first one was yielded."""

    name = "spy"
    seen: list[list[str]] = []  # per call: the SQL run before its first delta
    capture: CaptureQueriesContext | None = None

    def __init__(self, *, model: str = "spy-1", **kwargs) -> None:
        self.model = model
        self.last_usage = Usage(10, 3)

    def stream(self, request: ChatRequest) -> Iterator:
        if SpyNarrator.capture is not None:
            SpyNarrator.seen.append([q["sql"] for q in SpyNarrator.capture.captured_queries])
        yield TextDelta("The hatch sighs open. ")
        yield TextDelta("Cold air spills out.")
        yield StreamEnd(usage=Usage(120, 8))

    def complete(self, request: ChatRequest) -> str:
        return SUMMARY


@pytest.fixture(autouse=True)
def _setup(settings, monkeypatch):
    monkeypatch.setitem(chat.PROVIDERS, "spy", f"{__name__}:SpyNarrator")
    settings.GTW_PROMPT_RETENTION_DAYS = 30
    settings.GTW_PROMPT_MAX_CHARS = 24000
    selection.forget()
    SpyNarrator.seen, SpyNarrator.capture = [], None
    yield
    selection.forget()


def act(session, player, text, key, capture) -> int:
    """The action's seq, its turn run."""
    with capture(execute=True):
        result = turns.submit_action(session_id=session.pk, user=player, text=text, idempotency_key=key)
    return result.events[0].seq


@pytest.mark.django_db
def test_each_narrator_call_keeps_its_prompt_linked_to_the_call_and_turn(
    session, player, django_capture_on_commit_callbacks
):
    seq = act(session, player, "I hack the airlock panel", "p1", django_capture_on_commit_callbacks)
    prompts = list(
        ProviderPrompt.objects.filter(session_id=session.pk, role="narrator").select_related("call")
    )
    assert prompts, "a turn's narrator calls keep their prompts"
    for prompt in prompts:
        assert prompt.turn_seq == seq and prompt.call.turn_seq == seq
        assert prompt.call.session_id == session.pk and prompt.call.role == "narrator"
        text = json.dumps(prompt.messages)
        assert SYSTEM_LINE in text and "I hack the airlock panel" in text
        assert prompt.messages[0]["role"] == "system" and not prompt.truncated
    # The first round offers the tools, by name only (no schema); a later round carries the
    # model's tool call and its result.
    assert "rules_skill_check" in prompts[0].tools and all(isinstance(t, str) for t in prompts[0].tools)
    assert "parameters" not in json.dumps(prompts[0].tools)
    if len(prompts) > 1:
        roles = [m["role"] for m in prompts[1].messages]
        assert "tool" in roles and any(m.get("tool_calls") for m in prompts[1].messages)


@pytest.mark.django_db
def test_a_stored_prompt_is_redacted_like_outbound_text(session):
    """(A player's action with such details is held for review by the table's safety policy,
    so the call is made here as a turn's code makes it: a chat call in the session's scope.)"""
    request = ChatRequest(
        messages=[
            Message(role="system", content="Narrate."),
            Message(role="user", content="I radio ann.smith@example.com from the console at 203.0.113.77"),
        ]
    )
    with telemetry.scope(campaign_id=session.campaign_id, session_id=session.pk, turn_seq=5):
        chat.get("summarizer").complete(request)
    prompt = ProviderPrompt.objects.get(session_id=session.pk)
    text = json.dumps(prompt.messages)
    assert prompt.turn_seq == 5 and prompt.call.role == "summarizer" and "I radio" in text
    assert "ann.smith@example.com" not in text and "203.0.113.77" not in text
    assert "[email]" in text and "[IP address]" in text


def test_a_long_prompt_is_cut_with_a_marker_and_bounded():
    captured = prompt_store.Captured(
        messages=(
            Message(role="system", content="S" * 30000),
            Message(role="user", content="U" * 6000),
            Message(
                role="assistant", content="", tool_calls=(ToolCall("c1", "rng_roll", {"expression": "1d6"}),)
            ),
        ),
        tools=("rng_roll",),
    )
    stored = prompt_store.render(captured, kinds=(), limit=5000)
    assert stored["truncated"] and stored["chars"] == 36000
    kept = sum(len(m["content"]) for m in stored["messages"])
    assert kept < 5000 + 3 * (prompt_store.MIN_SHARE + 40)
    assert "[… " in stored["messages"][0]["content"] and "characters cut]" in stored["messages"][0]["content"]
    assert stored["messages"][1]["content"].startswith("U") and "cut]" in stored["messages"][1]["content"]
    assert stored["messages"][2]["tool_calls"] == [{"name": "rng_roll", "arguments": {"expression": "1d6"}}]
    many = prompt_store.Captured(
        messages=tuple(Message(role="user", content=str(i)) for i in range(200)), tools=()
    )
    stored = prompt_store.render(many, kinds=(), limit=5000)
    assert len(stored["messages"]) == prompt_store.MAX_MESSAGES and stored["truncated"]
    assert stored["messages"][2]["role"] == "note" and stored["messages"][-1]["content"] == "199"


@pytest.mark.django_db
def test_prompts_past_the_retention_are_deleted_and_zero_days_keeps_none(
    session, player, settings, django_capture_on_commit_callbacks
):
    act(session, player, "I hack the airlock panel", "p1", django_capture_on_commit_callbacks)
    assert ProviderPrompt.objects.exists()
    ProviderPrompt.objects.update(created_at=timezone.now() - timedelta(days=31))
    young = ProviderPrompt.objects.order_by("pk").first()
    ProviderPrompt.objects.filter(pk=young.pk).update(created_at=timezone.now() - timedelta(days=29))
    assert prompt_store.purge(force=True) >= 1
    assert list(ProviderPrompt.objects.values_list("pk", flat=True)) == [young.pk]

    settings.GTW_PROMPT_RETENTION_DAYS = 0
    calls = ProviderCall.objects.count()
    act(session, player, "I look around the bay", "p2", django_capture_on_commit_callbacks)
    assert ProviderCall.objects.count() > calls  # the rows still are written…
    assert ProviderPrompt.objects.count() == 1  # …their prompts are not


@pytest.mark.django_db
def test_the_gm_reads_a_turns_prompts_on_the_replay_timeline_and_nobody_else_does(
    session,
    player,
    gm_client,
    player_client,
    outsider_client,
    monkeypatch,
    django_capture_on_commit_callbacks,
):
    sent: list[dict] = []
    monkeypatch.setattr(broadcast, "_send", lambda group, message: sent.append(message))
    seq = act(session, player, "I hack the airlock panel", "p1", django_capture_on_commit_callbacks)
    url = f"/sessions/{session.pk}/replay/"

    timeline = gm_client.get(url).content.decode()
    assert f"?prompts={seq}" in timeline and SYSTEM_LINE not in timeline  # one turn at a time
    shown = gm_client.get(f"{url}?prompts={seq}")
    assert shown.status_code == 200
    html = shown.content.decode()
    assert f'id="prompts-{seq}"' in html and "rules_skill_check" in html
    assert "The game&#x27;s code owns the mechanics" in html  # escaped, as all text is
    assert gm_client.get(f"{url}?prompts=abc").status_code == 422

    # The player and the outsider: no replay page at all, and the prompt on no page or socket.
    for client in (player_client, outsider_client):
        assert client.get(url).status_code == 404
        assert client.get(f"{url}?prompts={seq}").status_code == 404
    play = player_client.get(f"/sessions/{session.pk}/play/")
    assert play.status_code == 200 and "code owns the mechanics" not in play.content.decode()
    assert sent and "code owns the mechanics" not in json.dumps(sent)
    for payload in Event.objects.filter(session=session).values_list("payload", flat=True):
        assert "code owns the mechanics" not in json.dumps(payload)


@pytest.mark.django_db
def test_no_telemetry_query_runs_before_the_first_delta(session, player, django_capture_on_commit_callbacks):
    """Rows and prompts are held while the turn runs and written after its stream: no
    ProviderCall, ProviderPrompt or price query stands between the action and the first delta."""
    services.choice_set(role="narrator", provider="spy", campaign_id=session.campaign_id)
    with CaptureQueriesContext(connection) as captured:
        SpyNarrator.capture = captured
        act(session, player, "I look around the bay", "p1", django_capture_on_commit_callbacks)
        SpyNarrator.capture = None
    assert SpyNarrator.seen, "the campaign's narrator ran"
    before = " ".join(SpyNarrator.seen[0]).lower()
    for table in ("gtw_site_providercall", "gtw_site_providerprompt", "gtw_site_priceoverride"):
        assert table not in before, table
    everything = " ".join(q["sql"] for q in captured.captured_queries).lower()
    assert "gtw_site_providercall" in everything and "gtw_site_providerprompt" in everything
    row = ProviderCall.objects.get(role="narrator", session_id=session.pk)
    assert (row.provider, row.tokens_in, row.tokens_out) == ("spy", 120, 8)
    assert row.ttft_ms is not None and row.ttft_ms <= row.latency_ms


@pytest.mark.django_db
def test_the_summarizer_job_uses_the_campaigns_choice(session, player, django_capture_on_commit_callbacks):
    """Regression: the summary job ran outside any scope, so it used the site's summarizer and its
    row named no session."""
    services.choice_set(role="summarizer", provider="spy", campaign_id=session.campaign_id)
    for n, text in enumerate(["I hack the airlock panel", "I look around the bay", "I pick the lock"]):
        act(session, player, text, f"s{n}", django_capture_on_commit_callbacks)
    memory = summaries.summarize_session(session.pk)
    assert memory is not None and SUMMARY in memory.text
    row = ProviderCall.objects.filter(role="summarizer", provider="spy").latest("pk")
    assert (row.campaign_id, row.session_id) == (session.campaign_id, session.pk)
    prompt = row.prompt
    assert prompt.turn_seq is None and "I pick the lock" in json.dumps(prompt.messages)


@pytest.mark.django_db(transaction=True)
def test_a_pool_job_builds_from_the_submitters_choices_without_a_database_connection(campaign):
    """Regression: the turn's query embedding read the choices' revision on the pool thread,
    so every pool thread opened (and kept) a database connection of its own."""
    services.choice_set(role="narrator", provider="spy", campaign_id=campaign.pk)
    selection.forget()
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="test-pool")

    def job() -> tuple[str, bool, str]:
        from django.db import connection as worker_connection

        name = chat.get("narrator").name  # the campaign of the submitter's scope
        return name, worker_connection.connection is None, threading.current_thread().name

    try:
        with telemetry.scope(campaign_id=campaign.pk):
            name, no_connection, thread = telemetry.in_thread(pool, job).result(timeout=10)
        assert thread.startswith("test-pool")
        assert name == "spy" and no_connection
        with telemetry.scope(campaign_id=campaign.pk + 1000):
            name, no_connection, _ = telemetry.in_thread(pool, job).result(timeout=10)
        assert name == "offline" and no_connection
    finally:
        pool.shutdown(wait=True)


def test_a_turns_second_round_redacts_the_messages_it_shares_with_the_first_once(monkeypatch, db):
    """The writer renders a turn's prompts in one batch; round 2 re-sends round 1's messages."""
    from gtw_site import redact
    from gtw_site.models import ProviderCall

    calls = []
    real = redact.redact_message
    monkeypatch.setattr(redact, "redact_message", lambda m, k: calls.append(m.content) or real(m, k))
    system = Message(role="system", content="Narrate. Call +1 555 0100 for help.")
    user = Message(role="user", content="I hack the door panel")
    first = prompt_store.Captured(messages=(system, user), tools=())
    second = prompt_store.Captured(
        messages=(system, user, Message(role="assistant", content="Done.")), tools=()
    )
    rows = [ProviderCall(role="narrator", provider="offline", model="", shadow=False) for _ in range(2)]
    stored = prompt_store.render_all(rows, [first, second])
    assert sorted(calls) == sorted([system.content, user.content, "Done."])
    assert stored[0]["messages"][0] == stored[1]["messages"][0]
    assert "555 0100" not in stored[1]["messages"][0]["content"]  # still redacted, once
