"""The "embedder" role: which embedder this deployment uses (GTW_EMBEDDER), built once."""

from __future__ import annotations

import threading

from django.conf import settings

from gtw_site.providers import ProviderError, load_factory
from memory.embeddings.base import Embedder

EMBEDDERS = {
    "local": "memory.embeddings.local:LocalEmbedder",
    "openai": "memory.embeddings.openai:OpenAIEmbedder",
}

_lock = threading.Lock()
_cache: dict[tuple, Embedder] = {}


def get() -> Embedder:
    conf = settings.GTW_MEMORY
    name = conf["embedder"]
    key = (name, conf["dimensions"], conf["model_dir"], conf["openai_model"])
    with _lock:
        if key in _cache:
            return _cache[key]
        if name not in EMBEDDERS:
            raise ProviderError(
                f"unknown embedder '{name}' (choose: {', '.join(EMBEDDERS)})", retryable=False
            )
        factory = load_factory(EMBEDDERS[name])
        if name == "local":
            embedder = factory(model_dir=conf["model_dir"], threads=1)
        else:
            openai_conf = settings.GTW_LLM["openai"]
            embedder = factory(
                model=conf["openai_model"],
                api_key=openai_conf["api_key"],
                base_url=openai_conf["base_url"],
                dimensions=conf["dimensions"],
                timeout=settings.GTW_LLM["narrator"]["timeout"],
            )
        if embedder.dimensions != conf["dimensions"]:
            raise ProviderError(
                f"the {name} embedder makes {embedder.dimensions}-dimensional vectors but "
                f"GTW_EMBEDDING_DIM is {conf['dimensions']}; set it to match and run `gtw memory reembed`",
                retryable=False,
            )
        _cache[key] = embedder
        return embedder


def reset() -> None:
    with _lock:
        _cache.clear()
