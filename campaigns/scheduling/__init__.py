"""The campaign calendar (issue 16): session schedules and private ICS feeds.

- recurrence.py (pure): RRULE checks and the one expansion of a schedule into occurrences;
- models.py: SessionSchedule (not `Schedule`: django-q owns that name), ScheduleOverride (a
  moved or cancelled occurrence), CalendarFeed (private feed tokens, stored hashed),
  CalendarProfile (the zone a user reads times in), UpcomingNotice (one per occurrence and lead);
- services.py writes (GM only for schedules), selectors.py reads through the viewer;
- ics.py builds the feed with the icalendar library; tasks.py is the SessionUpcoming scan a
  django-q2 Schedule runs every minute (made after every `migrate`, apps.py);
- api.py (mounted on campaigns.api's router), views.py/urls.py, admin.py, templatetags for
  the campaign page's and the dashboard's partials.

A user's time zone: the `CalendarProfile.time_zone` they save (the dashboard offers the
browser's own zone, read by static/calendar.js from Intl, as the value to save); until then pages
show UTC and say so. Feeds carry each schedule's own TZID, so calendar clients convert.
"""
