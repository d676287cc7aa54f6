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
    ReminderPreference,
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
        _with_overrides(
            SessionSchedule.objects.filter(campaign__memberships__user=viewer, campaign__archived=False)
        ).order_by("pk")
    )
    found = occurrences(
        schedules, start=now, end=now + timedelta(days=days), tz=viewer_zone(viewer), limit=limit
    )
    if not found:
        return found
    # Campaigns where the viewer turned the dashboard notice off show no "announced" mark.
    quiet = set(
        ReminderPreference.objects.filter(membership__user=viewer, notice=False).values_list(
            "membership__campaign_id", flat=True
        )
    )
    noticed = set(
        UpcomingNotice.objects.filter(
            schedule_id__in={u.schedule.pk for u in found if u.schedule.campaign_id not in quiet},
            starts_at__gte=now,
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


@dataclass(frozen=True)
class FeedLookup:
    """A live feed as the feed view needs it, read in one query: who and what it is for, and
    a fingerprint of everything its events are made of (uid, sequence, times, campaign
    name, each override's version: the inputs of ics's per-schedule cache key)."""

    feed: CalendarFeed
    username: str
    campaign_name: str
    fingerprint: str


_FEED_LOOKUP = """
SELECT f.id, f.user_id, f.campaign_id, f.token_hash, u.username, c.name,
       f.campaign_id IS NULL OR EXISTS (
           SELECT 1 FROM {membership} m WHERE m.campaign_id = f.campaign_id AND m.user_id = f.user_id
       ) AS member,
       (SELECT md5(string_agg(concat_ws('|', s.id, s.uid, s.sequence, s.updated_at, s.created_at,
                                        s.campaign_id, sc.name,
                                        (SELECT string_agg(concat_ws(':', o.id, o.sequence, o.updated_at),
                                                           ',' ORDER BY o.id)
                                           FROM {override} o WHERE o.schedule_id = s.id)),
                              ';' ORDER BY s.campaign_id, s.id))
          FROM {schedule} s JOIN {campaign} sc ON sc.id = s.campaign_id
         WHERE NOT sc.archived
           AND CASE WHEN f.campaign_id IS NOT NULL THEN s.campaign_id = f.campaign_id
                    ELSE EXISTS (SELECT 1 FROM {membership} m2
                                  WHERE m2.campaign_id = s.campaign_id AND m2.user_id = f.user_id) END
       ) AS fingerprint
  FROM {feed} f
  JOIN {user} u ON u.id = f.user_id
  LEFT JOIN {campaign} c ON c.id = f.campaign_id
 WHERE f.token_hash = %s AND f.revoked_at IS NULL AND u.is_active
"""


def feed_lookup(token: str) -> FeedLookup | None:
    """`feed_resolve` + `feed_scope`'s membership check + the fingerprint, in one round trip
    (the feed is what calendar clients poll; gtw bench calendar measures it). None: 404."""
    from django.contrib.auth import get_user_model
    from django.db import connection

    from campaigns.models import Membership

    if not isinstance(token, str) or not 20 <= len(token) <= FEED_TOKEN_MAX or not token.isascii():
        return None
    digest = CalendarFeed.hash(token)
    sql = _FEED_LOOKUP.format(
        feed=CalendarFeed._meta.db_table,
        user=get_user_model()._meta.db_table,
        campaign=Campaign._meta.db_table,
        membership=Membership._meta.db_table,
        schedule=SessionSchedule._meta.db_table,
        override=ScheduleOverride._meta.db_table,
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [digest])
        row = cursor.fetchone()
    if row is None or not hmac.compare_digest(row[3], digest) or not row[6]:
        return None
    feed = CalendarFeed(pk=row[0], user_id=row[1], campaign_id=row[2], token_hash=row[3])
    return FeedLookup(feed=feed, username=row[4], campaign_name=row[5] or "", fingerprint=row[7] or "")


def feed_scope(feed: CalendarFeed):
    """The queryset of schedules the feed may show: of the campaigns its owner is in *now* (of
    its one campaign, for a campaign feed), archived campaigns left out. None when a campaign
    feed's owner has left the campaign: the feed is then 404, like a revoked one."""
    if feed.campaign_id is not None:
        if not feed.user.memberships.filter(campaign_id=feed.campaign_id).exists():
            return None
        queryset = SessionSchedule.objects.filter(campaign_id=feed.campaign_id)
    else:
        queryset = SessionSchedule.objects.filter(campaign__memberships__user_id=feed.user_id)
    # An archived campaign plays no more sessions: its feed stays valid but lists none.
    return queryset.filter(campaign__archived=False).order_by("campaign_id", "pk")


def feed_schedules(feed: CalendarFeed) -> list[SessionSchedule] | None:
    """The schedules `feed_scope` allows, with their overrides (None: the feed is 404)."""
    queryset = feed_scope(feed)
    return None if queryset is None else list(_with_overrides(queryset))


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
