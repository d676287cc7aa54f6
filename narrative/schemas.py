from ninja import Schema


class CommitmentOut(Schema):
    derivation: str
    commitment: str
    from_seq: int
    revealed: bool
    secret: str | None  # once revealed, or for the GM


class DiceOut(Schema):
    session: int
    derivation: str  # what new rolls use: gtw-dice-v2, or v1 for a session from before fair dice
    status: str
    commitments: list[CommitmentOut]


class VerifyOut(Schema):
    seq: int
    status: str  # ok, mismatch, not_yet (live session, not the GM) or unknown
    ok: bool
    message: str
    derivation: str
    commitment: str | None
    seed: int | None
    secret: str | None
    faces: list[int] | None = None
    total: int | None = None
    problems: list[str] = []
