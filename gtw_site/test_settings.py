"""Test overrides. Tests get their own embedded data folder so they never touch a running game."""

import os
from pathlib import Path

os.environ.setdefault("GTW_DATA_DIR", str(Path(__file__).resolve().parent.parent / "var" / "test"))

from gtw_site.settings import *  # noqa: F403
from gtw_site.settings import GTW_LLM, Q_CLUSTER

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
# Tasks run inline in tests: the turn runs inside the request/consumer that started it.
Q_CLUSTER = {**Q_CLUSTER, "sync": True}
GTW_LLM = {**GTW_LLM, "narrator": {**GTW_LLM["narrator"], "provider": "offline"}}
# Unpaced by default; the e2e test's Daphne sets GTW_OFFLINE_WORD_DELAY_MS so streaming is visible.
GTW_LLM["offline"] = {"word_delay_s": float(os.environ.get("GTW_OFFLINE_WORD_DELAY_MS", "0")) / 1000.0}
GTW_DELTA_COALESCE_MS = 20
GTW_SNAPSHOT_EVERY = 5
# Parallel test workers share one Redis and their databases hand out the same session ids:
# keep their channel-layer groups (session.<id>) apart. A test's Daphne subprocess inherits
# the variable, so it shares its own worker's prefix.
CHANNEL_LAYERS["default"]["CONFIG"]["prefix"] = f"asgi-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"  # noqa: F405
GTW_PRESENCE_KEY_PREFIX = f"gtw:presence:{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
# The same for the cache (allauth's login limits are keyed by address, not by database): a test
# that clears its counters must not clear a parallel worker's.
CACHES["default"]["KEY_PREFIX"] = f"gtw-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"  # noqa: F405
# The GM's voice (media.speech.narration) synthesises every narrated sentence on a thread: off
# unless a test turns it on (tests/media/test_speech_narration.py; the voice e2e test's Daphne
# sets GTW_TEST_TTS_NARRATION=1), so other suites stay fast.
GTW_SPEECH = {**GTW_SPEECH, "narration": os.environ.get("GTW_TEST_TTS_NARRATION") == "1"}  # noqa: F405
# Pictures painted on their own (a scene change, a new character, loot): off unless a test turns
# them on (tests/media/test_image_triggers.py; the images e2e test's Daphne sets
# GTW_TEST_IMAGE_AUTO=1), so other suites don't paint a picture inline for every session they open.
GTW_IMAGES = {**GTW_IMAGES, "auto": os.environ.get("GTW_TEST_IMAGE_AUTO") == "1"}  # noqa: F405
# Telemetry rows written by the turn's own thread, not the background writer: a writer thread
# that outlives its test writes after pytest-django has closed database access (a logged error
# and an erroring test under CI load). tests/gtw_site/test_telemetry_writer.py turns the writer on.
GTW_TELEMETRY_WRITER = os.environ.get("GTW_TEST_TELEMETRY_WRITER", "sync")
