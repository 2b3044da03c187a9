"""Reading short answers, shared by curation (``data``) and the rewards (``rewards``): bounding-box
answers and when an answer equals the reference. It imports only ``data.schema``, so
both can use it and the dependencies point one way (``rewards`` -> ``data``).

Boxes. Bounding-box answers: a small, strict parser for what the box prompts ask the model to write.

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

Matching. When does a short answer equal the reference? Normalisation, numbers and option letters.

Rules, applied to the extracted answer and the solution alike:

1. Normalise: Unicode NFKC, case-folded, runs of whitespace collapsed to one space, surrounding
   whitespace and punctuation stripped (``"(B)"``, ``"B."``, ``"**left**"``, ``"50%"`` lose their
   wrappers). A leading ``-`` or ``.`` that starts a number is kept, so ``-7`` never equals ``7``.
2. If both sides are plain decimal numbers (``7``, ``7.0``, ``-0.5``, ``.5``), they match iff they
   are numerically equal (exact decimal comparison, no exponent notation, no thousands separators).
3. Otherwise they match if the normalised texts are equal.
4. Otherwise, if both sides name the same option they match. A side names option *i* if it is the
   option letter (``B``, ``b``, ``(B)``, ``B.``, ``[B]``) optionally followed by a delimiter and
   text (``B) red``, ``B. red``, ``B: red``; the letter decides, the text after it is not checked),
   or if it equals the text of ``options[i]``. A letter with no delimiter before the text
   (``A cat``) is not a letter, since it reads as an article. Letters run A-H and, when options are
   given, only up to the number of options. ``"The answer is B"`` does not count: the lineage's
   "last standalone letter anywhere" fallback rewarded hedging and is deliberately not reproduced.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal

from modomodo.data.schema import OPTION_LETTERS

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


_NUMBER = re.compile(r"[-+]?(?:[0-9]+(?:\.[0-9]+)?|\.[0-9]+)")
_NUMBER_START = re.compile(r"-?\.?[0-9]")
_LETTER = re.compile(r"([a-h])(?:[.:)\]]?\Z|[.:)\]] )")


def normalise_answer(text: str) -> str:
    """Rule 1 above: the canonical form two answers are compared in."""
    text = " ".join(unicodedata.normalize("NFKC", text).casefold().split())
    start, end = 0, len(text)
    while end > start and _is_wrapper(text[end - 1]):
        end -= 1
    while start < end and _is_wrapper(text[start]) and not _NUMBER_START.match(text, start, end):
        start += 1
    return text[start:end]


def choice_index(text: str, options: tuple[str, ...] = ()) -> int | None:
    """Rule 4 above: the option ``text`` names, or ``None``."""
    return _choice_of_normalised(normalise_answer(text), tuple(normalise_answer(o) for o in options))


def answers_match(prediction: str, solution: str, options: tuple[str, ...] = ()) -> bool:
    """Whether ``prediction`` is a correct answer for ``solution`` under rules 1-4 above."""
    pred, sol = normalise_answer(prediction), normalise_answer(solution)
    if _NUMBER.fullmatch(pred) and _NUMBER.fullmatch(sol):
        return Decimal(pred) == Decimal(sol)
    if pred == sol:
        return True
    normalised_options = tuple(normalise_answer(o) for o in options)
    pred_choice = _choice_of_normalised(pred, normalised_options)
    return pred_choice is not None and pred_choice == _choice_of_normalised(sol, normalised_options)


def _choice_of_normalised(text: str, options: tuple[str, ...]) -> int | None:
    letter = _LETTER.match(text)
    if letter is not None:
        index = OPTION_LETTERS.index(letter.group(1).upper())
        return index if not options or index < len(options) else None
    return options.index(text) if text and text in options else None


def _is_wrapper(char: str) -> bool:
    return char.isspace() or unicodedata.category(char).startswith("P")
