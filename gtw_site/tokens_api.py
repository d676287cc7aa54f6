from ninja import Router, Status

from campaigns.schemas import TokenIn, TokenOut
from gtw_site.errors import Forbidden
from gtw_site.tokens import token_issue

router = Router(tags=["tokens"])


@router.post("", response={201: TokenOut})
def token_create(request, data: TokenIn):
    # A token that could mint tokens could outlive its own revocation through its children, so
    # new tokens need a signed-in person (the session cookie), never a token.
    if getattr(request, "api_token", None) is not None:
        raise Forbidden(
            "An API token can't create tokens. Sign in and create one on the tokens page "
            "(or POST /api/tokens with your signed-in session)."
        )
    token, raw = token_issue(user=request.user, name=data.name)
    return Status(201, {"id": token.id, "name": token.name, "token": raw})
