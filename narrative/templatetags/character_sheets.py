"""`{% character_sheets membership session %}` renders the character sheets on a page (the play
page, the campaign page); `{% character_sheets_oob event %}` their out-of-band update after an event
that changes them (rendered once per broadcast, the same for every socket). The views and the
broadcaster have checked membership; campaigns' pages reach the sheets through this tag, so the
tenant layer never imports narrative."""

from __future__ import annotations

from django import template
from django.template.loader import render_to_string

from narrative import sheets

register = template.Library()


@register.simple_tag(takes_context=True)
def character_sheets(context, membership, session=None, heading_level=2):
    data = sheets.sheets_for(membership=membership, session=session)
    return render_to_string(
        "play/_character_sheet.html", {**data, "heading_level": heading_level}, request=context.get("request")
    )


@register.simple_tag
def character_sheets_oob(event):
    data = sheets.sheets_for_event(event)
    if data is None:
        return ""
    return render_to_string("play/_character_sheet_oob.html", data)
