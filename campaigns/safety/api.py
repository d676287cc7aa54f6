"""`/api/campaigns/{campaign_id}/safety`: the GM reads and sets the content settings; the GM (and
a stage's moderators, for their stage) read and decide the review queue. Non-members get 404,
other members 403."""

from __future__ import annotations

from ninja import Router

from campaigns.errors import Forbidden
from campaigns.models import Membership
from campaigns.safety import categories, services
from campaigns.safety.schemas import DecideIn, ItemOut, PolicyIn, PolicyOut

router = Router(tags=["safety"])


def _gm(request, campaign_id: int):
    campaign, membership, _ = services.queue_for(viewer=request.user, campaign_id=campaign_id)
    if membership.role != Membership.Role.GM:
        raise Forbidden("Only the GM sets the content categories.")
    return campaign


def _policy(policy: services.Policy) -> dict:
    return {
        "actions": dict(policy.actions),
        "redact": list(policy.redact),
        "categories": categories.CATEGORIES,
    }


def _item(item) -> dict:
    return {
        "id": item.pk,
        "source": item.source,
        "status": item.status,
        "text": item.text,
        "final_text": item.final_text,
        "categories": item.categories,
        "scores": item.scores,
        "author": item.author.username if item.author else None,
        "session_id": item.session_id,
        "created_at": item.created_at,
        "decided_at": item.decided_at,
        "released_seq": item.released_seq,
    }


@router.get("/campaigns/{campaign_id}/safety", response=PolicyOut)
def policy_read(request, campaign_id: int):
    return _policy(services.policy_get(_gm(request, campaign_id)))


@router.put("/campaigns/{campaign_id}/safety", response=PolicyOut)
def policy_write(request, campaign_id: int, data: PolicyIn):
    campaign = _gm(request, campaign_id)
    policy = services.policy_set(
        campaign=campaign, user=request.user, actions=data.actions, redact_kinds=data.redact
    )
    return _policy(policy)


@router.get("/campaigns/{campaign_id}/safety/queue", response=list[ItemOut])
def queue_read(request, campaign_id: int, status: str = "pending"):
    campaign, _membership, sessions = services.queue_for(viewer=request.user, campaign_id=campaign_id)
    return [
        _item(i) for i in services.queue_items(campaign=campaign, sessions=sessions, status=status or None)
    ]


@router.post("/campaigns/{campaign_id}/safety/items/{item_id}", response=ItemOut)
def item_decide(request, campaign_id: int, item_id: int, data: DecideIn):
    item = services.review_decide(
        viewer=request.user, campaign_id=campaign_id, item_id=item_id, verdict=data.verdict, text=data.text
    )
    return _item(item)
