from ninja import File, Router, Status
from ninja.files import UploadedFile

from campaigns.errors import NotFound
from campaigns.models import Membership
from campaigns.selectors import membership_get
from gtw_site.ratelimit import rate_check
from memory import importer, selectors, services
from memory.models import MemoryImport
from memory.retrieval import memory_search
from memory.schemas import ImportJobOut, MemoryCreated, MemoryIn, MemoryOut, QueryIn, QueryOut

router = Router(tags=["memory"])


def memory_out(m) -> dict:
    return {
        "id": m.id,
        "text": m.text,
        "type": m.type,
        "visibility": "private" if m.is_private else "campaign",
        "tags": m.tags,
        "metadata": m.metadata,
        "importance": m.importance,
        "source_seq": m.source_seq,
        "created_at": m.created_at,
    }


@router.post("/campaigns/{campaign_id}/memories", response={201: MemoryCreated})
def memory_create(request, campaign_id: int, data: MemoryIn):
    membership = membership_get(viewer=request.user, campaign_id=campaign_id)
    rate_check(scope="memory_note", ident=request.user.pk)
    memories = services.memory_record(
        membership=membership,
        text=data.text,
        type=data.type,
        visibility=data.visibility,
        tags=data.tags,
        metadata=data.metadata,
        importance=data.importance,
    )
    return Status(201, {"id": memories[0].id, "ids": [m.id for m in memories]})


def import_out(job: MemoryImport) -> dict:
    return {**importer.import_status(job), "status_url": f"/api/memory/imports/{job.pk}"}


@router.post("/campaigns/{campaign_id}/memories/import", response={202: ImportJobOut})
def memory_import(request, campaign_id: int, file: UploadedFile = File(...)):  # noqa: B008 - ninja idiom
    """Queue a JSONL file (one memory per line); poll `status_url` for progress and the result."""
    membership = membership_get(viewer=request.user, campaign_id=campaign_id)
    importer.check_size(file.size)  # before reading it
    rate_check(scope="memory_import", ident=request.user.pk)
    job = importer.import_queue(membership=membership, data=file.read(), filename=file.name or "")
    return Status(202, import_out(job))


@router.get("/memory/imports/{import_id}", response=ImportJobOut)
def memory_import_status(request, import_id: int):
    """Only whoever sent the file sees its import."""
    job = MemoryImport.objects.defer("data").filter(pk=import_id, created_by_id=request.user.pk).first()
    if job is None:
        raise NotFound("No such import.")
    return import_out(job)


@router.post("/memory/query", response=QueryOut)
def memory_query(request, data: QueryIn):
    """Hybrid recall over what the viewer may see. The ranking's score and its parts are the
    engine room: a GM gets them, a player gets the memories alone (null score and components)."""
    rate_check(scope="memory_query", ident=request.user.pk)
    is_gm = membership_get(viewer=request.user, campaign_id=data.campaign).role == Membership.Role.GM
    hits = memory_search(
        viewer=request.user,
        campaign_id=data.campaign,
        query=data.query,
        k=data.k,
        types=data.types,
        tags=data.tags,
    )
    return {
        "results": [
            {
                **memory_out(h.memory),
                "score": h.score if is_gm else None,
                "components": {
                    "vector": h.vector,
                    "keyword": h.keyword,
                    "recency": h.recency,
                    "importance": h.importance,
                    "distance": h.distance,
                }
                if is_gm
                else None,
                "confidence": h.confidence if is_gm else None,
                "via": h.via if is_gm else None,
                "neighbours": [memory_out(n) for n in h.neighbours],
            }
            for h in hits
        ]
    }


@router.get("/memories/{memory_id}", response=MemoryOut)
def memory_detail(request, memory_id: int):
    return memory_out(selectors.memory_get(viewer=request.user, memory_id=memory_id))
