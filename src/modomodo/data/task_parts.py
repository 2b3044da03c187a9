"""The parts the synthetic suite's task generators share: the :class:`Task` record, the constants
(skills, answer forms, colour names), drawing helpers, and the aggregate questions (how many, which
colour most) that the training domains (:mod:`modomodo.data.tasks`) and the out-of-domain benchmarks
(:mod:`modomodo.data.benchmark_tasks`) both ask."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from modomodo.data.draw import ALL_CELLS, COLOURS, GRID, SHAPES, Canvas, Cell, Item
from modomodo.data.prompts import OPTION_LETTERS, format_options
from modomodo.data.schema import AnswerKind

SKILLS: tuple[str, ...] = ("colour", "shape", "locate", "count", "measure", "relation", "arith")
"""What a question can exercise: name a colour; name a shape; say where an object is (cell or box);
count objects or cells; measure a filled span in cells; relate two positions (left/right/above/below);
add or subtract small counts."""
ANSWER_FORMS: tuple[str, ...] = ("box", "letter", "word", "number")
"""How an answer is written: box list, option letter, one word, one number."""
RELATIONS: tuple[str, ...] = ("left", "right", "above", "below")
COLOUR_NAMES: tuple[str, ...] = tuple(COLOURS)


@dataclass(frozen=True)
class Task:
    """One drawn problem, before it becomes an :class:`~modomodo.data.schema.Example`."""

    canvas: Canvas
    question: str
    """The question without its options block."""
    solution: str
    answer_kind: AnswerKind
    answer_form: str
    """One of :data:`ANSWER_FORMS`."""
    qtype: str
    """The question type within its generator (``width``, ``relation``, ...)."""
    skills: tuple[str, ...]
    """The subset of :data:`SKILLS` the question needs."""
    rationale: str
    """One line of reasoning read off the picture, used as the reference ``<think>``."""
    options: tuple[str, ...] = ()
    decoy: tuple[str, str] | None = None
    """A related but wrong reading of the same picture, ``(rationale, solution)``, never the right
    answer: what the warm-start teaches instead of the reference for ``sft.decoy_rate`` of its draws."""

    @property
    def problem(self) -> str:
        return f"{self.question}\n{format_options(self.options)}" if self.options else self.question

    @property
    def content_key(self) -> str:
        """What makes two tasks the same problem: picture, question and answer, not the option order."""
        answer = self.options[OPTION_LETTERS.index(self.solution)] if self.options else self.solution
        return f"{self.canvas!r}|{self.question}|{answer}"


Generator = Callable[[random.Random], Task]


# --- helpers (the benchmarks' generators in data/benchmark_tasks.py use them too) -------------------------------------------------------------------------------------


def plural(shape: str, n: int = 2) -> str:
    return shape if n == 1 else f"{shape}s"


def random_items(rng: random.Random, cells: Sequence[Cell], avoid: Callable[[Item], bool]) -> list[Item]:
    """One random item per cell, redrawn while ``avoid`` says it would make the question ambiguous."""
    items = []
    for cell in cells:
        item = Item(cell, rng.choice(COLOUR_NAMES), rng.choice(SHAPES))
        while avoid(item):
            item = Item(cell, rng.choice(COLOUR_NAMES), rng.choice(SHAPES))
        items.append(item)
    return items


def lettered(rng: random.Random, answer: str, distractors: Sequence[str]) -> tuple[tuple[str, ...], str]:
    """Shuffle the answer among the distractors; return the options and the answer's letter."""
    options = [answer, *distractors]
    rng.shuffle(options)
    return tuple(options), OPTION_LETTERS[options.index(answer)]


def numeric_options(answer: int, low: int, high: int) -> tuple[tuple[str, ...], str]:
    """Four numeric options within ``[low, high]``: the answer and its three nearest-ranked neighbours,
    in ascending order (suite v8: shuffled options ask the tiny model to find the value among the
    options, a lookup it does not learn, and it gave one letter for every picture)."""
    pool = sorted((v for v in range(low, high + 1) if v != answer), key=lambda v: (abs(v - answer), v))
    return in_order(str(answer), [str(v) for v in pool[:3]], key=int)


def in_order(
    answer: str, distractors: Sequence[str], key: Callable[[str], int]
) -> tuple[tuple[str, ...], str]:
    """The answer among the distractors sorted by ``key``; the options and the answer's letter."""
    options = sorted([answer, *distractors], key=key)
    return tuple(options), OPTION_LETTERS[options.index(answer)]


def pair_on_a_line(rng: random.Random, *, adjacent: bool = False) -> tuple[Cell, Cell]:
    """Two distinct cells sharing a row or a column, so exactly one relation word holds."""
    line = rng.randrange(GRID)
    if adjacent:
        near = rng.randrange(GRID - 1)
        a, b = (near, near + 1) if rng.random() < 0.5 else (near + 1, near)
    else:
        a, b = rng.sample(range(GRID), 2)
    return (Cell(line, a), Cell(line, b)) if rng.random() < 0.5 else (Cell(a, line), Cell(b, line))


def relation_of(a: Cell, b: Cell) -> str:
    """Where ``a`` is relative to ``b`` (they share a row or a column)."""
    if a.row == b.row:
        return "left" if a.col < b.col else "right"
    return "above" if a.row < b.row else "below"


def distinct_pair_scene(
    rng: random.Random, extra: int, *, adjacent: bool = False
) -> tuple[Item, Item, list[Item]]:
    """Two differently described items on a common line plus ``extra`` distractors that match neither."""
    cell_a, cell_b = pair_on_a_line(rng, adjacent=adjacent)
    a = Item(cell_a, rng.choice(COLOUR_NAMES), rng.choice(SHAPES))
    b = random_items(rng, [cell_b], lambda it: it.name == a.name)[0]
    free = [c for c in ALL_CELLS if c not in (cell_a, cell_b)]
    others = random_items(rng, rng.sample(free, extra), lambda it: it.name in (a.name, b.name))
    return a, b, others


def scene(*groups: Sequence[Item]) -> tuple[Item, ...]:
    return tuple(sorted((it for g in groups for it in g), key=lambda it: it.cell))


# --- aggregate questions -------------------------------------------------------------------------
# Answers that are properties of the whole picture (how many, which colour most): the tiny policy
# reads them from the image where it does not learn single-cell lookups (docs/synthetic-suite.md).
# The training domains and the out-of-domain benchmarks share their wordings; a benchmark asks one
# domain's question in another answer form or on a new surface. Each rationale opens with the
# reading it makes ("asked colour: 2"), and each has a decoy reading ("other colours: 1") that the
# warm-start teaches part of the time: GRPO's reward then decides which reading a question wants.


def answered(
    rng: random.Random,
    canvas: Canvas,
    question: str,
    answer: str,
    form: str,
    qtype: str,
    skills: tuple[str, ...],
    why: str,
    *,
    options_range: tuple[int, int] | None = None,
    words: Sequence[str] = (),
    decoy: tuple[str, str] | None = None,
) -> Task:
    """``answer`` as free text (``form`` "text") or as the letter of four options (``form`` "mc":
    numeric neighbours in ``options_range``, or three of ``words``); a decoy's value is made one of
    the options so that the wrong reading can be chosen."""
    if form == "text":
        kind = "number" if answer.isdigit() else "word"
        return Task(canvas, question, answer, "text", kind, qtype, skills, why, decoy=decoy)
    if options_range is not None:
        order = int
        options, letter = numeric_options(int(answer), *options_range)
    else:
        order = list(words).index  # options in a fixed order, as numbers are
        options, letter = in_order(answer, rng.sample([w for w in words if w != answer], 3), order)
    if decoy is not None:
        decoy_why, value = decoy
        if value not in options:  # replace the first distractor
            first = next(o for o in options if o != answer)
            options = tuple(sorted((value if o == first else o for o in options), key=order))
            letter = OPTION_LETTERS[options.index(answer)]
        decoy = (decoy_why, OPTION_LETTERS[options.index(value)])
    return Task(canvas, question, letter, "mc", "letter", qtype, skills, why, options, decoy)


def count_all(rng: random.Random, canvas: Callable[..., Canvas], form: str) -> Task:
    """ "How many shapes are in the picture?" (1-4 shapes). Decoy: the largest one-colour group."""
    n = rng.randint(1, 4)
    items = random_items(rng, rng.sample(ALL_CELLS, n), lambda it: False)
    top = max(sum(it.colour == c for it in items) for c in COLOUR_NAMES)
    return answered(
        rng,
        canvas(scene(items)),
        "How many shapes are in the picture?",
        str(n),
        form,
        "count",
        ("count",),
        f"in all: {n}",
        options_range=(1, 4),
        decoy=(f"one colour: {top}", str(top)) if top != n else None,
    )


def count_colour(rng: random.Random, canvas: Callable[..., Canvas], form: str) -> Task:
    """ "How many {colour} shapes are there?" (0-3 of them among 1-3 others). Decoy: the others."""
    colour = rng.choice(COLOUR_NAMES)
    k = rng.randint(0, 3)
    m = rng.choice([v for v in (1, 2, 3) if v != k])
    cells = rng.sample(ALL_CELLS, k + m)
    items = [Item(c, colour, rng.choice(SHAPES)) for c in cells[:k]]
    items += random_items(rng, cells[k:], lambda it: it.colour == colour)
    return answered(
        rng,
        canvas(scene(items)),
        f"How many {colour} shapes are there?",
        str(k),
        form,
        "count_colour",
        ("colour", "count"),
        f"asked colour: {k}",
        options_range=(0, 3),
        decoy=(f"other colours: {m}", str(m)),
    )


def majority_colour(rng: random.Random, canvas: Callable[..., Canvas], form: str) -> Task:
    """ "Which colour do most shapes have?": 2-4 shapes of one colour, fewer of each other colour.
    Decoy: the colour with the fewest shapes."""
    colour = rng.choice(COLOUR_NAMES)
    k = rng.randint(2, 4)
    rest = [c for c in COLOUR_NAMES if c != colour]
    others = [c for c in rest for _ in range(rng.randint(0, k - 1))]
    others = rng.sample(others, min(len(others), 3))
    cells = rng.sample(ALL_CELLS, k + len(others))
    colours = [colour] * k + others
    items = [Item(c, col, rng.choice(SHAPES)) for c, col in zip(cells, colours, strict=True)]
    fewest = min(rest, key=lambda c: (colours.count(c), COLOUR_NAMES.index(c)))
    return answered(
        rng,
        canvas(scene(items)),
        "Which colour do most shapes have?",
        colour,
        form,
        "majority",
        ("colour", "count"),
        f"most: {colour}",
        words=COLOUR_NAMES,
        decoy=(f"fewest: {fewest}", fewest),
    )
