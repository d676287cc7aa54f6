# Fair dice (issue 11 hole 8): a per-session secret committed at open, revealed at the end.

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0004_stage_mode"),
        ("narrative", "0001_initial"),
    ]

    operations = [
        migrations.CreateModel(
            name="DiceSecret",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("from_seq", models.PositiveIntegerField()),
                ("secret", models.CharField(max_length=64)),
                ("commitment", models.CharField(max_length=64, unique=True)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("revealed_seq", models.PositiveIntegerField(blank=True, null=True)),
                (
                    "session",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="dice_secrets",
                        to="campaigns.playsession",
                    ),
                ),
            ],
            options={
                "ordering": ["session_id", "from_seq"],
                "constraints": [
                    models.UniqueConstraint(fields=("session", "from_seq"), name="dice_secret_one_per_seq")
                ],
            },
        ),
    ]
