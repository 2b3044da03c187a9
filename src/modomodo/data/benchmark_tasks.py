"""The out-of-domain benchmarks of the synthetic suite: the training domains' skills in new
combinations, wordings and surfaces (``docs/synthetic-suite.md``); the training domains and the
helpers both use are in :mod:`modomodo.data.tasks`."""

from __future__ import annotations

import random

from modomodo.data.draw import ALL_CELLS, GRID, SHAPES, Block, Canvas, Item
from modomodo.data.tasks import (
    COLOUR_NAMES,
    RELATIONS,
    Task,
    distinct_pair_scene,
    lettered,
    numeric_options,
    plural,
    random_items,
    relation_of,
    scene,
)


def chart(rng: random.Random) -> Task:
    """ChartQA-like: read a bar's height by its colour, or name the colour of the bar with a height.

    The questions are worded like ``spatial``'s ("How many ...", "What colour is the ..."), the one
    training domain that answers in numbers and words: the answer form transfers from it, the
    measuring from ``geo`` (docs/synthetic-suite.md, "Suite v3")."""
    n_bars = rng.randint(2, GRID)
    columns = sorted(rng.sample(range(GRID), n_bars))
    colours = rng.sample(COLOUR_NAMES, n_bars)
    heights = [rng.randint(1, GRID) for _ in columns]
    unique = [i for i, h in enumerate(heights) if heights.count(h) == 1]
    bars = tuple(
        Block(GRID - h, col, h, 1, colour, bar=True)
        for col, colour, h in zip(columns, colours, heights, strict=True)
    )
    if unique and rng.random() < 0.4:
        i = rng.choice(unique)
        question = f"What colour is the bar that is {heights[i]} cells tall?"
        answer, qtype, form = colours[i], "colour_of_value", "word"
    else:
        i = rng.randrange(n_bars)
        question = f"How many cells tall is the {colours[i]} bar?"
        answer, qtype, form = str(heights[i]), "value_of_colour", "number"
    return Task(
        Canvas(blocks=bars, background="chart", lines="chart"),
        question,
        answer,
        "text",
        form,
        qtype,
        ("colour", "measure"),
        f"the {colours[i]} bar reaches {heights[i]}",
    )


def grid_reading(rng: random.Random) -> Task:
    """InfoVQA-like: look things up in a table: an object's row or column, or the colour in a cell.

    Worded like ``spatial``'s questions, as :func:`chart` is; the row and column come from ``ref``'s and
    ``det``'s rationales ("the red circle is at row 2 col 3")."""
    cells = rng.sample(ALL_CELLS, rng.randint(2, 5))
    target = Item(cells[0], rng.choice(COLOUR_NAMES), rng.choice(SHAPES))
    others = random_items(rng, cells[1:], lambda it: it.name == target.name)
    qtype = rng.choice(("row", "column", "colour_at"))
    if qtype == "row":
        question = f"How many rows from the top is the {target.name}? The top row counts as 1."
        answer, skills, form = str(target.cell.row + 1), ("colour", "shape", "locate"), "number"
    elif qtype == "column":
        question = f"How many columns from the left is the {target.name}? The left column counts as 1."
        answer, skills, form = str(target.cell.col + 1), ("colour", "shape", "locate"), "number"
    else:
        question = f"What colour is the shape in row {target.cell.row + 1}, column {target.cell.col + 1}?"
        answer, skills, form = target.colour, ("colour", "locate"), "word"
    return Task(
        Canvas(scene([target], others), background="paper", lines="table"),
        question,
        answer,
        "text",
        form,
        qtype,
        skills,
        f"the {target.name} is at {target.cell.label}",
    )


def math_count(rng: random.Random) -> Task:
    """MathVista-like: count a shape, compare two counts, or "subtract all red objects"; multiple choice."""
    qtype = rng.choice(("count", "more", "subtract"))
    if qtype == "subtract":
        total = rng.randint(2, 6)
        cells = rng.sample(ALL_CELLS, total)
        colour = rng.choice(COLOUR_NAMES)
        n_colour = rng.randint(1, total - 1)
        rest = [c for c in COLOUR_NAMES if c != colour]
        items = [
            Item(c, colour if k < n_colour else rng.choice(rest), rng.choice(SHAPES))
            for k, c in enumerate(cells)
        ]
        question = f"Subtract all {colour} objects. How many objects are left?"
        answer, skills = total - n_colour, ("colour", "count", "arith")
        why = f"{total} objects, {n_colour} of them {colour}"
    else:
        first, second, third = rng.sample(SHAPES, 3)
        if qtype == "count":
            counts = {first: rng.randint(0, 4), second: rng.randint(0, 2), third: rng.randint(0, 1)}
            question, answer = f"How many {plural(first)} are there?", counts[first]
            skills, why = ("shape", "count"), f"{counts[first]} {plural(first, counts[first])}"
        else:
            more = rng.randint(1, 4)
            counts = {first: more, second: rng.randint(0, more - 1), third: rng.randint(0, 1)}
            question = f"How many more {plural(first)} than {plural(second)} are there?"
            answer, skills = counts[first] - counts[second], ("shape", "count", "arith")
            why = f"{counts[first]} {plural(first, counts[first])}, {counts[second]} {plural(second, counts[second])}"
        shapes = [s for s, k in counts.items() for _ in range(k)]
        cells = rng.sample(ALL_CELLS, len(shapes))
        items = [Item(c, rng.choice(COLOUR_NAMES), s) for c, s in zip(cells, shapes, strict=True)]
    options, letter = numeric_options(rng, answer, 0, 6)
    return Task(Canvas(scene(items)), question, letter, "mc", "letter", qtype, skills, why, options)


def mixed_choice(rng: random.Random) -> Task:
    """MMMU-like: mixed multiple choice about a colour, a shape or a spatial relation, newly worded."""
    qtype = rng.choice(("colour", "shape", "relation"))
    if qtype == "relation":
        a, b, others = distinct_pair_scene(rng, rng.randint(0, 2))
        relation = relation_of(a.cell, b.cell)
        options, letter = lettered(rng, relation, [r for r in RELATIONS if r != relation])
        question = f"Relative to the {b.name}, where is the {a.name}?"
        items, skills = scene([a, b], others), ("colour", "shape", "relation")
        why = f"the {a.name} is at {a.cell.label}, the {b.name} at {b.cell.label}"
    else:
        cells = rng.sample(ALL_CELLS, rng.randint(2, 4))
        target = Item(cells[0], rng.choice(COLOUR_NAMES), rng.choice(SHAPES))
        if qtype == "colour":
            others = random_items(rng, cells[1:], lambda it: it.shape == target.shape)
            options, letter = lettered(rng, target.colour, [c for c in COLOUR_NAMES if c != target.colour])
            question = f"The {target.shape} in the picture has which colour?"
        else:
            others = random_items(rng, cells[1:], lambda it: it.colour == target.colour)
            options, letter = lettered(rng, target.shape, [s for s in SHAPES if s != target.shape])
            question = f"Which of these is the {target.colour} object?"
        items, skills, why = (
            scene([target], others),
            ("colour", "shape"),
            f"the {target.shape} is {target.colour}",
        )
    return Task(
        Canvas(items, background="tint"), question, letter, "mc", "letter", qtype, skills, why, options
    )
