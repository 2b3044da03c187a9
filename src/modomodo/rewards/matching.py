"""When does a short answer equal the reference? Normalisation, numbers and option letters.

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

import re
import unicodedata
from decimal import Decimal

from modomodo.data.schema import OPTION_LETTERS

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
