from ninja import File, Router, Status
from ninja.files import UploadedFile

from campaigns.selectors import membership_get
from memory import importer, selectors, services
from memory.retrieval import memory_search
from memory.schemas import ImportOut, MemoryCreated, MemoryIn, MemoryOut, QueryIn, QueryOut
from memory.services import TooLarge

MAX_IMPORT_BYTES = 20_000_000

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


@router.post("/campaigns/{campaign_id}/memories/import", response=ImportOut)
def memory_import(request, campaign_id: int, file: UploadedFile = File(...)):  # noqa: B008 - ninja idiom
    membership = membership_get(viewer=request.user, campaign_id=campaign_id)
    if file.size > MAX_IMPORT_BYTES:
        raise TooLarge(f"Imports are at most {MAX_IMPORT_BYTES // 1_000_000} MB; split the file.")
    return importer.import_jsonl(membership=membership, lines=file.read().splitlines())


@router.post("/memory/query", response=QueryOut)
def memory_query(request, data: QueryIn):
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
                "score": h.score,
                "components": {
                    "vector": h.vector,
                    "keyword": h.keyword,
                    "recency": h.recency,
                    "importance": h.importance,
                    "distance": h.distance,
                },
            }
            for h in hits
        ]
    }


@router.get("/memories/{memory_id}", response=MemoryOut)
def memory_detail(request, memory_id: int):
    return memory_out(selectors.memory_get(viewer=request.user, memory_id=memory_id))
