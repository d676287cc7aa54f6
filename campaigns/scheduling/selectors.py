"""Reads, through the viewer (tenancy in the query): schedules of the viewer's campaigns, their
occurrences, the viewer's next sessions, and the schedules a feed token may show."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from django.db.models import Prefetch, Q

from campaigns.errors import NotFound
from campaigns.models import Campaign
from campaigns.scheduling import recurrence
from campaigns.scheduling.models import (
    CalendarFeed,
    CalendarProfile,
    ScheduleOverride,
    SessionSchedule,
    UpcomingNotice,
)
from campaigns.selectors import membership_get

# Feed tokens are token_urlsafe(32): 43 characters. Anything far longer is not looked up.
FEED_TOKEN_MAX = 64
UPCOMING_DAYS = 60


def _with_overrides(queryset):
    return queryset.select_related("campaign").prefetch_related(
        Prefetch("overrides", queryset=ScheduleOverride.objects.order_by("original"))
    )


def schedule_list(*, viewer, campaign_id: int) -> list[SessionSchedule]:
    membership = membership_get(viewer=viewer, campaign_id=campaign_id)
    return list(_with_overrides(SessionSchedule.objects.filter(campaign_id=membership.campaign_id)))


def schedule_get(*, viewer, campaign_id: int, schedule_id) -> tuple[SessionSchedule, object]:
    """The schedule and the viewer's membership, or NotFound (also for another campaign's)."""
    membership = membership_get(viewer=viewer, campaign_id=campaign_id)
    try:
        pk = int(schedule_id)
    except (TypeError, ValueError):
        raise NotFound("No such schedule.") from None
    schedule = _with_overrides(
        SessionSchedule.objects.filter(pk=pk, campaign_id=membership.campaign_id)
    ).first()
    if schedule is None:
        raise NotFound("No such schedule.")
    return schedule, membership


@dataclass(frozen=True)
class Upcoming:
    """One session for a page: the occurrence plus what to call it and where it belongs."""

    schedule: SessionSchedule
    occurrence: recurrence.Occurrence
    local_start: datetime  # in the viewer's zone (aware)
    local_end: datetime
    noticed: bool = False

    @property
    def campaign(self) -> Campaign:
        return self.schedule.campaign

    @property
    def original_value(self) -> str:
        return self.occurrence.original.strftime("%Y-%m-%dT%H:%M")

    @property
    def schedule_local_start(self) -> datetime:
        return self.occurrence.start.astimezone(recurrence.zone(self.schedule.time_zone))


def viewer_zone(viewer) -> ZoneInfo | None:
    """The zone the viewer saved (None: not chosen yet; pages then show UTC and say so)."""
    if not viewer.is_authenticated:
        return None
    profile = CalendarProfile.objects.filter(user=viewer).first()
    if profile is None or not profile.time_zone:
        return None
    try:
        return recurrence.zone(profile.time_zone)
    except recurrence.RecurrenceError:
        return None


def occurrences(
    schedules, *, start: datetime, end: datetime, tz: ZoneInfo | None, include_cancelled=False, limit=200
) -> list[Upcoming]:
    """The sessions of `schedules` starting in [start, end), in order, shown in `tz` (UTC if None)."""
    shown = tz or ZoneInfo("UTC")
    out: list[Upcoming] = []
    for schedule in schedules:
        spec = schedule.spec()
        for occ in recurrence.expand(spec, start, end, include_cancelled=include_cancelled, limit=limit):
            out.append(Upcoming(schedule, occ, occ.start.astimezone(shown), occ.end.astimezone(shown)))
    out.sort(key=lambda u: (u.occurrence.start, u.schedule.pk))
    return out[:limit]


def campaign_upcoming(*, viewer, campaign_id: int, now: datetime, limit: int = 8) -> list[Upcoming]:
    """The campaign's next sessions (cancelled ones included, marked), in the viewer's zone."""
    schedules = schedule_list(viewer=viewer, campaign_id=campaign_id)
    return occurrences(
        schedules,
        start=now,
        end=now + timedelta(days=366),
        tz=viewer_zone(viewer),
        include_cancelled=True,
        limit=limit,
    )


def viewer_upcoming(*, viewer, now: datetime, days: int = UPCOMING_DAYS, limit: int = 8) -> list[Upcoming]:
    """The viewer's next sessions over all their campaigns, in their zone; those already
    announced (a SessionUpcoming notice) are marked."""
    if not viewer.is_authenticated:
        return []
    schedules = list(
        _with_overrides(SessionSchedule.objects.filter(campaign__memberships__user=viewer)).order_by("pk")
    )
    found = occurrences(
        schedules, start=now, end=now + timedelta(days=days), tz=viewer_zone(viewer), limit=limit
    )
    if not found:
        return found
    noticed = set(
        UpcomingNotice.objects.filter(
            schedule_id__in={u.schedule.pk for u in found}, starts_at__gte=now
        ).values_list("schedule_id", "starts_at")
    )
    return [
        Upcoming(
            u.schedule,
            u.occurrence,
            u.local_start,
            u.local_end,
            (u.schedule.pk, u.occurrence.start) in noticed,
        )
        for u in found
    ]


def feed_resolve(token: str) -> CalendarFeed | None:
    """The live feed whose token this is, or None (unknown, revoked, malformed). The stored
    hash is compared in constant time; the token itself is never logged or stored."""
    if not isinstance(token, str) or not 20 <= len(token) <= FEED_TOKEN_MAX or not token.isascii():
        return None
    digest = CalendarFeed.hash(token)
    feed = (
        CalendarFeed.objects.select_related("user", "campaign")
        .filter(token_hash=digest, revoked_at__isnull=True, user__is_active=True)
        .first()
    )
    if feed is None or not hmac.compare_digest(feed.token_hash, digest):
        return None
    return feed


def feed_schedules(feed: CalendarFeed) -> list[SessionSchedule] | None:
    """What the feed may show: schedules of the campaigns its owner is in *now* (of its one
    campaign, for a campaign feed). None when a campaign feed's owner has left the campaign:
    the feed is then 404, like a revoked one."""
    memberships = feed.user.memberships.all()
    if feed.campaign_id is not None:
        if not memberships.filter(campaign_id=feed.campaign_id).exists():
            return None
        queryset = SessionSchedule.objects.filter(campaign_id=feed.campaign_id)
    else:
        queryset = SessionSchedule.objects.filter(campaign__memberships__user_id=feed.user_id)
    return list(_with_overrides(queryset).order_by("campaign_id", "pk"))


def feeds_of(*, viewer) -> list[CalendarFeed]:
    """The viewer's live feeds (a campaign feed only while they are in the campaign)."""
    if not viewer.is_authenticated:
        return []
    return list(
        CalendarFeed.objects.filter(user=viewer, revoked_at__isnull=True)
        .filter(Q(campaign__isnull=True) | Q(campaign__memberships__user=viewer))
        .select_related("campaign")
        .distinct()
        .order_by("-created_at")
    )


def utc_now() -> datetime:
    return datetime.now(UTC)
