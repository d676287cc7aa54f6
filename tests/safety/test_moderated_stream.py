"""The narration stream wrapper (narrative.moderation.ModeratedStream): text goes out a sentence
at a time, a held sentence never goes out, the rest of the reply does, and the stored text is
cut the same way."""

from __future__ import annotations

from campaigns.safety import services
from narrative.moderation import MAX_SENTENCE_CHARS, ModeratedStream


class Inner:
    def __init__(self):
        self.pushed: list[str] = []
        self.flushed = 0
        self.resets: list[str] = []

    def push(self, text):
        self.pushed.append(text)

    def flush(self):
        self.flushed += 1

    def reset(self, notice):
        self.resets.append(notice)


def feed(stream, text, size=7):
    for i in range(0, len(text), size):
        stream.push(text[i : i + size])
    stream.flush()


def test_sentences_go_out_whole_and_a_held_one_not_at_all(campaign, gm):
    services.policy_set(campaign=campaign, user=gm, actions={"graphic_violence": "hold"})
    inner = Inner()
    stream = ModeratedStream(inner, campaign=campaign)
    reply = "The hatch opens! His guts spill onto the deck. The alarms wail on.\n\nSilence."
    feed(stream, reply)
    out = "".join(inner.pushed)
    assert out == "The hatch opens! The alarms wail on.\n\nSilence."
    assert all(p.endswith((" ", "\n", ".")) for p in inner.pushed)  # never half a sentence
    assert [s for s, _d in stream.held] == ["His guts spill onto the deck."]
    assert stream.waiting == 1
    assert stream.withhold(reply) == "The hatch opens! The alarms wail on.\n\nSilence."
    assert inner.flushed == 1


def test_a_retry_forgets_what_the_failed_reply_held(campaign, gm):
    services.policy_set(campaign=campaign, user=gm, actions={"graphic_violence": "hold"})
    inner = Inner()
    stream = ModeratedStream(inner, campaign=campaign)
    stream.push("His guts spill onto the deck. And")
    stream.reset("retrying")
    assert stream.held == [] and inner.resets == ["retrying"]
    feed(stream, "All is calm.")
    assert "".join(inner.pushed) == "All is calm."


def test_a_run_on_sentence_is_released_in_pieces(campaign):
    inner = Inner()
    stream = ModeratedStream(inner, campaign=campaign)
    stream.push("and then " * 60)
    assert inner.pushed and len(inner.pushed[0]) <= MAX_SENTENCE_CHARS


def test_lines_from_the_table_hold_a_sentence(campaign, player):
    from campaigns import selectors
    from narrative import tablesafety

    member = selectors.membership_get(viewer=player, campaign_id=campaign.pk)
    tablesafety.table_line_add(membership=member, kind="line", text="spiders", private=True)
    inner = Inner()
    stream = ModeratedStream(inner, campaign=campaign)
    feed(stream, "A cold draft. Spiders pour from the vent. You run.")
    assert "Spiders" not in "".join(inner.pushed)
    assert stream.held[0][1].categories == ("lines",)
