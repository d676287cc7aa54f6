"""The `gtw` tools for a campaign's content: `gtw memory import|reembed`, `gtw mission validate`,
`gtw deck keygen|sign|verify`."""

from __future__ import annotations

import sys

from gtw_site.cli.common import fail, setup_django


def cmd_memory(args) -> int:
    setup_django()
    from django.contrib.auth import get_user_model

    from campaigns.errors import DomainError
    from campaigns.selectors import membership_get
    from memory import importer

    if args.action == "reembed":
        from django.conf import settings

        conf = settings.GTW_MEMORY
        sys.stdout.write(
            f"Re-embedding every memory with the {conf['embedder']} embedder at {conf['dimensions']} "
            "dimensions; search falls back to keywords until it finishes.\n"
        )
        done = importer.reembed(progress=importer.progress_bar("embedding"))
        sys.stdout.write(f"re-embedded {done} memories\n")
        return 0
    if not args.file or args.campaign is None or not args.user:
        fail("usage: gtw memory import FILE --campaign ID --user USERNAME")
    user = get_user_model().objects.filter(username=args.user).first()
    if user is None:
        fail(f"no user '{args.user}'")
    try:
        membership = membership_get(viewer=user, campaign_id=args.campaign)
        with open(args.file, encoding="utf-8") as handle:
            result = importer.import_jsonl(
                membership=membership, lines=handle.readlines(), progress=importer.progress_bar("importing")
            )
    except (OSError, DomainError) as exc:
        fail(getattr(exc, "message", None) or str(exc))
    sys.stdout.write(f"imported {result['imported']} memories; {result['error_count']} bad lines\n")
    for err in result["errors"][:20]:
        sys.stdout.write(f"  line {err['line']}: {err['error']}\n")
    from memory.services import embed_pending

    embedded = embed_pending()
    sys.stdout.write(f"embedded {embedded} memories\n")
    return 0 if not result["error_count"] else 1


def cmd_mission(args) -> int:
    """Pure: compiles files, never touches the database (no Django setup)."""
    from missions.dsl.cli import validate_main

    try:
        return validate_main(args.files)
    except Exception as exc:  # noqa: BLE001 - a validator bug must read as a message, not a traceback
        sys.stderr.write(f"gtw mission validate: internal error ({type(exc).__name__}: {exc})\n")
        return 1


def cmd_deck(args) -> int:
    """Pure: `narrative.decks_cli` parses its own arguments and never raises."""
    from narrative.decks_cli import deck_main

    return deck_main(args.deck_args)
