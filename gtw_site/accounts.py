"""Sign-in policy around django-allauth: whose address the login limits count, the admin's login
going through allauth's (so its limits apply there too), and password reset that never writes a
reset link into the server's log."""

from __future__ import annotations

import logging
from urllib.parse import urlencode

from allauth.account import views as allauth_views
from allauth.account.adapter import DefaultAccountAdapter
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme

from gtw_site.errors import Forbidden

logger = logging.getLogger(__name__)

CONSOLE_BACKEND = "django.core.mail.backends.console.EmailBackend"


def reset_mail_off() -> bool:
    """Whether password-reset mail is off: GTW_DEBUG is off and mail only goes to the console,
    where a reset link would sit in the log as a key to someone's account."""
    return not settings.DEBUG and settings.EMAIL_BACKEND == CONSOLE_BACKEND


def mail_warning() -> str | None:
    """The one line `gtw up` and `gtw doctor` print while reset mail is off, else None."""
    if not reset_mail_off():
        return None
    return (
        "no mail server is set, so password reset is off (a reset link in the log would let its "
        "reader take over the account): set GTW_EMAIL_HOST (see the README, 'Mail')"
    )


class AccountAdapter(DefaultAccountAdapter):
    def get_client_ip(self, request) -> str:
        """allauth's own X-Forwarded-For handling (ALLAUTH_TRUSTED_PROXY_COUNT = GTW_PROXY_HOPS)
        refuses a header with fewer entries than the configured hops with an exception (a 500
        for whoever sends one). Such a request skipped some of the proxies, so the address it
        came from is the only one known: use it."""
        try:
            return super().get_client_ip(request)
        except ImproperlyConfigured:
            return request.META["REMOTE_ADDR"]

    def send_password_reset_mail(self, user, email, context) -> None:
        if reset_mail_off():
            # Never the link: whoever reads this log must not be able to use it.
            logger.warning("A password reset for user %s was not sent: %s.", user.pk, mail_warning())
            return
        super().send_password_reset_mail(user, email, context)


class PasswordResetView(allauth_views.PasswordResetView):
    """allauth's reset page, saying so when no mail can be sent (the form is not offered)."""

    def get_context_data(self, **kwargs) -> dict:
        context = super().get_context_data(**kwargs)
        context["reset_mail_off"] = reset_mail_off()
        return context

    def post(self, request, *args, **kwargs):
        if reset_mail_off():
            return self.render_to_response(self.get_context_data(), status=503)
        return super().post(request, *args, **kwargs)


def admin_login(request):
    """The Django admin's login form has no rate limits; allauth's login has them (per address
    and per account). So the admin signs in there and comes back: this replaces the admin's
    login view (same URL, earlier in urls.py) and never checks a password itself."""
    admin_index = reverse("admin:index")
    next_url = request.GET.get("next") or admin_index
    if not url_has_allowed_host_and_scheme(
        next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        next_url = admin_index
    user = request.user
    if user.is_authenticated:
        if user.is_active and user.is_staff:
            return redirect(next_url)
        # Sending a signed-in player to the login page would bounce straight back here.
        raise Forbidden(
            "The admin is for the server's staff, and you are signed in without staff access. "
            "Sign out and sign in with a staff account to use it."
        )
    return redirect(f"{reverse('account_login')}?{urlencode({'next': next_url})}")
