"""Fixtures for tests/media (pictures: tests/media/image_helpers.py)."""

import threading

import pytest

from tests.media.image_helpers import fake_provider, image_storage, sent  # noqa: F401


@pytest.fixture(autouse=True)
def _no_speech_rows_outlive_the_test(request, django_db_blocker):
    """Narration speaks on a background thread with its own database connection, so its
    telemetry rows commit outside the test's transaction and would outlive it (other suites
    count ProviderCall rows). Drain the voice, then delete them on a connection of their own."""
    yield
    uses_db = request.node.get_closest_marker("django_db") or {"db", "transactional_db"} & set(
        request.fixturenames
    )
    if not uses_db:
        return
    from media.speech import narration

    narration.drain(30)

    def purge():
        from django.db import connection

        from gtw_site.models import ProviderCall

        try:
            ProviderCall.objects.filter(role__in=("tts", "stt")).delete()
        finally:
            connection.close()

    with django_db_blocker.unblock():  # this runs after the test's own database access ended
        worker = threading.Thread(target=purge)
        worker.start()
        worker.join(30)
