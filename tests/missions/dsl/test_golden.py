"""Golden files: valid missions and their AST, invalid missions and their exact error text.

Regenerate after an intended change with `GTW_UPDATE_GOLDEN=1 pytest tests/missions/dsl`, then
read the diff: every changed line is a change users will see.
"""

import json
import os
from pathlib import Path

import pytest

from missions.dsl import MissionError, compile_source, content_hash, to_source

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("GTW_UPDATE_GOLDEN") == "1"

VALID = sorted((GOLDEN / "valid").glob("*.mission"))
INVALID = sorted((GOLDEN / "invalid").glob("*.mission"))


def _check_or_update(path: Path, actual: str) -> None:
    if UPDATE:
        path.write_text(actual, encoding="utf-8")
    assert path.exists(), f"{path.name} is missing: run with GTW_UPDATE_GOLDEN=1 to create it"
    assert path.read_text(encoding="utf-8") == actual


def test_there_are_enough_golden_files():
    assert len(VALID) >= 4
    assert len(INVALID) >= 8


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.stem)
def test_valid_golden_compiles_to_its_ast(path):
    compiled = compile_source(path.read_text(encoding="utf-8"), path.name)
    _check_or_update(path.with_suffix(".json"), json.dumps(compiled.ast, indent=2, ensure_ascii=False) + "\n")
    assert compiled.ast["version"] == 1
    assert compiled.content_hash == content_hash(compiled.ast)
    again = compile_source(to_source(compiled.ast))
    assert again.ast == compiled.ast
    assert again.content_hash == compiled.content_hash


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_invalid_golden_reports_exact_errors(path):
    with pytest.raises(MissionError) as caught:
        compile_source(path.read_text(encoding="utf-8"), path.name)
    _check_or_update(path.with_suffix(".err"), str(caught.value) + "\n")
    assert all(str(e).startswith(f"{path.name}:") for e in caught.value.errors)
    positions = [(e.line, e.col) for e in caught.value.errors]
    assert positions == sorted(positions)
