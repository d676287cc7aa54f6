"""The calendar's pages: the GM's schedule forms on the campaign page, the private feed itself,
and the viewer's calendar settings (their zone, their feed links). Views check through the
selectors and call the same services as the API; a refused form comes back as a message."""

from __future__ import annotations

import contextlib
import hashlib

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import parse_etags, url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST, require_safe

from campaigns import selectors as campaign_selectors
from campaigns.errors import DomainError, NotFound
from campaigns.scheduling import ics, reminders, selectors, services, warmup, webhooks

REPEATS = {
    "none": "",
    "weekly": "FREQ=WEEKLY",
    "biweekly": "FREQ=WEEKLY;INTERVAL=2",
    "monthly": "FREQ=MONTHLY",
}


def form_rule(post) -> str:
    """The rule a schedule form asks for: a preset or a custom RRULE, then its end."""
    repeat = post.get("repeat", "weekly")
    if repeat == "custom":
        return post.get("rrule", "")
    rule = REPEATS.get(repeat, "")
    if not rule:
        return ""
    until = post.get("until", "").strip()
    count = post.get("count", "").strip()
    if until:
        rule += ";UNTIL=" + until.replace("-", "")
    elif count:
        rule += f";COUNT={count}"
    return rule


def _schedule_fields(post) -> dict:
    return {
        "title": post.get("title", ""),
        "notes": post.get("notes", ""),
        "start": post.get("start", ""),
        "time_zone": post.get("time_zone", ""),
        "duration_minutes": post.get("duration_minutes", ""),
        "rrule": form_rule(post),
        "exdates": post.get("exdates", ""),
    }


def _back(campaign_id: int):
    return redirect(reverse("campaign_detail", args=[campaign_id]) + "#schedule-h")


@login_required
@require_POST
def schedule_save(request, campaign_id: int):
    """Create (no `schedule` field), update or delete one of the campaign's schedules."""
    membership = campaign_selectors.membership_get(viewer=request.user, campaign_id=campaign_id)
    services.require_gm(membership)  # 403 for players and spectators
    schedule_id = request.POST.get("schedule", "")
    try:
        if not schedule_id:
            services.schedule_create(membership=membership, **_schedule_fields(request.POST))
            messages.success(request, "Schedule saved. Members see the next sessions on their dashboard.")
        else:
            schedule, _ = selectors.schedule_get(
                viewer=request.user, campaign_id=campaign_id, schedule_id=schedule_id
            )
            if request.POST.get("delete"):
                services.schedule_delete(membership=membership, schedule=schedule)
                messages.success(request, "Schedule deleted.")
            else:
                services.schedule_update(
                    membership=membership, schedule=schedule, **_schedule_fields(request.POST)
                )
                messages.success(request, "Schedule updated.")
    except NotFound:
        raise
    except DomainError as exc:
        messages.error(request, exc.message)
    return _back(campaign_id)


@login_required
@require_POST
def occurrence_change(request, campaign_id: int):
    """Move, cancel or restore one session."""
    membership = campaign_selectors.membership_get(viewer=request.user, campaign_id=campaign_id)
    services.require_gm(membership)
    schedule, _ = selectors.schedule_get(
        viewer=request.user, campaign_id=campaign_id, schedule_id=request.POST.get("schedule", "")
    )
    action = request.POST.get("action", "")
    original = request.POST.get("original", "")
    try:
        if action == "cancel":
            services.occurrence_cancel(membership=membership, schedule=schedule, original=original)
            messages.success(request, "Session cancelled. Calendars show it as cancelled.")
        elif action == "restore":
            services.occurrence_restore(membership=membership, schedule=schedule, original=original)
            messages.success(request, "Session restored.")
        elif action == "move":
            services.occurrence_move(
                membership=membership,
                schedule=schedule,
                original=original,
                start=request.POST.get("start", ""),
                duration_minutes=request.POST.get("duration_minutes") or None,
            )
            messages.success(request, "Session moved.")
        else:
            messages.error(request, "Choose Move, Cancel or Restore.")
    except NotFound:
        raise
    except DomainError as exc:
        messages.error(request, exc.message)
    return _back(campaign_id)


@login_required
@require_POST
def reminder_update(request, campaign_id: int):
    """A member's reminders for this campaign: email on/off and at which lead times, the
    dashboard notice on/off."""
    membership = campaign_selectors.membership_get(viewer=request.user, campaign_id=campaign_id)
    leads = request.POST.getlist("lead") if "leads" in request.POST else None
    try:
        pref = reminders.reminder_set(
            membership=membership,
            email=request.POST.get("email") == "on",
            notice=request.POST.get("notice") == "on" if "leads" in request.POST else None,
            lead_minutes=leads if request.POST.get("email") == "on" else None,
        )
    except DomainError as exc:
        messages.error(request, exc.message)
        return _back(campaign_id)
    messages.success(request, "Email reminders on." if pref.email else "Email reminders off.")
    return _back(campaign_id)


@login_required
@require_POST
def webhook_update(request, campaign_id: int):
    """The GM sets or removes the reminder webhook (a private address is refused, with why)."""
    membership = campaign_selectors.membership_get(viewer=request.user, campaign_id=campaign_id)
    services.require_gm(membership)
    try:
        hook = webhooks.webhook_set(membership=membership, url=request.POST.get("url", ""))
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Webhook saved: copy its secret." if hook else "Webhook removed.")
    return _back(campaign_id)


@login_required
@require_POST
def warmup_now(request, campaign_id: int):
    """The GM runs the pre-session warm-up now (the result shows on the campaign page)."""
    membership = campaign_selectors.membership_get(viewer=request.user, campaign_id=campaign_id)
    try:
        run = warmup.warmup_request(membership=membership)
    except DomainError as exc:
        if exc.status == 404:
            raise
        messages.error(request, exc.message)
        return _back(campaign_id)
    run.refresh_from_db()
    if run.status == run.Status.RUNNING:
        messages.info(request, "Warm-up started: its checks appear here in a moment.")
    elif run.status == run.Status.OK:
        messages.success(request, "Warm-up done: every check is ok.")
    else:
        messages.warning(request, f"Warm-up done: {len(run.problems)} problem(s), listed under Warm-up.")
    return _back(campaign_id)


# ---- the viewer's calendar: zone and feed links --------------------------------------------


def feed_urls(request, token: str) -> dict:
    """The https (or http on a plain-HTTP site) and webcal:// addresses of a feed."""
    path = reverse("calendar_feed", args=[token])
    base = settings.SITE_URL.rstrip("/") if settings.SITE_URL else request.build_absolute_uri("/").rstrip("/")
    https = base + path
    return {"https": https, "webcal": "webcal://" + https.split("://", 1)[1]}


def _next(request, fallback: str) -> str:
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return target
    return fallback


@login_required
def calendar_settings(request):
    """The viewer's zone and feed links. POST actions: timezone, create (campaign or all),
    rotate, revoke. A new link is shown once, in this response (htmx: just the link)."""
    new_feed = None
    if request.method == "POST":
        action = request.POST.get("action", "")
        try:
            if action == "timezone":
                profile = services.profile_set_time_zone(
                    user=request.user, time_zone=request.POST.get("time_zone", "")
                )
                messages.success(request, f"Times are shown in {profile.time_zone or 'UTC'}.")
                return redirect(_next(request, reverse("calendar_settings")))
            if action == "create":
                feed, token = services.feed_create(
                    user=request.user, campaign_id=request.POST.get("campaign")
                )
                new_feed = {"feed": feed, **feed_urls(request, token)}
            elif action == "rotate":
                feed, token = services.feed_rotate(user=request.user, feed_id=request.POST.get("feed"))
                new_feed = {"feed": feed, **feed_urls(request, token)}
            elif action == "revoke":
                services.feed_revoke(user=request.user, feed_id=request.POST.get("feed"))
                messages.success(request, "Feed link revoked: calendars using it stop updating.")
            else:
                messages.error(request, "Unknown calendar action.")
        except NotFound:
            raise
        except DomainError as exc:
            messages.error(request, exc.message)
            if action == "timezone":
                return redirect(_next(request, reverse("calendar_settings")))
        if new_feed and request.htmx:
            response = render(request, "scheduling/_feed_link.html", {"new_feed": new_feed})
            response["Cache-Control"] = "no-store"
            return response
    zone = selectors.viewer_zone(request.user)
    response = render(
        request,
        "scheduling/calendar.html",
        {
            "new_feed": new_feed,
            "feeds": selectors.feeds_of(viewer=request.user),
            "zone": zone,
            "zones": services.recurrence._zones(),
            "upcoming": selectors.viewer_upcoming(viewer=request.user, now=selectors.utc_now()),
            "campaigns": campaign_selectors.campaign_list(viewer=request.user),
        },
    )
    response["Cache-Control"] = "no-store"  # a new feed link is on this page, once
    return response


# ---- the feed --------------------------------------------------------------------------


def _not_found() -> HttpResponse:
    response = HttpResponse("Not found.\n", status=404, content_type="text/plain; charset=utf-8")
    # Django logs every 4xx with its path, and this path holds a feed token: mark it logged.
    response._has_been_logged = True
    return response


FEED_CACHE_S = 24 * 3600


def _cache_get(key: str) -> bytes | None:
    try:
        return cache.get(key)
    except Exception:  # noqa: BLE001 - a cache outage costs time, never the feed
        return None


def _cache_set(key: str, body: bytes) -> None:
    with contextlib.suppress(Exception):
        cache.set(key, body, timeout=FEED_CACHE_S)


@require_safe
def calendar_feed(request, code: str):
    """A private feed: the token in the URL is the only credential (calendar clients send no
    cookies). Unknown, revoked, or a campaign its owner has left: 404, naming nothing."""
    found = selectors.feed_lookup(code)
    if found is None:
        return _not_found()
    feed = found.feed
    if feed.campaign_id is not None:
        name = f"{found.campaign_name} · Galactic Tale Weaver"
    else:
        name = f"{found.username}'s campaigns · Galactic Tale Weaver"
    base = settings.SITE_URL.rstrip("/") if settings.SITE_URL else request.build_absolute_uri("/").rstrip("/")
    refresh = services._calendar_settings().get("refresh_minutes", 60)
    # Clients poll; schedules rarely change: an unchanged feed is served as built last time,
    # keyed by everything it is made of (one query reads the feed and that fingerprint; gtw
    # bench calendar measures it).
    made_of = repr((found.fingerprint, name, base, refresh)).encode()
    key = "gtw:ics-feed:v1:" + hashlib.sha256(made_of).hexdigest()
    body = _cache_get(key)
    if body is None:
        schedules = selectors.feed_schedules(feed)
        if schedules is None:  # left the campaign between the two reads
            return _not_found()
        urls = {s.campaign_id: base + reverse("campaign_detail", args=[s.campaign_id]) for s in schedules}
        body = ics.feed_calendar(schedules, name=name, refresh_minutes=refresh, urls=urls)
        _cache_set(key, body)
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    wanted = parse_etags(request.headers.get("If-None-Match", ""))
    if etag in wanted or "*" in wanted or f"W/{etag}" in wanted:
        response = HttpResponse(status=304)
    else:
        response = HttpResponse(body, content_type="text/calendar; charset=utf-8")
        response["Content-Disposition"] = 'inline; filename="galactic-tale-weaver.ics"'
    response["ETag"] = etag
    response["Cache-Control"] = "private, max-age=300"
    response["Referrer-Policy"] = "no-referrer"
    response["X-Robots-Tag"] = "noindex"
    return response
