"""`gtw bench calendar`: how long a subscriber's calendar feed takes to serve.

A user in N campaigns (`--calendar-campaigns`, default 50), each with a weekly schedule (zones
around the world, skipped dates, a moved and a cancelled session), and their all-campaigns
feed: `GET /calendar/<token>.ics` through Django's whole stack (middleware, URL resolver, the
view: token lookup, the tenancy query, the ICS build, the ETag) by the in-process test client,
on the embedded PostgreSQL + Redis in var/bench (its own database, gtw_bench_calendar). A
calendar client polls with If-None-Match; the figures are for full bodies (no ETag sent), the
worse case. Not a test: prints p50/p95/p99, a final JSON line, and (unless --no-write) its row
in docs/BENCHMARKS.md. Target (issue 16): p95 < 50 ms.
"""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import UTC, date, datetime, timedelta

from gtw_site.bench.common import (
    BASE_DIR,
    DATA_DIR,
    DOC,
    json_ms,
    machine_text,
    percentile,
    setup_database,
    update_section,
)

DB_NAME = "gtw_bench_calendar"
SECTION = "## gtw bench calendar"
SUBSCRIBER = "bench-cal-subscriber"
WARMUP_REQUESTS = 20
REQUESTS = 300
COLD_REQUESTS = 30
ZONES = ("Europe/Berlin", "America/New_York", "Asia/Tokyo", "Australia/Sydney", "UTC", "America/Sao_Paulo")
HOW_MEASURED = """\
How measured: `gtw bench calendar` makes a user who is in N campaigns (default 50), each with a
weekly schedule (six zones in turn, DST changes included, two skipped dates, one moved and one
cancelled session), and fetches their all-campaigns feed `GET /calendar/<token>.ics` 300 times
(after 20 unmeasured) through Django's full stack in one process (the test client: middleware,
URL resolver, the view — token lookup, the tenancy query, the ICS build, the ETag), on the
embedded PostgreSQL + Redis in var/bench, database gtw_bench_calendar. No If-None-Match is sent,
so every response is a full body (the 304 a polling client usually gets is cheaper). An unchanged
feed is served from the cache after one query that reads the feed and a fingerprint of all its
schedules (what clients polling see); **cold** is 30 more requests that each rebuild the whole
feed, every schedule's events included (as if all had just changed). Percentiles are nearest
rank. Target (issue 16): p95 < 50 ms."""
TABLE_HEADER = (
    "| campaigns | requests | feed p50 / p95 / p99 (ms) | cold p50 / p95 (ms) | body (KiB) | events | "
    "machine (nproc x CPU, 1-min load before) | date | command |\n"
    "|---:|---:|---|---|---:|---:|---|---|---|"
)


def setup() -> None:
    """Point Django at var/bench's embedded PostgreSQL, database gtw_bench_calendar (created and
    migrated here), with content packs loaded. Never a DATABASE_URL from the user's shell."""
    setup_database(DATA_DIR, DB_NAME)


def ensure_dataset(campaigns: int) -> str:
    """The subscriber in `campaigns` campaigns with weekly schedules (made once, reused); returns
    a fresh all-campaigns feed token (the old ones are revoked)."""
    from django.contrib.auth import get_user_model
    from django.db import transaction

    from campaigns import selectors, services
    from campaigns.models import Membership
    from campaigns.scheduling import services as scheduling
    from campaigns.scheduling.models import CalendarFeed

    users = get_user_model().objects
    subscriber = users.get_or_create(username=SUBSCRIBER, defaults={"password": "!"})[0]
    have = Membership.objects.filter(user=subscriber).count()
    for i in range(have, campaigns):
        gm = users.get_or_create(username=f"bench-cal-gm{i}", defaults={"password": "!"})[0]
        with transaction.atomic():
            campaign = services.campaign_create(user=gm, name=f"Calendar bench {i:03d}", pack_slug="starter")
            Membership.objects.create(campaign=campaign, user=subscriber, role=Membership.Role.PLAYER)
            gm_m = selectors.membership_get(viewer=gm, campaign_id=campaign.pk)
            first = date(2027, 1, 4) + timedelta(days=i % 7)
            schedule = scheduling.schedule_create(
                membership=gm_m,
                title=f"Session night {i}",
                notes="Bring dice. The relay codes are on the campaign page.",
                start=f"{first.isoformat()}T19:30",
                time_zone=ZONES[i % len(ZONES)],
                duration_minutes=180,
                rrule="FREQ=WEEKLY",
                exdates=[(first + timedelta(weeks=w)).isoformat() for w in (3, 7)],
            )
            moved = datetime.combine(first + timedelta(weeks=2), datetime.min.time()).replace(
                hour=19, minute=30
            )
            scheduling.occurrence_move(
                membership=gm_m,
                schedule=schedule,
                original=moved.isoformat(),
                start=(moved + timedelta(days=1)).isoformat(),
            )
            scheduling.occurrence_cancel(
                membership=gm_m,
                schedule=schedule,
                original=(moved + timedelta(weeks=3)).isoformat(),
            )
    CalendarFeed.objects.filter(user=subscriber, revoked_at__isnull=True).update(revoked_at=datetime.now(UTC))
    _feed, token = scheduling.feed_create(user=subscriber)
    return token


def measure(token: str) -> dict:
    from django.test import Client

    client = Client(HTTP_HOST="localhost")
    url = f"/calendar/{token}.ics"
    for _ in range(WARMUP_REQUESTS):
        response = client.get(url)
        assert response.status_code == 200, response.status_code
    latencies = []
    for _ in range(REQUESTS):
        started = time.perf_counter()
        response = client.get(url)
        latencies.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise RuntimeError(f"the feed answered {response.status_code}")
    body = response.content
    # Cold: as if every schedule had just changed (a new site URL is part of both cache keys, the
    # served feed's and each schedule's events'), so each request rebuilds the whole feed.
    from django.conf import settings

    site = settings.SITE_URL
    cold = []
    try:
        for i in range(COLD_REQUESTS):
            settings.SITE_URL = f"https://cold-{time.time_ns()}-{i}.example"
            started = time.perf_counter()
            response = client.get(url)
            cold.append((time.perf_counter() - started) * 1000)
            if response.status_code != 200:
                raise RuntimeError(f"the feed answered {response.status_code}")
    finally:
        settings.SITE_URL = site
    return {"latencies": latencies, "cold": cold, "bytes": len(body), "events": body.count(b"BEGIN:VEVENT")}


def main(args) -> int:
    campaigns = args.calendar_campaigns
    if campaigns < 1:
        sys.stderr.write("gtw bench calendar: --calendar-campaigns must be at least 1\n")
        return 2
    load = os.getloadavg()[0]
    setup()
    from django.conf import settings

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "localhost"]
    print(
        f"gtw bench calendar: a user in {campaigns} campaigns, database {DB_NAME} in {DATA_DIR}", flush=True
    )
    token = ensure_dataset(campaigns)
    result = measure(token)
    lat = result["latencies"]
    p = {q: percentile(lat, q) for q in (50, 95, 99)}
    command = "gtw bench calendar" + (f" --calendar-campaigns {campaigns}" if campaigns != 50 else "")
    cells = [
        campaigns,
        len(lat),
        " / ".join(f"{p[q]:.1f}" for q in (50, 95, 99)),
        " / ".join(f"{percentile(result['cold'], q):.0f}" for q in (50, 95)),
        f"{result['bytes'] / 1024:.0f}",
        result["events"],
        machine_text(load),
        datetime.now(UTC).date(),
        f"`{command}`",
    ]
    row = "| " + " | ".join(map(str, cells)) + " |"
    print(f"\n{TABLE_HEADER}\n{row}")
    print(f"target p95 < 50 ms: {'met' if p[95] < 50 else 'NOT met'}")
    if not args.no_write:
        doc = DOC.read_text() if DOC.exists() else ""
        DOC.write_text(update_section(doc, SECTION, HOW_MEASURED, TABLE_HEADER, row, key_cols=1))
        print(f"updated {DOC.relative_to(BASE_DIR)}")
    print(
        json.dumps(
            {
                "campaigns": campaigns,
                "requests": len(lat),
                "feed_p50_ms": json_ms(p[50]),
                "feed_p95_ms": json_ms(p[95]),
                "feed_p99_ms": json_ms(p[99]),
                "cold_p50_ms": json_ms(percentile(result["cold"], 50)),
                "events": result["events"],
            }
        )
    )
    return 0
