"""The dashboard's archived campaigns (templates/campaigns/_lifecycle_dashboard.html)."""

from django import template

from campaigns import selectors

register = template.Library()


@register.simple_tag(takes_context=True)
def archived_campaigns(context):
    return selectors.campaign_list(viewer=context["request"].user, archived=True)
