from django.apps import AppConfig
from django.db.models.signals import post_migrate


def ensure_upcoming_scan(**kwargs) -> None:
    """The django-q2 Schedules that send SessionUpcoming notices and start the pre-session
    warm-ups, every minute, forever: made (or repaired) after every `migrate` — `gtw up` runs
    one at each start — and after a test database is flushed. update_or_create under a fixed
    name: never a second one."""
    from django_q.models import Schedule

    from campaigns.scheduling.tasks import UPCOMING_FUNC, UPCOMING_SCAN
    from campaigns.scheduling.warmup import WARMUP_FUNC, WARMUP_SCAN

    for name, func in ((UPCOMING_SCAN, UPCOMING_FUNC), (WARMUP_SCAN, WARMUP_FUNC)):
        Schedule.objects.update_or_create(
            name=name,
            defaults={
                "func": func,
                "schedule_type": Schedule.MINUTES,
                "minutes": 1,
                "repeats": -1,
            },
        )


class SchedulingConfig(AppConfig):
    name = "campaigns.scheduling"
    label = "scheduling"
    verbose_name = "Campaign calendar"

    def ready(self):
        from campaigns.scheduling.reminders import on_session_upcoming
        from campaigns.scheduling.signals import session_upcoming

        post_migrate.connect(ensure_upcoming_scan, sender=self, dispatch_uid="gtw-upcoming-scan")
        session_upcoming.connect(on_session_upcoming, dispatch_uid="gtw-reminders")
