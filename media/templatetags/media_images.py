"""`{% scene_panel membership session %}`: the play and stage pages' picture panel (the scene's
picture, the latest portraits and items, and the GM's /image control)."""

from django import template

from campaigns.models import Membership

register = template.Library()


@register.inclusion_tag("media/_scene_panel.html")
def scene_panel(membership, session, *, controls=True):
    from media.images.services import recent_images, scene_image

    is_gm = getattr(membership, "role", None) == Membership.Role.GM
    return {
        "session": session,
        "is_gm": is_gm,
        "controls": controls and is_gm,
        "scene": scene_image(session=session, gm=False),
        "recent": recent_images(session=session, gm=False),
    }
