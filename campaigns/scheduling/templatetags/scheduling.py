"""The calendar's partials on pages other apps own: the campaign page's schedule card and the
dashboard's next sessions. Each reads through the selectors with the page's viewer, so the
campaign and dashboard views need no change to show them."""

from __future__ import annotations

from datetime import timedelta

from django import template

from campaigns.models import Membership
from campaigns.scheduling import describe, reminders, selectors, services, warmup
from campaigns.scheduling.models import CampaignWebhook, ReminderPreference
from campaigns.scheduling.recurrence import _zones

register = template.Library()
REPEAT_CHOICES = [
    ("none", "Does not repeat"),
    ("weekly", "Every week"),
    ("biweekly", "Every other week"),
    ("monthly", "Every month (same day)"),
    ("custom", "Custom rule (below)"),
]


def _base(context) -> dict:
    return {
        "csrf_token": context.get("csrf_token"),
        "request": context.get("request"),
        "user": context.get("user"),
    }


@register.inclusion_tag("scheduling/_campaign_schedule.html", takes_context=True)
def campaign_schedule(context, campaign, membership):
    viewer = context["request"].user
    now = selectors.utc_now()
    schedules = selectors.schedule_list(viewer=viewer, campaign_id=campaign.pk)
    upcoming = selectors.occurrences(
        schedules,
        start=now,
        end=now + timedelta(days=366),
        tz=selectors.viewer_zone(viewer),
        include_cancelled=True,
        limit=8,
    )
    is_gm = membership.role == Membership.Role.GM
    return {
        **_base(context),
        "campaign": campaign,
        "is_gm": is_gm,
        "schedules": [{"schedule": s, **describe.schedule_form(s)} for s in schedules],
        "upcoming": upcoming,
        "zone": selectors.viewer_zone(viewer),
        "zones": sorted(_zones()) if is_gm else [],
        "default_start": services.default_start(now).strftime("%Y-%m-%dT%H:%M"),
        "repeat_choices": REPEAT_CHOICES,
        **_reminder_context(membership),
        "warmup": warmup.latest_for(membership=membership),
        "warmup_minutes": warmup.warmup_minutes(),
        "deliveries": reminders.deliveries_for(membership=membership),
        "webhook": CampaignWebhook.objects.filter(campaign_id=campaign.pk).first() if is_gm else None,
    }


def _reminder_context(membership) -> dict:
    pref = ReminderPreference.objects.filter(membership=membership).first()
    chosen = set(pref.lead_minutes) if pref and pref.lead_minutes else None
    return {
        "email_reminders": pref is None or pref.email,
        "notice_reminders": pref is None or pref.notice,
        "reminder_leads": [
            {"minutes": m, "label": reminders.describe_lead(m), "on": chosen is None or m in chosen}
            for m in reminders.site_leads()
        ],
    }


@register.inclusion_tag("scheduling/_dashboard_sessions.html", takes_context=True)
def next_sessions(context):
    viewer = context["request"].user
    return {
        **_base(context),
        "upcoming": selectors.viewer_upcoming(viewer=viewer, now=selectors.utc_now()),
        "zone": selectors.viewer_zone(viewer),
        "has_campaigns": viewer.is_authenticated and viewer.memberships.exists(),
    }
