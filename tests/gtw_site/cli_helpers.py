"""Shared by the `gtw` CLI tests: the repository root and the command line that runs `gtw`."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GTW = [sys.executable, "-m", "gtw_site.cli"]
