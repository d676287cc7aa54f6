"""Every provider call writes its telemetry row: the vendor's usage on complete, a failed row for a
stream the caller stops reading or an unexpected exception, a success for a stream closed after
its end, and abandoning a recorded stream closes the adapter's."""

from __future__ import annotations

import pytest

from gtw_site.models import ProviderCall
from gtw_site.providers import Usage
from narrative.llm.anthropic import AnthropicChatProvider
from narrative.llm.base import StreamEnd, TextDelta
from narrative.llm.registry import Recorded
from tests.fakes.wire_server import Reply
from tests.narrative.llm.adapters import ask, openai_like

# ---- Telemetry: usage of complete(), and rows for streams that end any way ---------------------


@pytest.mark.django_db
@pytest.mark.parametrize("kind", ["openai", "openai_compatible", "anthropic"])
def test_complete_records_the_vendors_usage(wire, kind):
    wire.script(Reply(text=["A summary."], usage=(1234, 56)))
    if kind == "anthropic":
        inner = AnthropicChatProvider(model="c", api_key="sk-ant-test", base_url=wire.anthropic_base_url)
    else:
        inner = openai_like(kind, wire.openai_base_url)

    assert Recorded("summarizer", inner).complete(ask()) == "A summary."

    assert inner.last_usage == Usage(1234, 56)
    row = ProviderCall.objects.get()
    assert (row.role, row.tokens_in, row.tokens_out, row.ok) == ("summarizer", 1234, 56, True)


@pytest.mark.django_db
def test_a_stream_the_caller_stops_reading_leaves_a_failed_row(wire):
    wire.script(Reply(text=["a ", "b ", "c"]))
    recorded = Recorded("narrator", openai_like("openai", wire.openai_base_url))

    events = recorded.stream(ask())
    next(events)
    events.close()

    row = ProviderCall.objects.get()
    assert row.ok is False and "stopped" in row.error


@pytest.mark.django_db
def test_a_stream_closed_after_its_end_is_a_success(wire):
    wire.script(Reply(text=["a ", "b"], usage=(7, 3)))
    recorded = Recorded("narrator", openai_like("openai", wire.openai_base_url))

    events = recorded.stream(ask())
    for event in events:
        if isinstance(event, StreamEnd):
            break
    events.close()

    row = ProviderCall.objects.get()
    assert (row.ok, row.error, row.tokens_in, row.tokens_out) == (True, "", 7, 3)


class Exploding:
    name = "exploding"
    model = "boom-1"

    def __init__(self) -> None:
        self.closed = False

    def stream(self, request):
        try:
            yield TextDelta("Half a ")
            raise RuntimeError("boom")
        finally:
            self.closed = True

    def complete(self, request):
        raise KeyError("missing")


@pytest.mark.django_db
def test_unexpected_exceptions_are_recorded_and_raised():
    recorded = Recorded("narrator", Exploding())

    with pytest.raises(RuntimeError):
        list(recorded.stream(ask()))
    with pytest.raises(KeyError):
        recorded.complete(ask())

    rows = list(ProviderCall.objects.order_by("id").values_list("ok", "error"))
    assert rows == [(False, "unexpected RuntimeError: boom"), (False, "unexpected KeyError: 'missing'")]


@pytest.mark.django_db
def test_abandoning_the_recorded_stream_closes_the_adapters():
    inner = Exploding()
    events = Recorded("narrator", inner).stream(ask())
    next(events)
    events.close()
    assert inner.closed is True
    assert ProviderCall.objects.get().ok is False
