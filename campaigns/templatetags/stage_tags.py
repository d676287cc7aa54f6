"""`{% stage_panel campaign membership as panel %}`: what the campaign page's "Stage & fireteams"
section shows. The page's view already checked that the viewer is a member of `campaign`."""

from django import template

from campaigns.models import Alliance, Fireteam, Membership, PlaySession

register = template.Library()


@register.simple_tag
def stage_panel(campaign, membership):
    fireteams = list(
        Fireteam.objects.filter(campaign=campaign)
        .select_related("alliance")
        .prefetch_related("memberships__membership__user")
    )
    return {
        "is_gm": membership.role == Membership.Role.GM,
        "fireteams": [
            {
                "team": t,
                "members": sorted((m.membership for m in t.memberships.all()), key=lambda m: m.user.username),
            }
            for t in fireteams
        ],
        "alliances": list(Alliance.objects.filter(campaign=campaign).prefetch_related("fireteams")),
        "stages": list(
            PlaySession.objects.filter(campaign=campaign, kind=PlaySession.Kind.STAGE).order_by("-number")
        ),
        "players": list(
            Membership.objects.filter(campaign=campaign, role=Membership.Role.PLAYER)
            .select_related("user")
            .order_by("user__username")
        ),
    }
