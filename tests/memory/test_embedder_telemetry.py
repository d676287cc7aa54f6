"""Embedder calls leave ProviderCall rows (issue 12, part 3: telemetry on every call), written by
the thread that owns the work: the memory job's batch embed, a turn's query embedding (made on
the "gtw-embed" pool, recorded once the turn is done), and a failing embedder's failed row."""

from __future__ import annotations

from concurrent.futures import wait

import pytest
from django.conf import settings

from campaigns.models import Membership
from gtw_site.models import ProviderCall
from gtw_site.providers import ProviderError
from memory import retrieval, services
from memory.embeddings import registry
from narrative import turns
from realtime import broadcast


class BrokenEmbedder:
    """An embedder whose model is gone: every call fails, as a ProviderError."""

    name = "broken"
    model = "broken-model"

    def __init__(self, **arguments) -> None:
        self.dimensions = arguments["dimensions"]

    def embed(self, texts):
        raise ProviderError("model file missing", retryable=False)


@pytest.fixture
def broken_embedder(monkeypatch):
    monkeypatch.setitem(registry.EMBEDDERS, "broken", f"{__name__}:BrokenEmbedder")
    monkeypatch.setattr(settings, "GTW_MEMORY", {**settings.GTW_MEMORY, "embedder": "broken"})
    yield
    registry.reset()


def _rows():
    return list(ProviderCall.objects.order_by("id").values_list("role", "provider", "model", "ok", "error"))


def _player_membership(campaign, player):
    return Membership.objects.get(campaign=campaign, user=player)


@pytest.mark.django_db
def test_the_memory_job_records_its_batch_embed(campaign, player):
    """issue 12 part 3: the embedder kind was declared with telemetry off, so the memory job's
    embed calls left no row at all."""
    services.memory_record(membership=_player_membership(campaign, player), text="The vault code is 4412.")

    assert services.embed_pending() >= 1

    embedder = registry.get()
    [row] = ProviderCall.objects.all()
    assert (row.role, row.provider, row.model, row.ok, row.error) == (
        "embedder",
        embedder.name,
        embedder.model,
        True,
        "",
    )
    assert row.latency_ms >= 0 and (row.tokens_in, row.tokens_out) == (0, 0)


@pytest.mark.django_db
def test_a_failing_embedder_leaves_a_failed_row(campaign, player, broken_embedder):
    """issue 12 part 3: a failed embed (the job keeps the memory keyword-only, the query falls back
    to keywords) is recorded as a failed call, with the provider's reason."""
    services.memory_record(membership=_player_membership(campaign, player), text="The vault code is 4412.")

    assert services.embed_pending() == 0
    assert retrieval.embed_query_async("vault code").result() is None

    failed = ("embedder", "broken", "broken-model", False, "model file missing")
    assert _rows() == [failed, failed]


@pytest.mark.django_db
def test_a_query_embedded_on_the_pool_is_recorded_by_the_thread_that_takes_it():
    """issue 12 part 3: a row written on the "gtw-embed" thread would use that thread's own
    database connection and commit outside the caller's transaction (leaking into other tests).
    The worker writes nothing; the thread that takes the result records the row, once."""
    future = retrieval.embed_query_async("I scan the cargo bay")
    wait([future])

    assert ProviderCall.objects.count() == 0  # nothing committed from the worker's connection

    assert future.result() is not None
    assert future.result() is not None  # taken twice, recorded once
    assert [(role, ok) for role, _, _, ok, _ in _rows()] == [("embedder", True)]


@pytest.mark.django_db
def test_a_turn_records_its_query_embedding_after_the_first_delta(
    session, player, django_capture_on_commit_callbacks, monkeypatch
):
    """issue 12 part 3: a turn embeds its action on the pool; the row is written with the turn's
    other rows once it is done, never on the way to the table's first words."""
    rows_at_first_delta = []
    push = broadcast.DeltaStream.push

    def counting_push(self, text):
        if not rows_at_first_delta:
            rows_at_first_delta.append(ProviderCall.objects.count())
        push(self, text)

    monkeypatch.setattr(broadcast.DeltaStream, "push", counting_push)
    with django_capture_on_commit_callbacks(execute=True):
        turns.submit_action(
            session_id=session.pk, user=player, text="I scan the cargo bay", idempotency_key="t1"
        )

    assert rows_at_first_delta == [0]
    roles = [(role, ok) for role, _, _, ok, _ in _rows()]
    # The turn's rows in call order: its query embedding, then the narration; the memory job
    # that embeds the new events after the turn commits adds its own rows after them.
    assert roles[:2] == [("embedder", True), ("narrator", True)]
    assert ("embedder", True) in roles[2:]


@pytest.mark.django_db
def test_a_deferred_block_that_raises_still_writes_its_rows():
    """Regression: deferred() wrote its held rows only when the block ended normally, so a turn
    that crashed (an unexpected exception, not a ProviderError) lost the telemetry of every call
    it had made, failed ones included."""
    from gtw_site import telemetry

    before = ProviderCall.objects.count()
    with pytest.raises(RuntimeError), telemetry.deferred():
        telemetry.record_call(
            role="narrator", provider="fake", model="m", latency_ms=3.0, ok=False, error="x"
        )
        assert ProviderCall.objects.count() == before  # held, not written yet
        raise RuntimeError("the turn crashed")
    row = ProviderCall.objects.order_by("-pk").first()
    assert ProviderCall.objects.count() == before + 1
    assert (row.role, row.provider, row.ok) == ("narrator", "fake", False)
