"""`{% table_safety_panel membership session %}`: the lines-and-veils panel (and, on a play page,
the X-card) for the viewer (issue 18, part 4). Campaigns' pages reach it through this tag, so
the tenant layer never imports narrative. What the viewer may see is chosen in SQL
(narrative.tablesafety.table_lines_for)."""

from __future__ import annotations

from django import template
from django.template.loader import render_to_string

from narrative.tablesafety_views import panel_context

register = template.Library()


@register.simple_tag(takes_context=True)
def table_safety_panel(context, membership, session=None):
    request = context.get("request")
    data = panel_context(membership=membership, session=session)
    data["xcard_tapped"] = bool(request and request.GET.get("xcard") == "tapped")
    data["membership"] = membership
    return render_to_string("safety_tools/_panel.html", data, request=request)
