# Lines and veils (issue 18, part 4): a member's session-zero limits for a campaign.

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0007_campaign_stash"),
        ("narrative", "0002_dicesecret"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="TableLine",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("kind", models.CharField(choices=[("line", "Line"), ("veil", "Veil")], max_length=8)),
                ("text", models.CharField(max_length=200)),
                ("private", models.BooleanField(default=False)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                (
                    "author",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "campaign",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="table_lines",
                        to="campaigns.campaign",
                    ),
                ),
            ],
            options={
                "ordering": ["campaign_id", "kind", "created_at", "id"],
                "indexes": [models.Index(fields=["campaign", "kind"], name="table_line_campaign_kind")],
            },
        ),
    ]
