"""The synthetic suite: determinism, split hygiene, and answers that a pixel reader confirms."""

from __future__ import annotations

import io
import re
from collections import Counter

import pytest
from PIL import Image

from modomodo.data.draw import CELL, COLOURS, GRID, IMAGE_SIZE, Cell
from modomodo.data.prompts import OPTION_LETTERS, decoy_completion, reference_completion
from modomodo.data.synthetic import BENCHMARKS, DOMAINS, TRAIN_DOMAINS, UnknownTaskError, generate
from modomodo.data.task_parts import ANSWER_FORMS, SKILLS
from modomodo.rewards import RewardContext, default_reward_set, is_well_formatted, parse_boxes

OOD = tuple(name for name, info in BENCHMARKS.items() if info.split == "out")
ALL_TASKS = [(d, "train") for d in DOMAINS] + [(d, "test") for d in DOMAINS] + [(b, "test") for b in OOD]
N = 60  # examples per generator in the content checks


def _examples(name: str, split: str = "test", n: int = N, seed: int = 7):
    return generate(name, split, n, seed)


# --- a pixel reader, independent of the generators -------------------------------------------------

_SHAPE_BY_AREA = {400: "square", 308: "circle", 210: "triangle"}  # painted pixels of a shape in a cell


def _pixels(png: bytes) -> Image.Image:
    return Image.open(io.BytesIO(png)).convert("RGB")


def _colour_counts(image: Image.Image, cell: Cell) -> dict[str, int]:
    x1, y1, x2, y2 = cell.box
    crop = image.crop((x1, y1, x2, y2))
    by_rgb = {rgb: name for name, rgb in COLOURS.items()}
    counts: dict[str, int] = {}
    for count, rgb in crop.getcolors(CELL * CELL):
        if rgb in by_rgb:
            counts[by_rgb[rgb]] = count
    return counts


def read_items(png: bytes) -> dict[Cell, tuple[str, str]]:
    """Cell -> (colour, shape) of every shape drawn in the picture, identified by painted area."""
    image, found = _pixels(png), {}
    for r in range(GRID):
        for c in range(GRID):
            counts = _colour_counts(image, Cell(r, c))
            if counts:
                ((colour, area),) = counts.items()
                found[Cell(r, c)] = (colour, _SHAPE_BY_AREA[area])
    return found


def read_filled(png: bytes) -> dict[Cell, str]:
    """Cell -> colour of every cell mostly covered by one colour (shaded figures, chart bars)."""
    image, found = _pixels(png), {}
    for r in range(GRID):
        for c in range(GRID):
            for colour, count in _colour_counts(image, Cell(r, c)).items():
                if count > CELL * CELL // 2:
                    found[Cell(r, c)] = colour
    return found


def _answer_text(example) -> str:
    return example.options[OPTION_LETTERS.index(example.solution)] if example.options else example.solution


def _find(items: dict[Cell, tuple[str, str]], colour: str | None, shape: str | None) -> list[Cell]:
    return [
        cell
        for cell, (c, s) in items.items()
        if (colour is None or c == colour) and (shape is None or s == shape)
    ]


def _relation(a: Cell, b: Cell) -> str:
    if a.row == b.row:
        return "left" if a.col < b.col else "right"
    assert a.col == b.col, "a relation question about two objects on no common line"
    return "above" if a.row < b.row else "below"


# --- registry and API ------------------------------------------------------------------------------


def test_registry_names_the_paper_shaped_suite():
    assert TRAIN_DOMAINS == ("det", "ref", "geo", "spatial", "sci")
    assert sorted(n for n, b in BENCHMARKS.items() if b.split == "in") == ["ref", "sci", "spatial"]
    assert len(OOD) >= 4
    for name, info in {**DOMAINS, **BENCHMARKS}.items():
        assert set(info.skills) <= set(SKILLS) and set(info.answer_forms) <= set(ANSWER_FORMS), name


@pytest.mark.parametrize("name,split", ALL_TASKS)
def test_same_arguments_give_identical_examples(name, split):
    first = generate(name, split, 12, seed=3)
    assert first == generate(name, split, 12, seed=3)
    assert [e.id for e in first] == [f"{name}-{split}-{i:06d}" for i in range(12)]
    assert generate(name, split, 5, seed=3) == first[:5]  # a prefix of a longer draw


@pytest.mark.parametrize("name,split", ALL_TASKS)
def test_seeds_and_splits_give_different_examples(name, split):
    base = {(e.image, e.problem) for e in generate(name, split, 20, seed=0)}
    assert base != {(e.image, e.problem) for e in generate(name, split, 20, seed=1)}
    if name in DOMAINS:
        other = "test" if split == "train" else "train"
        assert base != {(e.image, e.problem) for e in generate(name, other, 20, seed=0)}


@pytest.mark.parametrize("name", TRAIN_DOMAINS)
def test_train_and_test_never_share_a_problem(name):
    def keys(examples):
        return {(e.image, e.problem.split("\n")[0], _answer_text(e)) for e in examples}

    train = keys(generate(name, "train", 600, seed=0)) | keys(generate(name, "train", 600, seed=1))
    test = keys(generate(name, "test", 300, seed=0)) | keys(generate(name, "test", 300, seed=2))
    assert train and test and not train & test


@pytest.mark.parametrize(
    ("name", "split", "n", "error", "message"),
    [
        (
            "chart",
            "train",
            1,
            UnknownTaskError,
            "'chart' is an out-of-domain benchmark: it has only a 'test' split",
        ),
        ("nope", "test", 1, UnknownTaskError, "unknown domain or benchmark 'nope'"),
        ("ref", "val", 1, UnknownTaskError, "unknown split 'val'"),
        ("ref", "train", -1, ValueError, "n must be >= 0, got -1"),
    ],
)
def test_bad_requests_are_refused(name, split, n, error, message):
    with pytest.raises(error, match=message):
        generate(name, split, n, seed=0)


@pytest.mark.parametrize("name,split", ALL_TASKS)
def test_examples_are_well_formed(name, split):
    info = DOMAINS.get(name) or BENCHMARKS[name]
    for ex in _examples(name, split):
        image = Image.open(io.BytesIO(ex.image))
        assert (image.format, image.mode, image.size) == ("PNG", "RGB", (IMAGE_SIZE, IMAGE_SIZE))
        assert ex.domain == name and ex.answer_kind == info.answer_kind
        skills = ex.meta["skills"].split(",")
        assert set(skills) <= set(info.skills), (ex.id, skills)
        assert ex.meta["answer_form"] in info.answer_forms
        assert ex.meta["rationale"] and ex.meta["qtype"]
        if ex.answer_kind == "mc":
            assert ex.solution in OPTION_LETTERS[: len(ex.options)]
            assert ex.problem.endswith(
                "\n".join(f"{L}. {o}" for L, o in zip(OPTION_LETTERS, ex.options, strict=False))
            )
        if ex.answer_kind == "box":
            for box in parse_boxes(ex.solution):
                assert all(v % CELL == 0 for v in box.corners), "boxes are cell bounds"
                assert box.x2 - box.x1 == CELL and box.y2 - box.y1 == CELL


@pytest.mark.parametrize("name,split", ALL_TASKS)
def test_reference_completion_is_short_well_formatted_and_fully_rewarded(name, split):
    for ex in _examples(name, split):
        completion = reference_completion(ex)
        assert len(completion) <= 200, completion  # fits the tiny model's ~64-token budget
        assert re.fullmatch(r"<think>.*?</think>\s*<answer>.*?</answer>", completion.strip(), re.DOTALL)
        assert is_well_formatted(completion)
        for iou in ("iou_continuous", "iou_visual_rft"):
            rewards = default_reward_set(ex.answer_kind, iou)
            assert rewards.score(completion, RewardContext.from_example(ex)).total == rewards.max_total


def test_every_question_type_and_both_box_cases_occur():
    qtypes = {name: {e.meta["qtype"] for e in _examples(name, n=200)} for name in (*DOMAINS, *OOD)}
    assert qtypes["geo"] == {"width", "height", "area", "difference"}
    assert qtypes["spatial"] == {"relation", "distance", "neighbour", "count_colour", "count"}
    assert qtypes["sci"] == {"colour", "shape", "common", "count", "count_colour", "majority"}
    assert qtypes["chart"] == {"bars", "tallest"}
    assert qtypes["gridqa"] == {"count", "count_colour"}
    assert qtypes["mathcount"] == {"count_colour", "subtract"}
    assert qtypes["mixmc"] == {"count", "majority"}
    det = _examples("det", n=100)
    assert {e.solution == "No Objects" for e in det} == {True, False}


# --- every answer agrees with what the picture shows ----------------------------------------------


def _aggregate_answer(ex, items) -> str | None:
    """The answer of an aggregate question (how many, which colour most) read off ``items``; None
    for another question type."""
    qtype = ex.meta["qtype"]
    if qtype == "count":
        assert ex.problem.startswith("How many shapes are in the picture?"), ex.id
        return str(len(items))
    if qtype == "count_colour":
        colour = re.match(r"How many (\w+) shapes are there\?", ex.problem).group(1)
        return str(len(_find(items, colour, None)))
    if qtype == "majority":
        assert ex.problem.startswith("Which colour do most shapes have?"), ex.id
        (most, k), *rest = Counter(c for c, _ in items.values()).most_common()
        assert all(n < k for _, n in rest), f"{ex.id}: no single most common colour"
        return most
    return None


def test_det_boxes_are_exactly_the_shapes_of_the_category():
    for ex in _examples("det"):
        category = re.search(r"category '(\w+)'", ex.problem).group(1)
        expected = sorted(_find(read_items(ex.image), None, category))
        got = parse_boxes(ex.solution)
        assert [b.corners for b in got] == [tuple(float(v) for v in c.box) for c in expected], ex.id


def test_ref_box_is_the_one_object_the_expression_names():
    for ex in _examples("ref"):
        words = re.search(r"instruction: the (?:only )?(.*?)\. ", ex.problem).group(1).split()
        colour = words[0] if words[0] in COLOURS else None
        shape = words[-1] if words[-1] != "shape" else None
        (cell,) = _find(read_items(ex.image), colour, shape)
        assert [b.corners for b in parse_boxes(ex.solution)] == [tuple(float(v) for v in cell.box)], ex.id


def test_spatial_answers_follow_from_the_two_positions():
    pattern = r"(?:Where is|How many steps apart are) the (\w+) (\w+) (?:relative to|and) the (\w+) (\w+)\W"
    steps = {"left of": (0, -1), "right of": (0, 1), "above": (-1, 0), "below": (1, 0)}
    for ex in _examples("spatial"):
        items = read_items(ex.image)
        if ex.meta["qtype"] == "neighbour":
            where, colour, shape = re.search(r"directly (.+) the (\w+) (\w+)\?", ex.problem).groups()
            (b,) = _find(items, colour, shape)
            neighbour = Cell(b.row + steps[where][0], b.col + steps[where][1])
            assert ex.solution == items[neighbour][0], ex.id
            continue
        if ex.meta["qtype"] in ("count_colour", "count"):
            assert ex.solution == _aggregate_answer(ex, items), ex.id
            continue
        ca, sa, cb, sb = re.match(pattern, ex.problem).groups()
        (a,), (b,) = _find(items, ca, sa), _find(items, cb, sb)
        if ex.meta["qtype"] == "relation":
            assert ex.solution == _relation(a, b), ex.id
        else:
            assert ex.solution == str(abs(a.row - b.row) + abs(a.col - b.col)), ex.id


def test_sci_and_mixmc_choices_follow_from_the_picture():
    for ex in [*_examples("sci"), *_examples("mixmc")]:
        items, answer = read_items(ex.image), _answer_text(ex)
        qtype = ex.meta["qtype"]
        if qtype == "colour":
            shape = re.search(r"(circle|square|triangle)", ex.problem).group(1)
            ((cell),) = _find(items, None, shape)
            assert answer == items[cell][0], ex.id
        elif qtype == "shape":
            colour = re.search(r"(red|green|blue|yellow)", ex.problem).group(1)
            ((cell),) = _find(items, colour, None)
            assert answer == items[cell][1], ex.id
        elif qtype == "common":
            colours, shapes = {c for c, _ in items.values()}, {s for _, s in items.values()}
            assert answer in (
                {f"all {c}" for c in colours} if len(colours) == 1 else {f"all {s}s" for s in shapes}
            )
            assert len(colours) == 1 or len(shapes) == 1, ex.id
        else:
            assert answer == _aggregate_answer(ex, items), ex.id


def test_geo_answers_measure_the_shaded_rectangle():
    for ex in _examples("geo", "train"):
        cells = read_filled(ex.image)
        width = len({c.col for c in cells})
        height = len({c.row for c in cells})
        assert len(cells) == width * height, "one solid rectangle"
        expected = {
            "width": width,
            "height": height,
            "area": width * height,
            "difference": abs(width - height),
        }
        assert _answer_text(ex) == str(expected[ex.meta["qtype"]]), ex.id


def test_chart_answers_read_the_bars():
    for ex in _examples("chart"):
        bars = Counter(read_filled(ex.image).values())  # colour -> filled cells
        if ex.meta["qtype"] == "bars":
            assert ex.solution == str(len(bars)), ex.id
        else:
            assert ex.meta["qtype"] == "tallest", ex.id
            assert ex.solution == str(max(bars.values())), ex.id


def test_gridqa_answers_count_on_the_table():
    for ex in _examples("gridqa"):
        assert ex.solution == _aggregate_answer(ex, read_items(ex.image)), ex.id


def test_mathcount_answers_count_the_objects():
    for ex in _examples("mathcount"):
        items = read_items(ex.image)
        if ex.meta["qtype"] == "subtract":
            colour = re.search(r"Subtract all (\w+) objects", ex.problem).group(1)
            expected = str(len(items) - len(_find(items, colour, None)))
        else:
            expected = _aggregate_answer(ex, items)
        assert _answer_text(ex) == expected, ex.id


# --- decoys: a related, wrong reading of the same picture -------------------------------------------


def _decoy_value(ex) -> str:
    """The decoy's answer as text (an option's text for multiple choice)."""
    solution = ex.meta["decoy_solution"]
    return ex.options[OPTION_LETTERS.index(solution)] if ex.options else solution


def test_decoys_read_the_picture_another_way_and_are_never_right():
    """Each aggregate question's decoy is what its rationale says it reads off the picture, and it
    never equals the answer: the warm-start's decoys must be wrong for GRPO's reward to tell them."""
    seen = Counter()
    for name in ("spatial", "sci", "geo", "gridqa", "mathcount", "mixmc"):
        for ex in _examples(name, n=200):
            if "decoy_solution" not in ex.meta:
                assert ex.meta["qtype"] not in ("count_colour", "majority"), ex.id  # these always have one
                continue
            qtype, value = ex.meta["qtype"], _decoy_value(ex)
            seen[qtype] += 1
            assert ex.meta["decoy_solution"] != ex.solution, ex.id
            label, number = ex.meta["decoy_rationale"].split(": ")
            assert number == value, ex.id
            if qtype in ("width", "height"):
                block = read_filled(ex.image)
                rows = {cell.row for cell in block}
                cols = {cell.col for cell in block}
                assert (label, value) == (
                    {"width": "tall", "height": "wide"}[qtype],
                    str(len(rows) if qtype == "width" else len(cols)),
                ), ex.id
                continue
            items = read_items(ex.image)
            colours = Counter(c for c, _ in items.values())
            if qtype == "count_colour":
                asked = re.match(r"How many (\w+) shapes are there\?", ex.problem).group(1)
                assert (label, value) == ("other colours", str(len(items) - colours[asked])), ex.id
            elif qtype == "count":
                assert (label, value) == ("one colour", str(max(colours.values()))), ex.id
            else:
                assert qtype == "majority" and label == "fewest", ex.id
                assert colours[value] == min(colours.get(c, 0) for c in COLOURS), ex.id
    assert set(seen) == {"count_colour", "count", "majority", "width", "height"}, seen


def test_decoy_completion_is_well_formed_and_scores_no_accuracy():
    for name in ("spatial", "sci", "geo"):
        for ex in _examples(name, n=60):
            if "decoy_solution" not in ex.meta:
                assert decoy_completion(ex) == reference_completion(ex)
                continue
            completion = decoy_completion(ex)
            assert is_well_formatted(completion), completion
            scores = default_reward_set(ex.answer_kind).score(completion, RewardContext.from_example(ex))
            assert scores.parts == {"format": 1.0, "accuracy": 0.0}, (ex.id, completion, scores)


def test_aggregate_options_come_in_a_fixed_order():
    # Suite v8: with shuffled options the letter of a count is no function of the count, and the tiny
    # base answered every multiple-choice aggregate with one letter (docs/synthetic-suite.md).
    palette = list(COLOURS)
    checked = 0
    for name in ("sci", "geo", "mathcount", "mixmc"):
        for ex in _examples(name, "train" if name in TRAIN_DOMAINS else "test"):
            if ex.meta["qtype"] not in ("count", "count_colour", "majority", "subtract", "width", "height"):
                continue
            options = list(ex.options)
            key = int if options[0].isdigit() else palette.index
            assert options == sorted(options, key=key), ex.id
            checked += 1
    assert checked > 100
