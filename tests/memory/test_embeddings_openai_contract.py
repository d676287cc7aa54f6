"""OpenAIEmbedder against a local server speaking OpenAI's Embeddings wire format."""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator

import numpy as np
import pytest

from gtw_site.providers import ProviderError, Usage
from memory.embeddings.openai import OpenAIEmbedder
from tests.fakes.embed_server import EmbedReply, EmbedServer, vector_for


@pytest.fixture
def server() -> Iterator[EmbedServer]:
    with EmbedServer() as running:
        yield running


@pytest.fixture
def embedder(server: EmbedServer) -> OpenAIEmbedder:
    return OpenAIEmbedder(api_key="sk-test", base_url=server.base_url, timeout=2.0)


def unit(vector: list[float]) -> np.ndarray:
    array = np.asarray(vector, dtype=np.float64)
    return array / np.linalg.norm(array)


def failure(embedder: OpenAIEmbedder, texts: list[str]) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        embedder.embed(texts)
    return caught.value


def test_the_module_wraps_the_real_sdk():
    import memory.embeddings.openai as adapter

    assert adapter.openai is sys.modules["openai"]


def test_the_request_carries_model_dimensions_inputs_and_key(server, embedder):
    embedder.embed(["The smuggler hid the crate.", "The reactor is overheating."])

    (request,) = server.requests
    assert request.path == "/v1/embeddings"
    assert request.headers["authorization"] == "Bearer sk-test"
    assert request.body["model"] == "text-embedding-3-small"
    assert request.body["dimensions"] == 384
    assert request.body["input"] == ["The smuggler hid the crate.", "The reactor is overheating."]
    assert embedder.name == "openai"
    assert embedder.dimensions == 384


def test_vectors_come_back_unit_length_and_equal_to_what_the_server_sent(server, embedder):
    # The SDK asks for base64 by default; this checks the float32 decode end to end.
    texts = ["The smuggler hid the crate.", "The reactor is overheating."]

    vectors = embedder.embed(texts)

    assert server.last_body["encoding_format"] == "base64"
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)
    for text, vector in zip(texts, vectors, strict=True):
        assert np.allclose(vector, unit(vector_for(text, 384)), atol=1e-6)


def test_a_server_that_answers_floats_regardless_still_works(server, embedder):
    server.script(EmbedReply(force_float=True))

    (vector,) = embedder.embed(["Ollama ignores encoding_format."])

    assert np.allclose(vector, unit(vector_for("Ollama ignores encoding_format.", 384)), atol=1e-6)


def test_inputs_are_sent_in_batches_of_batch_size_and_come_back_in_order(server):
    embedder = OpenAIEmbedder(api_key="sk-test", base_url=server.base_url, batch_size=3, timeout=2.0)
    texts = [f"Log entry {i}: the crew reached waypoint {i}." for i in range(7)]

    vectors = embedder.embed(texts)

    assert [request.body["input"] for request in server.requests] == [texts[0:3], texts[3:6], texts[6:7]]
    expected = [unit(vector_for(text, 384)) for text in texts]
    assert np.allclose(vectors, expected, atol=1e-6)
    assert embedder.last_usage == Usage(tokens_in=sum(len(text.split()) for text in texts))


def test_data_out_of_order_is_put_back_by_index(server, embedder):
    server.script(EmbedReply(reverse=True))
    texts = ["first", "second", "third"]

    vectors = embedder.embed(texts)

    assert np.allclose(vectors, [unit(vector_for(text, 384)) for text in texts], atol=1e-6)


def test_blank_texts_are_not_sent_and_get_zero_vectors(server, embedder):
    # The API answers 400 to an empty string, which would sink the whole batch.
    vectors = embedder.embed(["", "The hatch opens.", "   "])

    assert server.last_body["input"] == ["The hatch opens."]
    assert vectors[0] == [0.0] * 384
    assert vectors[2] == [0.0] * 384
    assert np.allclose(vectors[1], unit(vector_for("The hatch opens.", 384)), atol=1e-6)


def test_nothing_to_embed_makes_no_request(server, embedder):
    assert embedder.embed([]) == []
    assert embedder.embed([""]) == [[0.0] * 384]
    assert server.requests == []


def test_the_configured_dimensions_are_sent(server):
    embedder = OpenAIEmbedder(api_key="sk-test", base_url=server.base_url, dimensions=256, timeout=2.0)

    (vector,) = embedder.embed(["Short and sweet."])

    assert server.last_body["dimensions"] == 256
    assert len(vector) == 256


def test_a_dimension_mismatch_is_a_permanent_error_that_says_so(server, embedder):
    server.script(EmbedReply(width=1536))

    error = failure(embedder, ["The hatch opens."])

    assert error.retryable is False
    assert error.provider == "openai"
    assert "1536" in error.message
    assert "384" in error.message


def test_fewer_vectors_than_inputs_is_a_permanent_error(server, embedder):
    server.script(EmbedReply(drop_last=True))

    error = failure(embedder, ["one", "two"])

    assert error.retryable is False
    assert "1 embeddings for 2 inputs" in error.message


def test_a_server_error_is_retryable(server, embedder):
    server.script(EmbedReply.error(500))

    error = failure(embedder, ["The hatch opens."])

    assert error.retryable is True
    assert error.status == 500
    assert "server error (500)" in error.message


def test_a_rate_limit_is_retryable(server, embedder):
    server.script(EmbedReply.error(429))

    error = failure(embedder, ["The hatch opens."])

    assert error.retryable is True
    assert error.status == 429
    assert "rate limited" in error.message


def test_running_out_of_credit_is_not_retryable(server, embedder):
    server.script(EmbedReply.error(429, "You exceeded your current quota", code="insufficient_quota"))

    error = failure(embedder, ["The hatch opens."])

    assert error.retryable is False
    assert "billing" in error.message


def test_a_bad_key_is_permanent_and_says_where_to_look(server, embedder):
    server.script(EmbedReply.error(401))

    error = failure(embedder, ["The hatch opens."])

    assert error.retryable is False
    assert error.status == 401
    assert str(error) == "openai: authentication failed (401) — check OPENAI_API_KEY"
    # The server's message echoes part of the key; it is not passed on.
    assert "sk-test" not in str(error)


@pytest.mark.parametrize("status", [400, 403, 404])
def test_client_errors_are_permanent(server, embedder, status):
    server.script(EmbedReply.error(status))

    error = failure(embedder, ["The hatch opens."])

    assert error.retryable is False
    assert error.status == status


def test_an_unknown_model_names_the_model(server):
    embedder = OpenAIEmbedder(model="text-embedding-9", api_key="sk-test", base_url=server.base_url)
    server.script(EmbedReply.error(404))

    error = failure(embedder, ["The hatch opens."])

    assert "text-embedding-9" in error.message


def test_a_slow_server_times_out_as_retryable(server):
    embedder = OpenAIEmbedder(api_key="sk-test", base_url=server.base_url, timeout=0.3)
    server.script(EmbedReply(delay=5.0))

    error = failure(embedder, ["The hatch opens."])

    assert error.retryable is True
    assert "timed out after 0.3s" in error.message
    # max_retries=0: one request, not the SDK's default three.
    assert len(server.requests) == 1


def test_an_unreachable_server_is_retryable_and_named():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    embedder = OpenAIEmbedder(api_key="sk-test", base_url=url, timeout=0.5)

    error = failure(embedder, ["The hatch opens."])

    assert error.retryable is True
    assert url in error.message


def test_a_missing_key_is_a_permanent_error(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)

    with pytest.raises(ProviderError) as caught:
        OpenAIEmbedder(api_key="")

    assert caught.value.retryable is False
    assert "OPENAI_API_KEY" in caught.value.message
