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
