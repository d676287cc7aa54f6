"""Shadow runs (issue 17 part 4): after a role's live call succeeds, each shadow provider gets
the same request — a deep copy, so nothing it does reaches the live turn — in the background.
Its output goes to `ShadowOutput` and its telemetry rows carry `shadow=True`; nothing else: it
is never streamed, broadcast, narrated, remembered or appended as an event, and its tool calls
are only checked against the offered tools' JSON schemas (counted valid or not), never run.

A shadow runs on a daemon thread with its own database connection (closed after), so the live
turn never waits for it; GTW_SHADOW_INLINE runs it on the caller's thread instead (tests).
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from gtw_site import telemetry
from gtw_site.providers.base import ProviderError, clip

logger = logging.getLogger(__name__)
MAX_TEXT = 20_000


def _inline() -> bool:
    from django.conf import settings

    return bool(getattr(settings, "GTW_SHADOW_INLINE", False))


class Shadows:
    """The shadow providers of one live adapter (attached by the Registry to its Recorded)."""

    def __init__(self, registry: Any, role: str, selections: Sequence[Any]) -> None:
        self.registry = registry
        self.role = role
        self.selections = list(selections)

    def run(self, method: str, args: tuple, kwargs: Mapping[str, Any]) -> None:
        try:
            args, kwargs = copy.deepcopy((args, dict(kwargs)))
        except Exception:
            logger.warning("a %s request could not be copied for its shadows", self.role, exc_info=True)
            return
        fields = {k: v for k, v in telemetry.current_scope().items() if k != "shadow"}
        if _inline():
            self._work(method, args, kwargs, fields)
            return
        threading.Thread(
            target=self._work_in_thread, args=(method, args, kwargs, fields), name="gtw-shadow", daemon=True
        ).start()

    def _work_in_thread(self, method: str, args: tuple, kwargs: dict, fields: dict) -> None:
        from django.db import connection

        try:
            self._work(method, args, kwargs, fields)
        finally:
            connection.close()

    def _work(self, method: str, args: tuple, kwargs: dict, fields: dict) -> None:
        with telemetry.scope(**fields, shadow=True):
            for chosen in self.selections:
                try:
                    self._one(chosen, method, args, kwargs, fields)
                except Exception:
                    logger.warning("shadow %s failed", chosen.name, exc_info=True)

    def _one(self, chosen: Any, method: str, args: tuple, kwargs: dict, fields: dict) -> None:
        from gtw_site.models import ShadowOutput

        started = time.monotonic()
        text: list[str] = []
        calls: list[Any] = []
        error = ""
        model = ""
        provider = chosen.provider
        try:
            adapter = self.registry.build(self.role, selection=chosen)
            model = str(getattr(adapter, "model", "") or "")
            provider = str(getattr(adapter, "name", provider) or provider)
            recorded = self.registry.record(self.role, adapter, variant=f"shadow:{chosen.name}")
            result = getattr(recorded, method)(*copy.deepcopy(args), **copy.deepcopy(kwargs))
            if isinstance(result, str):
                text.append(result)
            elif result is not None and hasattr(result, "__iter__") and not isinstance(result, (bytes, dict)):
                for event in result:
                    piece = getattr(event, "text", None)
                    if isinstance(piece, str):
                        text.append(piece)
                    call = getattr(event, "call", None)
                    if call is not None:
                        calls.append(call)
        except ProviderError as exc:
            error = clip(str(exc), 480)
        request = args[0] if args else kwargs.get("request")
        valid = sum(1 for call in calls if _valid_call(call, getattr(request, "tools", None) or []))
        ShadowOutput.objects.create(
            shadow_name=chosen.name[:40],
            role=self.role,
            provider=provider[:40],
            model=model[:120],
            campaign_id=fields.get("campaign_id"),
            session_id=fields.get("session_id"),
            turn_seq=fields.get("turn_seq"),
            text="".join(text)[:MAX_TEXT],
            tool_calls=len(calls),
            valid_tool_calls=valid,
            latency_ms=round((time.monotonic() - started) * 1000, 2),
            ok=not error,
            error=error,
        )


def _valid_call(call: Any, tools: Sequence[Any]) -> bool:
    """Whether a shadow's tool call names an offered tool with arguments its schema accepts."""
    spec = next((t for t in tools if getattr(t, "name", None) == getattr(call, "name", None)), None)
    arguments = getattr(call, "arguments", None)
    if spec is None or not isinstance(arguments, dict):
        return False
    try:
        import jsonschema

        jsonschema.validate(arguments, getattr(spec, "parameters", {}) or {})
    except ImportError:
        return True
    except Exception:  # noqa: BLE001 - ValidationError or a schema the validator rejects
        return False
    return True
