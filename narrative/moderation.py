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

import functools
import json
import logging
import re
from dataclasses import dataclass
from typing import Any

from django.contrib.postgres.expressions import ArraySubquery
from django.db import DatabaseError, connection
from django.db.models import OuterRef, Subquery, Value
from django.db.models.functions import Concat

from campaigns import events
from campaigns.errors import Invalid
from campaigns.models import Campaign, Event, PlaySession
from campaigns.safety import services
from campaigns.safety.categories import BLOCK, CATEGORIES, HOLD, SOFTEN, Decision
from campaigns.safety.models import ReviewItem, SafetyPolicy
from gtw_site.providers import selection
from gtw_site.ratelimit import rate_check

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CampaignSafety:
    """What every check of one action or turn reads: the campaign's policy and its lines and
    veils (narrative.tablesafety.campaign_lines). Read once per action and once per turn, never
    kept longer: a GM's policy change or a member's new line applies from the next one."""

    campaign_id: int
    policy: services.Policy
    table: dict[str, list[str]]


def _safety_query(campaign_id: int):
    from narrative.models import TableLine

    entries = TableLine.objects.filter(campaign_id=OuterRef("pk")).order_by("created_at", "pk")
    policy = SafetyPolicy.objects.filter(campaign_id=OuterRef("pk"))
    return (
        Campaign.objects.filter(pk=campaign_id)
        .values("pack_id", "pack__data__safety", "pack__data__table_safety")
        .annotate(
            gm_actions=Subquery(policy.values("actions")[:1]),
            gm_redact=Subquery(policy.values("redact")[:1]),
            entries=ArraySubquery(entries.values(entry=Concat("kind", Value(":"), "text"))),
            # The moderation classifier is a runtime provider choice: its revision rides here.
            provider_revision=selection.revision_subquery(),
        )
    )


_NO_CAMPAIGN = -0x6774770  # a campaign id that never exists: marks where the real one goes
_JSON_COLUMNS = ("pack__data__safety", "pack__data__table_safety", "gm_actions", "gm_redact")


@functools.cache
def _safety_sql() -> tuple[str, tuple[Any, ...], int, tuple[str, ...]]:
    """`_safety_query`'s SQL, compiled by the ORM once per process: (sql, params, where the
    campaign id goes in params, the columns' names). Compiling its four subqueries was ~2.7 ms
    of CPU per call, and it runs twice before each first delta (the action's screen, the turn)."""
    query = _safety_query(_NO_CAMPAIGN).query
    sql, params = query.sql_with_params()
    names = (*query.values_select, *query.annotation_select)
    return sql, tuple(params), params.index(_NO_CAMPAIGN), names


def _safety_row(campaign_id: int) -> dict[str, Any]:
    """`_safety_query(campaign_id).get()`, without compiling it again."""
    sql, params, at, names = _safety_sql()
    with connection.cursor() as cursor:
        cursor.execute(sql, (*params[:at], campaign_id, *params[at + 1 :]))
        found = cursor.fetchall()
    if not found:  # (the campaign's primary key: never more than one)
        raise Campaign.DoesNotExist(f"campaign {campaign_id}")
    row = dict(zip(names, found[0], strict=True))
    for name in _JSON_COLUMNS:  # JSONField's own conversion (Django reads jsonb as text)
        if isinstance(row[name], str):
            row[name] = json.loads(row[name])
    return row


def campaign_safety(campaign_id: int) -> CampaignSafety:
    """The campaign's policy and lines and veils in one query (it was five: the campaign, its
    pack twice, the policy row, the lines), which also reads the provider choices' revision:
    inside `selection.checked_once()` (a turn, an action) the classifier and the narrator then
    build without a read of their own."""
    from narrative.tablesafety import merge_lines

    try:
        row = _safety_row(campaign_id)
        selection.sync(revision=row["provider_revision"] or 0)
        table = merge_lines(row["pack__data__table_safety"], (e.split(":", 1) for e in row["entries"]))
    except DatabaseError:
        # A broken lines table must not stop the game: the policy and the classifier still run.
        logger.exception("could not read the lines and veils of campaign %s", campaign_id)
        campaign = Campaign.objects.select_related("pack").get(pk=campaign_id)
        return CampaignSafety(campaign_id, services.policy_get(campaign), table_lines(campaign_id))
    return CampaignSafety(
        campaign_id=campaign_id,
        policy=services.policy_of(
            row["pack__data__safety"], row["pack_id"], row["gm_actions"], row["gm_redact"]
        ),
        table=table,
    )


def _no_lines() -> dict[str, list[str]]:
    return {"lines": [], "veils": []}


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


def check(
    *,
    campaign: Campaign | int,
    text: str,
    source: str,
    role: str = "user",
    policy=None,
    safety: CampaignSafety | None = None,
) -> Decision:
    """`safety`: the campaign's policy and lines as the caller read them (campaign_safety)."""
    if safety is not None:
        table, policy = safety.table, policy or safety.policy
    else:
        table = table_lines(campaign if isinstance(campaign, int) else campaign.pk)
    return services.moderate(
        campaign=campaign,
        text=text,
        source=source,
        lines=table["lines"],
        veils=table["veils"],
        role=role,
        policy=policy,
    )


def action_replays(session_id: int, key: str) -> dict[str, events.AppendResult]:
    """An action's idempotency key and its held twin (`held:<key>`), looked up in one query:
    {key: replay} for those already stored (campaigns.events.find_replay, for two keys)."""
    found = Event.objects.filter(session_id=session_id, idempotency_key__in=[key, f"held:{key}"])
    return {e.idempotency_key: events.AppendResult(events=[e], version=e.seq, replayed=True) for e in found}


def screen_action(
    *,
    session: PlaySession,
    user,
    text: str,
    idempotency_key: str,
    replays: dict[str, events.AppendResult] | None = None,
) -> events.AppendResult | None:
    """Before a player's action is recorded: None to go on, the held notice's append result for
    a held action; raises Invalid for a blocked one. Caller validated the text, key and actor.
    `replays`: `action_replays(session.pk, key)`, if the caller looked them up already."""
    key = f"action:{user.pk}:{idempotency_key}"
    if replays is None:
        replays = action_replays(session.pk, key)
    if key in replays:
        return None  # accepted before (or approved since): the normal path replays it
    held = replays.get(f"held:{key}")
    if held is not None:
        return held  # a retry of an action that waits for review
    decision = check(
        campaign=session.campaign_id, text=text, source="action", safety=campaign_safety(session.campaign_id)
    )
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
        self,
        inner: Any,
        *,
        campaign: Campaign,
        source: str = "narration",
        check: bool = True,
        safety: CampaignSafety | None = None,
    ) -> None:
        self.inner = inner
        self.campaign = campaign
        self.source = source
        # check=False passes everything straight on: the offline narrator writes the game's own
        # procedural prose from content and from actions that were screened already, and holding
        # its first sentence back would only delay the table's first words.
        self.check = check
        if safety is not None:  # the turn read them already (campaign_safety)
            self.policy, self.table = (safety.policy, safety.table) if check else (None, _no_lines())
        else:
            self.policy = services.policy_get(campaign) if check else None
            self.table = table_lines(campaign.pk) if check else _no_lines()
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


def narrator_guidance(
    *, campaign: Campaign, action_text: str = "", policy: services.Policy | None = None
) -> str:
    """The soften instruction for the narrator's system prompt ("" when nothing is softened):
    the campaign's soften categories always, and a word on the action if it touched one.
    `policy`: the campaign's, if the caller read it already."""
    policy = policy or services.policy_get(campaign)
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
