"""The reminder webhook: a signed POST to the URL a GM sets, once per notice.

Signature: `X-GTW-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" under the
webhook's secret>` (the Stripe scheme: the timestamp is signed, so a captured request cannot be
replayed later; receivers should refuse a `t` older than a few minutes). Body: JSON with the
campaign, the schedule, the session's start and the lead time — ids and times, never members'
addresses.

Addresses: a URL whose host is or resolves to a private, loopback, link-local or otherwise
non-public address is refused (when it is set and again when it is called) unless the operator
sets GTW_WEBHOOK_ALLOW_PRIVATE. Each attempt times out (GTW_WEBHOOK_TIMEOUT_S); a failed one is
retried with exponential backoff (GTW_WEBHOOK_RETRIES more times); every outcome is on the
delivery row the GM reads. Redirects are not followed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
import urllib.error
import urllib.request
from urllib.parse import urlsplit

from django.conf import settings
from django.db import IntegrityError, transaction

from campaigns.errors import Invalid
from campaigns.models import Membership
from campaigns.scheduling.models import CampaignWebhook, ReminderDelivery, UpcomingNotice
from gtw_site.netcheck import non_public_reason


def _conf() -> dict:
    return {
        "allow_private": bool(getattr(settings, "GTW_WEBHOOK_ALLOW_PRIVATE", False)),
        "timeout": float(getattr(settings, "GTW_WEBHOOK_TIMEOUT_S", 5.0)),
        "retries": int(getattr(settings, "GTW_WEBHOOK_RETRIES", 2)),
        "backoff": float(getattr(settings, "GTW_WEBHOOK_BACKOFF_S", 2.0)),
    }


def check_url(url: str) -> str:
    """The URL, or Invalid: http(s) only, a host, and a public address unless allowed."""
    url = (url or "").strip()
    if len(url) > 500:
        raise Invalid("The webhook URL is at most 500 characters.")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Invalid("The webhook URL must be an http:// or https:// address.")
    if parts.username or parts.password:
        raise Invalid("Put no user name or password in the webhook URL; verify the signature instead.")
    if not _conf()["allow_private"]:
        reason = non_public_reason(url)
        if reason == "does not resolve":
            raise Invalid(f"The webhook host {parts.hostname[:80]} does not resolve.")
        if reason:
            raise Invalid(
                f"The webhook URL {reason}; the operator must allow that (GTW_WEBHOOK_ALLOW_PRIVATE)."
            )
    return url


@transaction.atomic
def webhook_set(*, membership: Membership, url: str) -> CampaignWebhook | None:
    """The GM sets (a new secret each time) or, with an empty URL, removes the webhook."""
    if membership.role != Membership.Role.GM:
        from campaigns.errors import Forbidden

        raise Forbidden("Only the GM can set the campaign's webhook.")
    if not (url or "").strip():
        CampaignWebhook.objects.filter(campaign_id=membership.campaign_id).delete()
        return None
    clean = check_url(url)
    hook, _ = CampaignWebhook.objects.update_or_create(
        campaign_id=membership.campaign_id, defaults={"url": clean, "secret": secrets.token_hex(32)}
    )
    return hook


def sign(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())


def _post(url: str, body: bytes, headers: dict, timeout: float) -> int:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310 - checked
    with _OPENER.open(request, timeout=timeout) as response:
        return response.status


def webhook_send(notice_id: int, *, sleep=time.sleep) -> str | None:
    """POST the notice to the campaign's webhook (once per notice); the delivery's status."""
    notice = (
        UpcomingNotice.objects.select_related("schedule", "schedule__campaign").filter(pk=notice_id).first()
    )
    hook = CampaignWebhook.objects.filter(campaign_id=notice.schedule.campaign_id).first() if notice else None
    if hook is None:
        return None
    try:
        with transaction.atomic():
            row = ReminderDelivery.objects.create(
                notice=notice, channel="webhook", user=None, status=ReminderDelivery.Status.FAILED, attempts=0
            )
    except IntegrityError:
        return None  # already delivered or being delivered by another worker
    conf = _conf()
    body = json.dumps(
        {
            "type": "SessionUpcoming",
            "campaign": {"id": notice.schedule.campaign_id, "name": notice.schedule.campaign.name},
            "schedule": {
                "id": notice.schedule_id,
                "uid": notice.schedule.uid,
                "title": notice.schedule.title,
            },
            "occurrence": notice.occurrence.isoformat(),
            "starts_at": notice.starts_at.isoformat(),
            "lead_minutes": notice.lead_minutes,
        },
        separators=(",", ":"),
    ).encode()
    error = ""
    for attempt in range(1, conf["retries"] + 2):
        try:
            check_url(hook.url)  # again: the name may resolve elsewhere now
            timestamp = int(time.time())
            headers = {
                "Content-Type": "application/json",
                "User-Agent": "GalacticTaleWeaver-Webhook/1",
                "X-GTW-Signature": sign(hook.secret, timestamp, body),
                "X-GTW-Delivery": str(row.pk),
            }
            status = _post(hook.url, body, headers, conf["timeout"])
            if 200 <= status < 300:
                ReminderDelivery.objects.filter(pk=row.pk).update(
                    status=ReminderDelivery.Status.SENT, attempts=attempt, error=""
                )
                return ReminderDelivery.Status.SENT
            error = f"HTTP {status}"
        except Invalid as exc:
            error = exc.message
            break  # a refused address does not get better by retrying
        except urllib.error.HTTPError as exc:
            error = f"HTTP {exc.code}"
        except TimeoutError:
            error = f"timed out after {conf['timeout']:g} s"
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, TimeoutError):
                error = f"timed out after {conf['timeout']:g} s"
            else:
                error = f"{type(exc).__name__}: {reason}"
        ReminderDelivery.objects.filter(pk=row.pk).update(attempts=attempt, error=error[:300])
        if attempt <= conf["retries"]:
            sleep(conf["backoff"] * 2 ** (attempt - 1))
    ReminderDelivery.objects.filter(pk=row.pk).update(
        status=ReminderDelivery.Status.FAILED, error=error[:300]
    )
    return ReminderDelivery.Status.FAILED
