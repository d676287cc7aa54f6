"""Picture pages: the file (members only), the gallery, the GM's /image command and buttons."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpResponse, HttpResponseNotModified
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from campaigns.errors import DomainError, Invalid, NotFound
from campaigns.models import Character, Membership
from campaigns.selectors import membership_get, session_gm_get
from gtw_site.ratelimit import rate_check
from media.images import services, store
from media.images.prompt import KINDS

# A picture's bytes never change under its URL (a new seed is a new picture), and only members
# may fetch it: long private caching, revalidated by the hash.
CACHE_CONTROL = "private, max-age=31536000, immutable"
# A picture goes out in a few large chunks (a 450 kB scene: two), not FileResponse's 4 kB ones:
# under ASGI each chunk is a message of its own.
FILE_BLOCK = 256 * 1024


@require_GET
def image_file(request, image_id: int):
    """The picture's bytes, for members of its campaign (404 for everyone else, and for a
    picture not painted yet). The hot path of every picture shown: one small query (with the
    auth middleware's session and user), a 304 when the browser has it, else the file
    streamed from storage."""
    try:
        row = services.image_file_get(viewer=request.user, image_id=image_id)
    except NotFound:
        raise Http404("No such picture.") from None
    etag = f'"{row["hash"]}"'
    if etag in [t.strip() for t in request.headers.get("If-None-Match", "").split(",")]:
        response = HttpResponseNotModified()
    else:
        try:
            fh = store.storage().open(row["path"], "rb")
        except OSError:
            raise Http404("The picture's file is missing.") from None
        response = FileResponse(fh, content_type=row["content_type"] or "image/png")
        response.block_size = FILE_BLOCK
        del response["Content-Disposition"]  # the storage name is nobody's business
    response["ETag"] = etag
    response["Cache-Control"] = CACHE_CONTROL
    response["X-Content-Type-Options"] = "nosniff"
    return response


def parse_command(text: str) -> tuple[str, str]:
    """`/image scene|portrait|item …` (the `/image` optional) → (kind, subject). Invalid otherwise."""
    words = (text or "").strip().split(maxsplit=1)
    if words and words[0].lower() in ("/image", "/img", "image"):
        words = words[1].split(maxsplit=1) if len(words) > 1 else []
    if not words:
        raise Invalid("Write /image scene, /image portrait or /image item, then what to paint.")
    kind = words[0].lower()
    if kind not in KINDS:
        raise Invalid(f"Unknown picture type '{words[0][:30]}' (choose one of: {', '.join(KINDS)}).")
    return kind, words[1] if len(words) > 1 else ""


def _character_named(campaign, subject: str):
    folded = subject.casefold()
    for character in Character.objects.filter(campaign=campaign).order_by("pk"):
        if character.name.casefold() in folded:
            return character
    return None


@login_required
@require_POST
def session_image(request, session_id: int):
    """The GM's /image control on the play page."""
    try:
        session = session_gm_get(viewer=request.user, session_id=session_id)
        rate_check(scope="images", ident=request.user.pk)
        kind, subject = parse_command(request.POST.get("command", ""))
        character = _character_named(session.campaign, subject) if kind == "portrait" else None
        image, _created = services.image_request(
            campaign=session.campaign,
            kind=kind,
            subject=subject,
            session=session,
            user=request.user,
            character=character,
        )
    except NotFound:
        raise Http404("No such session.") from None
    except DomainError as exc:
        if request.htmx:
            return HttpResponse(exc.message, status=200 if isinstance(exc, Invalid) else exc.status)
        return HttpResponse(exc.message, status=exc.status, content_type="text/plain")
    if request.htmx:
        text = "Painting…" if image.status != image.Status.READY else "Shown from the gallery."
        return HttpResponse(text)
    return redirect("play", session_id=session_id)


@login_required
@require_POST
def image_action(request, image_id: int, action: str):
    """The GM's buttons on a picture: retry, regenerate (a new seed), hide, show."""
    try:
        image = services.image_gm_get(viewer=request.user, image_id=image_id)
        if action == "retry":
            services.image_retry(image=image)
        elif action == "regenerate":
            rate_check(scope="images", ident=request.user.pk)
            services.image_regenerate(image=image, user=request.user)
        elif action in ("hide", "show"):
            services.image_hide(image=image, hidden=action == "hide")
        else:
            raise Http404("No such action.")
    except NotFound:
        raise Http404("No such picture.") from None
    except DomainError as exc:
        return HttpResponse(exc.message, status=exc.status, content_type="text/plain")
    if request.htmx:
        return HttpResponse(status=204)
    return redirect("image_gallery", campaign_id=image.campaign_id)


@login_required
@require_http_methods(["GET", "POST"])
def gallery(request, campaign_id: int):
    """Every picture of the campaign with its prompt, provider, model, seed and rights; the GM
    also sees hidden ones and why one failed, and sets the style and banned words."""
    try:
        membership = membership_get(viewer=request.user, campaign_id=campaign_id)
    except NotFound:
        raise Http404("No such campaign.") from None
    is_gm = membership.role == Membership.Role.GM
    error = ""
    if request.method == "POST":
        if not is_gm:
            return HttpResponse("Only the GM can change the campaign's picture settings.", status=403)
        banned = [w.strip() for w in request.POST.get("banned_words", "").replace("\n", ",").split(",")]
        try:
            services.campaign_images_configure(
                membership=membership, style=request.POST.get("style", ""), banned=banned
            )
        except DomainError as exc:
            error = exc.message
        else:
            return redirect("image_gallery", campaign_id=campaign_id)
    conf = services.campaign_image_settings(membership.campaign)
    return render(
        request,
        "media/gallery.html",
        {
            "campaign": membership.campaign,
            "images": services.gallery(membership=membership),
            "is_gm": is_gm,
            "style": conf.get("style", ""),
            "banned": ", ".join(conf.get("banned_words") or []),
            "error": error,
        },
        status=400 if error else 200,
    )
