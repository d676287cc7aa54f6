"""What the `gtw` subcommands share: the data folder, a one-line failure, Django set-up, and the
security warnings `gtw up` and `gtw doctor` both print."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import NoReturn

BASE_DIR = Path(__file__).resolve().parents[2]


def data_folder() -> Path:
    return Path(os.environ.get("GTW_DATA_DIR") or BASE_DIR / "var").resolve()


def fail(message: str, code: int = 1) -> NoReturn:
    sys.stderr.write(f"gtw: {message}\n")
    raise SystemExit(code)


def setup_django():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gtw_site.settings")
    import django

    django.setup()


def security_warnings() -> list[str]:
    """What `gtw up` and `gtw doctor` shout about: configuration that is fine on a laptop and
    dangerous on a server. Needs Django set up."""
    from gtw_site.accounts import mail_warning

    return [warning for warning in (mail_warning(),) if warning]
