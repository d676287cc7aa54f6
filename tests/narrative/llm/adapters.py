"""Helpers for the chat-adapter tests: a request, an OpenAI or OpenAI-compatible adapter pointed at
the local wire-format server, and a port nothing listens on."""

from __future__ import annotations

import socket

from narrative.llm.base import ChatRequest, Message
from narrative.llm.openai import OpenAIChatProvider
from narrative.llm.openai_compatible import OpenAICompatibleProvider


def ask(**kwargs) -> ChatRequest:
    messages = [Message("system", "You are the game master."), Message("user", "I pick the lock.")]
    return ChatRequest(messages=messages, **kwargs)


def openai_like(kind: str, base_url: str, timeout: float = 2.0, api_key: str = "sk-test-key"):
    if kind == "openai":
        return OpenAIChatProvider(model="gpt-test", api_key=api_key, base_url=base_url, timeout=timeout)
    return OpenAICompatibleProvider(model="llama", api_key=api_key, base_url=base_url, timeout=timeout)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
