"""The Content Security Policy (issue 11): every page gets a strict header, and no page or
template carries anything the policy would block (inline script, on* handlers, style attributes,
javascript: URLs, htmx features that need eval). The real-browser proof that the pages work
under it is tests/e2e/test_csp.py."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]


def _policy(response) -> dict[str, list[str]]:
    header = response.headers.get("Content-Security-Policy")
    assert header, f"no Content-Security-Policy on {response.request['PATH_INFO']}"
    policy = {}
    for part in header.split(";"):
        name, *values = part.split()
        policy[name] = values
    return policy


class _InlineFinder(HTMLParser):
    """Collects what a strict CSP would block in a rendered page."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self._inline_script = False
        self.meta_htmx_config: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for name, value in attrs.items():
            if name.startswith("on"):
                self.found.append(f"<{tag} {name}=…> handler")
            if name == "style":
                self.found.append(f"<{tag} style=…> attribute")
            if name.startswith(("hx-on", "data-hx-on")):
                self.found.append(f"<{tag} {name}=…> (htmx eval)")
            if name in ("hx-vals", "hx-vars", "data-hx-vals") and (value or "").lstrip().startswith(
                ("js:", "javascript:")
            ):
                self.found.append(f"<{tag} {name}='js:…'> (htmx eval)")
            if name in ("href", "src", "action", "formaction") and (value or "").strip().lower().startswith(
                "javascript:"
            ):
                self.found.append(f"<{tag} {name}=javascript:…>")
        if tag == "style":
            self.found.append("<style> element")
        if tag == "script":
            kind = (attrs.get("type") or "").lower()
            # JSON data blocks are not executed; anything else without src is inline code.
            self._inline_script = "src" not in attrs and kind not in (
                "application/json",
                "application/ld+json",
            )
        if tag == "meta" and attrs.get("name") == "htmx-config":
            self.meta_htmx_config = attrs.get("content")

    def handle_data(self, data):
        if self._inline_script and data.strip():
            self.found.append(f"inline <script>: {data.strip()[:60]!r}")

    def handle_endtag(self, tag):
        if tag == "script":
            self._inline_script = False


def _blocked_in(html: str) -> _InlineFinder:
    finder = _InlineFinder()
    finder.feed(html)
    return finder


@pytest.fixture
def stage(campaign, characters, gm):
    from campaigns import selectors
    from campaigns.stage import services as stage_services

    membership = selectors.membership_get(viewer=gm, campaign_id=campaign.pk)
    return stage_services.stage_open(membership=membership, title="Town hall")


def test_a_page_sends_the_strict_policy(player_client, session):
    """issue 11 (CSP): pages had no Content-Security-Policy at all."""
    response = player_client.get(f"/sessions/{session.pk}/play/")
    assert response.status_code == 200
    policy = _policy(response)
    assert policy["default-src"] == ["'self'"]
    assert policy["script-src"] == ["'self'"]
    assert policy["style-src"] == ["'self'"]
    assert policy["connect-src"] == ["'self'", "ws://testserver"]
    assert policy["img-src"] == ["'self'", "data:", "blob:"]
    assert policy["media-src"] == ["'self'", "blob:"]
    assert policy["object-src"] == ["'none'"]
    assert policy["base-uri"] == ["'self'"]
    assert policy["form-action"] == ["'self'"]
    assert policy["frame-ancestors"] == ["'none'"]
    header = response.headers["Content-Security-Policy"]
    assert "unsafe-inline" not in header and "unsafe-eval" not in header


def test_the_socket_origin_follows_the_page_host_and_scheme(gm_client, campaign, settings):
    settings.ALLOWED_HOSTS = ["game.example.com"]
    plain = gm_client.get(f"/campaigns/{campaign.pk}/", HTTP_HOST="game.example.com")
    secure = gm_client.get(f"/campaigns/{campaign.pk}/", HTTP_HOST="game.example.com", secure=True)
    assert _policy(plain)["connect-src"] == ["'self'", "ws://game.example.com"]
    assert _policy(secure)["connect-src"] == ["'self'", "wss://game.example.com"]


def test_a_refused_host_still_gets_the_policy(client, settings):
    settings.ALLOWED_HOSTS = ["game.example.com"]
    response = client.get("/accounts/login/", HTTP_HOST="evil.example.net")
    assert response.status_code == 400
    assert _policy(response)["connect-src"] == ["'self'"]  # no socket origin for a host we refuse


def test_outsider_error_page_gets_the_policy_too(outsider_client, session):
    response = outsider_client.get(f"/sessions/{session.pk}/play/")
    assert response.status_code == 404
    assert _policy(response)["script-src"] == ["'self'"]
    assert _blocked_in(response.content.decode()).found == []


def test_admin_allows_inline_styles_but_never_inline_script(client, django_user_model):
    """The admin's one relaxation: Django's change list writes a <style> block and our admin
    columns use style attributes. Its scripts are as strict as everywhere else."""
    admin = django_user_model.objects.create_superuser("root", "root@example.com", "correct horse battery")
    client.force_login(admin)
    response = client.get("/admin/")
    assert response.status_code == 200
    policy = _policy(response)
    assert policy["style-src"] == ["'self'", "'unsafe-inline'"]
    assert policy["script-src"] == ["'self'"]
    assert [f for f in _blocked_in(response.content.decode()).found if "style" not in f] == []


def test_no_page_renders_anything_the_policy_blocks(
    gm_client, player_client, client, gm, campaign, session, stage
):
    """issue 11 (CSP): the token and invite-link fields had onclick="this.select()" handlers,
    which a policy without 'unsafe-inline' refuses to run."""
    cid, sid = campaign.pk, session.pk
    created = gm_client.post("/account/tokens/", {"name": "bot"})
    assert created.status_code == 200 and b'class="copy"' in created.content
    invite = gm_client.post(f"/campaigns/{cid}/invites", {"role": "player"}, HTTP_HX_REQUEST="true")
    assert invite.status_code == 200 and b'class="copy"' in invite.content
    pages = {
        "token created": created,
        "invite link (htmx)": invite,
        "sign in": client.get("/accounts/login/"),
        "sign up": client.get("/accounts/signup/"),
        "password reset": client.get("/accounts/password/reset/"),
        "dashboard (GM)": gm_client.get("/"),
        "campaign (GM)": gm_client.get(f"/campaigns/{cid}/"),
        "campaign (player)": player_client.get(f"/campaigns/{cid}/"),
        "play (GM)": gm_client.get(f"/sessions/{sid}/play/"),
        "play (player)": player_client.get(f"/sessions/{sid}/play/"),
        "memory": player_client.get(f"/campaigns/{cid}/memory/?q=relay"),
        "stage (GM)": gm_client.get(f"/sessions/{stage.pk}/stage/"),
        "stage (player)": player_client.get(f"/sessions/{stage.pk}/stage/"),
        "tokens": player_client.get("/account/tokens/"),
    }
    for name, response in pages.items():
        assert response.status_code == 200, name
        assert "Content-Security-Policy" in response.headers, name
        found = _blocked_in(response.content.decode())
        assert found.found == [], f"{name}: {found.found}"
    full = _blocked_in(pages["dashboard (GM)"].content.decode())
    assert full.meta_htmx_config is not None
    assert '"allowEval": false' in full.meta_htmx_config
    assert '"includeIndicatorStyles": false' in full.meta_htmx_config


def test_templates_carry_no_inline_code():
    """Every template, also those no test renders: no inline script, handler, style attribute,
    javascript: URL or eval-needing htmx attribute."""
    for path in sorted((ROOT / "templates").rglob("*.html")):
        text = re.sub(r"{#.*?#}", "", path.read_text(), flags=re.DOTALL)  # template comments
        found = _blocked_in(text).found
        assert found == [], f"{path.relative_to(ROOT)}: {found}"


EVAL_LIKE = re.compile(
    r"\beval\s*\(|\bnew\s+Function\b|\b(setTimeout|setInterval)\s*\(\s*['\"`]|\.setAttribute\(\s*['\"](style|on\w+)['\"]"
)


def test_our_scripts_use_no_eval_or_inline_styles():
    scripts = sorted((ROOT / "static").glob("*.js"))
    assert scripts, "no static scripts found"
    for path in scripts:
        text = path.read_text()
        assert not EVAL_LIKE.search(text), f"{path.name}: {EVAL_LIKE.search(text).group(0)}"
        assert "innerHTML" not in text or "style=" not in text, f"{path.name} writes a style attribute"
