"""Reminders before a session (issue 16, part 3): when a SessionUpcoming notice is sent, every
member who has not turned reminders off gets one email through Django's mail, with a
"Previously…" recap (the campaign's last public recap or narration), and the campaign's
webhook, if the GM set one, gets a signed POST (webhooks.py). The notice itself shows on the
members' dashboards.

Once per occurrence, lead time and member: the ReminderDelivery row (unique notice, channel,
user) is written before the mail goes out, in its own transaction; a second worker, a retry or
a restart finds it and sends nothing. A failed send is logged on the row (the GM reads the log
on the campaign page) and is not retried: a reminder that arrives late is worse than none.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction

from campaigns.errors import Invalid
from campaigns.models import Event, Membership
from campaigns.scheduling import recurrence
from campaigns.scheduling.models import ReminderDelivery, ReminderPreference, UpcomingNotice
from campaigns.state import withdrawn_seqs

log = logging.getLogger(__name__)
RECAP_CHARS = 600


def on_session_upcoming(sender, *, notice_id: int, **kwargs) -> None:
    """The receiver of `signals.session_upcoming`: queue the mails (a task, ids only)."""
    from gtw_site.jobs import enqueue

    enqueue("campaigns.scheduling.reminders.reminders_send", notice_id)
    enqueue("campaigns.scheduling.webhooks.webhook_send", notice_id)


def previously(campaign_id: int) -> str:
    """The campaign's last public recap, else its last public narration (never a whisper)."""
    public = Event.objects.filter(session__campaign_id=campaign_id, audience__isnull=True)
    for kind in ("Recap", "Narration"):
        recent = public.filter(type=kind).select_related("session").order_by("-created_at", "-seq")[:20]
        for event in recent:
            if event.seq in withdrawn_seqs(event.session.state):
                continue  # the X-card took it back from the table (issue 18): never mail it
            if isinstance(event.payload.get("text"), str) and event.payload["text"].strip():
                text = " ".join(event.payload["text"].split())
                return text if len(text) <= RECAP_CHARS else text[: RECAP_CHARS - 1].rsplit(" ", 1)[0] + "…"
    return ""


def _body(notice: UpcomingNotice, membership: Membership, recap: str) -> tuple[str, str]:
    schedule = notice.schedule
    campaign = schedule.campaign
    zone = recurrence.zone(schedule.time_zone)
    profile_zone = getattr(getattr(membership.user, "calendar", None), "time_zone", "") or ""
    shown = recurrence.zone(profile_zone) if profile_zone else zone
    start = notice.starts_at.astimezone(shown)
    subject = f"{campaign.name}: next session {start:%a %d %b, %H:%M} ({shown.key})"
    lines = [
        f"Hello {membership.user.username},",
        "",
        f"{campaign.name} plays {start:%A %d %B at %H:%M} ({shown.key}).",
    ]
    if schedule.title:
        lines.append(f"Session: {schedule.title}")
    if schedule.notes:
        lines += ["", schedule.notes]
    if recap:
        lines += ["", "Previously…", recap]
    site = (settings.SITE_URL or "").rstrip("/")
    if site:
        lines += ["", f"Campaign page: {site}/campaigns/{campaign.pk}/"]
    lines += ["", "You get this because you are in the campaign; turn reminders off on its page."]
    return subject, "\n".join(lines)


def reminders_send(notice_id: int) -> int:
    """Mail the notice's members (those with reminders on and an address); how many were sent."""
    notice = (
        UpcomingNotice.objects.select_related("schedule", "schedule__campaign").filter(pk=notice_id).first()
    )
    if notice is None:
        return 0
    prefs = ReminderPreference.objects.filter(membership__campaign_id=notice.schedule.campaign_id)
    # Off, or on at other lead times than this notice's (a member's choice among the site's).
    muted = {p.membership_id for p in prefs if not p.wants_email_at(notice.lead_minutes)}
    members = Membership.objects.filter(campaign_id=notice.schedule.campaign_id).select_related(
        "user", "user__calendar"
    )
    recap = previously(notice.schedule.campaign_id)
    sent = 0
    for membership in members:
        if membership.pk in muted or not membership.user.email or not membership.user.is_active:
            continue
        try:
            with transaction.atomic():
                row = ReminderDelivery.objects.create(
                    notice=notice, channel="email", user=membership.user, status=ReminderDelivery.Status.SENT
                )
        except IntegrityError:
            continue  # already sent (another worker, a retry)
        subject, body = _body(notice, membership, recap)
        try:
            send_mail(subject, body, None, [membership.user.email], fail_silently=False)
        except Exception as exc:  # noqa: BLE001 - any mail failure is logged for the GM, not raised
            log.warning(
                "reminder %s to user %s failed: %s", notice.pk, membership.user_id, type(exc).__name__
            )
            ReminderDelivery.objects.filter(pk=row.pk).update(
                status=ReminderDelivery.Status.FAILED, error=f"{type(exc).__name__}: {exc}"[:300]
            )
            continue
        sent += 1
    return sent


@transaction.atomic
def reminder_set(
    *, membership: Membership, email: bool, notice: bool | None = None, lead_minutes=None
) -> ReminderPreference:
    """A member's reminders for this campaign: email on/off, the dashboard notice on/off
    (None: unchanged), and the lead times their email comes at — a choice among the site's
    (GTW_CALENDAR_LEAD_MINUTES), at least one; None leaves them. Stored as [] when all are
    chosen, so a lead time the operator adds later reaches them too."""
    defaults: dict = {"email": bool(email)}
    if notice is not None:
        defaults["notice"] = bool(notice)
    if lead_minutes is not None:
        defaults["lead_minutes"] = lead_choice(lead_minutes)
    pref, _ = ReminderPreference.objects.update_or_create(membership=membership, defaults=defaults)
    return pref


def site_leads() -> list[int]:
    from campaigns.scheduling.tasks import lead_minutes

    return lead_minutes()


def lead_choice(values) -> list[int]:
    """The chosen lead times, checked against the site's; all of them is stored as []."""
    allowed = site_leads()
    if isinstance(values, str | int):
        values = [values]
    chosen: set[int] = set()
    for raw in list(values)[:20]:
        try:
            lead = int(raw)
        except (TypeError, ValueError):
            raise Invalid("Lead times are whole numbers of minutes.") from None
        if lead not in allowed:
            offered = ", ".join(describe_lead(x) for x in allowed)
            raise Invalid(f"Reminders come {offered} before a session; {lead} minutes is not one of them.")
        chosen.add(lead)
    if not chosen:
        raise Invalid("Choose at least one reminder time, or turn email reminders off.")
    return [] if chosen == set(allowed) else sorted(chosen, reverse=True)


def describe_lead(minutes: int) -> str:
    if minutes % 1440 == 0:
        days = minutes // 1440
        return f"{days} day{'s' if days != 1 else ''}"
    if minutes % 60 == 0:
        hours = minutes // 60
        return f"{hours} hour{'s' if hours != 1 else ''}"
    return f"{minutes} minutes"


def deliveries_for(*, membership: Membership, limit: int = 20) -> list[ReminderDelivery]:
    """The campaign's delivery log, for its GM (players get an empty list)."""
    if membership.role != Membership.Role.GM:
        return []
    return list(
        ReminderDelivery.objects.filter(notice__schedule__campaign_id=membership.campaign_id)
        .select_related("user", "notice")
        .order_by("-created_at")[:limit]
    )
