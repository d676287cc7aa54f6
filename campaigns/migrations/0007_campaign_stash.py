"""The party's shared inventory (issue 13 part 4): items granted to the whole party."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("campaigns", "0006_gm_only_engine_events")]

    operations = [
        migrations.AddField(
            model_name="campaign",
            name="stash",
            field=models.JSONField(blank=True, default=list),
        ),
    ]
