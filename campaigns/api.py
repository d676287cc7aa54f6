from ninja import Router, Status

from campaigns import selectors, services
from campaigns.branching import campaign_branch
from campaigns.lifecycle import session_list as lifecycle_session_list
from campaigns.lifecycle_api import router as lifecycle_router
from campaigns.links import invite_url
from campaigns.scheduling.api import router as scheduling_router
from campaigns.schemas import (
    AcceptOut,
    ActionOut,
    BranchIn,
    BranchOut,
    CampaignIn,
    CampaignOut,
    CharacterIn,
    EventsOut,
    IdOut,
    InviteIn,
    InviteOut,
    SessionListOut,
    SessionOut,
    WhisperIn,
)
from campaigns.state import withdrawn_payload, withdrawn_seqs

router = Router(tags=["campaigns"])
# The campaign calendar: /campaigns/{campaign_id}/schedules… (campaigns/scheduling/api.py).
router.add_router("", scheduling_router)
# Clone, archive, snapshots, export/import (campaigns/lifecycle_api.py).
router.add_router("", lifecycle_router)


@router.get("/campaigns", response=list[CampaignOut])
def campaign_list(request, archived: bool = False):
    """The viewer's live campaigns (`?archived=true`: the archived ones)."""
    roles = dict(request.user.memberships.values_list("campaign_id", "role"))
    return [
        {
            "id": c.id,
            "name": c.name,
            "pack": c.pack.slug,
            "role": roles[c.id],
            "personality": c.personality.slug if c.personality else None,
            "archived": c.archived,
        }
        for c in selectors.campaign_list(viewer=request.user, archived=archived)
    ]


@router.post("/campaigns", response={201: IdOut})
def campaign_create(request, data: CampaignIn):
    campaign = services.campaign_create(
        user=request.user, name=data.name, pack_slug=data.pack, personality_slug=data.personality
    )
    return Status(201, {"id": campaign.id})


@router.post("/campaigns/{campaign_id}/invites", response={201: InviteOut})
def invite_create(request, campaign_id: int, data: InviteIn | None = None):
    membership = selectors.membership_get(viewer=request.user, campaign_id=campaign_id)
    invite = services.invite_create(membership=membership, role=(data.role if data else "player"))
    url = invite_url(request, invite.code)
    return Status(201, {"code": invite.code, "url": url, "expires_at": invite.expires_at})


@router.post("/invites/{code}/accept", response=AcceptOut)
def invite_accept(request, code: str):
    membership = services.invite_accept(code=code, user=request.user)
    return {"campaign": membership.campaign_id, "role": membership.role}


@router.post("/campaigns/{campaign_id}/characters", response={201: IdOut})
def character_create(request, campaign_id: int, data: CharacterIn):
    membership = selectors.membership_get(viewer=request.user, campaign_id=campaign_id)
    character = services.character_create(
        membership=membership, name=data.name, archetype=data.archetype, attributes=data.attributes
    )
    return Status(201, {"id": character.id})


@router.get("/campaigns/{campaign_id}/sessions", response=list[SessionListOut])
def session_list(request, campaign_id: int):
    return lifecycle_session_list(viewer=request.user, campaign_id=campaign_id)


@router.post("/campaigns/{campaign_id}/sessions", response={201: SessionOut})
def session_open(request, campaign_id: int):
    membership = selectors.membership_get(viewer=request.user, campaign_id=campaign_id)
    return Status(201, services.session_open(membership=membership))


@router.post("/sessions/{session_id}/resume", response=SessionOut)
def session_resume(request, session_id: int):
    session, membership = selectors.session_membership_get(viewer=request.user, session_id=session_id)
    return services.session_resume(session=session, membership=membership)


@router.post("/sessions/{session_id}/whispers", response={201: ActionOut})
def whisper_create(request, session_id: int, data: WhisperIn):
    session, membership = selectors.session_membership_get(viewer=request.user, session_id=session_id)
    result = services.session_whisper(
        session=session, membership=membership, to_user_id=data.to, text=data.text
    )
    return Status(201, {"seq": result.events[0].seq, "replayed": False})


@router.post("/sessions/{session_id}/branch", response={201: BranchOut})
def session_branch(request, session_id: int, data: BranchIn):
    session, membership = selectors.session_membership_get(viewer=request.user, session_id=session_id)
    new_session = campaign_branch(membership=membership, session=session, at_seq=data.at_seq, name=data.name)
    return Status(201, {"campaign": new_session.campaign_id, "session": new_session.pk})


@router.get("/sessions/{session_id}/events", response=EventsOut)
def event_list(request, session_id: int, after: int = 0, limit: int = 500):
    limit = max(1, min(limit, 1000))
    session, events = selectors.session_events_page(
        viewer=request.user, session_id=session_id, after=max(after, 0), limit=limit
    )
    withdrawn = withdrawn_seqs(session.state)
    return {
        "version": session.version,
        "events": [
            {
                "seq": e.seq,
                "type": e.type,
                "actor": e.actor.username if e.actor else None,
                # A narration the X-card withdrew: never its text again (issue 18).
                "payload": withdrawn_payload(e.payload) if e.seq in withdrawn else e.payload,
                "seed": e.seed,
                "created_at": e.created_at,
            }
            for e in events
        ],
    }
