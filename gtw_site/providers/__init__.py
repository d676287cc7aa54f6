"""Provider plumbing shared by every kind (chat LLM, embedder, and next speech, images,
moderation, simulation): the one error type, token usage, the helpers HTTP/SDK adapters share,
and — in gtw_site.providers.registry — the generic role → adapter registry.

Every adapter turns its failures into `ProviderError` and says whether trying again may help;
domain code never catches a vendor SDK's exception. This package's top level stays pure (no
Django) so the pure adapters and interfaces may import it; the registry, which writes telemetry
rows, is imported from its own module.
"""

from gtw_site.providers.base import ProviderError, Usage, clip, error_detail, load_factory, status_error
from gtw_site.providers.http import CallDeadline, safe_url, scrub, url_secrets

__all__ = [
    "CallDeadline",
    "ProviderError",
    "Usage",
    "clip",
    "error_detail",
    "load_factory",
    "safe_url",
    "scrub",
    "status_error",
    "url_secrets",
]
