"""POST /api/images/request, GET /api/images/{id}; retry / regenerate / hide for the GM."""

from __future__ import annotations

from ninja import Router, Status

from campaigns.errors import Forbidden
from gtw_site.ratelimit import rate_check
from media.images import services
from media.images.schemas import ImageOut, ImageQueuedOut, ImageRequestIn
from media.models import Image

router = Router(tags=["images"])


@router.post("/images/request", response={200: ImageOut, 202: ImageQueuedOut})
def image_request(request, data: ImageRequestIn):
    """202 {image_id, status} while it is painted (progress on the session socket), 200 with the
    picture's details when it was painted before."""
    # Membership, session and banned words in one query: the cached answer is the common case.
    membership, session, banned_rows = services.image_request_scope(
        viewer=request.user, campaign_id=data.campaign, session_id=data.session
    )
    rate_check(scope="images", ident=request.user.pk)
    if membership.role == membership.Role.SPECTATOR:
        raise Forbidden("Spectators watch; ask the GM for a picture.")
    image, _created = services.image_request(
        campaign=membership.campaign,
        kind=data.type,
        subject=data.subject,
        seed=data.seed,
        session=session,
        user=request.user,
        banned_rows=banned_rows,
    )
    gm = membership.role == membership.Role.GM
    if image.status == Image.Status.READY:
        return Status(200, services.image_meta(image, gm=gm))
    return Status(202, {"image_id": image.pk, "status": image.status, "progress": image.percent})


@router.get("/images/{image_id}", response=ImageOut)
def image_detail(request, image_id: int):
    image, membership = services.image_get(viewer=request.user, image_id=image_id)
    return services.image_meta(image, gm=membership.role == membership.Role.GM)


@router.post("/images/{image_id}/retry", response={202: ImageQueuedOut})
def image_retry(request, image_id: int):
    image = services.image_retry(image=services.image_gm_get(viewer=request.user, image_id=image_id))
    return Status(202, {"image_id": image.pk, "status": image.status, "progress": image.percent})


@router.post("/images/{image_id}/regenerate", response={200: ImageOut, 202: ImageQueuedOut})
def image_regenerate(request, image_id: int):
    rate_check(scope="images", ident=request.user.pk)
    image, _ = services.image_regenerate(image=services.image_gm_get(viewer=request.user, image_id=image_id))
    if image.status == Image.Status.READY:
        return Status(200, services.image_meta(image, gm=True))
    return Status(202, {"image_id": image.pk, "status": image.status, "progress": image.percent})


@router.post("/images/{image_id}/hide", response=ImageOut)
def image_hide(request, image_id: int, hidden: bool = True):
    image = services.image_hide(
        image=services.image_gm_get(viewer=request.user, image_id=image_id), hidden=hidden
    )
    return services.image_meta(image, gm=True)
