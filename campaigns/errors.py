"""Domain errors: the same classes as gtw_site.errors (the shared base owns them), re-exported
here so `from campaigns.errors import Invalid` keeps working everywhere."""

from gtw_site.errors import Conflict, DomainError, Forbidden, Gone, Invalid, NotFound, RateLimited

__all__ = ["Conflict", "DomainError", "Forbidden", "Gone", "Invalid", "NotFound", "RateLimited"]
