"""MathVista's and MMMU's rule-based answer scoring (after lmms-eval's rules; our own code).

MathVista (``mathvista``), on the extracted answer:

- multiple choice is scored against the choice *text*: an option letter (``B``, ``(B)``,
  ``B. 8/11``) or a choice's text names that choice; otherwise lmms-eval's fallbacks apply: a
  ``(X)`` letter anywhere, else the choice with the smallest edit distance;
- free form: a trailing unit (``meta["unit"]``) and full stop are dropped, ``The answer is "x".``
  is unwrapped, then integers compare as ``str(int(float(x)))`` and floats as
  ``str(round(float(x), precision))`` with the item's precision; lists as stripped text. The
  result must equal the reference text exactly (lmms-eval's ``safe_equal``). The GPT extraction
  lmms-eval uses by default is not reproduced: the paper's lineage used the rule-based path.

MMMU (``mmmu``): a multiple-choice answer is parsed to one option letter by MMMU's rules (``(A)``,
then ``A `` / ``A.``, then an option's text in answers longer than five words; the last mention
wins when several match) and must equal the solution letter. Where MMMU would pick a *random*
letter for an answer naming none, this scores 0, so scores are deterministic. An open answer is
split into key phrases after "so", "is", "therefore", ... (and "=" in the last sentence), numbers
are pulled out and normalised (commas dropped, rounded to 2 decimals); it is correct if a number
equals a reference number or a reference string is contained in a phrase.
"""

from __future__ import annotations

import ast
import re

from modomodo.data.schema import OPTION_LETTERS, Example
from modomodo.evaluation.metrics import edit_distance, register_metric
from modomodo.rewards import choice_index, extract_answer

_QUICK = re.compile(r'The answer is "(.*)"\.')
_PAREN_LETTER = re.compile(r"\(([a-zA-Z])\)")
_KEY_INDICATORS = ("could be ", "so ", "is ", "thus ", "therefore ", "final ", "answer ", "result ")
_NUMBER_PATTERNS = (
    re.compile(r"-?\b\d{1,3}(?:,\d{3})+\b"),  # with thousands separators
    re.compile(r"-?\d+(?:\.\d+)?[eE][+-]?\d+"),  # scientific notation
    re.compile(r"-?(?:\d+\.\d+|\.\d+|\d+\b)(?![eE][+-]?\d+)(?![,\d])"),  # plain
)
_TRIVIAL = {":", ",", ".", "!", "?", ";", "'"}


# --- MathVista --------------------------------------------------------------------------------------


@register_metric("mathvista", answer_kinds=("mc", "text"))
def mathvista(completion: str, example: Example) -> float:
    answer = extract_answer(completion)
    if not answer:
        return 0.0
    if example.answer_kind == "mc":
        reference = example.options[OPTION_LETTERS.index(example.solution)]
        return float(mathvista_choice(answer, example.options) == reference)
    prediction = mathvista_free_form(
        answer,
        answer_type=example.meta.get("answer_type", "text"),
        precision=int(example.meta.get("precision") or 0),
        unit=example.meta.get("unit", ""),
    )
    return float(prediction is not None and prediction.strip() == example.solution.strip())


def mathvista_choice(answer: str, choices: tuple[str, ...]) -> str:
    """The choice text a multiple-choice answer names (see the module docstring)."""
    answer = answer.strip()
    quick = _QUICK.search(answer)
    answer = quick.group(1).strip() if quick else answer
    index = choice_index(answer, choices)
    if index is not None:
        return choices[index]
    letter = _PAREN_LETTER.findall(answer)
    if letter and letter[0].upper() in OPTION_LETTERS[: len(choices)]:
        return choices[OPTION_LETTERS.index(letter[0].upper())]
    distances = [edit_distance(answer, choice) for choice in choices]
    return choices[distances.index(min(distances))]


def mathvista_free_form(answer: str, *, answer_type: str, precision: int, unit: str) -> str | None:
    """A free-form answer normalised as MathVista compares it; ``None`` if it is not of the type."""
    text = answer.strip()
    quick = _QUICK.search(text)
    text = quick.group(1).strip() if quick else text
    text = text.rstrip(".").strip()
    if unit and text.endswith(unit):
        text = text[: -len(unit)].strip()
    try:
        if answer_type == "integer":
            return str(int(float(text)))
        if answer_type == "float":
            return str(round(float(text), precision))
    except (ValueError, OverflowError):
        return None
    return text


# --- MMMU -------------------------------------------------------------------------------------------


@register_metric("mmmu", answer_kinds=("mc", "text"))
def mmmu(completion: str, example: Example) -> float:
    answer = extract_answer(completion)
    if not answer:
        return 0.0
    if example.answer_kind == "mc":
        return float(mmmu_choice(answer, example.options) == example.solution)
    return float(mmmu_open_correct(mmmu_open_predictions(answer), _gold_answers(example.solution)))


def mmmu_choice(response: str, options: tuple[str, ...]) -> str | None:
    """The option letter MMMU's parser reads from ``response``, or ``None`` (MMMU: a random one)."""
    letters = OPTION_LETTERS[: len(options)]
    for char in ",.!?;:'":
        response = response.strip(char)
    padded = f" {response} "
    candidates = [c for c in letters if f"({c})" in padded]
    where = {c: padded.rfind(f"({c})") for c in candidates}
    if not candidates:
        candidates = [c for c in letters if f"{c} " in padded] or [c for c in letters if f"{c}." in padded]
        where = {c: padded.rfind(f" {c} ") for c in candidates}
    if not candidates and len(padded.split()) > 5:
        lowered = padded.lower()
        candidates = [c for c, option in zip(letters, options, strict=True) if option.lower() in lowered]
        where = {c: lowered.rfind(options[letters.index(c)].lower()) for c in candidates}
    if not candidates:
        return None
    return max(candidates, key=lambda c: where[c]) if len(candidates) > 1 else candidates[0]


def mmmu_open_predictions(response: str) -> list[str | float]:
    """Key phrases and the numbers in them, normalised (MMMU's ``parse_open_response``)."""
    response = response.strip().strip(".").lower()
    sentences = re.split(r"\.\s(?=[A-Z])|\n", response)
    phrases: list[str] = []
    for index, sentence in enumerate(sentences):
        indicators = _KEY_INDICATORS + (("=",) if index == len(sentences) - 1 else ())
        tails = [sentence.split(ind)[-1].strip() for ind in indicators if ind in sentence]
        shortest = min(tails, key=len) if tails else ""
        if shortest and shortest.strip() not in _TRIVIAL:
            phrases.append(shortest)
    phrases = phrases or [response]
    found = list(phrases)
    for phrase in phrases:
        for pattern in _NUMBER_PATTERNS:
            found.extend(pattern.findall(phrase))
    out: list[str | float] = []
    for item in found:
        for normalised in _normalise(item):
            if normalised not in out:
                out.append(normalised)
    return out


def mmmu_open_correct(predictions: list[str | float], gold: list[str]) -> bool:
    """MMMU's ``eval_open``: a number equals a reference number, or a reference string is inside a phrase."""
    references = [n for answer in gold for n in _normalise(answer)]
    for prediction in predictions:
        if isinstance(prediction, str):
            if any(isinstance(ref, str) and ref in prediction for ref in references):
                return True
        elif prediction in references:
            return True
    return False


def _gold_answers(solution: str) -> list[str]:
    """MMMU open answers may be a Python-repr list of accepted answers (``['24/7', '3.429']``)."""
    text = solution.strip()
    if text.startswith("["):
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            return [text]
        if isinstance(value, list) and value and all(isinstance(v, str | int | float) for v in value):
            return [str(v) for v in value]
    return [text]


def _normalise(text: str) -> list[str | float]:
    text = text.strip()
    try:
        return [round(float(text.replace(",", "")), 2)]
    except (ValueError, OverflowError):
        pass
    text = text.lower()
    return [" " + text, text + " "] if len(text) == 1 else [text]
