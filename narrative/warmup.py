"""The chat kind's warm-up probe (campaigns.scheduling.warmup): one tiny real completion, which
loads a local model, proves a remote key and, for the offline narrator, answers at once."""

from __future__ import annotations

from narrative.llm.base import ChatRequest, Message


def chat_probe(adapter) -> str:
    request = ChatRequest(
        messages=[
            Message(role="system", content="You are checking that you can answer. Reply with one word."),
            Message(role="user", content="Ready?"),
        ],
        max_tokens=8,
        temperature=0.0,
    )
    text = adapter.complete(request)
    if not isinstance(text, str):
        raise TypeError(f"answered {type(text).__name__}, not text")
    return f"answered ({len(text.split())} word{'s' if len(text.split()) != 1 else ''})"
