"""Content safety services: a campaign's policy, the check every hook calls, holding text for
review, the GM's decisions, and the trigger counters.

`moderate(campaign=…, text=…, source=…)` is the one function the hooks call (narrative's actions
and narration stream, memory notes, shared docs, image prompts): it classifies with the
`moderation` role and decides under the campaign's policy. `hold(...)` puts a decision in the
review queue; `review_decide(...)` approves (as written or edited) or rejects it, appending the
event that releases it. Layer: campaigns (it appends events; it never imports the layers above).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from campaigns import events
from campaigns.errors import Conflict, Forbidden, Invalid, NotFound
from campaigns.models import Campaign, Membership, PlaySession, StageSeat
from campaigns.safety import categories, registry
from campaigns.safety.categories import ALLOW, BLOCK, HOLD, Decision, PolicyError, Verdict
from campaigns.safety.classifiers.local import LocalModeration
from campaigns.safety.models import ReviewItem, ReviewLog, SafetyCount, SafetyPolicy
from gtw_site import redact
from gtw_site.providers import ProviderError
from gtw_site.text import check_storable

logger = logging.getLogger(__name__)

# The event types this app appends (templates/play/play.html renders them).
HELD_EVENT = "ContentHeld"  # to the author only: "held for review"
RELEASED_EVENT = "ContentReleased"  # to the author only: the GM's decision on their held action
REVEALED_EVENT = "NarrationRevealed"  # to the table: a held sentence the GM approved
MAX_EDIT_CHARS = 4000


# ---- the policy -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Policy:
    actions: Mapping[str, str]
    redact: tuple[str, ...]

    def action(self, category: str) -> str:
        return self.actions.get(category, ALLOW)


def _pack_block(campaign: Campaign) -> Any:
    data = campaign.pack.data if campaign.pack_id else {}
    return (data or {}).get("safety") or {}


def policy_defaults(campaign: Campaign) -> Policy:
    """What the campaign has before its GM changes anything: the site's, then the pack's."""
    return _defaults_of(_pack_block(campaign), campaign.pack_id)


def _defaults_of(block: Any, pack_id: int | None) -> Policy:
    pack = block if isinstance(block, Mapping) else {}
    try:
        actions = categories.resolve_actions(settings.GTW_SAFETY_DEFAULTS, pack.get("categories"))
    except PolicyError as exc:
        logger.warning("ignoring the safety block of pack %s: %s", pack_id, exc)
        actions = categories.resolve_actions(settings.GTW_SAFETY_DEFAULTS)
    kinds = pack.get("redact")
    try:
        kinds = _redact_kinds(kinds) if kinds is not None else tuple(settings.GTW_REDACT)
    except Invalid:
        kinds = tuple(settings.GTW_REDACT)
    return Policy(actions=actions, redact=kinds)


def policy_get(campaign: Campaign) -> Policy:
    row = SafetyPolicy.objects.filter(campaign=campaign).values("actions", "redact").first() or {}
    return policy_of(_pack_block(campaign), campaign.pack_id, row.get("actions"), row.get("redact"))


def policy_of(pack_block: Any, pack_id: int | None, actions: Any, redact_kinds: Any) -> Policy:
    """The policy from what is stored: the pack's `safety` block and the GM's SafetyPolicy row's
    `actions` and `redact` (None for both when the GM never changed anything). For callers that
    read them in a query of their own (narrative.moderation.campaign_safety: one per action)."""
    defaults = _defaults_of(pack_block, pack_id)
    merged = {
        **defaults.actions,
        **{k: v for k, v in (actions or {}).items() if k in categories.CATEGORIES},
    }
    kinds = tuple(redact_kinds) if redact_kinds is not None else defaults.redact
    return Policy(actions=merged, redact=kinds)


def _redact_kinds(kinds: object) -> tuple[str, ...]:
    if isinstance(kinds, str):
        try:
            parsed = redact.parse_kinds(kinds)
        except ValueError as exc:
            raise Invalid(f"redact: {exc}") from exc
    elif isinstance(kinds, (list, tuple)):
        unknown = [k for k in kinds if k not in redact.KINDS]
        if unknown:
            raise Invalid(f"redact: unknown kind {unknown[0]!r} (known: {', '.join(redact.KINDS)})")
        parsed = frozenset(kinds)
    else:
        raise Invalid('redact must be a list of kinds, e.g. ["email", "phone"]')
    return tuple(k for k in redact.KINDS if k in parsed)


def policy_set(
    *, campaign: Campaign, user, actions: Mapping[str, Any] | None = None, redact_kinds: object = None
) -> Policy:
    """The GM's changes (trusted: the caller checked the GM). `actions` merges into what the GM
    set before; `redact_kinds` replaces the redaction switch ("default" goes back to the site's)."""
    try:
        checked = categories.check_actions(actions or {})
    except PolicyError as exc:
        raise Invalid(str(exc)) from exc
    with transaction.atomic():
        row, _ = SafetyPolicy.objects.select_for_update().get_or_create(campaign=campaign)
        before = dict(row.actions or {})
        row.actions = {**before, **checked}
        if redact_kinds == "default":
            row.redact = None
        elif redact_kinds is not None:
            row.redact = list(_redact_kinds(redact_kinds))
        row.updated_by = user
        row.save()
        changes = ", ".join(f"{k}={v}" for k, v in sorted(checked.items()) if before.get(k) != v)
        if redact_kinds is not None:
            changes = ", ".join(
                filter(None, [changes, f"redact={row.redact if row.redact is not None else 'default'}"])
            )
        if changes:
            ReviewLog.objects.create(campaign=campaign, actor=user, verb=ReviewLog.Verb.POLICY, after=changes)
    return policy_get(campaign)


def campaign_redact_kinds(campaign_id: int) -> tuple[str, ...]:
    """The PII kinds to redact for this campaign's text (its switch, else the pack's, else
    GTW_REDACT): for adapters sending a campaign's text to a remote provider."""
    campaign = Campaign.objects.select_related("pack").get(pk=campaign_id)
    return policy_get(campaign).redact


# ---- the check --------------------------------------------------------------------------------


def classify(
    text: str, *, lines: Iterable[str] = (), veils: Iterable[str] = (), role: str = "user", redact_kinds=None
) -> Verdict:
    """The `moderation` role's verdict. A failed remote classifier falls back to the local one
    (GTW_MODERATION_FAIL=local, the default) or holds everything (=hold)."""
    text = text[: settings.GTW_SAFETY_MAX_CHARS]
    lines, veils = list(lines or ()), list(veils or ())
    try:
        adapter = registry.get()
        return adapter.classify(text, lines=lines, veils=veils, role=role, redact_kinds=redact_kinds)
    except ProviderError as exc:
        logger.warning("moderation failed (%s); %s", exc, settings.GTW_MODERATION["moderation"]["fail"])
        if settings.GTW_MODERATION["moderation"]["fail"] == "hold":
            return Verdict(
                scores={"unchecked": 1.0}, evidence={"unchecked": "the classifier failed"}, provider="none"
            )
        return _LOCAL.classify(text, lines=lines, veils=veils)


_LOCAL = LocalModeration()


def decide(verdict: Verdict, policy: Policy) -> Decision:
    if "unchecked" in verdict.scores:  # GTW_MODERATION_FAIL=hold: nothing goes out unreviewed
        return Decision(action=HOLD, categories=("unchecked",), verdict=verdict)
    return categories.decide(verdict, policy.actions)


def moderate(
    *,
    campaign: Campaign | int,
    text: str,
    source: str,
    lines: Iterable[str] = (),
    veils: Iterable[str] = (),
    role: str = "user",
    policy: Policy | None = None,
    count: bool = True,
) -> Decision:
    """Classify `text` and decide under the campaign's policy; counts a non-allow decision."""
    campaign_id = campaign if isinstance(campaign, int) else campaign.pk
    if policy is None:
        if isinstance(campaign, int):
            campaign = Campaign.objects.select_related("pack").get(pk=campaign)
        policy = policy_get(campaign)
    verdict = classify(text, lines=lines, veils=veils, role=role, redact_kinds=policy.redact)
    decision = decide(verdict, policy)
    if count and not decision.allowed:
        count_trigger(campaign_id=campaign_id, source=source, decision=decision)
    return decision


def check_text(
    *,
    campaign: Campaign | int,
    text: str,
    source: str,
    author=None,
    session: PlaySession | None = None,
    key: str = "",
) -> Decision:
    """For notes, shared docs and image prompts: a block raises Invalid (the save is refused with
    a clear message); a hold is queued for the GM (the caller decides whether to keep the text
    back meanwhile, e.g. an image prompt is not painted); soften and allow pass."""
    if isinstance(campaign, int):
        campaign = Campaign.objects.select_related("pack").get(pk=campaign)
    decision = moderate(campaign=campaign, text=text, source=source)
    if decision.action == BLOCK:
        raise Invalid(BLOCKED_MESSAGE)
    if decision.action == HOLD:
        hold(
            campaign=campaign,
            session=session,
            source=source,
            text=text,
            decision=decision,
            author=author,
            key=key,
        )
    return decision


BLOCKED_MESSAGE = "That can't be used at this table: it crosses this campaign's content settings."
HELD_MESSAGE = "Held for the GM's review."


def count_trigger(*, campaign_id: int | None, source: str, decision: Decision) -> None:
    """Count a safety trigger (one per category): a DB counter (the GM's page, the admin) and
    the process's Prometheus counter, when prometheus_client is installed."""
    for category in decision.categories or ("unchecked",):
        updated = SafetyCount.objects.filter(
            campaign_id=campaign_id, source=source, category=category, action=decision.action
        ).update(count=F("count") + 1, updated_at=timezone.now())
        if not updated:
            try:
                with transaction.atomic():
                    SafetyCount.objects.create(
                        campaign_id=campaign_id,
                        source=source,
                        category=category,
                        action=decision.action,
                        count=1,
                    )
            except IntegrityError:  # created meanwhile by another process
                SafetyCount.objects.filter(
                    campaign_id=campaign_id, source=source, category=category, action=decision.action
                ).update(count=F("count") + 1)
        _prometheus(source, category, decision.action)
    logger.info(
        "safety: %s %s in campaign %s (%s)",
        decision.action,
        source,
        campaign_id,
        ", ".join(decision.categories),
    )


def _prometheus(source: str, category: str, action: str) -> None:
    counter = _counter()
    if counter is not None:
        counter.labels(source=source, category=category, action=action).inc()


_COUNTER: Any = None


def _counter():
    global _COUNTER
    if _COUNTER is None:
        try:
            from prometheus_client import Counter
        except ImportError:  # pragma: no cover - installed with the project
            return None
        try:
            _COUNTER = Counter(
                "gtw_safety_triggers",
                "Content-safety decisions other than allow",
                ["source", "category", "action"],
            )
        except ValueError:  # registered already (a reload): take the existing collector
            from prometheus_client import REGISTRY

            _COUNTER = REGISTRY._names_to_collectors.get("gtw_safety_triggers")
    return _COUNTER


def trigger_counts(*, campaign: Campaign) -> list[SafetyCount]:
    return list(SafetyCount.objects.filter(campaign=campaign).order_by("-count", "category"))


# ---- the queue --------------------------------------------------------------------------------


def hold(
    *,
    campaign: Campaign,
    session: PlaySession | None,
    source: str,
    text: str,
    decision: Decision,
    author=None,
    key: str = "",
    ref: Mapping[str, Any] | None = None,
) -> tuple[ReviewItem, bool]:
    """Queue `text` for review (a block is recorded as already decided, for the audit log).
    Returns (item, created); the same `key` finds the same item."""
    check_storable(text, what="The text")
    status = ReviewItem.Status.BLOCKED if decision.action == BLOCK else ReviewItem.Status.PENDING
    key = key or f"{source}:{timezone.now().timestamp()}:{id(text)}"
    with transaction.atomic():
        item, created = ReviewItem.objects.get_or_create(
            campaign=campaign,
            key=key[:160],
            defaults={
                "session": session,
                "source": source,
                "status": status,
                "text": text,
                "categories": list(decision.categories),
                "scores": {k: round(float(v), 3) for k, v in decision.verdict.scores.items()},
                "evidence": dict(decision.verdict.evidence),
                "action": decision.action,
                "provider": decision.verdict.provider,
                "author_id": getattr(author, "pk", author),
                "ref": dict(ref or {}),
            },
        )
        if created:
            ReviewLog.objects.create(
                campaign=campaign,
                item=item,
                actor=None,
                verb=ReviewLog.Verb.BLOCKED if status == ReviewItem.Status.BLOCKED else ReviewLog.Verb.HELD,
                before=text,
                after=", ".join(decision.categories),
            )
    return item, created


def hold_action(
    *, session: PlaySession, user, text: str, character: Any, key: str, decision: Decision
) -> events.AppendResult:
    """A player's held action: queued, and a notice to the author (and the GMs) that it waits for
    review. Nothing reaches the narrator until the GM approves it. Replays on the same key."""
    item, _created = hold(
        campaign=session.campaign,
        session=session,
        source=ReviewItem.Source.ACTION,
        text=text,
        decision=decision,
        author=user,
        key=key,
        ref={"idempotency_key": key, "character": character},
    )
    notice_key = f"held:{key}"
    replay = events.find_replay(session.pk, notice_key)
    if replay is not None:
        return replay
    payload = {
        "review_id": item.pk,
        "source": "action",
        "text": text,
        "character": character,
        "notice": HELD_MESSAGE,
    }
    return events.append(
        session.pk,
        [events.NewEvent(type=HELD_EVENT, payload=payload, actor_id=user.pk, audience=[user.pk])],
        idempotency_key=notice_key,
    )


def queue_for(*, viewer, campaign_id: int) -> tuple[Campaign, Membership, list[int] | None]:
    """Who may review what: (campaign, membership, session ids) — None for a GM (every session),
    the stages the viewer moderates otherwise. NotFound for outsiders, Forbidden for the rest."""
    if not viewer.is_authenticated:
        raise NotFound("No such campaign.")
    membership = (
        Membership.objects.select_related("campaign", "campaign__pack")
        .filter(campaign_id=campaign_id, user=viewer)
        .first()
    )
    if membership is None:
        raise NotFound("No such campaign.")
    if membership.role == Membership.Role.GM:
        return membership.campaign, membership, None
    stages = list(
        StageSeat.objects.filter(membership=membership, role=StageSeat.Role.MODERATOR).values_list(
            "session_id", flat=True
        )
    )
    if not stages:
        raise Forbidden("Only the GM (or a stage's moderators) can see the review queue.")
    return membership.campaign, membership, stages


def queue_items(
    *, campaign: Campaign, sessions: list[int] | None, status: str | None = "pending", limit: int = 200
):
    items = ReviewItem.objects.filter(campaign=campaign).select_related("author", "decided_by", "session")
    if sessions is not None:
        items = items.filter(session_id__in=sessions)
    if status:
        items = items.filter(status=status)
    else:
        items = items.exclude(status=ReviewItem.Status.PENDING).order_by("-decided_at", "-pk")
    return list(items[:limit])


def audit_log(*, campaign: Campaign, sessions: list[int] | None, limit: int = 100) -> list[ReviewLog]:
    log = ReviewLog.objects.filter(campaign=campaign).select_related("actor", "item")
    if sessions is not None:
        log = log.filter(item__session_id__in=sessions)
    return list(log[:limit])


VERDICTS = ("approve", "edit", "reject")


def review_decide(
    *, viewer, campaign_id: int, item_id: int, verdict: str, text: str | None = None
) -> ReviewItem:
    """The GM's (or the stage moderator's) decision on a held item. approve: released as
    written; edit: released as `text`; reject: never shown. Releasing appends the event that
    shows it (an Action that starts the turn; a NarrationRevealed for a held sentence)."""
    campaign, membership, sessions = queue_for(viewer=viewer, campaign_id=campaign_id)
    if verdict not in VERDICTS:
        raise Invalid(f"verdict must be one of {', '.join(VERDICTS)}")
    if verdict == "edit":
        if not isinstance(text, str) or not text.strip():
            raise Invalid("An edit needs the new text.")
        text = text.strip()
        if len(text) > MAX_EDIT_CHARS:
            raise Invalid(f"An edit is at most {MAX_EDIT_CHARS} characters (this one is {len(text)}).")
        check_storable(text, what="The edit")
    with transaction.atomic():
        item = (
            ReviewItem.objects.select_for_update()
            .filter(pk=item_id, campaign=campaign)
            .filter(**({} if sessions is None else {"session_id__in": sessions}))
            .first()
        )
        if item is None:
            raise NotFound("No such item in your review queue.")
        if item.status != ReviewItem.Status.PENDING:
            raise Conflict(f"That item was already decided ({item.get_status_display().lower()}).")
        final = text if verdict == "edit" else item.text
        if verdict == "reject":
            item.status = ReviewItem.Status.REJECTED
        else:
            item.status = ReviewItem.Status.APPROVED
            item.final_text = final
            item.released_seq = _release(item, final, membership)
        item.decided_at = timezone.now()
        item.decided_by = viewer
        item.save()
        verb = {
            "approve": ReviewLog.Verb.APPROVED,
            "edit": ReviewLog.Verb.EDITED,
            "reject": ReviewLog.Verb.REJECTED,
        }
        ReviewLog.objects.create(
            campaign=campaign,
            item=item,
            actor=viewer,
            verb=verb[verdict],
            before=item.text,
            after=final if verdict != "reject" else "",
        )
        if item.source == ReviewItem.Source.ACTION and item.session_id and item.author_id:
            _tell_author(item, verdict)
    return item


def _release(item: ReviewItem, text: str, membership: Membership) -> int | None:
    session = item.session
    if item.source == ReviewItem.Source.ACTION:
        if session is None or item.author_id is None:
            raise Conflict("That action has no session or author any more.")
        if session.status != PlaySession.Status.ACTIVE:
            raise Conflict("That session has ended; resume it before approving the action.")
        key = item.ref.get("idempotency_key") or item.key
        if session.kind == PlaySession.Kind.STAGE:
            from campaigns.stage.windows import stage_action_submit

            author = Membership.objects.get(campaign_id=item.campaign_id, user_id=item.author_id)
            raw_key = key.split(":", 2)[2] if key.count(":") >= 2 else key
            result = stage_action_submit(
                session=session, membership=author, text=text, idempotency_key=raw_key
            )
        else:
            payload = {"text": text, "character": item.ref.get("character")}
            # The held action's own key: a client retrying the original submission now gets it.
            result = events.append(
                session.pk,
                [events.NewEvent(type="Action", payload=payload, actor_id=item.author_id)],
                idempotency_key=key,
            )
        return result.events[0].seq if result.events else None
    if item.source in (ReviewItem.Source.NARRATION, ReviewItem.Source.OPENING, ReviewItem.Source.BATCH):
        if session is None:
            return None
        payload = {
            "text": text,
            "of_seq": item.ref.get("action_seq"),
            "review_id": item.pk,
        }
        result = events.append(
            session.pk,
            [events.NewEvent(type=REVEALED_EVENT, payload=payload)],
            idempotency_key=f"revealed:{item.pk}",
        )
        return result.events[0].seq if result.events else None
    return None  # notes, docs, image prompts: approving lets them stand (nothing was withheld)


def _tell_author(item: ReviewItem, verdict: str) -> None:
    notice = {
        "approve": "The GM let your held action through.",
        "edit": "The GM let your held action through, edited.",
        "reject": "The GM did not let your held action through.",
    }[verdict]
    events.append(
        item.session_id,
        [
            events.NewEvent(
                type=RELEASED_EVENT,
                payload={"review_id": item.pk, "verdict": verdict, "notice": notice},
                audience=[item.author_id],
            )
        ],
        idempotency_key=f"released:{item.pk}",
    )
