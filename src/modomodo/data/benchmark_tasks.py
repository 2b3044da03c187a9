"""The out-of-domain benchmarks of the synthetic suite: the training domains' aggregate questions
with their wordings, in another answer form or on a new surface (``docs/synthetic-suite.md``); the
training domains are in :mod:`modomodo.data.tasks`, the parts both use in :mod:`modomodo.data.task_parts`."""

from __future__ import annotations

import functools
import random

from modomodo.data.draw import ALL_CELLS, GRID, SHAPES, Block, Canvas, Item
from modomodo.data.task_parts import (
    COLOUR_NAMES,
    Task,
    count_all,
    count_colour,
    majority_colour,
    numeric_options,
    scene,
)


def chart(rng: random.Random) -> Task:
    """ChartQA-like, aggregates of a bar chart in ``spatial``'s answer form: how many bars (read
    like ``sci``'s count, "in all") or how tall the tallest bar is (``geo``'s "tall")."""
    n_bars, top = rng.randint(1, GRID), rng.randint(1, GRID)
    columns = sorted(rng.sample(range(GRID), n_bars))
    colours = rng.sample(COLOUR_NAMES, n_bars)
    heights = [top] + [rng.randint(1, top) for _ in columns[1:]]
    rng.shuffle(heights)
    bars = tuple(
        Block(GRID - h, col, h, 1, colour, bar=True)
        for col, colour, h in zip(columns, colours, heights, strict=True)
    )
    canvas = Canvas(blocks=bars, background="chart", lines="chart")
    if rng.random() < 0.4:
        question, answer, qtype, skills, why = (
            "How many bars are there?",
            n_bars,
            "bars",
            ("count",),
            "in all",
        )
    else:
        question, answer, qtype, skills = (
            "How many cells tall is the tallest bar?",
            top,
            "tallest",
            ("measure",),
        )
        why = "tall"
    return Task(canvas, question, str(answer), "text", "number", qtype, skills, f"{why}: {answer}")


def grid_reading(rng: random.Random) -> Task:
    """InfoVQA-like: count on a ruled table, in words: ``sci``'s "How many shapes are in the
    picture?" in ``spatial``'s answer form, or ``spatial``'s colour count on the new surface."""
    table = functools.partial(Canvas, background="paper", lines="table")
    if rng.random() < 0.5:
        return count_all(rng, table, "text")
    return count_colour(rng, table, "text")


def math_count(rng: random.Random) -> Task:
    """MathVista-like: ``spatial``'s colour count as multiple choice (``sci``'s answer form), or
    "Subtract all red objects. How many objects are left?" (both counts); multiple choice."""
    if rng.random() < 0.5:
        return count_colour(rng, Canvas, "mc")
    total = rng.randint(2, 6)
    cells = rng.sample(ALL_CELLS, total)
    colour = rng.choice(COLOUR_NAMES)
    n_colour = rng.randint(1, total - 1)
    rest = [c for c in COLOUR_NAMES if c != colour]
    items = [
        Item(c, colour if k < n_colour else rng.choice(rest), rng.choice(SHAPES)) for k, c in enumerate(cells)
    ]
    options, letter = numeric_options(total - n_colour, 0, 6)
    return Task(
        Canvas(scene(items)),
        f"Subtract all {colour} objects. How many objects are left?",
        letter,
        "mc",
        "letter",
        "subtract",
        ("colour", "count", "arith"),
        f"{total} objects, {n_colour} of them {colour}",
        options,
    )


def mixed_choice(rng: random.Random) -> Task:
    """MMMU-like: ``sci``'s aggregate questions (how many shapes, which colour most) on a pale blue
    surface; multiple choice."""
    tint = functools.partial(Canvas, background="tint")
    if rng.random() < 0.5:
        return majority_colour(rng, tint, "mc")
    return count_all(rng, tint, "mc")
