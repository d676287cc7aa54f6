"""Refusals and difficulty changes already stored reach GMs only, like new ones (issue 13 part 3:
players never see the engine room). An empty audience is "GMs only"."""

from django.db import migrations

GM_ONLY_TYPES = ["ToolRefused", "DifficultyAdjusted"]


def hide(apps, schema_editor):
    Event = apps.get_model("campaigns", "Event")
    Event.objects.filter(type__in=GM_ONLY_TYPES, audience__isnull=True).update(audience=[])


class Migration(migrations.Migration):
    dependencies = [("campaigns", "0005_campaign_mission_pin")]

    operations = [migrations.RunPython(hide, migrations.RunPython.noop)]
