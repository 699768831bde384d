"""What `Locator.locate` returns: typed detections, the raw answer and decoding statistics."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional


@dataclass(frozen=True)
class Detection:
    """One answer item, in original-image pixels.

    Exactly one of `box` (x1, y1, x2, y2) and `point` (x, y) is set. `score` is the mean probability
    the decoder gave to the item's coordinate tokens (in [0, 1]).
    """

    label: str
    box: Optional[tuple[float, float, float, float]] = None
    point: Optional[tuple[float, float]] = None
    score: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "box": self.box, "point": self.point, "score": self.score}


@dataclass
class LocateResult:
    detections: list[Detection]
    text: str  # the decoded answer, special tokens included (as the reference returns it)
    token_ids: list[int]  # generated ids only
    stats: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "detections": [d.to_dict() for d in self.detections],
            "text": self.text,
            "token_ids": self.token_ids,
            "stats": self.stats,
        }
