"""Fair dice (issue 11 hole 8): a session's dice commitments, and re-verifying a roll."""

from ninja import Router

from narrative import dice_secrets
from narrative.schemas import DiceOut, VerifyOut

router = Router(tags=["dice"])


@router.get("/sessions/{session_id}/dice", response=DiceOut)
def dice_info(request, session_id: int):
    """Commitments for members; the secrets once revealed, or for the GM at any time."""
    return dice_secrets.dice_info(viewer=request.user, session_id=session_id)


@router.get("/sessions/{session_id}/dice/{seq}/verify", response=VerifyOut)
def roll_verify(request, session_id: int, seq: int):
    """Re-derive roll `seq` from its seed inputs. A live session's rolls wait for the secret
    (status "not_yet", with the commitment); the GM can verify at any time."""
    return dice_secrets.roll_verify(viewer=request.user, session_id=session_id, seq=seq)
