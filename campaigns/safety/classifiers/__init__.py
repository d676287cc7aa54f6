"""The `moderation` provider kind: `local` (lexicon, offline, the default), `openai` (the
moderation endpoint) and `openai_compatible` (Llama Guard 3 served by vLLM or Ollama). Every
adapter answers `classify(text, *, lines=(), veils=(), role="user", redact_kinds=None) -> Verdict`
in the categories of campaigns.safety.categories. No Django of their own (the registry is in
campaigns/safety/registry.py)."""
