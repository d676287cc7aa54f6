# Tech trees (issue 19): the pack trees installed from content/packs/<pack>/techtrees/*.json.

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0003_character_inventory_character_level_character_xp"),
        ("missions", "0002_mission_owner_public"),
    ]

    operations = [
        migrations.CreateModel(
            name="TechTree",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("slug", models.SlugField(max_length=60)),
                ("name", models.CharField(max_length=80)),
                (
                    "kind",
                    models.CharField(choices=[("player", "Player"), ("alliance", "Alliance")], max_length=10),
                ),
                ("document", models.JSONField()),
                ("sha256", models.CharField(max_length=64)),
                ("installed_at", models.DateTimeField(auto_now=True)),
                (
                    "pack",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="tech_trees",
                        to="campaigns.contentpack",
                    ),
                ),
            ],
            options={
                "ordering": ["pack", "kind", "slug"],
                "constraints": [
                    models.UniqueConstraint(fields=("pack", "slug"), name="techtree_pack_slug_unique")
                ],
            },
        ),
    ]
