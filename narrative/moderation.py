"""Content safety where the story is made (issue 18 part 3): a player's action before its turn,
the narrator's output as it streams, and the soften instruction for the narrator's prompt.

- `screen_action`: before an action is recorded. block → Invalid (422, nothing stored, a clear
  refusal); hold → the action is queued for the GM with a "held for review" notice to its author
  (an event only they and the GMs see) and is NOT an Action yet: no turn runs until the GM
  approves it, which appends the Action (campaigns.safety.services.review_decide); soften and
  allow → the action goes on as usual.
- `ModeratedStream`: wraps a turn's delta stream (outside the leak guard). It releases narration
  a sentence at a time; a sentence the policy holds or blocks is never pushed to the table and
  is cut from the stored Narration (`withhold`); after the Narration commits, `queue` puts the
  held sentences in the GM's review queue. Approving one appends a NarrationRevealed event.
- `narrator_guidance`: the instruction the narrator's system prompt gets for soften categories.

The lines and veils of the table (narrative.tablesafety, issue 18 part 4) reach the classifier
through the `lines` / `veils` arguments.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from campaigns import events
from campaigns.errors import Invalid
from campaigns.models import Campaign, PlaySession
from campaigns.safety import services
from campaigns.safety.categories import BLOCK, CATEGORIES, HOLD, SOFTEN, Decision
from campaigns.safety.models import ReviewItem
from gtw_site.ratelimit import rate_check

logger = logging.getLogger(__name__)


def table_lines(campaign_id: int) -> dict[str, list[str]]:
    """The campaign's lines and veils (narrative.tablesafety), or none if that is unavailable."""
    try:
        from narrative.tablesafety import campaign_lines
    except ImportError:  # pragma: no cover - the lines-and-veils module is part of the app
        return {"lines": [], "veils": []}
    try:
        found = campaign_lines(campaign_id)
    except Exception:  # a broken lines table must not stop the game: the classifier still runs
        logger.exception("could not read the lines and veils of campaign %s", campaign_id)
        return {"lines": [], "veils": []}
    return {"lines": list(found.get("lines") or []), "veils": list(found.get("veils") or [])}


def check(*, campaign: Campaign, text: str, source: str, role: str = "user", policy=None) -> Decision:
    table = table_lines(campaign.pk)
    return services.moderate(
        campaign=campaign,
        text=text,
        source=source,
        lines=table["lines"],
        veils=table["veils"],
        role=role,
        policy=policy,
    )


def screen_action(
    *, session: PlaySession, user, text: str, idempotency_key: str
) -> events.AppendResult | None:
    """Before a player's action is recorded: None to go on, the held notice's append result for
    a held action; raises Invalid for a blocked one. Caller validated the text, key and actor."""
    key = f"action:{user.pk}:{idempotency_key}"
    if events.find_replay(session.pk, key) is not None:
        return None  # accepted before (or approved since): the normal path replays it
    held = events.find_replay(session.pk, f"held:{key}")
    if held is not None:
        return held  # a retry of an action that waits for review
    decision = check(campaign=session.campaign, text=text, source="action")
    if decision.action == BLOCK:
        raise Invalid(services.BLOCKED_MESSAGE)
    if decision.action != HOLD:
        return None
    rate_check(scope="action", ident=user.pk)  # a held action costs as much as an accepted one
    return services.hold_action(
        session=session,
        user=user,
        text=text,
        character=getattr(session, "actor_character", None),
        key=key,
        decision=decision,
    )


# ---- the narrator's side ------------------------------------------------------------------------

# Where a sentence ends: after . ! ? … (and closing quotes/brackets) and whitespace, or a blank line.
_SENTENCE = re.compile(r"(?<=[.!?\u2026])[\"'\u201d\u2019)\]]*\s+|\n\s*\n")


# The longest stretch held back waiting for a sentence end.
MAX_SENTENCE_CHARS = 280


class ModeratedStream:
    """A delta stream (leakguard.GuardedStream(broadcast.DeltaStream(...))) that passes on only
    sentences the campaign's policy lets through. `held` lists (sentence, decision) for the ones
    it kept back, in order."""

    def __init__(
        self, inner: Any, *, campaign: Campaign, source: str = "narration", check: bool = True
    ) -> None:
        self.inner = inner
        self.campaign = campaign
        self.source = source
        # check=False passes everything straight on: the offline narrator writes the game's own
        # procedural prose from content and from actions that were screened already, and holding
        # its first sentence back would only delay the table's first words.
        self.check = check
        self.policy = services.policy_get(campaign) if check else None
        self.table = table_lines(campaign.pk) if check else {"lines": [], "veils": []}
        self.held: list[tuple[str, Decision]] = []
        self._pending = ""

    def push(self, text: str) -> None:
        if not text:
            return
        if not self.check:
            self.inner.push(text)
            return
        self._pending += text
        while True:
            match = _SENTENCE.search(self._pending)
            if match is None:
                break
            sentence, self._pending = self._pending[: match.end()], self._pending[match.end() :]
            self._release(sentence)
        if len(self._pending) > MAX_SENTENCE_CHARS:
            # A run-on with no sentence end: judge and release it up to its last space, so the
            # table is never kept waiting on one endless sentence.
            cut = self._pending.rfind(" ", 0, MAX_SENTENCE_CHARS) + 1 or MAX_SENTENCE_CHARS
            piece, self._pending = self._pending[:cut], self._pending[cut:]
            self._release(piece)

    def flush(self) -> None:
        if self._pending:
            sentence, self._pending = self._pending, ""
            self._release(sentence)
        self.inner.flush()

    def reset(self, notice: str) -> None:
        # The provider is retried: its next reply is a new text, with nothing held yet.
        self._pending = ""
        self.held = []
        self.inner.reset(notice)

    def __getattr__(self, name: str):
        return getattr(self.inner, name)

    def _release(self, sentence: str) -> None:
        if not sentence.strip():
            self.inner.push(sentence)
            return
        decision = services.moderate(
            campaign=self.campaign,
            text=sentence,
            source=self.source,
            lines=self.table["lines"],
            veils=self.table["veils"],
            role="assistant",
            policy=self.policy,
        )
        if decision.action in (HOLD, BLOCK):
            self.held.append((sentence.strip(), decision))
            return
        self.inner.push(sentence)

    def withhold(self, text: str) -> str:
        """`text` (the whole reply, as the model wrote it) without the sentences kept back."""
        for sentence, _decision in self.held:
            text = text.replace(sentence, "", 1)
        return re.sub(r"[ \t]{2,}", " ", text).strip()

    def queue(self, *, session: PlaySession, of_seq: int) -> int:
        """Put the held sentences in the review queue (blocked ones are logged as decided).
        Call after the narration they were cut from committed. Returns how many wait."""
        waiting = 0
        for index, (sentence, decision) in enumerate(self.held):
            source = {"narration": "narration", "opening": "opening", "batch": "batch"}.get(
                self.source, "narration"
            )
            services.hold(
                campaign=self.campaign,
                session=session,
                source=source,
                text=sentence,
                decision=decision,
                key=f"{source}:{session.pk}:{of_seq}:{index}",
                ref={"action_seq": of_seq},
            )
            waiting += decision.action == HOLD
        return waiting

    @property
    def waiting(self) -> int:
        """How many held sentences wait for review (not counting blocked ones)."""
        return sum(1 for _s, d in self.held if d.action == HOLD)


def narrator_guidance(*, campaign: Campaign, action_text: str = "") -> str:
    """The soften instruction for the narrator's system prompt ("" when nothing is softened):
    the campaign's soften categories always, and a word on the action if it touched one."""
    policy = services.policy_get(campaign)
    soft = [
        c
        for c, a in policy.actions.items()
        if a == SOFTEN and c in CATEGORIES and c not in ("lines", "veils")
    ]
    if not soft:
        return ""
    names = "; ".join(CATEGORIES[c].split(":")[0].lower() for c in soft)
    text = (
        f"Content settings of this table — keep these off-screen or toned down ({names}): imply, "
        "cut away or fade to black rather than describe them in detail."
    )
    if action_text:
        decision = services.moderate(
            campaign=campaign, text=action_text, source="action", policy=policy, count=False
        )
        touched = [c for c in decision.categories if policy.action(c) == SOFTEN and c in soft]
        if touched:
            what = ", ".join(CATEGORIES[c].split(":")[0].lower() for c in touched)
            text += f" The player's action touches on {what}: answer it, but keep that part restrained."
    return text


def held_count(session_id: int) -> int:
    """Items of the session waiting for review (for the GM's play page)."""
    return ReviewItem.objects.filter(session_id=session_id, status=ReviewItem.Status.PENDING).count()
