"""The chat kind: narrator and summarizer roles, declared on the generic provider registry.

Domain code asks for a role ("narrator", "summarizer"), never a vendor. Adding a chat provider =
one module in narrative/llm/, one line in PROVIDERS, one contract test. The module-level
functions are the seams callers (and tests) use: `get` builds through this module's `build`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.conf import settings

from gtw_site import telemetry
from gtw_site.providers.registry import CALL, STREAM, Choice, Registry
from gtw_site.providers.registry import Recorded as RecordedCalls
from narrative.llm.base import ChatProvider


def _choose(role: str, conf: Mapping[str, Any]) -> str:
    """GTW_<ROLE>_PROVIDER, where "auto" takes the first vendor with a key (or a server address),
    else the offline narrator."""
    name = conf[role]["provider"]
    if name != "auto":
        return name
    if conf["anthropic"]["api_key"]:
        return "anthropic"
    if conf["openai"]["api_key"]:
        return "openai"
    if conf["openai_compatible"]["base_url"]:
        return "openai_compatible"
    return "offline"


def _arguments(choice: Choice) -> dict[str, Any]:
    if choice.provider == "offline":
        return {"word_delay_s": choice.conf["offline"]["word_delay_s"]}
    if choice.provider == "local_llm":
        local = choice.conf["local_llm"]
        return {
            "model_path": local["model_path"],
            "threads": local["threads"],
            "max_tokens": local["max_tokens"],
            "context": local["context"],
            "timeout": choice.timeout,
        }
    vendor = choice.conf.get(choice.provider)
    if vendor is None:  # a provider with no settings block: a runtime choice's options carry the rest
        return {"timeout": choice.timeout}
    return {
        "model": vendor["model"],
        "api_key": vendor["api_key"],
        "base_url": vendor["base_url"],
        "timeout": choice.timeout,
    }


def _cache_key(choice: Choice) -> tuple[Any, ...] | None:
    """Only the local GGUF narrator is kept: loading a model takes a while; remote adapters are
    cheap to build and follow settings changes."""
    if choice.provider != "local_llm":
        return None
    local = choice.conf.get("local_llm") or {}
    return (local.get("model_path"), local.get("context"))


CHAT = Registry(
    "chat",
    roles=("narrator", "summarizer"),
    providers={
        "offline": "narrative.llm.offline:OfflineNarrator",
        "openai": "narrative.llm.openai:OpenAIChatProvider",
        "anthropic": "narrative.llm.anthropic:AnthropicChatProvider",
        "openai_compatible": "narrative.llm.openai_compatible:OpenAICompatibleProvider",
        "local_llm": "narrative.llm.local_llm:LocalLLMNarrator",
    },
    settings=lambda: settings.GTW_LLM,
    choose=_choose,
    # GTW_LLM_TIMEOUT: every chat adapter bounds a whole call by it.
    timeout=lambda role, conf: conf[role]["timeout"],
    arguments=_arguments,
    calls={"stream": STREAM, "complete": CALL},
    # A GGUF model takes a while to load: one per distinct file and size.
    cache_key=_cache_key,
)

# The same dict the registry reads: `PROVIDERS["name"] = "module:Class"` registers a provider.
PROVIDERS = CHAT.providers


def resolve_provider_name(role: str, conf: Mapping[str, Any] | None = None) -> str:
    return CHAT.provider_name(role, conf)


def build(role: str, conf: Mapping[str, Any] | None = None) -> ChatProvider:
    return CHAT.build(role, conf)


class Recorded(RecordedCalls):
    """A chat adapter whose `stream` and `complete` each leave a telemetry row."""

    def __init__(self, role: str, inner: ChatProvider) -> None:
        super().__init__(role, inner, calls=CHAT.calls, kind=CHAT.kind)


def get(role: str) -> RecordedCalls | ChatProvider:
    adapter = build(role)
    # GTW_TELEMETRY (and the turn benchmark's A/B switch): unwrapped when calls are not recorded.
    if not telemetry.enabled():
        return adapter
    # Rows name the experiment variant that chose the adapter; shadow providers get its calls.
    return CHAT.wrap(role, adapter, CHAT.selection(role, refresh=False))
