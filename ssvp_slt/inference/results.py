"""What a translation returns: one :class:`Translation` per input, with its segments and timings."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional


@dataclass
class Segment:
    """One translated stretch of an input.

    ``start``/``end``: seconds from the start of the input that the segment shows (for fixed
    windows, up to the middle of the overlaps with its neighbours); ``read_start``/``read_end``:
    the stretch the model read. ``score``: the beam's average log-probability per output token
    (natural log; fairseq's ``H-`` line prints it in base 2), higher is more confident.
    ``text_raw``: the model's output before the overlap de-duplication (fixed windows)."""

    start: float
    end: float
    text: str
    score: float
    read_start: float
    read_end: float
    tokens: int = 0
    text_raw: Optional[str] = None
    timings: Dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["timings"] = {k: round(v, 6) for k, v in self.timings.items()}
        for k in ("start", "end", "read_start", "read_end"):
            d[k] = round(d[k], 3)
        d["score"] = round(self.score, 6)
        if self.text_raw is None or self.text_raw == self.text:
            d.pop("text_raw")
        return d


@dataclass
class Translation:
    """The result for one input: ``text`` is its segments' texts joined by spaces; ``error`` is set
    (and the rest empty) when the input could not be translated."""

    input: str
    text: str = ""
    score: Optional[float] = None
    start: float = 0.0
    end: float = 0.0
    segments: List[Segment] = field(default_factory=list)
    segmentation: dict = field(default_factory=dict)
    timings: Dict[str, float] = field(default_factory=dict)
    error: Optional[str] = None
    info: dict = field(default_factory=dict)  # frame rate, frame count, signer crop, ...

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def duration(self) -> float:
        return self.end - self.start

    def __str__(self) -> str:
        return self.text if self.ok else f"[error: {self.error}]"

    def to_dict(self) -> dict:
        return {
            "input": self.input,
            "text": self.text,
            "score": None if self.score is None else round(self.score, 6),
            "start": round(self.start, 3),
            "end": round(self.end, 3),
            "error": self.error,
            "segmentation": self.segmentation,
            "segments": [s.to_dict() for s in self.segments],
            "timings": {k: round(v, 6) for k, v in self.timings.items()},
            **({"info": self.info} if self.info else {}),
        }


class InputError(ValueError):
    """An input cannot be translated; the message names it."""
