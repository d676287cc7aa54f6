from ninja import Router, Status

from campaigns.schemas import TokenIn, TokenOut
from gtw_site.models import ApiToken

router = Router(tags=["tokens"])


@router.post("", response={201: TokenOut})
def token_create(request, data: TokenIn):
    token, raw = ApiToken.issue(user=request.user, name=data.name)
    return Status(201, {"id": token.id, "name": token.name, "token": raw})
