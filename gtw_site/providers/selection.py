"""Runtime provider selection: per-site and per-campaign choices (gtw_site.models.ProviderChoice)
layered over the environment's settings by the registry, at the next call, in every process.

Each process keeps the choices in memory with the `ProviderRevision` mark it loaded them at;
`current()` reads that one row (a primary-key lookup, once per adapter build — a turn builds its
narrator once, never per delta) and reloads the small table only when the number moved. Every
write goes through `choice_set` / `choice_clear` / `price_*`, which bump the number in the same
transaction. GTW_PROVIDER_REFRESH_S > 0 trades that lookup for a cache of that many seconds.
A turn runs inside `checked_once()`: one read for all the adapters it builds.

A worker-pool job (gtw_site.telemetry.in_thread: a turn's query embedding on "gtw-embed") never
reads the revision itself, which would open a database connection per pool thread: the thread
that submits it checks the revision (at most once per POOL_SYNC_S) and the job builds its
adapter from the choices as loaded (`as_loaded()`), for the campaign of the submitter's scope.

Precedence for a role: the campaign's choice, else the site's choice, else the environment.
When the database cannot be read (a pool thread without access, the database restarting) the
last loaded choices stay in force — and the environment, if none was ever loaded.
"""

from __future__ import annotations

import contextvars
import hashlib
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)

ROLES = ("narrator", "summarizer", "embedder", "stt", "tts", "image", "simulation", "moderation")

# Options a choice may carry, the constructor arguments every kind's adapters name alike.
OPTION_NAMES = ("model", "base_url", "voice", "size", "model_path", "max_tokens")
MAX_OPTION_LENGTH = 300
# How stale the choices a pool job builds from may be (the submitter read the revision then).
POOL_SYNC_S = 1.0
# Inside `as_loaded()` (a pool job): no revision read, the loaded choices as they are.
_pinned: contextvars.ContextVar[bool] = contextvars.ContextVar("gtw_selection_pinned", default=False)
# Inside `checked_once()` (a turn, a request): [True] once this block has read the revision.
_once: contextvars.ContextVar[list[bool] | None] = contextvars.ContextVar("gtw_selection_once", default=None)


@dataclass(frozen=True)
class Preset:
    """A vendor reachable through the OpenAI-compatible chat adapter."""

    name: str
    label: str
    base_url: str
    model: str
    models: tuple[str, ...]
    needs_key: bool
    provider: str = "openai_compatible"


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            "gemini",
            "Google Gemini",
            "https://generativelanguage.googleapis.com/v1beta/openai/",
            "gemini-2.5-flash",
            ("gemini-2.5-flash", "gemini-2.5-pro", "gemini-2.5-flash-lite", "gemini-2.0-flash"),
            True,
        ),
        Preset(
            "grok",
            "xAI Grok",
            "https://api.x.ai/v1",
            "grok-3-mini",
            ("grok-4", "grok-3", "grok-3-mini"),
            True,
        ),
        Preset(
            "openai",
            "OpenAI",
            "https://api.openai.com/v1",
            "gpt-4o-mini",
            ("gpt-4o-mini", "gpt-4o", "gpt-4.1-mini", "gpt-4.1"),
            True,
        ),
        Preset(
            "anthropic",
            "Anthropic (OpenAI SDK compatibility)",
            "https://api.anthropic.com/v1/",
            "claude-sonnet-4-5",
            ("claude-sonnet-4-5", "claude-haiku-4-5", "claude-opus-4-1"),
            True,
        ),
        Preset(
            "ollama",
            "Ollama (this machine)",
            "http://localhost:11434/v1",
            "llama3.1",
            ("llama3.1", "qwen2.5", "mistral"),
            False,
        ),
        Preset(
            "vllm", "vLLM server", "http://localhost:8000/v1", "meta-llama/Llama-3.1-8B-Instruct", (), False
        ),
        Preset("llamacpp", "llama.cpp server", "http://localhost:8080/v1", "local", (), False),
    )
}


@dataclass(frozen=True)
class Selection:
    """A role's runtime choice: which adapter, its options, the stored key (by id)."""

    role: str
    provider: str
    scope: str  # "site" | "campaign"
    campaign_id: int | None = None
    preset: str = ""
    options: Mapping[str, Any] = field(default_factory=dict)
    key_pk: int | None = None
    key_last4: str = ""
    variant: str = ""  # an A/B experiment's variant name (scope "experiment")
    name: str = ""  # a shadow provider's name (scope "shadow")


@dataclass(frozen=True)
class ExperimentPlan:
    name: str
    role: str
    unit: str  # "campaign" | "session"
    variants: tuple[Selection, ...]
    weights: tuple[int, ...]

    def assign(self, unit_id: int) -> Selection:
        """The variant for a campaign (or session): a hash of the experiment's name and the id,
        so the same unit always gets the same variant, in every process."""
        digest = hashlib.sha256(f"gtw-experiment:{self.name}:{self.unit}:{unit_id}".encode()).digest()
        point = int.from_bytes(digest[:8], "big") % sum(self.weights)
        for variant, weight in zip(self.variants, self.weights, strict=True):
            if point < weight:
                return variant
            point -= weight
        return self.variants[-1]


class _State:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.revision: int | None = None
        self.checked_at = 0.0
        self.site: dict[str, Selection] = {}
        self.campaigns: dict[tuple[int, str], Selection] = {}
        self.experiments: dict[str, ExperimentPlan] = {}  # by role (one active per role)
        self.shadows: list[Selection] = []


_state = _State()


def _refresh_s() -> float:
    from django.conf import settings

    return float(getattr(settings, "GTW_PROVIDER_REFRESH_S", 0.0))


def _load(revision: int) -> None:
    from gtw_site.models import ProviderChoice

    site: dict[str, Selection] = {}
    campaigns: dict[tuple[int, str], Selection] = {}
    for row in ProviderChoice.objects.select_related("key"):
        selection = Selection(
            role=row.role,
            provider=row.provider,
            scope="campaign" if row.campaign_id else "site",
            campaign_id=row.campaign_id,
            preset=row.preset,
            options=dict(row.options or {}),
            key_pk=row.key_id,
            key_last4=row.key.last4 if row.key_id and row.key else "",
        )
        if row.campaign_id:
            campaigns[(row.campaign_id, row.role)] = selection
        else:
            site[row.role] = selection
    experiments, shadows = _load_experiments()
    _state.site, _state.campaigns = site, campaigns
    _state.experiments, _state.shadows = experiments, shadows
    _state.revision = revision


def _load_experiments() -> tuple[dict[str, ExperimentPlan], list[Selection]]:
    from gtw_site.models import Experiment, ShadowProvider

    experiments: dict[str, ExperimentPlan] = {}
    for row in Experiment.objects.filter(active=True).order_by("created_at"):
        variants = [v for v in row.variants or [] if isinstance(v, dict) and v.get("provider")]
        if not variants:
            continue
        experiments[row.role] = ExperimentPlan(
            name=row.name,
            role=row.role,
            unit=row.unit,
            variants=tuple(
                Selection(
                    role=row.role,
                    provider=v["provider"],
                    scope="experiment",
                    options=dict(v.get("options") or {}),
                    variant=str(v.get("name") or v["provider"])[:40],
                )
                for v in variants
            ),
            weights=tuple(max(1, int(v.get("weight") or 1)) for v in variants),
        )
    shadows = [
        Selection(
            role=row.role,
            provider=row.provider,
            scope="shadow",
            campaign_id=row.campaign_id,
            options=dict(row.options or {}),
            name=row.name,
        )
        for row in ShadowProvider.objects.filter(active=True).order_by("pk")
    ]
    return experiments, shadows


def _read_revision() -> int:
    from gtw_site.models import ProviderRevision

    row = ProviderRevision.objects.filter(pk=1).values_list("number", flat=True).first()
    return row or 0


def revision_subquery() -> Any:
    """The revision number as an expression, for a caller that reads it inside a query it makes
    anyway and hands it to `sync(revision=…)` (None reads as 0, like `_read_revision`)."""
    from django.db.models import Subquery

    from gtw_site.models import ProviderRevision

    return Subquery(ProviderRevision.objects.filter(pk=1).values("number")[:1])


def sync(*, max_age: float = 0.0, revision: int | None = None) -> None:
    """Reload the choices if another process (or this one) changed them; `max_age`: not when
    the revision was checked less than that many seconds ago (nor ever inside `as_loaded()`);
    `revision`: the number as the caller just read it in a query of its own
    (`revision_subquery()`)."""
    if _pinned.get():
        return
    once = _once.get()
    if once:  # this turn (or request) read the revision already
        return
    now = time.monotonic()
    refresh = max(_refresh_s(), max_age)
    if refresh > 0 and _state.revision is not None and now - _state.checked_at < refresh:
        return
    try:
        revision = _read_revision() if revision is None else revision
        if revision != _state.revision:
            with _state.lock:
                _load(revision)
        _state.checked_at = now
        if once is not None:
            once.append(True)
    except Exception as exc:  # noqa: BLE001 - no database here (a pool thread, a restart): keep what we have
        logger.debug("provider choices not refreshed: %s", exc)


class as_loaded:
    """Inside the block this thread reads no revision: choices as last loaded in the process."""

    def __enter__(self) -> None:
        self._token = _pinned.set(True)

    def __exit__(self, *exc: object) -> None:
        _pinned.reset(self._token)


class checked_once:
    """Inside the block (one turn, one request) the revision is read at most once: every adapter
    the block builds — the narrator, the moderation classifier per sentence, the summarizer —
    uses the choices in force when it first asked, and a change applies from the next turn.
    Without it a turn read the revision once per adapter build (issue 17 follow-up: two to three
    primary-key reads before a turn's first delta, one per moderated sentence after it)."""

    def __enter__(self) -> None:
        self._token = _once.set([] if _once.get() is None else _once.get())

    def __exit__(self, *exc: object) -> None:
        _once.reset(self._token)


def for_pool_job() -> None:
    """On the thread that submits a pool job: make sure the loaded choices are at most
    POOL_SYNC_S old, so the job can build from them without a database read of its own."""
    try:
        sync(max_age=POOL_SYNC_S)
    except Exception:
        logger.debug("provider choices not refreshed for a pool job", exc_info=True)


def current(
    role: str, campaign_id: int | None, session_id: int | None = None, *, refresh: bool = True
) -> Selection | None:
    """The runtime choice for `role`: the campaign's own, else an active experiment's variant for
    the campaign (or session), else the site's; None: the environment's. `refresh=False`: as
    last loaded (the same adapter build already checked the revision)."""
    if refresh:
        sync()
    if campaign_id is not None:
        found = _state.campaigns.get((campaign_id, role))
        if found is not None:
            return found
    plan = _state.experiments.get(role)
    if plan is not None:
        unit_id = campaign_id if plan.unit == "campaign" else session_id
        if unit_id is not None:
            return plan.assign(unit_id)
    return _state.site.get(role)


def shadows(role: str, campaign_id: int | None) -> list[Selection]:
    """The shadow providers that get `role`'s requests (the site's and the campaign's), as last
    loaded (the adapter's build checked the revision just before)."""
    return [s for s in _state.shadows if s.role == role and s.campaign_id in (None, campaign_id)]


def forget() -> None:
    """Drop the in-memory copy (tests; a process that wants a fresh read)."""
    with _state.lock:
        _state.revision = None
        _state.site, _state.campaigns = {}, {}
        _state.experiments, _state.shadows = {}, []


def bump() -> None:
    """Mark a change; call inside the writing transaction. The number is random, not counted:
    a rolled-back change followed by another can never bring back a number a process loaded
    its choices at."""
    import secrets

    from gtw_site.models import ProviderRevision

    number = secrets.randbits(62) + 1
    if not ProviderRevision.objects.filter(pk=1).update(number=number):
        ProviderRevision.objects.update_or_create(pk=1, defaults={"number": number})


def options_for(selection: Selection) -> dict[str, Any]:
    """The constructor arguments a selection adds, its stored key opened. Fails closed: a key
    that cannot be opened is a ProviderError, never a call made without it or with another."""
    from gtw_site.providers.base import ProviderError

    options = dict(selection.options)
    if selection.key_pk is not None:
        from gtw_site import keys
        from gtw_site.models import ProviderKey

        sealed = ProviderKey.objects.filter(pk=selection.key_pk).values_list("ciphertext", flat=True).first()
        if sealed is None:
            raise ProviderError(
                f"the key chosen for {selection.role} was deleted",
                retryable=False,
                provider=selection.provider,
            )
        try:
            options["api_key"] = keys.open_sealed(sealed)
        except keys.KeyUnavailable as exc:
            raise ProviderError(str(exc), retryable=False, provider=selection.provider) from None
    elif selection.scope == "campaign" and "base_url" in options:
        # A GM's own server address never receives the operator's key from the environment.
        options["api_key"] = ""
    return options
