"""Shared fixtures of the safety tests: a scripted narrator whose reply the test sets, the
broadcasts captured, on-commit callbacks run, and a client per persona."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from gtw_site.providers import Usage
from narrative.llm import registry
from narrative.llm.base import StreamEnd, TextDelta
from realtime import broadcast

SCRIPT: list[str] = []  # what the scripted narrator says next (one reply per call; then a default)


class ScriptedNarrator:
    """A chat provider that streams the reply the test scripted, a few words per delta."""

    name = "scripted"

    def __init__(self, *, model, api_key=None, base_url=None, timeout=None):
        self.model = model

    def _next(self) -> str:
        return SCRIPT.pop(0) if SCRIPT else "The station hums on."

    def stream(self, request):
        for word in self._next().split(" "):
            yield TextDelta(word + " ")
        yield StreamEnd(stop_reason="stop", usage=Usage())

    def complete(self, request):
        return self._next()


@pytest.fixture
def scripted(settings, monkeypatch):
    SCRIPT.clear()
    monkeypatch.setitem(registry.PROVIDERS, "scripted", f"{__name__}:ScriptedNarrator")
    conf = {k: dict(v) if isinstance(v, dict) else v for k, v in settings.GTW_LLM.items()}
    conf["scripted"] = {"model": "scripted-1", "api_key": "", "base_url": ""}
    conf["narrator"] = {**conf["narrator"], "provider": "scripted"}
    settings.GTW_LLM = conf
    yield SCRIPT
    SCRIPT.clear()


@pytest.fixture
def commit(django_capture_on_commit_callbacks):
    def run(fn, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return fn(*args, **kwargs)

    return run


@pytest.fixture
def sent(monkeypatch):
    messages: list[tuple[str, dict]] = []
    monkeypatch.setattr(broadcast, "_send", lambda group, message: messages.append((group, message)))
    return messages


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def post_json(commit, client, url, data, method="post"):
    return commit(getattr(client, method), url, json.dumps(data), content_type="application/json")
