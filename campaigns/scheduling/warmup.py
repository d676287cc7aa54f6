"""The pre-session warm-up (issue 16 part 4): GTW_WARMUP_MINUTES before each session a job
checks every provider role the campaign will use (building its adapter — a local model loads —
then one tiny real call, which also proves a remote key), and asks the layers above, through
`signals.warmup_requested`, for their part: memory prefetches the recall the recap needs
(memory/warmup.py), images prefetch the likely scene (a receiver answers when the images app
connects one). The GM sees every check on the campaign page: ok, or exactly what is wrong.

Once per occurrence, with any number of workers and across restarts: the WarmupRun row is
inserted under a unique (schedule, occurrence) constraint and only the transaction that
inserted it queues the job (as for the SessionUpcoming notices). A GM's "run warm-up now" is a
run without an occurrence.

Players never see the warm-up (provider names and errors are the GM's business).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from campaigns.errors import Forbidden
from campaigns.models import Campaign, Membership
from campaigns.scheduling import recurrence
from campaigns.scheduling.models import SessionSchedule, WarmupRun
from campaigns.scheduling.selectors import _with_overrides, utc_now
from campaigns.scheduling.signals import warmup_requested
from gtw_site import ratelimit

log = logging.getLogger(__name__)
WARMUP_SCAN = "gtw: session warm-ups"
WARMUP_FUNC = "campaigns.scheduling.warmup.warmup_scan"
DETAIL_MAX = 300

# A tiny real call per provider kind, for kinds whose call takes plain values; a kind whose
# call needs its own request type registers its probe from its app (`register_probe`), e.g.
# narrative's chat probe. A kind with no probe is checked by building its adapter only.
Probe = Callable[[Any], str]
_PROBES: dict[str, Probe] = {}


def register_probe(kind: str, probe: Probe) -> None:
    """`probe(adapter)` makes one tiny real call and returns a short line ("answered", "384-dim
    vector"); it raises (a ProviderError, ideally) when the provider is not usable."""
    _PROBES[kind] = probe


def _embed_probe(adapter) -> str:
    vectors = adapter.embed(["warm-up check"])
    return f"embedded a test phrase ({len(vectors[0])} dimensions)"


def _classify_probe(adapter) -> str:
    adapter.classify("The crew checks the airlock.")
    return "classified a test line"


register_probe("embedder", _embed_probe)
register_probe("moderation", _classify_probe)


def warmup_minutes() -> int:
    return int(getattr(settings, "GTW_WARMUP_MINUTES", 10) or 0)


# ---- the scan (a django-q2 Schedule, every minute) ---------------------------------------------


def warmup_scan(now: datetime | None = None) -> int:
    """Start the warm-ups now due: sessions starting within GTW_WARMUP_MINUTES. Returns how many
    this call started (0 for an occurrence another worker already took)."""
    minutes = warmup_minutes()
    if minutes <= 0:
        return 0
    now = now or utc_now()
    horizon = now + timedelta(minutes=minutes)
    started = 0
    schedules = _with_overrides(SessionSchedule.objects.filter(campaign__archived=False)).order_by("pk")
    for schedule in schedules.iterator(chunk_size=200):
        try:
            spec = schedule.spec()
        except recurrence.RecurrenceError:
            continue
        for occ in recurrence.expand(spec, now, horizon + timedelta(seconds=1), limit=5):
            if now < occ.start <= horizon and _claim(schedule, occ):
                started += 1
    return started


def _claim(schedule: SessionSchedule, occ: recurrence.Occurrence) -> bool:
    occurrence = recurrence.to_utc(occ.original, recurrence.zone(schedule.time_zone))
    try:
        with transaction.atomic():
            run, created = WarmupRun.objects.get_or_create(
                schedule=schedule,
                occurrence=occurrence,
                defaults={"campaign_id": schedule.campaign_id, "starts_at": occ.start},
            )
    except IntegrityError:  # another worker inserted it between our look and our insert
        return False
    if created:
        _queue(run.pk)
    return created


def _queue(run_id: int) -> None:
    from gtw_site.jobs import enqueue

    transaction.on_commit(lambda: enqueue("campaigns.scheduling.warmup.warmup_run", run_id))


# ---- the GM's "run warm-up now" -------------------------------------------------------------------


def warmup_request(*, membership: Membership) -> WarmupRun:
    if membership.role != Membership.Role.GM:
        raise Forbidden("Only the GM can run the warm-up.")
    ratelimit.rate_check(scope="warmup", ident=membership.user_id)
    with transaction.atomic():
        run = WarmupRun.objects.create(campaign_id=membership.campaign_id, requested_by_id=membership.user_id)
        _queue(run.pk)
    return run


def latest_for(*, membership: Membership) -> WarmupRun | None:
    """The campaign's last warm-up, for its GM (None for players: it is not theirs to see)."""
    if membership.role != Membership.Role.GM:
        return None
    return WarmupRun.objects.filter(campaign_id=membership.campaign_id).order_by("-created_at", "-pk").first()


# ---- the job ------------------------------------------------------------------------------------


def warmup_run(run_id: int) -> str | None:
    """Run every check of the warm-up and store the results; returns the run's status."""
    run = WarmupRun.objects.select_related("campaign").filter(pk=run_id).first()
    if run is None:
        return None
    campaign = run.campaign
    checks = provider_checks(campaign)
    replies = warmup_requested.send_robust(
        sender=WarmupRun, campaign_id=campaign.pk, run_id=run.pk, starts_at=run.starts_at
    )
    for receiver, reply in replies:
        if isinstance(reply, Exception):
            name = getattr(receiver, "__module__", "a receiver")
            checks.append(_line(f"{name}", False, f"failed: {_why(reply)}", 0.0))
            continue
        for line in reply or []:
            checks.append(_normal(line))
    status = WarmupRun.Status.OK if all(c["ok"] for c in checks) else WarmupRun.Status.PROBLEMS
    WarmupRun.objects.filter(pk=run.pk).update(checks=checks, status=status, finished_at=timezone.now())
    if status == WarmupRun.Status.PROBLEMS:
        log.warning(
            "warm-up %s of campaign %s: %d problem(s)", run.pk, campaign.pk, sum(not c["ok"] for c in checks)
        )
    return status


def provider_checks(campaign: Campaign) -> list[dict[str, Any]]:
    """One line per provider role: the campaign's choice built (a local model loads, a remote
    client is made with its key) and, where the kind has a probe, one tiny real call."""
    from gtw_site.providers import services as provider_services
    from gtw_site.telemetry import scope

    lines = []
    with scope(campaign_id=campaign.pk):
        for kind, registry in sorted(provider_services.discover().items()):
            for role in registry.roles:
                started = time.perf_counter()
                label = f"{role} provider"
                name = _provider_name(registry, role, campaign.pk)
                try:
                    adapter = registry.get(role, campaign_id=campaign.pk)
                    probe = _PROBES.get(kind)
                    detail = probe(adapter) if probe else "ready (loaded)"
                except Exception as exc:  # noqa: BLE001 - every failure is a line for the GM
                    lines.append(_line(label, False, f"{name}: {_why(exc)}", _ms(started)))
                    continue
                lines.append(_line(label, True, f"{name}: {detail}", _ms(started)))
    return lines


def _provider_name(registry, role: str, campaign_id: int) -> str:
    try:
        chosen = registry.selection(role, campaign_id)
        return getattr(chosen, "provider", None) or registry.provider_name(role)
    except Exception:  # noqa: BLE001 - the name is only for the line; the build says what is wrong
        return role


def _line(check: str, ok: bool, detail: str, ms: float) -> dict[str, Any]:
    return {"check": check[:80], "ok": bool(ok), "detail": str(detail)[:DETAIL_MAX], "ms": round(ms, 1)}


def _normal(line: Any) -> dict[str, Any]:
    if not isinstance(line, dict) or "check" not in line:
        return _line(
            "a warm-up receiver", False, f"answered something unreadable: {line!r}"[:DETAIL_MAX], 0.0
        )
    return _line(
        str(line["check"]), bool(line.get("ok")), str(line.get("detail", "")), float(line.get("ms") or 0)
    )


def _why(exc: BaseException) -> str:
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return " ".join(message.split())[:DETAIL_MAX]


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000
