"""gtw_site.providers.status_error: one mapping of vendor HTTP statuses for every adapter."""

from __future__ import annotations

import pytest

from gtw_site.providers import status_error


@pytest.mark.parametrize(
    ("status", "text", "retryable"),
    [
        (400, "request rejected (400): bad", False),
        (401, "authentication failed (401) — check KEY", False),
        (403, "permission denied (403): bad", False),
        (404, "not found (404) — check the model name 'm-1': bad", False),
        (408, "request rejected (408): bad", True),
        (409, "request rejected (409): bad", True),
        (429, "rate limited (429): bad", True),
        (500, "server error (500): bad", True),
        (529, "overloaded (529), try again shortly: bad", True),
    ],
)
def test_each_status_says_what_to_do_and_whether_to_retry(status, text, retryable):
    error = status_error("vendor", status, "  bad \n", auth="check KEY", model="m-1")
    assert str(error) == f"vendor: {text}"
    assert (error.retryable, error.status, error.provider) == (retryable, status, "vendor")


def test_a_long_vendor_reply_is_clipped_to_one_line():
    error = status_error("vendor", 500, "x\n" * 400, auth="", model="")
    assert "\n" not in error.message and len(error.message) < 330
