"""`{% runs_a_campaign as is_gm_anywhere %}`: whether the signed-in user is GM (or co-GM) of any
campaign, for the navigation's link to the GM admin (/gm/). One query per request, shared with
the GM admin's own scoping (campaigns.gm_admin.gm_campaign_ids).

`{{ character|retired }}`: whether the GM retired the character in /gm/ (the campaign's roster)."""

from django import template

from campaigns.gm_admin import gm_campaign_ids, retired_ids

register = template.Library()


@register.simple_tag(takes_context=True)
def runs_a_campaign(context) -> bool:
    request = context.get("request")
    return request is not None and bool(gm_campaign_ids(request))


@register.filter
def retired(character) -> bool:
    return str(character.pk) in retired_ids(character.campaign)
