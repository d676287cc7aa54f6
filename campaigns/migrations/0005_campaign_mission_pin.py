"""Campaigns pin the mission version they play (issue 11, hole 1).

Existing campaigns are pinned here to the newest version of their pack's mission that an
operator installed: one that came from a content pack (`gtw content load`), or was installed by
no one (the CLI) or by a staff user. Before this change any GM could upload a new version of a
slug, so a newer upload by an ordinary user is deliberately *not* trusted here. A campaign with
no such version stays unpinned and is pinned lazily, to the newest version, when its next
session opens (missions.services.campaign_mission).
"""

from django.db import migrations, models
from django.db.models import Q


def pin_existing(apps, schema_editor):
    Campaign = apps.get_model("campaigns", "Campaign")
    Mission = apps.get_model("missions", "Mission")
    for campaign in Campaign.objects.select_related("pack").filter(mission_hash=""):
        slug = ((campaign.pack.data or {}).get("mission") or {}).get("slug")
        if not isinstance(slug, str) or not slug:
            continue
        trusted = (
            Mission.objects.filter(slug=slug)
            .filter(
                Q(pack__isnull=False)
                | Q(installed_by__isnull=True)
                | Q(installed_by__is_staff=True)
                | Q(installed_by__is_superuser=True)
            )
            .order_by("-installed_at", "-pk")
            .values_list("content_hash", flat=True)
            .first()
        )
        if trusted:
            Campaign.objects.filter(pk=campaign.pk).update(mission_slug=slug, mission_hash=trusted)


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0004_stage_mode"),
        ("missions", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="campaign",
            name="mission_slug",
            field=models.CharField(blank=True, default="", max_length=80),
        ),
        migrations.AddField(
            model_name="campaign",
            name="mission_hash",
            field=models.CharField(blank=True, default="", max_length=64),
        ),
        migrations.RunPython(pin_existing, migrations.RunPython.noop),
    ]
