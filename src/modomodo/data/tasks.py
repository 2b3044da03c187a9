"""The task generators of the synthetic suite: five training domains and four out-of-domain benchmarks.

A generator draws one :class:`Task` from a ``random.Random``: a picture (:class:`Canvas`), a
question, its reference answer, a one-line rationale derivable from the picture, and the skills the
question exercises. ``docs/synthetic-suite.md`` explains the design; the skill table there is
:data:`~modomodo.data.task_parts.SKILLS` x the ``skills`` of each task kind below. The parts the
domains share with the benchmarks (the :class:`Task` record, helpers, aggregate questions) are in
:mod:`modomodo.data.task_parts`.

All objects sit in cells of the 4x4 grid, counts stay within 0-4 per kind, and answers are one
letter, one word, one small number or a few cell-aligned boxes, so that a tiny model can learn them.
"""

from __future__ import annotations

import random

from modomodo.data.draw import ALL_CELLS, GRID, IMAGE_SIZE, SHAPES, Block, Canvas, Item
from modomodo.data.prompts import format_boxes
from modomodo.data.task_parts import (
    COLOUR_NAMES,
    Task,
    answered,
    count_all,
    count_colour,
    distinct_pair_scene,
    lettered,
    majority_colour,
    plural,
    random_items,
    relation_of,
    scene,
)

_FRAME = f"Pixel coordinates; the image is {IMAGE_SIZE}x{IMAGE_SIZE}."


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
