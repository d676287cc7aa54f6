from django.apps import AppConfig


class MissionsConfig(AppConfig):
    name = "missions"
    verbose_name = "Missions"
    default_auto_field = "django.db.models.BigAutoField"
