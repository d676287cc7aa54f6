"""What the HTTP image adapters share: JSON over stdlib urllib with a timeout, errors worded for
a GM (the vendor's reason, the address without credentials, a retry hint), base64 pictures."""

from __future__ import annotations

import base64
import binascii
import json
import urllib.error
import urllib.request
from typing import Any

from gtw_site.providers import ProviderError, clip, error_detail, safe_url, status_error

# Loopback and LAN servers: a *_proxy variable in the shell must not reroute them.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def call(
    provider: str,
    method: str,
    url: str,
    *,
    body: Any = None,
    timeout: float,
    raw: bool = False,
    model: str = "",
) -> Any:
    """One request: the decoded JSON (or the raw bytes); ProviderError on any failure."""
    if not url.startswith(("http://", "https://")):
        raise ProviderError(f"not an http(s) address: {safe_url(url)}", retryable=False, provider=provider)
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 — http(s) only, checked above
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            payload = response.read()
    except urllib.error.HTTPError as exc:
        text = exc.read().decode("utf-8", "replace")
        try:
            detail = error_detail(json.loads(text)) or text
        except ValueError:
            detail = text
        raise status_error(
            provider, exc.code, detail, auth=f"check the server at {safe_url(url)}", model=model
        ) from None
    except TimeoutError:
        raise ProviderError(
            f"no answer from {safe_url(url)} within {timeout:.0f} s", retryable=True, provider=provider
        ) from None
    except (urllib.error.URLError, ConnectionError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ProviderError(
            f"cannot reach {safe_url(url)} ({clip(str(reason), 120)})", retryable=True, provider=provider
        ) from None
    if raw:
        return payload
    try:
        return json.loads(payload)
    except ValueError:
        raise ProviderError(
            f"{safe_url(url)} answered with something that is not JSON", retryable=False, provider=provider
        ) from None


def b64_image(provider: str, text: Any) -> bytes:
    if not isinstance(text, str) or not text:
        raise ProviderError("returned no image", retryable=False, provider=provider)
    if text.startswith("data:"):
        text = text.partition(",")[2]
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ProviderError(
            "returned a corrupt image (bad base64)", retryable=False, provider=provider
        ) from None
