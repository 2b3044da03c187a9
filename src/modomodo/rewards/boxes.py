"""Bounding-box answers: a small, strict parser for what the box prompts ask the model to write.

Accepted answers (whitespace anywhere between tokens):

- ``[{'Position': [x1, y1, x2, y2], 'Confidence': c}, ...]``: the prompts' form, single or double
  quotes, keys matched case-insensitively, ``Confidence`` optional (default 1.0);
- ``[x1, y1, x2, y2]``: one bare box; ``[[x1, y1, x2, y2], ...]``: several bare boxes (confidence 1.0);
- ``No Objects`` (any case, optionally quoted or with a trailing full stop) or ``[]``: no boxes.

Anything else is rejected as a whole (``None``), including trailing commas, unknown keys, extra
text around the list, truncated output and any non-finite number (``nan``, ``inf``, ``1e999``). The
text is split by one regular expression whose every alternative is bounded, and then read by a
recursive-descent parser; nothing is ever evaluated or "repaired".

Coordinates are corners in the pixel frame of the image the model was given (the domain's prompt
states that frame); the solution must use the same frame. A box written with ``x2 < x1`` or
``y2 < y1`` is normalised by swapping the coordinates: the four numbers still name one axis-aligned
rectangle, and the format reward, not the IoU, is the place to teach notation.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

_TOKEN = re.compile(
    r"""
     (?P<space>\s+)
    |(?P<number>[-+]?(?:[0-9]{1,32}(?:\.[0-9]{0,32})?|\.[0-9]{1,32})(?:[eE][-+]?[0-9]{1,4})?
               |[-+]?(?:nan|inf(?:inity)?)(?![a-z]))
    |(?P<key>'[a-z]{1,16}'|"[a-z]{1,16}")
    |(?P<punct>[\[\]{}:,])
    |(?P<other>.)
    """,
    re.VERBOSE | re.IGNORECASE | re.DOTALL,
)
_POSITION, _CONFIDENCE = "position", "confidence"


@dataclass(frozen=True, slots=True)
class Box:
    """An axis-aligned box with ``x1 <= x2`` and ``y1 <= y2``, and the model's confidence in it."""

    x1: float
    y1: float
    x2: float
    y2: float
    confidence: float = 1.0

    def __post_init__(self) -> None:
        if not (all(map(math.isfinite, self.corners)) and self.x1 <= self.x2 and self.y1 <= self.y2):
            raise ValueError(f"a box needs finite coordinates with x1 <= x2 and y1 <= y2, got {self.corners}")
        if not math.isfinite(self.confidence):
            raise ValueError(f"a box needs a finite confidence, got {self.confidence}")

    @classmethod
    def from_corners(cls, coords: tuple[float, float, float, float], confidence: float = 1.0) -> Box:
        """Build a box from two opposite corners in any order."""
        xa, ya, xb, yb = coords
        return cls(min(xa, xb), min(ya, yb), max(xa, xb), max(ya, yb), confidence)

    @property
    def corners(self) -> tuple[float, float, float, float]:
        return (self.x1, self.y1, self.x2, self.y2)


class _Malformed(Exception):
    """Internal: the token stream is not a box list (always turned into ``None``)."""


def parse_boxes(text: str) -> list[Box] | None:
    """Parse a box answer; ``[]`` for "no objects", ``None`` when the text is not a valid box list."""
    if _says_no_objects(text):
        return []
    tokens = _tokenise(text)
    if tokens is None:
        return None
    try:
        return _Parser(tokens).parse()
    except _Malformed:
        return None


def _says_no_objects(text: str) -> bool:
    return text.strip().strip("'\"").rstrip(".").strip().casefold() == "no objects"


def _tokenise(text: str) -> list[tuple[str, str]] | None:
    r"""Split into ``(kind, text)`` tokens; kind is ``number``, ``key`` or the punctuation itself.

    Whitespace is a token of its own rather than a ``\s*`` prefix (which backtracks quadratically
    over trailing whitespace), every quantifier inside a token is bounded, and ``other`` catches any
    character no token starts with, so ``finditer`` skips nothing and runs in linear time.
    """
    tokens: list[tuple[str, str]] = []
    for match in _TOKEN.finditer(text):
        kind = match.lastgroup
        if kind == "space":
            continue
        if kind == "other":
            return None
        value = match.group(kind)
        tokens.append((value if kind == "punct" else kind, value))
    return tokens


class _Parser:
    """Recursive descent over the grammar::

    answer := "[" "]" | bare | "[" item ("," item)* "]"
    item   := bare | "{" pair ("," pair)* "}"
    pair   := key ":" (bare | number)          -- keys: Position (required), Confidence
    bare   := "[" number "," number "," number "," number "]"
    """

    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self._tokens = tokens
        self._at = 0

    def parse(self) -> list[Box]:
        self._expect("[")
        if self._peek() == "number":
            boxes = [Box.from_corners(self._coords_after_bracket())]
        elif self._accept("]"):
            boxes = []
        else:
            boxes = [self._item()]
            while self._accept(","):
                boxes.append(self._item())
            self._expect("]")
        if self._at != len(self._tokens):
            raise _Malformed
        return boxes

    def _item(self) -> Box:
        if self._accept("["):
            return Box.from_corners(self._coords_after_bracket())
        self._expect("{")
        fields: dict[str, object] = {}
        while True:
            key = self._expect("key")[1:-1].casefold()
            if key in fields or key not in (_POSITION, _CONFIDENCE):
                raise _Malformed
            self._expect(":")
            fields[key] = self._coords() if key == _POSITION else self._number()
            if not self._accept(","):
                break
        self._expect("}")
        if _POSITION not in fields:
            raise _Malformed
        return Box.from_corners(fields[_POSITION], fields.get(_CONFIDENCE, 1.0))

    def _coords(self) -> tuple[float, float, float, float]:
        self._expect("[")
        return self._coords_after_bracket()

    def _coords_after_bracket(self) -> tuple[float, float, float, float]:
        x1 = self._number()
        self._expect(",")
        y1 = self._number()
        self._expect(",")
        x2 = self._number()
        self._expect(",")
        y2 = self._number()
        self._expect("]")
        return (x1, y1, x2, y2)

    def _number(self) -> float:
        value = float(self._expect("number"))
        if not math.isfinite(value):  # nan, inf, and literals that overflow such as 1e999
            raise _Malformed
        return value

    def _peek(self) -> str | None:
        return self._tokens[self._at][0] if self._at < len(self._tokens) else None

    def _accept(self, kind: str) -> bool:
        if self._peek() == kind:
            self._at += 1
            return True
        return False

    def _expect(self, kind: str) -> str:
        if self._peek() != kind:
            raise _Malformed
        self._at += 1
        return self._tokens[self._at - 1][1]
