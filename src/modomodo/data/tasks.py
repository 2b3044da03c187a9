"""The task generators of the synthetic suite: five training domains and four out-of-domain benchmarks.

A generator draws one :class:`Task` from a ``random.Random``: a picture (:class:`Canvas`), a
question, its reference answer, a one-line rationale derivable from the picture, and the skills the
question exercises. ``docs/synthetic-suite.md`` explains the design; the skill table there is
:data:`SKILLS` x the ``skills`` of each task kind below.

All objects sit in cells of the 4x4 grid, counts stay within 0-4 per kind, and answers are one
letter, one word, one small number or a few cell-aligned boxes, so that a tiny model can learn them.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from modomodo.data.draw import ALL_CELLS, COLOURS, GRID, IMAGE_SIZE, SHAPES, Block, Canvas, Cell, Item
from modomodo.data.prompts import OPTION_LETTERS, format_boxes, format_options
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
_FRAME = f"Pixel coordinates; the image is {IMAGE_SIZE}x{IMAGE_SIZE}."


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


def numeric_options(rng: random.Random, answer: int, low: int, high: int) -> tuple[tuple[str, ...], str]:
    """Four numeric options within ``[low, high]``: the answer and its three nearest-ranked neighbours,
    in ascending order (suite v8: shuffled options ask the tiny model to find the value among the
    options, a lookup it does not learn, and it gave one letter for every picture)."""
    pool = sorted((v for v in range(low, high + 1) if v != answer), key=lambda v: (abs(v - answer), v))
    return in_order(str(answer), [str(v) for v in pool[:3]], key=int)


def in_order(answer: str, distractors: Sequence[str], key) -> tuple[tuple[str, ...], str]:
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
    order = int if options_range is not None else list(words).index  # options in a fixed order
    if options_range is not None:
        options, letter = numeric_options(rng, int(answer), *options_range)
    else:
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


# --- training domains ----------------------------------------------------------------------------


def detection(rng: random.Random) -> Task:
    """COCO-like: box every shape of one category (0-2 of them) among distractors of other shapes.

    At most two targets: one box costs about 17 tokens of a byte-level BPE, and the whole reference
    completion has to fit the ~64-token generation budget of the tiny model.
    """
    category = rng.choice(SHAPES)
    n_targets = rng.randint(0, 2)
    n_others = rng.randint(0 if n_targets else 1, 3)
    cells = rng.sample(ALL_CELLS, n_targets + n_others)
    targets = sorted(
        (Item(c, rng.choice(COLOUR_NAMES), category) for c in cells[:n_targets]), key=lambda it: it.cell
    )
    others = random_items(rng, cells[n_targets:], lambda it: it.shape == category)
    question = (
        f"Detect all objects belonging to the category '{category}' in the image, and provide the bounding "
        f"boxes and confidence (between 0 and 1). {_FRAME}\n"
        f"If no object belonging to the category '{category}' in the image, return 'No Objects'."
    )
    where = ", ".join(t.cell.label for t in targets)
    rationale = (
        f"{len(targets)} {plural(category, len(targets))}: {where}" if targets else f"there is no {category}"
    )
    return Task(
        Canvas(scene(targets, others)),
        question,
        format_boxes(t.cell.box for t in targets),
        "box",
        "box",
        "detect",
        ("shape", "locate", "count"),
        rationale,
    )


def referring(rng: random.Random) -> Task:
    """LISA-like: one box for a referring expression (colour and shape, colour only, or shape only)."""
    mode = rng.choices(("colour shape", "colour", "shape"), weights=(3, 1, 1))[0]
    cells = rng.sample(ALL_CELLS, rng.randint(2, 5))
    target = Item(cells[0], rng.choice(COLOUR_NAMES), rng.choice(SHAPES))
    if mode == "colour shape":
        expression, clashes = f"the {target.name}", lambda it: it.name == target.name
    elif mode == "colour":
        expression, clashes = f"the {target.colour} shape", lambda it: it.colour == target.colour
    else:
        expression, clashes = f"the only {target.shape}", lambda it: it.shape == target.shape
    others = random_items(rng, cells[1:], clashes)
    question = (
        f"Output the bounding box in the image corresponding to the instruction: {expression}. {_FRAME}"
    )
    return Task(
        Canvas(scene([target], others)),
        question,
        format_boxes([target.cell.box]),
        "box",
        "box",
        mode.replace(" ", "_"),
        ("colour", "shape", "locate"),
        f"the {target.name} is at {target.cell.label}",
    )


def geometry(rng: random.Random) -> Task:
    """GeoQAV-like: measure a shaded rectangle on a grid of unit squares; multiple choice."""
    qtype = rng.choice(("width", "height", "area", "difference"))
    if qtype == "area":
        width, height = rng.randint(1, 3), rng.randint(1, 3)
    elif qtype == "difference":
        width, height = rng.sample(range(1, GRID + 1), 2)
    else:
        width, height = rng.randint(1, GRID), rng.randint(1, GRID)
    block = Block(
        rng.randint(0, GRID - height), rng.randint(0, GRID - width), height, width, rng.choice(COLOUR_NAMES)
    )
    size, area, gap = f"it is {width} wide and {height} tall", width * height, abs(width - height)
    wide, tall = (f"wide: {width}", str(width)), (f"tall: {height}", str(height))
    question, answer, low, high, skills, why = {
        "width": ("How wide is it?", width, 1, GRID, ("measure",), wide[0]),
        "height": ("How tall is it?", height, 1, GRID, ("measure",), tall[0]),
        "area": ("What is its area?", area, 1, 9, ("count",), f"{size}, so {area} squares"),
        "difference": (
            "How much longer is its long side than its short side?",
            gap,
            0,
            GRID,
            ("measure", "arith"),
            f"{size}, so {gap}",
        ),
    }[qtype]
    return answered(
        rng,
        Canvas(blocks=(block,), lines="grid"),
        f"The shaded rectangle is drawn on a grid of unit squares. {question}",
        str(answer),
        "mc",
        qtype,
        skills,
        why,
        options_range=(low, high),
        decoy={"width": tall, "height": wide}.get(qtype) if width != height else None,
    )


def spatial(rng: random.Random) -> Task:
    """SAT-like: how two described objects relate (a word), how far apart they are (a number), the
    colour of the object next to one of them (a word), or how many objects there are, of a colour or
    in all (a number).

    The counts (seven tenths of the questions) are aggregates over the whole picture: the tiny policy
    learns them from the image where it does not learn single-cell lookups (docs/synthetic-suite.md,
    "Can the suite tell mixtures apart?"). Both counts are asked, so that the reward settles which
    reading each wording wants (suite v7): with the colour count alone, GRPO taught "asked colour"
    for every count question in words, and the total count of ``gridqa`` fell to zero."""
    qtype = rng.choices(
        ("relation", "distance", "neighbour", "count_colour", "count"), weights=(1, 1, 1, 4, 3)
    )[0]
    if qtype == "count_colour":
        return count_colour(rng, Canvas, "text")
    if qtype == "count":
        return count_all(rng, Canvas, "text")
    a, b, others = distinct_pair_scene(rng, rng.randint(0, 2), adjacent=qtype == "neighbour")
    seen = f"the {a.name} is at {a.cell.label}, the {b.name} at {b.cell.label}"
    if qtype == "relation":
        question = f"Where is the {a.name} relative to the {b.name}: left, right, above or below?"
        answer, skills, form = relation_of(a.cell, b.cell), ("colour", "shape", "relation"), "word"
    elif qtype == "distance":
        question = f"How many steps apart are the {a.name} and the {b.name}, moving along the grid?"
        steps = abs(a.cell.row - b.cell.row) + abs(a.cell.col - b.cell.col)
        answer, skills, form = str(steps), ("colour", "shape", "measure"), "number"
    else:
        where = {"left": "left of", "right": "right of"}.get(
            relation_of(a.cell, b.cell), relation_of(a.cell, b.cell)
        )
        question = f"What colour is the shape in the cell directly {where} the {b.name}?"
        answer, skills, form = a.colour, ("colour", "shape", "relation"), "word"
        seen = f"the {b.name} is at {b.cell.label}, the shape at {a.cell.label} is {a.colour}"
    return Task(Canvas(scene([a, b], others)), question, answer, "text", form, qtype, skills, seen)


def science(rng: random.Random) -> Task:
    """ScienceQA-like: how many shapes there are, in all or of a colour, and which colour most have
    (eight tenths), or properties of the pictured objects; multiple choice with 3 or 4 options (4 for
    the aggregates). Both counts, as in ``spatial``, so the reward settles the reading per wording."""
    qtype = rng.choices(
        ("colour", "shape", "common", "count", "count_colour", "majority"), weights=(1, 1, 1, 3, 3, 2)
    )[0]
    if qtype == "common":
        return _common_property(rng)
    if qtype == "count":
        return count_all(rng, Canvas, "mc")
    if qtype == "count_colour":
        return count_colour(rng, Canvas, "mc")
    if qtype == "majority":
        return majority_colour(rng, Canvas, "mc")
    cells = rng.sample(ALL_CELLS, rng.randint(1, 3))
    target = Item(cells[0], rng.choice(COLOUR_NAMES), rng.choice(SHAPES))
    if qtype == "colour":  # the target is the only one of its shape
        others = random_items(rng, cells[1:], lambda it: it.shape == target.shape)
        wrong = rng.sample([c for c in COLOUR_NAMES if c != target.colour], rng.randint(2, 3))
        options, letter = lettered(rng, target.colour, wrong)
        question = f"What is the colour of the {target.shape}?"
    else:  # the target is the only one of its colour
        others = random_items(rng, cells[1:], lambda it: it.colour == target.colour)
        options, letter = lettered(rng, target.shape, [s for s in SHAPES if s != target.shape])
        question = f"Which shape is {target.colour}?"
    return Task(
        Canvas(scene([target], others)),
        question,
        letter,
        "mc",
        "letter",
        qtype,
        ("colour", "shape"),
        f"the {target.shape} is {target.colour}",
        options,
    )


def _common_property(rng: random.Random) -> Task:
    """Two or three objects share exactly one property: a colour (all shapes differ) or a shape."""
    n = rng.randint(2, 3)
    cells = rng.sample(ALL_CELLS, n)
    if rng.random() < 0.5:
        colour = rng.choice(COLOUR_NAMES)
        items = [Item(c, colour, s) for c, s in zip(cells, rng.sample(SHAPES, n), strict=True)]
        answer = f"all {colour}"
        absent_shape = rng.choice(SHAPES)
        wrong = [
            f"all {plural(absent_shape)}",
            f"all {rng.choice([c for c in COLOUR_NAMES if c != colour])}",
        ]
    else:
        shape = rng.choice(SHAPES)
        items = [Item(c, col, shape) for c, col in zip(cells, rng.sample(COLOUR_NAMES, n), strict=True)]
        answer = f"all {plural(shape)}"
        wrong = [
            f"all {rng.choice(COLOUR_NAMES)}",
            f"all {plural(rng.choice([s for s in SHAPES if s != shape]))}",
        ]
    options, letter = lettered(rng, answer, wrong)
    return Task(
        Canvas(scene(items)),
        "Which property do these objects have in common?",
        letter,
        "mc",
        "letter",
        "common",
        ("colour", "shape"),
        f"they are {answer}",
        options,
    )
