"""Prompt templates and answer notation, after the paper's reasoning mode (digest 2.2).

An :class:`~modomodo.data.schema.Example` stores the bare question (``problem``); this module adds
the instruction that asks for ``<think> </think>`` reasoning and an ``<answer> </answer>`` tag:

- ``mc``: ``"{problem}  Output the thinking process in <think> </think> and final answer (option)
  in <answer> </answer> tags."``, exactly the lineage's ``QUESTION_TEMPLATE`` (two spaces included).
  The options are part of ``problem``, one per line (``A. red``), as in the paper's datasets.
- ``text``: the same sentence with ``(short answer)`` instead of ``(option)``. The lineage asks for
  an "(option)" even when SAT's answer is a phrase; naming the expected form is the one deliberate
  change, so that a text question never invites a bare letter.
- ``box``: ``"{problem}\\n"`` + the Visual-RFT/LISA instruction with its example output line.

Answers are written the way the rewards read them: an option letter, a short phrase or number, or a
box list ``[{'Position': [x1, y1, x2, y2], 'Confidence': 1}, ...]`` (``No Objects`` when there is
none). Every example output shown here, and every reference completion, fully matches the project's
format regex ``<think>.*?</think>\\s*<answer>.*?</answer>`` (``re.DOTALL``, after stripping).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from modomodo.data.schema import OPTION_LETTERS, Example

NO_OBJECTS = "No Objects"
"""The box answer when nothing of the asked category is in the image (Visual-RFT's wording)."""

_REASONING = "Output the thinking process in <think> </think> and final answer"
MC_INSTRUCTION = f"{_REASONING} (option) in <answer> </answer> tags."
TEXT_INSTRUCTION = f"{_REASONING} (short answer) in <answer> </answer> tags."
BOX_EXAMPLE_OUTPUT = (
    "<think> ... </think> <answer>[{'Position': [x1, y1, x2, y2], 'Confidence': number}, ...]</answer>"
)
"""The example output line of the box instruction, verbatim from Visual-RFT."""
BOX_INSTRUCTION = (
    f"{_REASONING} in <answer> </answer> tags."  # no space before "The": verbatim from the lineage
    f"The output answer format should be as follows:\n{BOX_EXAMPLE_OUTPUT}\nPlease strictly follow the format."
)
INSTRUCTIONS: dict[str, str] = {"mc": MC_INSTRUCTION, "text": TEXT_INSTRUCTION, "box": BOX_INSTRUCTION}
"""The instruction appended to each answer kind's problem."""
_SEPARATORS: dict[str, str] = {"mc": "  ", "text": "  ", "box": "\n"}

DEFAULT_RATIONALE = "I read the answer from the image."
"""Reasoning of a reference completion whose example carries none (data from outside the suite)."""


def format_options(options: Sequence[str]) -> str:
    """``A. red\\nB. green``: the options block that follows an mc question."""
    if not 2 <= len(options) <= len(OPTION_LETTERS):
        raise ValueError(f"an mc question needs 2 to {len(OPTION_LETTERS)} options, got {len(options)}")
    return "\n".join(f"{letter}. {text}" for letter, text in zip(OPTION_LETTERS, options, strict=False))


def format_boxes(boxes: Iterable[Sequence[float]], confidence: float = 1) -> str:
    """The canonical box answer: ``[{'Position': [x1, y1, x2, y2], 'Confidence': 1}, ...]``.

    Integral coordinates are written without a decimal point; no boxes give :data:`NO_OBJECTS`.
    """
    items = [
        f"{{'Position': [{', '.join(_number(v) for v in box)}], 'Confidence': {_number(confidence)}}}"
        for box in boxes
    ]
    return f"[{', '.join(items)}]" if items else NO_OBJECTS


def render_prompt(example: Example) -> str:
    """The full user text: the problem followed by the reasoning instruction of its answer kind."""
    kind = example.answer_kind
    if kind not in INSTRUCTIONS:
        raise ValueError(f"example {example.id}: unknown answer kind {kind!r}; known: {sorted(INSTRUCTIONS)}")
    return f"{example.problem}{_SEPARATORS[kind]}{INSTRUCTIONS[kind]}"


def reference_completion(example: Example) -> str:
    """A short correct completion for supervised warm-start: ``<think> why </think> <answer> a </answer>``.

    The reasoning is the example's ``meta["rationale"]``: one line the generator derived from the
    picture (``the red triangle is at row 2 col 3``).
    """
    rationale = example.meta.get("rationale", DEFAULT_RATIONALE)
    return f"<think> {rationale} </think> <answer> {example.solution} </answer>"


def decoy_completion(example: Example) -> str:
    """The example's decoy, a related but wrong reading of its picture (``meta["decoy_rationale"]``
    and ``meta["decoy_solution"]``, written by the synthetic suite), in the reference's form; the
    reference itself when the example has none."""
    if "decoy_solution" not in example.meta:
        return reference_completion(example)
    return f"<think> {example.meta['decoy_rationale']} </think> <answer> {example.meta['decoy_solution']} </answer>"


def to_conversation(example: Example) -> list[dict]:
    """The conversational prompt TRL expects: one user turn with the images, in order, then the
    prompt text (images first, as lmms-eval's Qwen2-VL model passes an MMMU item's images)."""
    images: list[dict] = [{"type": "image"} for _ in example.images]
    return [{"role": "user", "content": [*images, {"type": "text", "text": render_prompt(example)}]}]


def strip_instruction(problem: str) -> str:
    """Cut a reasoning instruction that a dataset already appended to its problem.

    Datasets converted for the paper's code may store the templated prompt (in one of the lineage's
    variants: "(option)", "(number)", the box format lines); the schema keeps the bare problem and
    adds the instruction at render time, so everything from the instruction's first words is dropped.
    """
    at = problem.find(_REASONING)
    return problem if at < 0 else problem[:at].rstrip()


def _number(value: float) -> str:
    value = float(value)
    return str(int(value)) if value.is_integer() else repr(value)
