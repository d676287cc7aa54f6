"""A turn's telemetry batch reads each campaign's redaction switch once, not once per stored
prompt (gtw_site.prompt_store.render_all: it was two queries per prompt, on the writer thread),
and every prompt is still redacted with its own campaign's kinds."""

from __future__ import annotations

from types import SimpleNamespace

from gtw_site import prompt_store, redact
from narrative.llm.base import Message


def test_one_switch_read_per_campaign_per_batch(monkeypatch):
    asked: list[int | None] = []
    switches = {1: frozenset({"email"}), 2: frozenset()}

    def outbound_for(kinds, campaign_id):
        asked.append(campaign_id)
        return switches[campaign_id]

    monkeypatch.setattr(redact, "outbound_for", outbound_for)
    text = "Mail me at kira@example.com about the door."
    prompt = prompt_store.Captured(messages=(Message(role="user", content=text),), tools=())
    calls = [
        SimpleNamespace(campaign_id=1, shadow=False),
        SimpleNamespace(campaign_id=1, shadow=False),
        SimpleNamespace(campaign_id=2, shadow=False),
        SimpleNamespace(campaign_id=1, shadow=True),  # a shadow's prompt is never stored
    ]
    rendered = prompt_store.render_all(calls, [prompt, prompt, prompt, prompt])
    assert asked == [1, 2]
    assert rendered[3] is None
    first, second, other = (r["messages"][0]["content"] for r in rendered[:3])
    assert "kira@example.com" not in first and first == second  # campaign 1 redacts email
    assert other == text  # campaign 2 switched it off
