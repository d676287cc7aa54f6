"""`gtw mission validate FILE...`: compile mission files and report, one line per file or error."""

from __future__ import annotations

import sys
from typing import TextIO

from . import MissionError, compile_source


def validate_main(paths: list[str], out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    """Print `path: ok (<slug>, <hash[:12]>)` or each error; 0 when every file is valid, else 1."""
    status = 0
    for path in paths:
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except OSError as exc:
            print(f"{path}: cannot read file: {exc.strerror or exc}", file=err)
            status = 1
            continue
        try:
            text = data.decode("utf-8-sig")  # a leading BOM is not part of the mission
        except UnicodeDecodeError as exc:
            print(f"{path}: not UTF-8 text (invalid byte at offset {exc.start})", file=err)
            status = 1
            continue
        try:
            compiled = compile_source(text, path)
        except MissionError as exc:
            for error in exc.errors:
                print(str(error), file=err)
            status = 1
            continue
        print(f"{path}: ok ({compiled.slug}, {compiled.content_hash[:12]})", file=out)
    return status


if __name__ == "__main__":
    sys.exit(validate_main(sys.argv[1:]))
