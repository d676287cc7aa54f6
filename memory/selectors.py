from campaigns.errors import NotFound
from campaigns.models import Membership
from memory.models import Memory
from memory.retrieval import scope_filter


def memory_get(*, viewer, memory_id: int) -> Memory:
    """404 for anything the viewer may not see — another player's private memory included."""
    campaign_id = Memory.objects.filter(pk=memory_id).values_list("campaign_id", flat=True).first()
    membership = (
        Membership.objects.filter(campaign_id=campaign_id, user=viewer).first()
        if campaign_id and viewer.is_authenticated
        else None
    )
    memory = None
    if membership is not None:
        scope = scope_filter(
            campaign_id=campaign_id, user_id=viewer.pk, is_gm=membership.role == Membership.Role.GM
        )
        memory = Memory.objects.filter(scope, pk=memory_id).first()
    if memory is None:
        raise NotFound("No such memory.")
    return memory


def memory_list(*, viewer, membership: Membership, limit: int = 200) -> list[Memory]:
    scope = scope_filter(
        campaign_id=membership.campaign_id, user_id=viewer.pk, is_gm=membership.role == Membership.Role.GM
    )
    return list(Memory.objects.filter(scope).order_by("-created_at")[:limit])
