"""API tokens: issue and revoke, for the tokens page and `POST /api/tokens` alike."""

from __future__ import annotations

from gtw_site.models import ApiToken
from gtw_site.text import clean_text

NAME_MAX = 80


def token_issue(*, user, name) -> tuple[ApiToken, str]:
    """A new token and its raw value (shown once; only its hash is kept)."""
    name = clean_text(name, what="The token name", max_len=NAME_MAX, required=False) or "script"
    return ApiToken.issue(user=user, name=name)


def token_revoke(*, user, token_id) -> bool:
    """Revoke one of the user's tokens (sockets it opened close on their next check). False when
    there is no such token of theirs, whatever `token_id` holds."""
    try:
        pk = int(token_id)
    except (TypeError, ValueError):
        return False
    return ApiToken.objects.filter(user=user, pk=pk).delete()[0] > 0
