from ninja import Router, Status

from campaigns.schemas import TokenIn, TokenOut
from gtw_site.tokens import token_issue

router = Router(tags=["tokens"])


@router.post("", response={201: TokenOut})
def token_create(request, data: TokenIn):
    token, raw = token_issue(user=request.user, name=data.name)
    return Status(201, {"id": token.id, "name": token.name, "token": raw})
