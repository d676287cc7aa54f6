"""The embedder kind: the "embedder" role (GTW_EMBEDDER), declared on the generic provider
registry. An embedder is built once per distinct setting (the local model takes a while to load).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from gtw_site.providers import ProviderError
from gtw_site.providers.registry import CALL, Choice, Registry
from memory.embeddings.base import Embedder


def _arguments(choice: Choice) -> dict[str, Any]:
    conf = choice.conf
    if choice.provider == "local":
        return {"model_dir": conf["model_dir"], "threads": 1}
    openai_conf = settings.GTW_LLM["openai"]
    return {
        "model": conf["openai_model"],
        "api_key": openai_conf["api_key"],
        "base_url": openai_conf["base_url"],
        "dimensions": conf["dimensions"],
        "timeout": choice.timeout,
    }


def _check(embedder: Embedder, choice: Choice) -> None:
    dimensions = choice.conf["dimensions"]
    if embedder.dimensions != dimensions:
        raise ProviderError(
            f"the {choice.provider} embedder makes {embedder.dimensions}-dimensional vectors but "
            f"GTW_EMBEDDING_DIM is {dimensions}; set it to match and run `gtw memory reembed`",
            retryable=False,
        )


EMBEDDER = Registry(
    "embedder",
    roles=("embedder",),
    providers={
        "local": "memory.embeddings.local:LocalEmbedder",
        "openai": "memory.embeddings.openai:OpenAIEmbedder",
    },
    settings=lambda: settings.GTW_MEMORY,
    choose=lambda role, conf: conf["embedder"],
    # Remote embedders share the chat kind's limit (GTW_LLM_TIMEOUT).
    timeout=lambda role, conf: settings.GTW_LLM["narrator"]["timeout"],
    arguments=_arguments,
    check=_check,
    cache_key=lambda choice: (
        choice.conf["dimensions"],
        choice.conf["model_dir"],
        choice.conf["openai_model"],
    ),
    # One row per embed call. Calls made on a worker pool (a turn's query embedding) go through
    # gtw_site.telemetry.in_thread, so their rows are written by the thread that takes the result.
    calls={"embed": CALL},
)

# The same dict the registry reads: `EMBEDDERS["name"] = "module:Class"` registers an embedder.
EMBEDDERS = EMBEDDER.providers


def get() -> Embedder:
    return EMBEDDER.get("embedder")


def reset() -> None:
    EMBEDDER.reset()
