"""One NinjaAPI; a router per app. Domain errors map to HTTP here, once."""

from ninja import NinjaAPI
from ninja.errors import AuthenticationError, ValidationError
from ninja.security import django_auth

from campaigns.api import router as campaigns_router
from campaigns.errors import DomainError
from campaigns.safety.api import router as safety_router
from campaigns.stage.api import router as stage_router
from gtw_site.auth import BearerTokenAuth
from gtw_site.providers_api import router as providers_router
from gtw_site.tokens_api import router as tokens_router
from media.images.api import router as images_router
from media.speech.api import router as speech_router
from memory.api import router as memory_router
from missions.api import router as game_router
from missions.services import MissionInvalid
from narrative.actions_api import router as play_router
from narrative.api import router as dice_router
from narrative.engine_api import router as engine_router
from narrative.tablesafety_api import router as table_safety_router

api = NinjaAPI(
    title="Galactic Tale Weaver API",
    version="1",
    auth=[BearerTokenAuth(), django_auth],
    urls_namespace="api",
)
api.add_router("/", campaigns_router)
api.add_router("/tokens", tokens_router)
api.add_router("/providers", providers_router)
api.add_router("/", memory_router)
api.add_router("/", game_router)
api.add_router("/", stage_router)
api.add_router("/", dice_router)
api.add_router("/", engine_router)
api.add_router("/", play_router)
api.add_router("/", safety_router)  # content settings, the review queue (issue 18)
api.add_router("/", speech_router)
api.add_router("/", images_router)
api.add_router("/", table_safety_router)


@api.exception_handler(MissionInvalid)
def mission_invalid(request, exc: MissionInvalid):
    return api.create_response(
        request, {"error": exc.code, "detail": exc.message, "errors": exc.errors}, status=exc.status
    )


@api.exception_handler(DomainError)
def domain_error(request, exc: DomainError):
    return api.create_response(request, {"error": exc.code, "detail": exc.message}, status=exc.status)


@api.exception_handler(AuthenticationError)
def unauthenticated(request, exc):
    return api.create_response(
        request,
        {"error": "unauthenticated", "detail": "Sign in, or send 'Authorization: Bearer <token>'."},
        status=401,
    )


@api.exception_handler(ValidationError)
def invalid(request, exc: ValidationError):
    first = exc.errors[0] if exc.errors else {}
    where = ".".join(str(p) for p in first.get("loc", [])[1:]) or "body"
    return api.create_response(
        request,
        {"error": "invalid", "detail": f"{where}: {first.get('msg', 'invalid input')}", "errors": exc.errors},
        status=422,
    )
