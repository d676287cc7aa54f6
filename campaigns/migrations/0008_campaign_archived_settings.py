"""Campaign lifecycle and per-campaign settings (issue 16 part 5).

`archived` makes a campaign read-only and hides it from dashboards and feeds; `settings` holds
per-campaign settings under namespaced keys ("voice", "images", "providers", "safety", ...).
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("campaigns", "0007_campaign_stash")]

    operations = [
        migrations.AddField(
            model_name="campaign",
            name="archived",
            field=models.BooleanField(default=False),
        ),
        migrations.AddField(
            model_name="campaign",
            name="settings",
            field=models.JSONField(blank=True, default=dict),
        ),
    ]
