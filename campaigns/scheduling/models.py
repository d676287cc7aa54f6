"""Schedules, single-occurrence changes, private calendar feeds and the upcoming-session notices.

Times of a schedule are wall-clock times in its IANA zone (recurrence.py says why); instants
(an override's new start, a notice's occurrence) are aware UTC datetimes as Django stores them.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.db import models

from campaigns.models import Campaign
from campaigns.scheduling import recurrence


def _uid() -> str:
    return f"{uuid.uuid4().hex}@galactic-tale-weaver"


class SessionSchedule(models.Model):
    """When a campaign plays: a first session, a repeat rule, skipped dates and single changes.
    Not `Schedule`: django-q owns that name."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="session_schedules")
    # The feed's UID for every event of this schedule, forever (calendar clients key on it).
    uid = models.CharField(max_length=120, unique=True, default=_uid, editable=False)
    title = models.CharField(max_length=120, blank=True)
    notes = models.TextField(blank=True)
    start_date = models.DateField()
    start_time = models.TimeField()
    time_zone = models.CharField(max_length=64)
    duration_minutes = models.PositiveIntegerField()
    rrule = models.CharField(max_length=600, blank=True)  # normalized, no "RRULE:" prefix
    exdates = models.JSONField(default=list, blank=True)  # naive local ISO datetimes, sorted
    # Bumped on every material change of the series (RFC 5545 SEQUENCE): clients update on it.
    sequence = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["campaign", "start_date", "start_time", "pk"]

    def __str__(self):
        return self.title or f"Sessions of {self.campaign_id}"

    @property
    def dtstart(self) -> datetime:
        return datetime.combine(self.start_date, self.start_time).replace(second=0, microsecond=0)

    @property
    def display_title(self) -> str:
        return self.title or self.campaign.name

    def spec(self, overrides=None) -> recurrence.Spec:
        """The pure value; `overrides` defaults to the prefetched/related rows."""
        tz = recurrence.zone(self.time_zone)
        rows = self.overrides.all() if overrides is None else overrides
        return recurrence.Spec(
            dtstart=self.dtstart,
            tz=tz,
            duration=timedelta(minutes=self.duration_minutes),
            rule=self.rrule,
            exdates=tuple(datetime.fromisoformat(x) for x in self.exdates),
            overrides=tuple(o.as_value(tz) for o in rows),
        )


class ScheduleOverride(models.Model):
    """One occurrence moved or cancelled: a RECURRENCE-ID event in the feed."""

    schedule = models.ForeignKey(SessionSchedule, on_delete=models.CASCADE, related_name="overrides")
    # The occurrence as the rule made it (its recurrence id): a naive local wall time in the
    # schedule's zone, ISO "2027-01-21T19:30:00" (sortable; not an instant, so no DateTimeField).
    original = models.CharField(max_length=19)
    cancelled = models.BooleanField(default=False)
    start = models.DateTimeField(null=True, blank=True)  # the new start, an instant (UTC)
    duration_minutes = models.PositiveIntegerField(null=True, blank=True)
    sequence = models.PositiveIntegerField(default=1)  # this instance's own changes
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["schedule", "original"]
        constraints = [
            models.UniqueConstraint(fields=["schedule", "original"], name="schedule_override_unique")
        ]

    def __str__(self):
        return f"{'cancelled' if self.cancelled else 'moved'} {self.original_local:%Y-%m-%d %H:%M}"

    @property
    def original_local(self) -> datetime:
        return datetime.fromisoformat(self.original)

    def as_value(self, tz) -> recurrence.Override:
        return recurrence.Override(
            original=self.original_local,
            cancelled=self.cancelled,
            start=recurrence.to_local(self.start, tz) if self.start else None,
            duration=timedelta(minutes=self.duration_minutes) if self.duration_minutes else None,
        )


class CalendarProfile(models.Model):
    """A user's calendar preferences: the zone their pages show session times in."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="calendar")
    time_zone = models.CharField(max_length=64, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return f"{self.user_id}: {self.time_zone or 'UTC'}"


class CalendarFeed(models.Model):
    """A private feed URL: one campaign, or (campaign NULL) every campaign the user is in *now*.
    Only the token's SHA-256 is kept; the token itself is shown once."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="calendar_feeds"
    )
    campaign = models.ForeignKey(
        Campaign, null=True, blank=True, on_delete=models.CASCADE, related_name="calendar_feeds"
    )
    token_hash = models.CharField(max_length=64, unique=True)
    hint = models.CharField(max_length=8)  # the token's last characters, to tell feeds apart
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        scope = f"campaign {self.campaign_id}" if self.campaign_id else "all campaigns"
        return f"feed …{self.hint} of {self.user_id} ({scope})"

    @staticmethod
    def hash(token: str) -> str:
        return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()

    @classmethod
    def new_token(cls) -> str:
        return secrets.token_urlsafe(32)


class UpcomingNotice(models.Model):
    """One SessionUpcoming notice: an occurrence `lead_minutes` ahead. The unique constraint is
    what makes it once per occurrence and lead time, whatever the number of workers."""

    schedule = models.ForeignKey(SessionSchedule, on_delete=models.CASCADE, related_name="notices")
    occurrence = models.DateTimeField()  # the occurrence's recurrence id, as an instant (UTC)
    starts_at = models.DateTimeField()  # where it starts (a moved one differs from its id)
    lead_minutes = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["schedule", "occurrence", "lead_minutes"], name="upcoming_notice_once"
            )
        ]
        indexes = [models.Index(fields=["starts_at"], name="upcoming_notice_starts")]

    def __str__(self):
        return f"{self.schedule_id} @{self.starts_at:%Y-%m-%d %H:%M} (-{self.lead_minutes} min)"


class ReminderPreference(models.Model):
    """A member's reminders for one campaign: email before each session (on unless turned off;
    at every lead time or the chosen ones), and the dashboard notice (on unless turned off)."""

    membership = models.OneToOneField(
        "campaigns.Membership", on_delete=models.CASCADE, related_name="reminders"
    )
    email = models.BooleanField(default=True)
    # The notice on the member's dashboard ("announced") before each session.
    notice = models.BooleanField(default=True)
    # Which of the site's lead times (GTW_CALENDAR_LEAD_MINUTES) the member's email comes at;
    # empty: every one of them.
    lead_minutes = models.JSONField(default=list, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return f"{self.membership_id}: email {'on' if self.email else 'off'}"

    def wants_email_at(self, lead: int) -> bool:
        return self.email and (not self.lead_minutes or lead in self.lead_minutes)


class ReminderDelivery(models.Model):
    """The delivery log the GM reads: one row per notice, channel and member. The unique
    constraint is what keeps it to one reminder per occurrence, lead time and member."""

    class Status(models.TextChoices):
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    notice = models.ForeignKey(UpcomingNotice, on_delete=models.CASCADE, related_name="deliveries")
    channel = models.CharField(max_length=12, default="email")  # email | webhook
    # The member mailed; NULL for the campaign's webhook (one per notice).
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    status = models.CharField(max_length=8, choices=Status.choices)
    attempts = models.PositiveSmallIntegerField(default=1)
    error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["notice", "channel", "user"], name="reminder_delivery_once"),
            models.UniqueConstraint(
                fields=["notice", "channel"],
                condition=models.Q(user__isnull=True),
                name="reminder_webhook_once",
            ),
        ]

    def __str__(self):
        return f"{self.channel} to {self.user_id}: {self.status}"


class CampaignWebhook(models.Model):
    """Where a campaign's reminders are also POSTed, signed with HMAC-SHA256 (set by the GM)."""

    campaign = models.OneToOneField(Campaign, on_delete=models.CASCADE, related_name="reminder_webhook")
    url = models.URLField(max_length=500)
    secret = models.CharField(max_length=64)  # the GM verifies signatures with it
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f"webhook of {self.campaign_id}"


class WarmupRun(models.Model):
    """A pre-session warm-up: each provider role checked, the recap's recall prefetched, the
    scene image's prefetch asked for (scheduling/warmup.py). One per occurrence (the unique
    constraint, as for notices); a GM's "run warm-up now" is a run without an occurrence."""

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        OK = "ok", "All good"
        PROBLEMS = "problems", "Problems"

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="warmups")
    schedule = models.ForeignKey(
        SessionSchedule, null=True, blank=True, on_delete=models.CASCADE, related_name="warmups"
    )
    occurrence = models.DateTimeField(null=True, blank=True)  # the recurrence id (UTC), like a notice's
    starts_at = models.DateTimeField(null=True, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    # [{"check": "narrator provider", "ok": true, "detail": "offline answered", "ms": 3.1}, ...]
    checks = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["schedule", "occurrence"],
                condition=models.Q(schedule__isnull=False),
                name="warmup_once_per_occurrence",
            )
        ]
        indexes = [models.Index(fields=["campaign", "-created_at"], name="warmup_latest")]

    def __str__(self):
        return f"warm-up of {self.campaign_id} ({self.status})"

    @property
    def problems(self) -> list[dict]:
        return [c for c in self.checks if not c.get("ok")]
