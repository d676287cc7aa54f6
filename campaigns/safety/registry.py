"""The `moderation` kind, declared on the generic provider registry: one role, "moderation".

GTW_MODERATION_PROVIDER picks `local` (the default: a lexicon, offline, no key), `openai` (the
moderation endpoint) or `openai_compatible` (Llama Guard 3 on vLLM/Ollama). Adding a classifier =
one module in campaigns/safety/classifiers/, one line in PROVIDERS, one contract test.
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings

from gtw_site.providers.registry import CALL, Choice, Registry


def _arguments(choice: Choice) -> dict[str, Any]:
    if choice.provider == "local":
        return {}
    vendor = choice.conf[choice.provider]
    args = {
        "model": vendor["model"],
        "api_key": vendor["api_key"],
        "base_url": vendor["base_url"],
        "timeout": choice.timeout,
    }
    if choice.provider == "openai_compatible":
        args["prompt"] = vendor.get("prompt", "template")
    return args


MODERATION = Registry(
    "moderation",
    roles=("moderation",),
    providers={
        "local": "campaigns.safety.classifiers.local:LocalModeration",
        "openai": "campaigns.safety.classifiers.remote:OpenAIModeration",
        "openai_compatible": "campaigns.safety.classifiers.remote:LlamaGuardModeration",
    },
    settings=lambda: settings.GTW_MODERATION,
    # GTW_MODERATION_TIMEOUT bounds a remote classifier's call: it stands before a player's turn.
    timeout=lambda role, conf: conf[role]["timeout"],
    arguments=_arguments,
    calls={"classify": CALL},
    # Built once per configuration: the lexicon compiles once, a client keeps its connections.
    cache_key=lambda choice: json.dumps(choice.conf.get(choice.provider, {}), sort_keys=True, default=str),
)

PROVIDERS = MODERATION.providers


def get(role: str = "moderation") -> Any:
    """The classifier. The local one is not recorded in telemetry (it runs on every sentence of
    every narration, in well under a millisecond); a remote one leaves a ProviderCall row per call."""
    if MODERATION.provider_name(role) == "local":
        return MODERATION.build(role)
    return MODERATION.get(role)
