"""The local wire-format server (tests/fakes/wire_server.py) the chat-adapter tests talk to."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.wire_server import WireServer


@pytest.fixture
def wire() -> Iterator[WireServer]:
    with WireServer() as server:
        yield server
