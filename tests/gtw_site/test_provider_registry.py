"""The generic provider registry (gtw_site.providers.registry): a new kind declared in a few
lines gets lazy loading, settings per role, one timeout, telemetry rows and ProviderError
mapping for free — the same machinery the chat and embedder kinds are declared on.

issue 12 part 3: every kind had its own registry (narrative/llm/registry.py, a second copy in
memory/embeddings/registry.py) and memory imported narrative's private LLM helpers."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from gtw_site.models import ProviderCall
from gtw_site.providers import ProviderError
from gtw_site.providers.registry import CALL, STREAM, Choice, Registry

ROOT = Path(__file__).resolve().parents[2]

# A "fortune" kind with two providers, written as a module of its own so the test can see
# when it is imported. `Oracle` reads fortunes and streams them; `Broken` fails every call.
ADAPTERS = """
from gtw_site.providers import ProviderError, Usage

BUILT = []


class End:
    def __init__(self, usage):
        self.usage = usage


class Oracle:
    name = "oracle"

    def __init__(self, *, model, tone, timeout):
        self.model = model
        self.tone = tone
        self.timeout = timeout
        self.last_usage = Usage()
        BUILT.append(self)

    def tell(self, question):
        self.last_usage = Usage(len(question.split()), 3)
        return f"{self.tone}: yes"

    def chant(self, question):
        yield "om "
        yield "om"
        yield End(Usage(2, 5))


class Broken:
    name = "broken"
    model = "b-0"

    def __init__(self, **kwargs):
        pass

    def tell(self, question):
        raise ProviderError("the oracle is asleep", retryable=True, provider=self.name)

    def chant(self, question):
        yield "om "
        raise ValueError("lost the tune")
"""


@pytest.fixture
def adapters(tmp_path, monkeypatch):
    """The fake adapters' module name; it is importable but not imported."""
    name = f"fortune_adapters_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(ADAPTERS)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)


def fortune_kind(adapters: str, conf: dict, **extra) -> Registry:
    """The whole declaration of a new kind."""
    return Registry(
        "fortune",
        roles=("seer", "bard"),
        providers={"oracle": f"{adapters}:Oracle", "broken": f"{adapters}:Broken"},
        settings=lambda: conf,
        timeout=lambda role, conf: conf["timeout"],
        arguments=lambda choice: {
            "model": choice.conf[choice.role].get("model", "o-1"),
            "tone": choice.conf[choice.role].get("tone", "calm"),
            "timeout": choice.timeout,
        },
        calls={"tell": CALL, "chant": STREAM},
        **extra,
    )


def test_an_adapter_module_is_imported_only_when_a_role_picks_it(adapters):
    conf = {"seer": {"provider": "oracle"}, "bard": {"provider": "oracle"}, "timeout": 4.0}
    kind = fortune_kind(adapters, conf)
    assert adapters not in sys.modules  # declaring a kind loads nothing

    adapter = kind.build("seer")

    assert adapters in sys.modules
    assert type(adapter).__name__ == "Oracle"


def test_each_role_is_built_from_its_own_settings_with_the_kinds_timeout(adapters):
    conf = {
        "seer": {"provider": "oracle", "tone": "grave", "model": "o-2"},
        "bard": {"provider": "oracle", "tone": "merry"},
        "timeout": 7.5,
    }
    kind = fortune_kind(adapters, conf)

    seer, bard = kind.build("seer"), kind.build("bard")

    assert (seer.tone, seer.model, seer.timeout) == ("grave", "o-2", 7.5)
    assert (bard.tone, bard.model, bard.timeout) == ("merry", "o-1", 7.5)
    # Settings are read on every build: a changed provider takes effect at the next one.
    conf["bard"]["provider"] = "broken"
    assert kind.provider_name("bard") == "broken"
    assert type(kind.build("bard")).__name__ == "Broken"
    # And a caller may hand over other settings (doctor checks a configuration this way).
    other = {**conf, "seer": {"provider": "broken"}}
    assert kind.provider_name("seer", other) == "broken"


@pytest.mark.django_db
def test_every_call_and_every_stream_leaves_a_telemetry_row(adapters):
    conf = {"seer": {"provider": "oracle"}, "bard": {"provider": "oracle"}, "timeout": 4.0}
    seer = fortune_kind(adapters, conf).get("seer")

    assert seer.tell("will it rain today") == "calm: yes"
    chanted = list(seer.chant("sing"))

    assert chanted[:2] == ["om ", "om"]
    assert seer.tone == "calm"  # everything else is the adapter's own
    rows = list(
        ProviderCall.objects.order_by("id").values_list(
            "role", "provider", "model", "tokens_in", "tokens_out", "ok", "error"
        )
    )
    assert rows == [
        ("seer", "oracle", "o-1", 4, 3, True, ""),
        ("seer", "oracle", "o-1", 2, 5, True, ""),
    ]


@pytest.mark.django_db
def test_failed_calls_leave_a_failed_row_and_raise_unchanged(adapters):
    conf = {"seer": {"provider": "broken"}, "bard": {"provider": "broken"}, "timeout": 4.0}
    bard = fortune_kind(adapters, conf).get("bard")

    with pytest.raises(ProviderError) as caught:
        bard.tell("why")
    with pytest.raises(ValueError, match="lost the tune"):
        list(bard.chant("sing"))

    assert caught.value.retryable is True
    rows = list(ProviderCall.objects.order_by("id").values_list("role", "provider", "ok", "error"))
    assert rows == [
        ("bard", "broken", False, "broken: the oracle is asleep"),
        ("bard", "broken", False, "unexpected ValueError: lost the tune"),
    ]


def test_setup_mistakes_are_provider_errors_that_name_the_choices(adapters):
    conf = {"seer": {"provider": "sibyl"}, "bard": {"provider": "oracle"}, "timeout": 4.0}
    kind = fortune_kind(adapters, conf)

    with pytest.raises(ProviderError) as unknown:
        kind.build("seer")
    assert unknown.value.retryable is False
    assert str(unknown.value) == "sibyl: unknown provider 'sibyl' for role seer (choose: oracle, broken)"

    with pytest.raises(ProviderError) as no_role:
        kind.get("juggler")
    assert "no fortune role 'juggler' (roles: seer, bard)" in str(no_role.value)

    # A provider whose SDK is not installed (or a typo in its path) is a setup problem too.
    kind.providers["delphi"] = "no_such_fortune_sdk.adapter:Delphi"
    conf["bard"]["provider"] = "delphi"
    with pytest.raises(ProviderError) as unloadable:
        kind.build("bard")
    assert unloadable.value.retryable is False
    assert "could not load the fortune adapter no_such_fortune_sdk.adapter:Delphi" in str(unloadable.value)
    assert "ModuleNotFoundError" in str(unloadable.value)


def test_a_costly_adapter_is_built_once_per_setting_and_checked_first(adapters):
    conf = {"seer": {"provider": "oracle", "tone": "grave"}, "bard": {"provider": "oracle"}, "timeout": 4.0}

    def only_grave(adapter, choice: Choice) -> None:
        if adapter.tone != "grave":
            raise ProviderError(f"the {choice.role} must be grave", retryable=False)

    kind = fortune_kind(
        adapters,
        conf,
        cache_key=lambda choice: choice.conf[choice.role].get("tone"),
        check=only_grave,
    )
    first = kind.build("seer")
    assert kind.build("seer") is first
    built = sys.modules[adapters].BUILT
    assert built == [first]

    conf["seer"]["tone"] = "merry"  # a new setting: a new adapter, refused by the check
    with pytest.raises(ProviderError, match="the seer must be grave"):
        kind.build("seer")
    with pytest.raises(ProviderError):
        kind.build("seer")  # a refused adapter is not cached
    assert len(built) == 3

    conf["seer"]["tone"] = "grave"
    assert kind.build("seer") is first
    kind.reset()
    assert kind.build("seer") is not first


def test_the_chat_and_embedder_kinds_are_declared_on_the_generic_registry():
    from memory.embeddings import registry as embedder_registry
    from narrative.llm import registry as chat_registry

    assert chat_registry.CHAT.roles == ("narrator", "summarizer")
    assert chat_registry.PROVIDERS is chat_registry.CHAT.providers
    assert embedder_registry.EMBEDDER.roles == ("embedder",)
    assert embedder_registry.EMBEDDERS is embedder_registry.EMBEDDER.providers


def _imports(path: Path) -> list[tuple[str, str]]:
    """(module, name) for every `from module import name` in the file, at any depth."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found += [(node.module, alias.name) for alias in node.names]
    return found


def test_provider_code_imports_no_other_apps_private_names():
    """issue 12 part 3: memory's OpenAI embedder imported narrative's LLM internals (`_detail`,
    `_clip`, `safe_url` from narrative.llm); the shared helpers are public in gtw_site.providers."""
    offenders = []
    for folder in ("gtw_site/providers", "narrative/llm", "memory/embeddings"):
        app = folder.split("/")[0]
        for path in sorted((ROOT / folder).glob("*.py")):
            for module, name in _imports(path):
                other_app = module.split(".")[0] != app
                if other_app and (name.startswith("_") or module.startswith(("narrative", "memory"))):
                    offenders.append(f"{path.relative_to(ROOT)}: from {module} import {name}")
    assert offenders == []
