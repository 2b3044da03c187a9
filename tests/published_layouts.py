"""Small datasets in exactly the layouts the paper's data is published in, one writer per layout.

Each writer draws a few real images (PIL, the answer drawn where the question needs it: a box where
the reference box is, the bar a chart question reads, the text a document question asks for) and
saves them in the dataset's published encoding:

==============  =============================  ===========================================
layout          encoding                       published form reproduced
==============  =============================  ===========================================
visual_rft_coco save_to_disk, Image feature    ``<answer>[{'Position': ..}]</answer>``, 0-1000
lisa            JSONL + image files            ``image_path``, a list of questions per row,
                                               ``<answer> (x1,y1),(x2,y2) </answer>``, 0-1000,
                                               images above 640 px
lisa_test       save_to_disk, Image feature    one question per row, images above 640 px
geoqav          Parquet, ``{bytes, path}``     8k set: multiple choice and free-form rows,
                                               ``original_question``/``original_answer``
sat             save_to_disk, Image feature    natural-language answers (sampled later)
sat_test        JSONL, base64 ``image``        the val split
scienceqa       save_to_disk, Image feature    lineage: lettered options in the problem
scienceqa_hub   Parquet, ``{bytes, path}``     int ``answer``, ``choices``, ``hint``; rows
                                               without an image (null)
chartqa         Parquet, ``{bytes, path}``     ``query``, one-element ``label`` list
chartqa_lmms    save_to_disk, Image feature    ``question``, ``answer``, ``type``
infovqa         save_to_disk, Image feature    ``answers``/``answer_type``/
                                               ``operation/reasoning`` lists, ``questionId``
docvqa          Parquet, ``{bytes, path}``     ``answers`` list, ``question_types`` list
mathvista       Parquet, ``{bytes, path}``     ``decoded_image`` next to a file-name
                                               ``image``, ``precision`` (null for non-floats),
                                               ``unit``, ``choices`` (null for free form)
mmmu            save_to_disk, Image features   ``image_1..image_7`` (null past the last),
                                               Python-repr ``options``, ``<image N>``
==============  =============================  ===========================================

:data:`PUBLISHED` lists them with the curated domain and split each one feeds, as the paper uses
them: five training sets (LISA, SAT and ScienceQA with their test splits as In benchmarks) and the
Out benchmarks (test only).
"""

from __future__ import annotations

import base64
import io
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image, ImageDraw, ImageFont

WHITE = (255, 255, 255)
RED, GREEN, BLUE, YELLOW, GREY = (220, 30, 30), (30, 170, 60), (40, 70, 220), (240, 200, 20), (90, 90, 90)
COLOURS = {"red": RED, "green": GREEN, "blue": BLUE, "yellow": YELLOW}
COCO_PROMPT = (
    "Detect all objects belonging to the category '{cat}' in the image, and provide the bounding boxes "
    "(between 0 and 1000, integer) and confidence (between 0 and 1, with two decimal places).\n"
    "If no object belonging to the category '{cat}' in the image, return 'No Objects'.\n"
    "Output the thinking process in <think> </think> and final answer in <answer> </answer> tags."
    "The output answer format should be as follows:\n<think> ... </think> <answer>[{{'Position': "
    "[x1, y1, x2, y2], 'Confidence': number}}, ...]</answer>\nPlease strictly follow the format."
)
SAT_TEMPLATE = "{q}  Output the thinking process in <think> </think> and final answer (option) in <answer> </answer> tags."
"""The lineage's question template (two spaces), as the paper's converted datasets carry it."""


# --- images --------------------------------------------------------------------------------------


def encode(image: Image.Image, fmt: str = "PNG") -> bytes:
    out = io.BytesIO()
    image.convert("RGB").save(out, format=fmt)
    return out.getvalue()


def canvas(width: int, height: int) -> tuple[Image.Image, ImageDraw.ImageDraw]:
    image = Image.new("RGB", (width, height), WHITE)
    return image, ImageDraw.Draw(image)


def font(size: int) -> ImageFont.FreeTypeFont:
    """Pillow's built-in font at ``size`` px, so labels stay readable on large images."""
    return ImageFont.load_default(size=max(10, size))


def labelled_box(draw: ImageDraw.ImageDraw, box: tuple[int, int, int, int], colour, label: str) -> None:
    """The object a detection or grounding asks for, filling ``box`` (a ball is round), its name
    written inside."""
    shape = draw.ellipse if label == "ball" else draw.rectangle
    shape(box, fill=colour, outline=(0, 0, 0))
    size = min(box[2] - box[0], box[3] - box[1]) // 5
    draw.text((box[0] + size // 2 + 2, box[1] + size // 2 + 2), label, fill=WHITE, font=font(size))


def objects_image(
    size: tuple[int, int],
    objects: list[tuple[str, tuple[int, int, int, int], tuple[int, int, int]]],
    fmt="PNG",
) -> bytes:
    image, draw = canvas(*size)
    for label, box, colour in objects:
        labelled_box(draw, box, colour, label)
    return encode(image, fmt)


def text_image(lines: list[str], size: tuple[int, int] = (240, 160)) -> bytes:
    """A document / infographic: lines of text, each readable answer written out."""
    image, draw = canvas(*size)
    draw.rectangle((2, 2, size[0] - 3, size[1] - 3), outline=GREY)
    for i, line in enumerate(lines):
        draw.text((10, 10 + 18 * i), line, fill=(0, 0, 0))
    return encode(image)


def bar_chart(bars: dict[str, int], size: tuple[int, int] = (240, 180)) -> bytes:
    """Bars of the named colours, each with its value printed above it and its name below."""
    image, draw = canvas(*size)
    base, width = size[1] - 20, size[0] // (len(bars) + 1)
    draw.line((5, base, size[0] - 5, base), fill=(0, 0, 0))
    for i, (name, value) in enumerate(bars.items()):
        x = 15 + i * width
        draw.rectangle((x, base - value * 1.5, x + width - 10, base), fill=COLOURS[name])
        draw.text((x, base - value * 1.5 - 12), str(value), fill=(0, 0, 0))
        draw.text((x, base + 4), name, fill=(0, 0, 0))
    return encode(image)


def triangle(angles: tuple[int, int], size: tuple[int, int] = (300, 220)) -> bytes:
    """Triangle ABC with the angles at A and B written next to their vertices."""
    image, draw = canvas(*size)
    a, b, c = (20, size[1] * 4 // 5), (size[0] - 20, size[1] * 4 // 5), (size[0] // 3, size[1] // 8)
    draw.polygon([a, b, c], outline=(0, 0, 0), width=max(1, size[1] // 150))
    text = font(size[1] // 16)
    draw.text((a[0], a[1] + 2), f"A {angles[0]}°", fill=(0, 0, 0), font=text)
    draw.text((b[0] - size[0] // 6, b[1] + 2), f"B {angles[1]}°", fill=(0, 0, 0), font=text)
    draw.text((c[0], 2), "C", fill=(0, 0, 0), font=text)
    return encode(image)


def magnets(facing_same: bool) -> bytes:
    """Two bar magnets end to end; the facing poles decide attract (N-S) or repel (S-S)."""
    image, draw = canvas(240, 80)
    left, right = ("N", "S"), ("S", "N") if facing_same else ("N", "S")
    for x0, poles in ((10, left), (130, right)):
        draw.rectangle((x0, 25, x0 + 50, 55), fill=RED)
        draw.rectangle((x0 + 50, 25, x0 + 100, 55), fill=BLUE)
        draw.text((x0 + 20, 33), poles[0], fill=WHITE)
        draw.text((x0 + 70, 33), poles[1], fill=WHITE)
    return encode(image)


def dots(count: int, colour=RED, size: tuple[int, int] = (160, 120)) -> bytes:
    image, draw = canvas(*size)
    for i in range(count):
        x, y = 15 + (i % 4) * 35, 15 + (i // 4) * 40
        draw.ellipse((x, y, x + 25, y + 25), fill=colour)
    return encode(image)


def polygon(sides: int, colour=GREEN) -> bytes:
    image, draw = canvas(160, 160)
    points = [
        (80 + 60 * math.cos(2 * math.pi * k / sides), 80 + 60 * math.sin(2 * math.pi * k / sides))
        for k in range(sides)
    ]
    draw.polygon(points, fill=colour, outline=(0, 0, 0))
    return encode(image)


def ruler_bar(length_cm: float) -> bytes:
    """A bar over a ruler marked in cm (40 px per cm), its length printed in cm."""
    image, draw = canvas(260, 90)
    for cm in range(7):
        draw.line((10 + 40 * cm, 60, 10 + 40 * cm, 72), fill=(0, 0, 0))
        draw.text((8 + 40 * cm, 74), str(cm), fill=(0, 0, 0))
    draw.rectangle((10, 30, 10 + int(40 * length_cm), 50), fill=BLUE)
    draw.text((12, 12), f"{length_cm} cm", fill=(0, 0, 0))
    return encode(image)


def grid(box: tuple[int, int, int, int], size: tuple[int, int]) -> list[int]:
    """A pixel box on Qwen2-VL's 0-1000 grid (the fixtures pick boxes whose grid values are whole)."""
    w, h = size
    values = [box[0] * 1000 / w, box[1] * 1000 / h, box[2] * 1000 / w, box[3] * 1000 / h]
    assert all(v == int(v) for v in values), f"pick a box on whole grid values: {box} on {size}"
    return [int(v) for v in values]


# --- encodings -----------------------------------------------------------------------------------


def hf_image(data: bytes | None) -> dict[str, Any] | None:
    """A datasets ``Image`` feature value: encoded bytes, no path."""
    return None if data is None else {"bytes": data, "path": None}


def save_hf(rows: list[dict], features: dict[str, Any], out: Path) -> Path:
    """``datasets.Dataset.save_to_disk``, image columns as ``Image`` features (as the Hub copies)."""
    image_columns = [c for c, f in features.items() if isinstance(f, datasets.Image)]
    rows = [{k: hf_image(v) if k in image_columns else v for k, v in row.items()} for row in rows]
    datasets.Dataset.from_list(rows, features=datasets.Features(features)).save_to_disk(str(out))
    return out


IMAGE_STRUCT = pa.struct([("bytes", pa.binary()), ("path", pa.string())])


def save_parquet(rows: list[dict], schema: pa.Schema, out: Path, image_columns: tuple[str, ...]) -> Path:
    """A Parquet file whose image columns are ``{bytes, path}`` structs (the Hub's Parquet export)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = [
        {
            k: ({"bytes": v, "path": f"{i}.png"} if k in image_columns and v is not None else v)
            for k, v in r.items()
        }
        for i, r in enumerate(rows)
    ]
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), out)
    return out


def save_jsonl(rows: list[dict], out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return out


PAPER_FEATURES = {
    "image": datasets.Image(),
    "problem": datasets.Value("string"),
    "solution": datasets.Value("string"),
}


# --- training sets (image, problem, solution) -----------------------------------------------------

COCO_SIZE = (200, 100)
COCO_ROWS = [
    ("dog", [(20, 10, 80, 60)], ("cup", (120, 40, 180, 90), GREEN)),
    ("cup", [(100, 20, 160, 80)], ("dog", (10, 10, 60, 50), RED)),
    ("car", [(10, 50, 70, 90), (120, 10, 190, 50)], ("cat", (80, 10, 110, 40), YELLOW)),
    ("cat", [(60, 30, 140, 90)], ("car", (150, 10, 190, 40), BLUE)),
]


def write_visual_rft_coco(folder: Path) -> Path:
    """Visual-RFT's COCO subset (laolao77/ViRFT_COCO): answers on the 0-1000 grid, JPEG images."""
    rows = []
    for cat, boxes, (other, other_box, other_colour) in COCO_ROWS:
        objects = [(cat, b, RED if cat == "dog" else BLUE) for b in boxes] + [
            (other, other_box, other_colour)
        ]
        positions = ", ".join(f"{{'Position': {grid(b, COCO_SIZE)}, 'Confidence': 1}}" for b in boxes)
        rows.append(
            {
                "image": objects_image(COCO_SIZE, objects, "JPEG"),
                "problem": COCO_PROMPT.format(cat=cat),
                "solution": f"<answer>[{positions}]</answer>",
            }
        )
    return save_hf(rows, PAPER_FEATURES, folder / "ViRFT_COCO")


LISA_SIZE = (800, 600)
"""Above the paper's 640 px: the preprocessing shrinks it to 640x480, boxes with it."""
LISA_ROWS = [
    (["the red ball", "the thing a child would throw"], (80, 60, 320, 300), ("ball", RED), ("box", BLUE)),
    (
        ["the blue box", "where you could store toys", "the square object"],
        (400, 300, 720, 540),
        ("box", BLUE),
        ("ball", RED),
    ),
    (["the green plant"], (560, 60, 760, 420), ("plant", GREEN), ("lamp", YELLOW)),
]


def write_lisa(folder: Path) -> Path:
    """LISA-train in its JSON recipe: image files named by ``image_path``, several questions per
    image-box pair (a list), the box as ``<answer> (x1,y1),(x2,y2) </answer>`` on the 0-1000 grid."""
    out = folder / "lisa"
    (out / "images").mkdir(parents=True)
    rows = []
    for i, (questions, box, (name, colour), (other, other_colour)) in enumerate(LISA_ROWS):
        other_box = (20, 480, 140, 580) if box[1] < 300 else (40, 40, 200, 200)
        (out / "images" / f"{i}.jpg").write_bytes(
            objects_image(LISA_SIZE, [(name, box, colour), (other, other_box, other_colour)], "JPEG")
        )
        x1, y1, x2, y2 = grid(box, LISA_SIZE)
        rows.append(
            {
                "image_path": f"images/{i}.jpg",
                "problem": questions,
                "solution": f"<answer> ({x1},{y1}),({x2},{y2}) </answer>",
            }
        )
    return save_jsonl(rows, out / "train.jsonl")


LISA_TEST_SIZE = (1000, 500)
LISA_TEST_ROWS = [
    ("the yellow lamp", (100, 50, 300, 450), YELLOW),
    ("the red ball", (600, 200, 900, 400), RED),
    ("the green plant", (400, 100, 550, 300), GREEN),
]


def write_lisa_test(folder: Path) -> Path:
    """LISA-test as the lineage's Hub copy (yiqingliang/lisa-problems-dataset-test): one question a row."""
    rows = []
    for question, box, colour in LISA_TEST_ROWS:
        x1, y1, x2, y2 = grid(box, LISA_TEST_SIZE)
        image = objects_image(LISA_TEST_SIZE, [(question.split()[-1], box, colour)])
        rows.append(
            {"image": image, "problem": question, "solution": f"<answer> ({x1},{y1}),({x2},{y2}) </answer>"}
        )
    return save_hf(rows, PAPER_FEATURES, folder / "lisa-test")


GEOQAV_ROWS = [
    # (angle A, angle B, multiple choice?) -> angle C = 180 - A - B
    (50, 60, True),
    (40, 80, True),
    (30, 90, False),
    (70, 45, True),
    (20, 100, False),
]


def write_geoqav(folder: Path) -> Path:
    """GeoQAV from the 8k multimodal-open-r1 set: multiple-choice rows (kept) and free-form rows
    (dropped by the paper's filter), with the set's ``original_question``/``original_answer``."""
    rows = []
    for i, (a, b, mc) in enumerate(GEOQAV_ROWS):
        c = 180 - a - b
        question = (
            f"As shown in the figure, in triangle ABC, angle A = {a}° and angle B = {b}°. What is angle C?"
        )
        size = (900, 660) if i == 0 else (300, 220)  # one oversized figure: resized like LISA's
        if mc:
            choices = [c - 20, c - 10, c, c + 10]
            letters = "ABCD"
            problem = (
                question + "\nChoices:\n" + "\n".join(f"{letters[k]}. {v}°" for k, v in enumerate(choices))
            )
            solution = "<answer>C</answer>"
        else:
            problem, solution = question, f"<answer>{c}</answer>"
        rows.append(
            {
                "image": triangle((a, b), size),
                "problem": SAT_TEMPLATE.format(q=problem),
                "solution": solution,
                "original_question": question,
                "original_answer": f"{c}°",
            }
        )
    schema = pa.schema(
        [
            ("image", IMAGE_STRUCT),
            ("problem", pa.string()),
            ("solution", pa.string()),
            ("original_question", pa.string()),
            ("original_answer", pa.string()),
        ]
    )
    return save_parquet(rows, schema, folder / "geoqav" / "train-00000-of-00001.parquet", ("image",))


SAT_ROWS = [  # (left object, right object, question about the left one's side of the right one)
    (("red", RED), ("blue", BLUE)),
    (("green", GREEN), ("red", RED)),
    (("blue", BLUE), ("yellow", YELLOW)),
    (("yellow", YELLOW), ("green", GREEN)),
    (("red", RED), ("green", GREEN)),
    (("blue", BLUE), ("red", RED)),
]


def _sat_row(index: int, left, right) -> dict[str, Any]:
    """A spatial question: is the first-named box left or right of the other (swapped on odd rows)."""
    a, b = (left, right) if index % 2 == 0 else (right, left)
    answer = "left" if a is left else "right"
    image = objects_image(
        (200, 100),
        [
            (left[0], (10 + index * 3, 30, 60 + index * 3, 80), left[1]),
            (right[0], (130, 20, 190, 70), right[1]),
        ],
    )
    question = f"Is the {a[0]} box to the left or to the right of the {b[0]} box?"
    return {
        "image": image,
        "problem": SAT_TEMPLATE.format(q=question),
        "solution": f"<answer>{answer}</answer>",
    }


def write_sat(folder: Path) -> Path:
    """SAT-train as converted for the paper (yiqingliang/sat-problems-dataset): natural-language answers."""
    rows = [_sat_row(i, left, right) for i, (left, right) in enumerate(SAT_ROWS)]
    return save_hf(rows, PAPER_FEATURES, folder / "sat")


def write_sat_test(folder: Path) -> Path:
    """SAT-test (SAT's val split) as JSONL with base64 images, the path-source convention."""
    rows = [_sat_row(i + 10, left, right) for i, (left, right) in enumerate(SAT_ROWS[:3])]
    encoded = [{**r, "image": base64.b64encode(r["image"]).decode()} for r in rows]
    return save_jsonl(encoded, folder / "sat-test" / "val.jsonl")


def write_scienceqa(folder: Path) -> Path:
    """ScienceQA-train as the lineage converts it: lettered options in the problem, letter solution."""
    rows = []
    for i, same in enumerate((True, False, True, False)):
        problem = "Will these magnets attract or repel each other?\nA. attract\nB. repel"
        if i >= 2:
            problem = "Will these magnets repel or attract each other?\nA. repel\nB. attract"
        answer = ("B" if same else "A") if i < 2 else ("A" if same else "B")
        image = Image.open(io.BytesIO(magnets(same))).rotate(180 * (i // 2))  # distinct pictures
        rows.append(
            {
                "image": encode(image),
                "problem": SAT_TEMPLATE.format(q=problem),
                "solution": f"<answer>{answer}</answer>",
            }
        )
    return save_hf(rows, PAPER_FEATURES, folder / "scienceqa")


# --- benchmarks ----------------------------------------------------------------------------------

SCIENCEQA_HUB_ROWS = [  # (image or None, question, choices, answer index, hint)
    (
        "magnets-same",
        "Will these magnets attract or repel each other?",
        ["repel", "attract"],
        0,
        "Two magnets are placed as shown.",
    ),
    (None, "Which word would you find on a dictionary page between 'bat' and 'bed'?", ["bay", "bog"], 0, ""),
    ("dots-3", "How many red dots are there?", ["2", "3", "4"], 1, ""),
    (
        None,
        "What is the boiling point of water at sea level?",
        ["100 °C", "50 °C"],
        0,
        "Think about a kettle.",
    ),
    ("magnets-opposite", "Will these magnets attract or repel each other?", ["repel", "attract"], 1, ""),
]


def write_scienceqa_hub(folder: Path) -> Path:
    """ScienceQA-test on the Hub (derek-thomas/ScienceQA, Parquet): ``answer`` an int index into
    ``choices``; problems without an image have a null ``image`` (the paper drops them)."""
    pictures = {"magnets-same": magnets(True), "magnets-opposite": magnets(False), "dots-3": dots(3)}
    rows = [
        {
            "image": pictures[image] if image else None,
            "question": question,
            "choices": choices,
            "answer": answer,
            "hint": hint,
            "task": "closed choice",
            "grade": "grade4",
            "subject": "natural science",
            "topic": "physics",
            "category": "Magnets",
            "skill": "Predict magnetic forces",
            "lecture": "Magnets can pull or push on each other without touching.",
            "solution": "Opposite poles attract; like poles repel.",
        }
        for image, question, choices, answer, hint in SCIENCEQA_HUB_ROWS
    ]
    text_columns = [
        "question",
        "hint",
        "task",
        "grade",
        "subject",
        "topic",
        "category",
        "skill",
        "lecture",
        "solution",
    ]
    schema = pa.schema(
        [("image", IMAGE_STRUCT), ("choices", pa.list_(pa.string())), ("answer", pa.int8())]
        + [(c, pa.string()) for c in text_columns]
    )
    return save_parquet(rows, schema, folder / "scienceqa-hub" / "test-00000-of-00001.parquet", ("image",))


CHART_BARS = [
    {"blue": 52, "red": 35, "green": 70},
    {"red": 20, "yellow": 45},
    {"green": 64, "blue": 12, "yellow": 30},
]


def write_chartqa(folder: Path) -> Path:
    """ChartQA test (HuggingFaceM4/ChartQA, Parquet): ``query`` and a one-element ``label`` list."""
    questions = [
        ("What is the value of the blue bar?", "52"),
        ("Which colour is the tallest bar?", "Yellow"),
        ("What is the difference between the green and the yellow bar?", "34"),
    ]
    rows = [
        {"image": bar_chart(bars), "query": q, "label": [a], "human_or_machine": i % 2}
        for i, (bars, (q, a)) in enumerate(zip(CHART_BARS, questions, strict=True))
    ]
    schema = pa.schema(
        [
            ("image", IMAGE_STRUCT),
            ("query", pa.string()),
            ("label", pa.list_(pa.string())),
            ("human_or_machine", pa.int64()),
        ]
    )
    return save_parquet(rows, schema, folder / "chartqa" / "test-00000-of-00001.parquet", ("image",))


def write_chartqa_lmms(folder: Path) -> Path:
    """ChartQA as lmms-eval reads it (lmms-lab/ChartQA): ``question``, ``answer``, ``type``."""
    questions = [
        ("What is the value of the red bar?", "35"),
        ("What is the value of the red bar?", "20"),
        ("What is the value of the blue bar?", "12"),
    ]
    rows = [
        {"image": bar_chart(bars), "question": q, "answer": a, "type": "human_test"}
        for bars, (q, a) in zip(CHART_BARS, questions, strict=True)
    ]
    features = {
        "type": datasets.Value("string"),
        "question": datasets.Value("string"),
        "answer": datasets.Value("string"),
        "image": datasets.Image(),
    }
    return save_hf(rows, features, folder / "chartqa-lmms")


INFO_ROWS = [  # (lines drawn, question, answers)
    (
        ["CITY FACTS", "Population: 3.2 million", "Parks: 140"],
        "What is the population of the city?",
        ["3.2 million", "3.2m"],
    ),
    (["ENERGY MIX", "Solar 40%", "Wind 35%", "Gas 25%"], "Which source has the largest share?", ["solar"]),
    (["SURVEY 2024", "Cats: 18 votes", "Dogs: 27 votes"], "How many votes did dogs get?", ["27"]),
]


def write_infovqa(folder: Path) -> Path:
    """InfographicVQA val (lmms-lab/DocVQA, InfographicVQA): ``answers``, ``answer_type`` and
    ``operation/reasoning`` are lists; ``questionId`` gives the row its id."""
    rows = [
        {
            "questionId": str(65000 + i),
            "question": question,
            "answers": answers,
            "answer_type": ["single span"],
            "image": text_image(lines),
            "image_url": f"https://example.invalid/{i}.jpeg",
            "operation/reasoning": ["counting"] if i == 2 else [],
            "ocr": json.dumps(lines),
            "data_split": "val",
        }
        for i, (lines, question, answers) in enumerate(INFO_ROWS)
    ]
    strings = datasets.Sequence(datasets.Value("string"))
    features = {
        "questionId": datasets.Value("string"),
        "question": datasets.Value("string"),
        "answers": strings,
        "answer_type": strings,
        "image": datasets.Image(),
        "image_url": datasets.Value("string"),
        "operation/reasoning": strings,
        "ocr": datasets.Value("string"),
        "data_split": datasets.Value("string"),
    }
    return save_hf(rows, features, folder / "infovqa-val")


DOC_ROWS = [
    (["INVOICE", "Invoice No: 4711", "Date: 12 May 1998"], "What is the invoice number?", ["4711"]),
    (["MEMO", "To: R. Smith", "From: J. Doe"], "Who is the memo addressed to?", ["R. Smith", "Smith"]),
    (["REPORT", "Page 3 of 7"], "How many pages does the report have?", ["7", "seven"]),
]


def write_docvqa(folder: Path) -> Path:
    """DocVQA val (lmms-lab/DocVQA, DocVQA, Parquet): ``answers`` and ``question_types`` lists."""
    rows = [
        {
            "questionId": str(337 + i),
            "question": question,
            "question_types": ["form"],
            "image": text_image(lines),
            "docId": 1000 + i,
            "ucsf_document_id": f"doc{i}",
            "ucsf_document_page_no": "1",
            "answers": answers,
            "data_split": "val",
        }
        for i, (lines, question, answers) in enumerate(DOC_ROWS)
    ]
    schema = pa.schema(
        [
            ("questionId", pa.string()),
            ("question", pa.string()),
            ("question_types", pa.list_(pa.string())),
            ("image", IMAGE_STRUCT),
            ("docId", pa.int64()),
            ("ucsf_document_id", pa.string()),
            ("ucsf_document_page_no", pa.string()),
            ("answers", pa.list_(pa.string())),
            ("data_split", pa.string()),
        ]
    )
    return save_parquet(rows, schema, folder / "docvqa" / "validation-00000-of-00001.parquet", ("image",))


MATHVISTA_ROWS = [
    # (picture, question, choices, answer, question_type, answer_type, precision, unit)
    (
        polygon(4),
        "How many sides does the green shape have?",
        ["3", "4", "5", "6"],
        "4",
        "multi_choice",
        "text",
        None,
        None,
    ),
    (dots(5, BLUE), "How many blue dots are there?", None, "5", "free_form", "integer", None, None),
    (ruler_bar(2.5), "How long is the blue bar?", None, "2.5", "free_form", "float", 1.0, "cm"),
    (
        polygon(6, RED),
        "What shape is the red figure?",
        ["triangle", "square", "hexagon"],
        "hexagon",
        "multi_choice",
        "text",
        None,
        None,
    ),
]


def write_mathvista(folder: Path) -> Path:
    """MathVista testmini (AI4Math/MathVista, Parquet): the picture in ``decoded_image``, the file
    name in ``image``, ``precision`` and ``unit`` set for the float answer only."""
    rows = [
        {
            "pid": str(i + 1),
            "question": question,
            "image": f"images/{i + 1}.jpg",
            "decoded_image": picture,
            "choices": choices,
            "unit": unit,
            "precision": precision,
            "answer": answer,
            "question_type": question_type,
            "answer_type": answer_type,
            "metadata": {"source": "fixture", "task": "math word problem", "grade": "elementary school"},
            "query": f"Hint: answer the question.\nQuestion: {question}",
        }
        for i, (picture, question, choices, answer, question_type, answer_type, precision, unit) in enumerate(
            MATHVISTA_ROWS
        )
    ]
    schema = pa.schema(
        [
            ("pid", pa.string()),
            ("question", pa.string()),
            ("image", pa.string()),
            ("decoded_image", IMAGE_STRUCT),
            ("choices", pa.list_(pa.string())),
            ("unit", pa.string()),
            ("precision", pa.float64()),
            ("answer", pa.string()),
            ("question_type", pa.string()),
            ("answer_type", pa.string()),
            ("metadata", pa.struct([("source", pa.string()), ("task", pa.string()), ("grade", pa.string())])),
            ("query", pa.string()),
        ]
    )
    return save_parquet(
        rows, schema, folder / "mathvista" / "testmini-00000-of-00001.parquet", ("decoded_image",)
    )


MMMU_ROWS = [
    # (id, question, options, answer, question_type, images)
    (
        "validation_Math_1",
        "How many dots are in <image 1>, <image 2> and <image 3> together?",
        "[]",
        "6",
        "open",
        [dots(2), dots(3, BLUE), dots(1)],
    ),
    (
        "validation_Art_2",
        "<image 1> What colour is the shape?",
        "['red', 'green', 'blue', 'yellow']",
        "B",
        "multiple-choice",
        [polygon(5)],
    ),
    (
        "validation_Math_3",
        "Which picture shows more sides, <image 1> or <image 2>?",
        "['<image 1>', '<image 2>']",
        "B",
        "multiple-choice",
        [polygon(3), polygon(6)],
    ),
]


def write_mmmu(folder: Path) -> Path:
    """MMMU validation (MMMU/MMMU): ``image_1..image_7`` (null past the item's last image),
    ``options`` a Python-repr string, questions referencing ``<image N>``."""
    rows = []
    for item_id, question, options, answer, question_type, images in MMMU_ROWS:
        row = {
            "id": item_id,
            "question": question,
            "options": options,
            "explanation": "",
            "img_type": "['Diagrams']",
            "answer": answer,
            "topic_difficulty": "Easy",
            "question_type": question_type,
            "subfield": "Geometry",
        }
        row.update({f"image_{n}": images[n - 1] if n <= len(images) else None for n in range(1, 8)})
        rows.append(row)
    features = {
        c: datasets.Value("string")
        for c in (
            "id",
            "question",
            "options",
            "explanation",
            "img_type",
            "answer",
            "topic_difficulty",
            "question_type",
            "subfield",
        )
    }
    features.update({f"image_{n}": datasets.Image() for n in range(1, 8)})
    return save_hf(rows, features, folder / "mmmu-val")


# --- the table ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Published:
    """One fixture dataset: its layout, writer, and where it goes in the curated data."""

    layout: str
    write: Callable[[Path], Path]
    domain: str
    """The curated domain it feeds (train and test splits of one domain share it)."""
    split: str
    """``train`` or ``test``."""


PUBLISHED: tuple[Published, ...] = (
    Published("visual_rft_coco", write_visual_rft_coco, "coco", "train"),
    Published("lisa", write_lisa, "lisa", "train"),
    Published("lisa_test", write_lisa_test, "lisa", "test"),
    Published("geoqav", write_geoqav, "geoqav", "train"),
    Published("sat", write_sat, "sat", "train"),
    Published("sat_test", write_sat_test, "sat", "test"),
    Published("scienceqa", write_scienceqa, "scienceqa", "train"),
    Published("scienceqa_hub", write_scienceqa_hub, "scienceqa", "test"),
    Published("chartqa", write_chartqa, "chartqa", "test"),
    Published("chartqa_lmms", write_chartqa_lmms, "chartqa_lmms", "test"),
    Published("infovqa", write_infovqa, "infovqa", "test"),
    Published("docvqa", write_docvqa, "docvqa", "test"),
    Published("mathvista", write_mathvista, "mathvista", "test"),
    Published("mmmu", write_mmmu, "mmmu", "test"),
)


def write_all(folder: Path) -> dict[str, Path]:
    """Every fixture dataset under ``folder``, by layout name."""
    folder.mkdir(parents=True, exist_ok=True)
    return {p.layout: p.write(folder) for p in PUBLISHED}
