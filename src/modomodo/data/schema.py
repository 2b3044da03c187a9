"""The one example record every stage exchanges: a contract kept stable across stages and versions."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

AnswerKind = Literal["box", "mc", "text"]
ANSWER_KINDS: tuple[str, ...] = ("box", "mc", "text")
OPTION_LETTERS = "ABCDEFGH"
"""Letters that label options, ``A`` <-> ``options[0]``; at most eight options."""


@dataclass(frozen=True)
class Example:
    """One verifiable vision-language problem."""

    id: str
    """Stable, unique within a dataset (e.g. ``ref-train-000042``)."""
    domain: str
    """The domain (training dataset or benchmark) it belongs to; rewards dispatch on it."""
    image: bytes
    """The (first) image: PNG, or the JPEG a source held (curation keeps or writes JPEG for photos)."""
    problem: str
    """The question or instruction, without the reasoning/format suffix (templates add that)."""
    solution: str
    """The reference answer exactly as it belongs inside ``<answer> </answer>``: an option letter
    (``"B"``), a short text (``"left"``, ``"7"``) or a box list
    (``"[{'Position': [x1, y1, x2, y2], 'Confidence': 1}]"``, pixel frame of ``image``)."""
    answer_kind: AnswerKind
    """How the answer is verified: ``box`` (IoU), ``mc`` (option letter), ``text`` (normalised match)."""
    options: tuple[str, ...] = ()
    """Option texts for ``mc`` (letter i <-> options[i]); also lets a ``text`` answer be matched by letter."""
    meta: dict[str, str] = field(default_factory=dict)
    """Free-form string metadata (skill tags, generator parameters); never used for scoring."""
    extra_images: tuple[bytes, ...] = ()
    """Images after the first, in order, encoded as ``image`` is: the other images an MMMU item's
    question references. Empty for single-image examples (every training set's)."""

    @property
    def images(self) -> tuple[bytes, ...]:
        """Every image in order: ``image`` then ``extra_images``; the model sees them in this order."""
        return (self.image, *self.extra_images)
